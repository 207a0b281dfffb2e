// faultline_bench_accept_sim: what a simulated connection costs. One sim::World (tracing off,
// default network) with one Socket<World> listener (backlog 65535), 10,000 raw
// World::async_connect clients one every 100 us of virtual time and 10,000 half-open scans
// (sim::Fault half_open_scan, one every 100 us from 25 us, so scans and connects interleave and
// each scan's RST lands while an accept is pending). The listener accepts through AcceptAsync with
// a re-arming loop that handles a false return iteratively; every client must be accepted.
// Both ends of every connection stay open at the end of the measurement. Each run is a fresh
// forked process: memory = resident set (/proc/self/statm) at the end minus before the World was
// built, over 10,000. Both profiles are measured. Target: under 4 KiB per simulated connection.
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "bench_support.h"
#include "faultline/model/socket.h"
#include "faultline/sim/world.h"

// ---- live-allocation histogram (diagnostic runs only)
// --------------------------------------------
//
// The global operator new/delete of this program count live blocks by malloc usable size while
// `tracking` is on, so a diagnostic run can say which objects the memory is in. Measured runs leave
// it off (one predictable branch per allocation).
namespace {

constexpr std::size_t kBucketBytes = 16;
constexpr std::size_t kBucketCount = 4096;  // usable sizes below 64 KiB, one bucket per 16 bytes
struct LiveBlocks {
    bool tracking = false;
    std::array<std::int64_t, kBucketCount> count{};
    std::int64_t large_count = 0;
    std::int64_t large_bytes = 0;
};
LiveBlocks live_blocks;

void note_block(void* block, std::int64_t sign) {
    const std::size_t usable = malloc_usable_size(block);
    const std::size_t bucket = usable / kBucketBytes;
    if (bucket < kBucketCount) {
        live_blocks.count[bucket] += sign;
    } else {
        live_blocks.large_count += sign;
        live_blocks.large_bytes += sign * static_cast<std::int64_t>(usable);
    }
}

void* allocate(std::size_t bytes) {
    void* block = std::malloc(bytes == 0 ? 1 : bytes);
    if (block == nullptr) {
        throw std::bad_alloc();
    }
    if (live_blocks.tracking) {
        note_block(block, 1);
    }
    return block;
}

void release(void* block) noexcept {
    if (block != nullptr && live_blocks.tracking) {
        note_block(block, -1);
    }
    std::free(block);
}

}  // namespace

void* operator new(std::size_t bytes) { return allocate(bytes); }
void* operator new[](std::size_t bytes) { return allocate(bytes); }
void operator delete(void* block) noexcept { release(block); }
void operator delete[](void* block) noexcept { release(block); }
void operator delete(void* block, std::size_t /*bytes*/) noexcept { release(block); }
void operator delete[](void* block, std::size_t /*bytes*/) noexcept { release(block); }

namespace faultline::bench {
namespace {

using model::ConnectionId;
using model::Socket;
using model::SocketError;
using sim::World;
using Args = model::SocketAsyncEventArgs<World>;
using std::chrono::microseconds;

constexpr std::size_t kConnections = 10'000;
constexpr std::uint64_t kScans = 10'000;
constexpr microseconds kConnectSpacing{100};
constexpr microseconds kScanStart{25};
constexpr microseconds kScanInterval{100};
constexpr int kBacklog = 65535;
constexpr int kRuns = 5;
constexpr double kBytesPerConnectionMax = 4096;

/// What one forked run reports to the parent (trivially copyable: it goes through a pipe).
struct RunFigures {
    bool complete = false;
    double wall_seconds = 0;
    double virtual_seconds = 0;
    std::uint64_t events = 0;
    std::uint64_t accepted = 0;
    std::uint64_t clients = 0;
    std::uint64_t synchronous = 0;   // AcceptAsync returned false (finished inside the call)
    std::uint64_t asynchronous = 0;  // Completed raised
    std::uint64_t resets = 0;        // Completed with ConnectionReset (half-open scans)
    std::uint64_t other_errors = 0;
    std::int64_t rss_before = 0;  // bytes
    std::int64_t rss_after = 0;
    std::int64_t peak_after = 0;   // VmHWM
    std::int64_t heap_before = 0;  // mallinfo2: bytes in use (arena + mmapped)
    std::int64_t heap_after = 0;
};

struct Memory {
    std::int64_t rss = 0;
    std::int64_t peak = 0;
    std::int64_t heap = 0;
};

Memory read_memory() {
    Memory memory;
    const auto page = static_cast<std::int64_t>(::sysconf(_SC_PAGESIZE));
    if (std::FILE* statm = std::fopen("/proc/self/statm", "r")) {
        long long size = 0;
        long long resident = 0;
        if (std::fscanf(statm, "%lld %lld", &size, &resident) == 2) {
            memory.rss = resident * page;
        }
        std::fclose(statm);
    }
    if (std::FILE* status = std::fopen("/proc/self/status", "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, status) != nullptr) {
            long long kib = 0;
            if (std::sscanf(line, "VmHWM: %lld kB", &kib) == 1) {
                memory.peak = kib * 1024;
            }
        }
        std::fclose(status);
    }
    const struct mallinfo2 info = mallinfo2();
    memory.heap = static_cast<std::int64_t>(info.uordblks + info.hblkhd);
    return memory;
}

/// The listener's accept loop, the way the AcceptAsync page writes it: process the result, clear
/// AcceptSocket, start the next accept; a false return (finished inside the call, no Completed)
/// is handled by looping, never by recursing.
class AcceptLoop {
public:
    AcceptLoop(World& world, std::shared_ptr<Socket<World>> listener, World::Event& all_accepted)
        : world_(world), listener_(std::move(listener)), all_accepted_(all_accepted) {
        accepted_.reserve(kConnections);
        args_->AddCompleted(
            [this](const std::shared_ptr<Socket<World>>& sender, const Args::Ptr& e) {
                FAULTLINE_ASSERT(sender == listener_);
                ++figures_.asynchronous;
                take(*e);
                arm();
            });
    }

