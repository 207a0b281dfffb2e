// faultline_bench_accept_real: loopback accepts per second through
// Socket<RealTransport>::AcceptAsync (dotnet-unix profile, re-armed from Completed, a false return
// looped over as A-3 says, each accepted socket disposed at once) against a raw blocking accept4()
// + close() loop. Both are fed by the same connector, one thread doing blocking connect() + close()
// on 127.0.0.1 with SO_LINGER {1, 0}, so the connector's close is an RST: neither end enters
// TIME_WAIT and 20,000 connections per run never exhaust the ephemeral ports. Interleaved runs in
// the same process under the same CPU placement, two placements: split (connector on the other CPU;
// there the connector is the bottleneck, so the figure mostly shows wake-up costs) and shared
// (everything on CPU 0; the accepting side's cost shows in the rate). Target: faultline/raw >= 0.7.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_support.h"
#include "bench_raw.h"
#include "faultline/model/socket.h"
#include "faultline/real/transport.h"

namespace faultline::bench {
namespace {

using model::Socket;
using model::SocketError;
using real::RealTransport;
using Args = model::SocketAsyncEventArgs<RealTransport>;

constexpr int kConnectionsPerRun = 20'000;
constexpr int kRuns = 5;
constexpr int kBacklog = 4096;
/// The connector stays at most this many connections ahead of the acceptor, well inside the
/// backlog: an overflowing accept queue drops handshakes and would measure SYN retransmission.
constexpr int kWindow = 1024;
constexpr double kRatioMin = 0.7;
constexpr int kAcceptCpu = 0;
constexpr auto kRunBudget = std::chrono::seconds(30);

/// Where the connector thread runs; every accepting thread (the raw loop's thread; for
/// faultline the main thread and the RealTransport pool) is on kAcceptCpu.
struct Placement {
    const char* name;
    int connector_cpu;
};

/// What one run shares between the connector and the acceptor. Held by shared_ptr: the
/// acceptor that sets `done` may still be inside set_value when the main thread moves on.
struct RunState {
    std::atomic<int> accepted{0};
    Clock::time_point started;
    Clock::time_point finished;  // written by the acceptor before `done` is set
    double connector_cpu_seconds = 0;
    std::promise<void> done;
    std::future<void> done_future = done.get_future();
};

/// One run's figures: accepts per wall second, and CPU time per accept outside the connector
/// thread (the accepting side, plus the kernel work that happened to be charged to it).
struct RunFigures {
    double rate = 0;
    double accept_cpu_us = 0;
    double connector_cpu_us = 0;
};

/// Called by either acceptor after it accepted and closed one connection.
void note_accepted(RunState& state) {
    const int accepted = state.accepted.fetch_add(1, std::memory_order_acq_rel) + 1;
    state.accepted.notify_one();
    if (accepted == kConnectionsPerRun) {
        state.finished = Clock::now();
        state.done.set_value();
    }
}

/// The connector: kConnectionsPerRun times socket(), SO_LINGER {1, 0}, blocking connect(),
/// close(), never more than kWindow ahead of the acceptor.
void connect_all(std::uint16_t port, int cpu, RunState& state) {
    static_cast<void>(pin_this_thread({cpu}));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    const linger abortive{1, 0};
    const double cpu_start = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    state.started = Clock::now();
    for (int i = 0; i < kConnectionsPerRun; ++i) {
        for (int accepted = state.accepted.load(std::memory_order_acquire); i - accepted >= kWindow;
             accepted = state.accepted.load(std::memory_order_acquire)) {
            state.accepted.wait(accepted, std::memory_order_acquire);
        }
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        FAULTLINE_ASSERT(fd >= 0);
        const int set = ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
        FAULTLINE_ASSERT(set == 0);
        int connected = -1;
        do {
            connected = ::connect(
                fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);  // NOLINT
        } while (connected != 0 && errno == EINTR);
        if (connected != 0) {
            std::fprintf(stderr, "connect %d failed: %s\n", i, std::strerror(errno));
            std::abort();
        }
        ::close(fd);
    }
    state.connector_cpu_seconds = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu_start;
}

/// Waits for the acceptor to report every connection; a lost connection is a broken benchmark.
RunFigures finish_run(RunState& state,
                      std::thread& connector,
                      double process_cpu_start,
                      const char* who) {
    connector.join();
    if (state.done_future.wait_for(kRunBudget) != std::future_status::ready) {
        std::fprintf(stderr,
                     "%s: only %d of %d connections accepted within %lld s\n",
                     who,
                     state.accepted.load(),
                     kConnectionsPerRun,
                     static_cast<long long>(kRunBudget.count()));
        std::_Exit(1);
    }
    const double process_cpu = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - process_cpu_start;
    return RunFigures{kConnectionsPerRun / seconds_between(state.started, state.finished),
                      (process_cpu - state.connector_cpu_seconds) * 1e6 / kConnectionsPerRun,
                      state.connector_cpu_seconds * 1e6 / kConnectionsPerRun};
}

/// The baseline: a thread on kAcceptCpu doing blocking accept4() (peer address asked for, as the
/// transport does) then close(), kConnectionsPerRun times.
RunFigures measure_raw(const RawListener& listener, int connector_cpu) {
    const auto shared_state = std::make_shared<RunState>();
    const double process_cpu_start = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
    RunState& state = *shared_state;
    std::thread acceptor([&] {
        static_cast<void>(pin_this_thread({kAcceptCpu}));
        for (int i = 0; i < kConnectionsPerRun; ++i) {
            sockaddr_in peer{};
            socklen_t length = sizeof peer;
            const int fd = ::accept4(listener.fd(),
                                     reinterpret_cast<sockaddr*>(&peer),  // NOLINT
                                     &length,
                                     SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) {
                    --i;
                    continue;
                }
                std::fprintf(stderr, "accept4 failed: %s\n", std::strerror(errno));
                std::abort();
            }
            ::close(fd);
            note_accepted(state);
        }
    });
    std::thread connector(connect_all, listener.port(), connector_cpu, std::ref(state));
    const RunFigures figures = finish_run(state, connector, process_cpu_start, "raw accept4");
    acceptor.join();
    return figures;
}

/// How the faultline accepts completed, for the diagnosis.
struct AcceptCounts {
    std::uint64_t synchronous = 0;  // AcceptAsync returned false
    std::uint64_t completed = 0;    // Completed raised
    std::uint64_t errors = 0;
};

/// Socket<RealTransport>::AcceptAsync in the loop the AcceptAsync page shows: process, clear
/// AcceptSocket, start again; a false return is handled by looping. Only one accept is
/// outstanding at a time, so the loop's state needs no lock of its own.
class AcceptLoop {
public:
    AcceptLoop(std::shared_ptr<Socket<RealTransport>> listener, AcceptCounts& counts)
        : listener_(std::move(listener)), counts_(counts) {
        args_->AddCompleted(
            [this](const std::shared_ptr<Socket<RealTransport>>& /*sender*/, const Args::Ptr& e) {
                ++counts_.completed;
                if (take(*e)) {
                    arm();
                }
            });
    }

