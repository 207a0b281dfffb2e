// faultline_bench_real_send: loopback throughput of Socket<RealTransport> BeginSend/EndSend
// (64 KiB sends, dotnet-unix profile) against a raw blocking send() loop of 64 KiB writes. Both
// write to the same kind of reader, a thread draining with plain blocking recv(), in the same
// run, interleaved, under the same CPU placement. Target: faultline/raw >= 0.8.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "bench_raw.h"
#include "faultline/model/socket.h"
#include "faultline/real/transport.h"

namespace faultline::bench {
namespace {

using model::Socket;
using real::RealTransport;

constexpr int kChunkBytes = 64 * 1024;
constexpr std::uint64_t kBytesPerRun = 512ULL << 20U;
constexpr int kRuns = 9;
constexpr double kRatioMin = 0.8;
constexpr int kSenderCpu = 0;

/// Where the reader thread runs; every sending thread (the main thread and, for faultline, the
/// transport's pool) is on kSenderCpu.
struct Placement {
    const char* name;
    int reader_cpu;
};

/// The reader: a thread on `cpu` that accepts one connection and drains it with blocking recv()
/// of 64 KiB until `expected` bytes arrived (or the peer closed), noting when the last byte came.
class Drain {
public:
    Drain(const RawListener& listener, std::uint64_t expected, int cpu) {
        std::future<void> accepted = accepted_.get_future();
        thread_ = std::thread([this, &listener, expected, cpu] { run(listener, expected, cpu); });
        connected_ = std::move(accepted);
    }
    Drain(const Drain&) = delete;
    Drain& operator=(const Drain&) = delete;
    ~Drain() {
        if (thread_.joinable()) {
            thread_.join();
        }
    }

    /// Blocks until the reader has accepted its connection.
    void wait_accepted() { connected_.wait(); }
    /// Joins the reader; returns when the last byte arrived.
    Clock::time_point finish() {
        thread_.join();
        return finished_;
    }
    [[nodiscard]] std::uint64_t received() const { return received_; }

private:
    void run(const RawListener& listener, std::uint64_t expected, int cpu) {
        static_cast<void>(pin_this_thread({cpu}));
        const int fd = ::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC);
        FAULTLINE_ASSERT(fd >= 0);
        accepted_.set_value();
        std::vector<std::byte> buffer(kChunkBytes);
        while (received_ < expected) {
            const ssize_t got = ::recv(fd, buffer.data(), buffer.size(), 0);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got <= 0) {
                break;
            }
            received_ += static_cast<std::uint64_t>(got);
        }
        finished_ = Clock::now();
        ::close(fd);
    }

    std::promise<void> accepted_;
    std::future<void> connected_;
    std::thread thread_;
    std::uint64_t received_ = 0;
    Clock::time_point finished_;
};

/// One run's throughput in bytes per second (0 if the reader did not get every byte).
double rate_of(Drain& drain, Clock::time_point start) {
    const Clock::time_point end = drain.finish();
    if (drain.received() != kBytesPerRun) {
        std::fprintf(stderr,
                     "reader got %llu of %llu bytes\n",
                     static_cast<unsigned long long>(drain.received()),
                     static_cast<unsigned long long>(kBytesPerRun));
        return 0;
    }
    return static_cast<double>(kBytesPerRun) / seconds_between(start, end);
}

/// The baseline: connect, then blocking send() of 64 KiB until every byte is written.
double measure_raw(const RawListener& listener, int reader_cpu) {
    Drain drain(listener, kBytesPerRun, reader_cpu);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FAULTLINE_ASSERT(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(listener.port());
    const int connected =
        ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);  // NOLINT
    FAULTLINE_ASSERT(connected == 0);
    drain.wait_accepted();
    std::vector<std::byte> chunk(kChunkBytes);
    const Clock::time_point start = Clock::now();
    std::uint64_t sent = 0;
    while (sent < kBytesPerRun) {
        std::size_t offset = 0;
        while (offset < chunk.size()) {
            const ssize_t wrote =
                ::send(fd, chunk.data() + offset, chunk.size() - offset, MSG_NOSIGNAL);
            if (wrote < 0 && errno == EINTR) {
                continue;
            }
            FAULTLINE_ASSERT(wrote > 0);
            offset += static_cast<std::size_t>(wrote);
        }
        sent += chunk.size();
    }
    const double rate = rate_of(drain, start);
    ::close(fd);
    return rate;
}

/// How the faultline sends completed, for the diagnosis.
struct SendCounts {
    std::uint64_t synchronous = 0;
    std::uint64_t asynchronous = 0;
};

/// Socket<RealTransport>: Connect, then BeginSend/EndSend of 64 KiB until every byte is sent.
double measure_faultline(RealTransport& transport,
                         const RawListener& listener,
                         int reader_cpu,
                         SendCounts& counts) {
    Drain drain(listener, kBytesPerRun, reader_cpu);
    auto socket = Socket<RealTransport>::Create(transport, model::kDotnetUnix);
    socket->Connect(model::Endpoint::loopback(listener.port()));
    drain.wait_accepted();
    const model::Buffer chunk = std::make_shared<std::vector<std::byte>>(kChunkBytes);
    const Clock::time_point start = Clock::now();
    std::uint64_t sent = 0;
    while (sent < kBytesPerRun) {
        const model::AsyncResultPtr result =
            socket->BeginSend(chunk, 0, kChunkBytes, model::SocketFlags::None, nullptr, {});
        const int bytes = socket->EndSend(result);
        FAULTLINE_ASSERT(bytes == kChunkBytes);
        ++(result->CompletedSynchronously() ? counts.synchronous : counts.asynchronous);
        sent += static_cast<std::uint64_t>(bytes);
    }
    const double rate = rate_of(drain, start);
    socket->Dispose();
    return rate;
}