    void arm() {
        while (accepted_.size() < kConnections) {
            if (listener_->AcceptAsync(args_)) {
                return;  // Completed runs later, on a pool thread
            }
            ++figures_.synchronous;
            take(*args_);
        }
    }

    [[nodiscard]] const RunFigures& figures() const { return figures_; }
    [[nodiscard]] std::vector<std::shared_ptr<Socket<World>>>& accepted() { return accepted_; }

private:
    void take(Args& e) {
        const SocketError error = e.SocketError();
        if (error == SocketError::Success) {
            std::shared_ptr<Socket<World>> socket = e.AcceptSocket();
            FAULTLINE_ASSERT(socket && socket->Connected());
            accepted_.push_back(std::move(socket));
            if (accepted_.size() == kConnections) {
                world_.signal(all_accepted_);
            }
        } else if (error == SocketError::ConnectionReset) {
            ++figures_.resets;
        } else {
            ++figures_.other_errors;
        }
        e.AcceptSocket(nullptr);
    }

    World& world_;
    std::shared_ptr<Socket<World>> listener_;
    World::Event& all_accepted_;
    Args::Ptr args_ = Args::Create();
    std::vector<std::shared_ptr<Socket<World>>> accepted_;
    RunFigures figures_;
};

/// Raw transport clients: one async_connect every kConnectSpacing, each scheduling the next.
class Connector {
public:
    Connector(World& world, model::Endpoint target) : world_(world), target_(target) {
        clients_.reserve(kConnections);
    }

    void connect_next() {
        world_.async_connect(target_, [this](std::error_code error, ConnectionId connection) {
            FAULTLINE_ASSERT(!error);
            clients_.push_back(connection);
        });
        if (++started_ < kConnections) {
            world_.post_after(kConnectSpacing, [this] { connect_next(); });
        }
    }