    /// Starts a run: the main thread makes the first AcceptAsync call.
    void start(std::shared_ptr<RunState> state) {
        state_ = std::move(state);
        remaining_ = kConnectionsPerRun;
        arm();
    }

private:
    void arm() {
        for (;;) {
            if (listener_->AcceptAsync(args_)) {
                return;  // Completed runs on a pool thread
            }
            ++counts_.synchronous;
            if (!take(*args_)) {
                return;
            }
        }
    }

    /// Processes one result; false when that was the run's last connection. Its last act is
    /// to report the accept, after which the main thread may start the next run: nothing of
    /// the loop is touched after note_accepted.
    bool take(Args& e) {
        if (e.SocketError() != SocketError::Success) {
            ++counts_.errors;
            e.AcceptSocket(nullptr);
            return true;
        }
        const std::shared_ptr<Socket<RealTransport>> socket = e.AcceptSocket();
        e.AcceptSocket(nullptr);
        socket->Dispose();
        const bool more = --remaining_ > 0;
        const std::shared_ptr<RunState> state = state_;
        note_accepted(*state);
        return more;
    }

    std::shared_ptr<Socket<RealTransport>> listener_;
    AcceptCounts& counts_;
    Args::Ptr args_ = Args::Create();
    std::shared_ptr<RunState> state_;
    int remaining_ = 0;
};

RunFigures measure_faultline(AcceptLoop& loop, std::uint16_t port, int connector_cpu) {
    const auto state = std::make_shared<RunState>();
    const double process_cpu_start = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
    loop.start(state);  // pending: nobody is connecting yet
    std::thread connector(connect_all, port, connector_cpu, std::ref(*state));
    return finish_run(*state, connector, process_cpu_start, "Socket<RealTransport>::AcceptAsync");
}

struct PlacementFigures {
    double raw = 0;
    double faultline = 0;
    double ratio = 0;
    std::string ratio_spread;
    double raw_cpu_us = 0;
    double faultline_cpu_us = 0;
    double raw_connector_us = 0;
    double faultline_connector_us = 0;
};

PlacementFigures run_placement(AcceptLoop& loop,
                               std::uint16_t faultline_port,
                               const RawListener& raw_listener,
                               AcceptCounts& counts,
                               const Placement& placement) {
    std::printf(
        "\nplacement %s: accepting side (raw: its thread; faultline: the main thread and the "
        "RealTransport pool) on CPU %d, connector thread on CPU %d\n",
        placement.name,
        kAcceptCpu,
        placement.connector_cpu);
    // Warm-up of both paths (listener queues, socket slabs, pool threads).
    static_cast<void>(measure_raw(raw_listener, placement.connector_cpu));
    static_cast<void>(measure_faultline(loop, faultline_port, placement.connector_cpu));
    counts = AcceptCounts{};
    std::vector<double> raw_rates;
    std::vector<double> faultline_rates;
    std::vector<double> ratios;
    std::vector<double> raw_cpu;
    std::vector<double> faultline_cpu;
    std::vector<double> raw_connector;
    std::vector<double> faultline_connector;
    for (int i = 0; i < kRuns; ++i) {
        const RunFigures raw = measure_raw(raw_listener, placement.connector_cpu);
        const RunFigures faultline =
            measure_faultline(loop, faultline_port, placement.connector_cpu);
        raw_rates.push_back(raw.rate);
        faultline_rates.push_back(faultline.rate);
        ratios.push_back(faultline.rate / raw.rate);
        raw_cpu.push_back(raw.accept_cpu_us);
        faultline_cpu.push_back(faultline.accept_cpu_us);
        raw_connector.push_back(raw.connector_cpu_us);
        faultline_connector.push_back(faultline.connector_cpu_us);
    }
    PlacementFigures figures{median(raw_rates),
                             median(faultline_rates),
                             median(ratios),
                             spread(ratios, 1, "%.2f"),
                             median(raw_cpu),
                             median(faultline_cpu),
                             median(raw_connector),
                             median(faultline_connector)};
    std::printf("  raw accept4() loop          %8.0f accepts/s (runs %s)\n",
                figures.raw,
                spread(raw_rates, 1, "%.0f").c_str());
    std::printf("  Socket<RealTransport>       %8.0f accepts/s (runs %s)\n",
                figures.faultline,
                spread(faultline_rates, 1, "%.0f").c_str());
    std::printf("  ratio faultline/raw         %8.2f (median of per-pair ratios, runs %s)\n",
                figures.ratio,
                figures.ratio_spread.c_str());
    std::printf(
        "  CPU per accept outside the connector thread: raw %.1f us, faultline %.1f us "
        "(medians; kernel work is charged to whichever thread it interrupted)\n",
        figures.raw_cpu_us,
        figures.faultline_cpu_us);
    std::printf(
        "  connector thread CPU per connection: with raw %.1f us, with faultline %.1f us (busy "
        "%.0f%% and %.0f%% of the wall time: near 100%% means the run was connector-bound and "
        "its ratio says little about the accepting side)\n",
        figures.raw_connector_us,
        figures.faultline_connector_us,
        100 * figures.raw_connector_us * figures.raw / 1e6,
        100 * figures.faultline_connector_us * figures.faultline / 1e6);
    const std::uint64_t accepts = counts.synchronous + counts.completed;
    std::printf(
        "  faultline accepts: %llu, AcceptAsync finished inline (false) %.1f%%, via Completed "
        "%.1f%%, errors %llu\n",
        static_cast<unsigned long long>(accepts),
        100.0 * static_cast<double>(counts.synchronous) / static_cast<double>(accepts),
        100.0 * static_cast<double>(counts.completed) / static_cast<double>(accepts),
        static_cast<unsigned long long>(counts.errors));
    return figures;
}

int run() {
    // The main thread is pinned before the transport exists, so its pool threads inherit it.
    const bool pinned = pin_this_thread({kAcceptCpu});
    const unsigned cpus = std::thread::hardware_concurrency();
    std::printf(
        "faultline_bench_accept_real: Socket<RealTransport>::AcceptAsync vs raw accept4()\n");
    std::printf(
        "%d connections per run, backlog %d, connector at most %d ahead; connector: one thread, "
        "blocking connect() + close() to 127.0.0.1 with SO_LINGER {1, 0} (RST, no TIME_WAIT, "
        "no port exhaustion); %d interleaved runs per program and placement, medians; profile "
        "dotnet-unix; %u CPUs%s\n",
        kConnectionsPerRun,
        kBacklog,
        kWindow,
        kRuns,
        cpus,
        pinned ? "" : " (pinning refused)");
    RealTransport transport;
    auto listener = Socket<RealTransport>::Create(transport, model::kDotnetUnix);
    listener->Bind(model::Endpoint::loopback(0));
    listener->Listen(kBacklog);
    const std::uint16_t faultline_port = listener->LocalEndPoint()->port;
    RawListener raw_listener(kBacklog);
    AcceptCounts counts;
    AcceptLoop loop(listener, counts);
    const int other_cpu = cpus > 1 ? 1 : 0;
    const PlacementFigures split =
        run_placement(loop, faultline_port, raw_listener, counts, Placement{"split", other_cpu});
    const PlacementFigures shared =
        run_placement(loop, faultline_port, raw_listener, counts, Placement{"shared", kAcceptCpu});
    listener->Dispose();
    if (const std::exception_ptr escaped = transport.take_exception()) {
        std::rethrow_exception(escaped);
    }
    std::printf("\ntarget: faultline/raw >= %.1f under each placement\n", kRatioMin);
    const std::string split_name =
        "accept real, split (accept side CPU 0, connector CPU " + std::to_string(other_cpu) + ")";
    const std::string shared_name = "accept real, shared (all threads CPU 0)";
    for (const auto& [name, figures] :
         {std::pair{split_name, split}, std::pair{shared_name, shared}}) {
        print_result(name + ": raw accept4() loop", fixed(figures.raw, 0) + " accepts/s", "-", "-");
        print_result(name + ": Socket<RealTransport>::AcceptAsync",
                     fixed(figures.faultline, 0) + " accepts/s",
                     "-",
                     "-");
        print_result(name + ": ratio faultline/raw",
                     fixed(figures.ratio, 2) + " (pairs " + figures.ratio_spread + ")",
                     ">= 0.7",
                     pass_or_miss(figures.ratio >= kRatioMin));
    }
    return 0;
}

}  // namespace
}  // namespace faultline::bench

int main() { return faultline::bench::bench_main(faultline::bench::run); }