struct PlacementFigures {
    double raw = 0;
    double faultline = 0;
    double ratio = 0;
    std::string ratio_spread;
};

PlacementFigures run_placement(RealTransport& transport,
                               const RawListener& listener,
                               const Placement& placement) {
    std::printf(
        "\nplacement %s: sending side (main thread; for faultline also the RealTransport "
        "pool) on CPU %d, reader thread on CPU %d\n",
        placement.name,
        kSenderCpu,
        placement.reader_cpu);
    SendCounts counts;
    // Warm-up of both paths (page cache of the buffers, socket memory, pool threads).
    static_cast<void>(measure_raw(listener, placement.reader_cpu));
    static_cast<void>(measure_faultline(transport, listener, placement.reader_cpu, counts));
    counts = SendCounts{};
    std::vector<double> raw_rates;
    std::vector<double> faultline_rates;
    std::vector<double> ratios;
    for (int i = 0; i < kRuns; ++i) {
        const double raw = measure_raw(listener, placement.reader_cpu);
        const double faultline =
            measure_faultline(transport, listener, placement.reader_cpu, counts);
        raw_rates.push_back(raw);
        faultline_rates.push_back(faultline);
        ratios.push_back(raw > 0 ? faultline / raw : 0);
    }
    PlacementFigures figures{
        median(raw_rates), median(faultline_rates), median(ratios), spread(ratios, 1, "%.2f")};
    constexpr double kMiB = 1 << 20;
    std::printf("  raw send() loop        %8.1f MiB/s (runs %s)\n",
                figures.raw / kMiB,
                spread(raw_rates, kMiB, "%.1f").c_str());
    std::printf("  Socket<RealTransport>  %8.1f MiB/s (runs %s)\n",
                figures.faultline / kMiB,
                spread(faultline_rates, kMiB, "%.1f").c_str());
    std::printf("  ratio faultline/raw    %8.2f (median of per-pair ratios, runs %s)\n",
                figures.ratio,
                figures.ratio_spread.c_str());
    const std::uint64_t sends = counts.synchronous + counts.asynchronous;
    std::printf("  faultline sends: %llu, completed synchronously %.1f%%, via the pool %.1f%%\n",
                static_cast<unsigned long long>(sends),
                100.0 * static_cast<double>(counts.synchronous) / static_cast<double>(sends),
                100.0 * static_cast<double>(counts.asynchronous) / static_cast<double>(sends));
    return figures;
}

int run() {
    // The main thread is pinned before the transport exists, so its pool threads inherit CPU 0.
    const bool pinned = pin_this_thread({kSenderCpu});
    const unsigned cpus = std::thread::hardware_concurrency();
    std::printf(
        "faultline_bench_real_send: Socket<RealTransport> BeginSend/EndSend vs raw send()\n");
    std::printf(
        "%llu MiB per run, 64 KiB sends, reader: blocking recv() of 64 KiB; %d "
        "interleaved runs per program and placement, medians; %u CPUs%s\n",
        static_cast<unsigned long long>(kBytesPerRun >> 20U),
        kRuns,
        cpus,
        pinned ? "" : " (pinning refused)");
    RealTransport transport;
    RawListener listener(8);
    const int other_cpu = cpus > 1 ? 1 : 0;
    const PlacementFigures split =
        run_placement(transport, listener, Placement{"split", other_cpu});
    const PlacementFigures shared = run_placement(transport, listener, Placement{"shared", 0});
    std::printf("\ntarget: faultline/raw >= %.1f under each placement\n", kRatioMin);
    constexpr double kMiB = 1 << 20;
    const std::string split_name =
        "real send, split (senders CPU 0, reader CPU " + std::to_string(other_cpu) + ")";
    print_result(split_name + ": raw send() loop", fixed(split.raw / kMiB, 0) + " MiB/s", "-", "-");
    print_result(split_name + ": Socket<RealTransport>",
                 fixed(split.faultline / kMiB, 0) + " MiB/s",
                 "-",
                 "-");
    print_result(split_name + ": ratio faultline/raw",
                 fixed(split.ratio, 2) + " (pairs " + split.ratio_spread + ")",
                 ">= 0.8",
                 pass_or_miss(split.ratio >= kRatioMin));
    const std::string shared_name = "real send, shared (all threads CPU 0)";
    print_result(
        shared_name + ": raw send() loop", fixed(shared.raw / kMiB, 0) + " MiB/s", "-", "-");
    print_result(shared_name + ": Socket<RealTransport>",
                 fixed(shared.faultline / kMiB, 0) + " MiB/s",
                 "-",
                 "-");
    print_result(shared_name + ": ratio faultline/raw",
                 fixed(shared.ratio, 2) + " (pairs " + shared.ratio_spread + ")",
                 ">= 0.8",
                 pass_or_miss(shared.ratio >= kRatioMin));
    return 0;
}

}  // namespace
}  // namespace faultline::bench

int main() { return faultline::bench::bench_main(faultline::bench::run); }