    [[nodiscard]] const std::vector<ConnectionId>& clients() const { return clients_; }

private:
    World& world_;
    model::Endpoint target_;
    std::size_t started_ = 0;
    std::vector<ConnectionId> clients_;
};

RunFigures measure(const model::Profile& profile, bool track_blocks) {
    const Memory before = read_memory();
    live_blocks.tracking = track_blocks;
    const Clock::time_point start = Clock::now();
    World::Options options;
    options.trace_mode = sim::Trace::Mode::off;
    sim::Fault scans;
    scans.kind = sim::FaultKind::half_open_scan;
    scans.at = kScanStart;
    scans.count = kScans;
    scans.interval = kScanInterval;
    options.faults.push_back(scans);
    World world(options);
    std::unique_ptr<AcceptLoop> loop;
    std::unique_ptr<Connector> connector;
    std::shared_ptr<Socket<World>> listener;
    World::Event all_accepted;
    bool server_done = false;
    // The server thread stays alive until the last accept: under documented, I/O a thread
    // started is cancelled when it exits. Later accepts are started by Completed (pool threads).
    world.spawn("server", [&] {
        listener = Socket<World>::Create(world, profile);
        listener->Bind(model::Endpoint::loopback(0));
        listener->Listen(kBacklog);
        loop = std::make_unique<AcceptLoop>(world, listener, all_accepted);
        connector = std::make_unique<Connector>(world, *listener->LocalEndPoint());
        loop->arm();
        world.post([&] { connector->connect_next(); });
        std::unique_lock<World::Mutex> lock;
        server_done = world.wait(all_accepted, lock, std::chrono::hours(1));
    });
    const bool idle = world.run_until_idle(std::uint64_t{1} << 40U);
    RunFigures figures = loop ? loop->figures() : RunFigures{};
    figures.wall_seconds = seconds_between(start, Clock::now());
    live_blocks.tracking = false;
    const Memory after = read_memory();
    figures.accepted = loop ? loop->accepted().size() : 0;
    figures.clients = connector ? connector->clients().size() : 0;
    figures.complete = idle && server_done && figures.accepted == kConnections &&
                       figures.clients == kConnections && figures.other_errors == 0;
    figures.events = world.scheduler().events_run();
    figures.virtual_seconds = std::chrono::duration<double>(world.now().time_since_epoch()).count();
    figures.rss_before = before.rss;
    figures.rss_after = after.rss;
    figures.peak_after = after.peak;
    figures.heap_before = before.heap;
    figures.heap_after = after.heap;
    // Teardown, outside the measurement: both ends close, the world drains.
    if (loop) {
        for (const auto& socket : loop->accepted()) {
            socket->Dispose();
        }
    }
    if (connector) {
        for (const ConnectionId client : connector->clients()) {
            world.close(client);
        }
    }
    if (listener) {
        listener->Dispose();
    }
    figures.complete = world.run_until_idle(std::uint64_t{1} << 40U) && figures.complete;
    return figures;
}

/// Runs `measure` in a forked child, so every run starts from the same fresh heap and its
/// resident-set figures are its own.
RunFigures measure_in_child(const model::Profile& profile) {
    int channel[2];
    FAULTLINE_ASSERT(::pipe(channel) == 0);
    std::fflush(stdout);
    const pid_t child = ::fork();
    FAULTLINE_ASSERT(child >= 0);
    if (child == 0) {
        ::close(channel[0]);
        RunFigures figures;
        try {
            figures = measure(profile, false);
        } catch (const std::exception& error) {
            std::fprintf(stderr, "run failed: %s\n", error.what());
        }
        const auto* bytes = reinterpret_cast<const char*>(&figures);  // NOLINT
        std::size_t written = 0;
        while (written < sizeof figures) {
            const ssize_t wrote = ::write(channel[1], bytes + written, sizeof figures - written);
            if (wrote <= 0) {
                break;
            }
            written += static_cast<std::size_t>(wrote);
        }
        ::_exit(0);
    }
    ::close(channel[1]);
    RunFigures figures;
    auto* bytes = reinterpret_cast<char*>(&figures);  // NOLINT
    std::size_t got = 0;
    while (got < sizeof figures) {
        const ssize_t read = ::read(channel[0], bytes + got, sizeof figures - got);
        if (read < 0 && errno == EINTR) {
            continue;
        }
        if (read <= 0) {
            break;
        }
        got += static_cast<std::size_t>(read);
    }
    ::close(channel[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (got != sizeof figures || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "child run did not report (status %d)\n", status);
        return RunFigures{};
    }
    return figures;
}

double per_connection(std::int64_t after, std::int64_t before) {
    return static_cast<double>(after - before) / static_cast<double>(kConnections);
}

struct ProfileFigures {
    bool complete = true;
    double wall_ms = 0;
    std::string wall_spread;
    double rss_per_connection = 0;
    std::string rss_spread;
    double peak_per_connection = 0;
    double heap_per_connection = 0;
    RunFigures last;
};

ProfileFigures run_profile(const model::Profile& profile) {
    ProfileFigures result;
    std::vector<double> wall_ms;
    std::vector<double> rss;
    std::vector<double> peak;
    std::vector<double> heap;
    for (int i = 0; i < kRuns; ++i) {
        const RunFigures figures = measure_in_child(profile);
        result.complete = result.complete && figures.complete;
        wall_ms.push_back(figures.wall_seconds * 1e3);
        rss.push_back(per_connection(figures.rss_after, figures.rss_before));
        peak.push_back(per_connection(figures.peak_after, figures.rss_before));
        heap.push_back(per_connection(figures.heap_after, figures.heap_before));
        result.last = figures;
    }
    result.wall_ms = median(wall_ms);
    result.wall_spread = spread(wall_ms, 1, "%.0f");
    result.rss_per_connection = median(rss);
    result.rss_spread = spread(rss, 1, "%.0f");
    result.peak_per_connection = median(peak);
    result.heap_per_connection = median(heap);
    const RunFigures& last = result.last;
    std::printf("\nprofile %.*s: %d runs, each a fresh forked process\n",
                static_cast<int>(profile.name.size()),
                profile.name.data(),
                kRuns);
    std::printf(
        "  %s: %llu of %zu clients connected, %llu accepted; AcceptAsync finished inline "
        "(false) %llu, via Completed %llu, of which ConnectionReset (scans) %llu, other "
        "errors %llu\n",
        result.complete ? "complete" : "INCOMPLETE",
        static_cast<unsigned long long>(last.clients),
        kConnections,
        static_cast<unsigned long long>(last.accepted),
        static_cast<unsigned long long>(last.synchronous),
        static_cast<unsigned long long>(last.asynchronous),
        static_cast<unsigned long long>(last.resets),
        static_cast<unsigned long long>(last.other_errors));
    std::printf("  %llu events, %.3f s virtual\n",
                static_cast<unsigned long long>(last.events),
                last.virtual_seconds);
    std::printf("  wall time (build world + run to idle)  %8.1f ms (runs %s)\n",
                result.wall_ms,
                result.wall_spread.c_str());
    std::printf("  resident set growth                    %8.1f MiB (%.0f -> %.0f MiB)\n",
                static_cast<double>(last.rss_after - last.rss_before) / (1 << 20),
                static_cast<double>(last.rss_before) / (1 << 20),
                static_cast<double>(last.rss_after) / (1 << 20));
    std::printf("  peak (VmHWM) growth                    %8.1f MiB\n",
                static_cast<double>(last.peak_after - last.rss_before) / (1 << 20));
    std::printf(
        "  per simulated connection: RSS %.0f B (runs %s), peak %.0f B, heap in use "
        "%.0f B\n",
        result.rss_per_connection,
        result.rss_spread.c_str(),
        result.peak_per_connection,
        result.heap_per_connection);
    return result;
}

/// A diagnostic run with the live-block histogram on: prints the block sizes that grew most.
void diagnose(const model::Profile& profile) {
    std::fflush(stdout);
    int channel[2];
    FAULTLINE_ASSERT(::pipe(channel) == 0);
    const pid_t child = ::fork();
    FAULTLINE_ASSERT(child >= 0);
    if (child == 0) {
        ::close(channel[0]);
        const RunFigures figures = measure(profile, true);
        std::printf(
            "\nwhere the memory is (%.*s, one run; live heap blocks added during the run, "
            "by malloc usable size):\n",
            static_cast<int>(profile.name.size()),
            profile.name.data());
        struct Row {
            std::size_t usable;
            std::int64_t count;
        };
        std::vector<Row> rows;
        std::int64_t total = 0;
        for (std::size_t bucket = 0; bucket < kBucketCount; ++bucket) {
            const std::int64_t count = live_blocks.count[bucket];
            // Blocks of one bucket share a usable size (glibc: 16k + 8).
            const std::size_t usable = bucket * kBucketBytes + 8;
            total += count * static_cast<std::int64_t>(usable);
            if (count > 0) {
                rows.push_back(Row{usable, count});
            }
        }
        total += live_blocks.large_bytes;
        std::sort(rows.begin(), rows.end(), [](const Row& left, const Row& right) {
            return left.count * static_cast<std::int64_t>(left.usable) >
                   right.count * static_cast<std::int64_t>(right.usable);
        });
        const auto usable_for = [](std::size_t request) {
            void* block = std::malloc(request);
            const std::size_t usable = malloc_usable_size(block);
            std::free(block);
            return usable;
        };
        const auto label = [&](const Row& row) -> const char* {
            if (row.usable == usable_for(512)) {
                return "std::deque node, 3 per Socket<World> (send/receive/accept queues), "
                       "allocated by the deque's constructor";
            }
            if (row.usable == usable_for(sizeof(void*) * 8)) {
                return "std::deque map, 3 per Socket<World>";
            }
            if (row.usable == usable_for(sizeof(Socket<World>) + 2 * sizeof(void*))) {
                return "Socket<World> in its make_shared block";
            }
            if (row.count == static_cast<std::int64_t>(2 * kConnections)) {
                return "World::Conn, one per end (its ByteRings hold no storage while idle)";
            }
            return "";
        };
        for (std::size_t i = 0; i < rows.size() && i < 8; ++i) {
            const auto bytes = rows[i].count * static_cast<std::int64_t>(rows[i].usable);
            std::printf("  %7lld blocks x %5zu B = %7.2f MiB  (%4.0f B per connection)  %s\n",
                        static_cast<long long>(rows[i].count),
                        rows[i].usable,
                        static_cast<double>(bytes) / (1 << 20),
                        static_cast<double>(bytes) / static_cast<double>(kConnections),
                        label(rows[i]));
        }
        std::printf(
            "  %7lld blocks >= 64 KiB = %7.2f MiB (vectors of connections and sockets, "
            "fiber stacks, the event queue)\n",
            static_cast<long long>(live_blocks.large_count),
            static_cast<double>(live_blocks.large_bytes) / (1 << 20));
        std::printf("  all live blocks: %.2f MiB, %.0f B per connection (RSS growth %.0f B)\n",
                    static_cast<double>(total) / (1 << 20),
                    static_cast<double>(total) / static_cast<double>(kConnections),
                    per_connection(figures.rss_after, figures.rss_before));
        std::fflush(stdout);
        ::_exit(0);
    }
    ::close(channel[1]);
    ::close(channel[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
}

void print_sizes() {
    using Queue = std::deque<std::shared_ptr<model::AsyncResult<World>>>;
    std::printf(
        "\nsizes (this build): Socket<World> %zu B inline + 3 std::deque (each %zu B "
        "inline, and on construction a %zu B map and a 512 B node on the heap); "
        "SocketAsyncEventArgs<World> %zu B; std::function %zu B\n",
        sizeof(Socket<World>),
        sizeof(Queue),
        sizeof(void*) * 8,
        sizeof(Args),
        sizeof(model::Task));
}

int run() {
    const bool pinned = pin_this_thread({0});
    std::printf(
        "faultline_bench_accept_sim: %zu connections + %llu half-open scans accepted through "
        "Socket<World>::AcceptAsync\n",
        kConnections,
        static_cast<unsigned long long>(kScans));
    std::printf(
        "placement: single thread pinned to CPU %s%s (each run in a forked child that "
        "inherits it)\n",
        this_thread_cpus().c_str(),
        pinned ? "" : " (pinning refused)");
    std::printf(
        "world: Trace::Mode::off, default network (50 us latency); listener backlog %d; a raw "
        "World::async_connect every %lld us; half_open_scan count %llu, interval %lld us, "
        "from %lld us\n",
        kBacklog,
        static_cast<long long>(kConnectSpacing.count()),
        static_cast<unsigned long long>(kScans),
        static_cast<long long>(kScanInterval.count()),
        static_cast<long long>(kScanStart.count()));
    std::printf(
        "accept loop: AcceptAsync re-armed from Completed; a false return is looped over, not "
        "recursed (A-3); AcceptSocket cleared before each start; accepted sockets kept\n");
    std::printf(
        "memory method: in each fresh child, resident set from /proc/self/statm before the "
        "World is built and after the run is idle with all %zu client ends (raw connection "
        "ids) and %zu accepted Socket<World> open; the difference over %zu is the figure. Peak "
        "= VmHWM - the same start; heap = mallinfo2 bytes in use, same window\n",
        kConnections,
        kConnections,
        kConnections);
    const ProfileFigures unix_figures = run_profile(model::kDotnetUnix);
    const ProfileFigures documented = run_profile(model::kDocumented);
    print_sizes();
    diagnose(model::kDotnetUnix);
    std::printf("\ntarget: under %.0f B per simulated connection\n", kBytesPerConnectionMax);
    for (const ProfileFigures* figures : {&unix_figures, &documented}) {
        const char* name = figures == &unix_figures ? "dotnet-unix" : "documented";
        const std::string prefix = std::string("accept sim (") + name + "): ";
        print_result(
            prefix + "10k connects + 10k scans, wall",
            fixed(figures->wall_ms, 0) + " ms" + (figures->complete ? "" : " (INCOMPLETE)"),
            "-",
            "-");
        print_result(prefix + "memory per simulated connection (RSS delta / 10k, both ends open)",
                     fixed(figures->rss_per_connection, 0) + " B (peak " +
                         fixed(figures->peak_per_connection, 0) + " B, heap " +
                         fixed(figures->heap_per_connection, 0) + " B)",
                     "< 4096 B",
                     pass_or_miss(figures->complete &&
                                  figures->rss_per_connection < kBytesPerConnectionMax));
    }
    return 0;
}

}  // namespace
}  // namespace faultline::bench

int main() { return faultline::bench::bench_main(faultline::bench::run); }
