// faultline_bench_sim_stream: how fast the simulator moves a stream. One sim::World (tracing off,
// default network) with one connection: a Socket<World> client (dotnet-unix profile) doing
// BeginSend/EndSend of 64 KiB chunks, and a raw-transport reader chaining async_receive on the
// server end. Prints simulated bytes moved per wall second and events per wall second. No target.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <vector>

#include "bench_support.h"
#include "faultline/model/socket.h"
#include "faultline/sim/world.h"

namespace faultline::bench {
namespace {

using model::ConnectionId;
using sim::World;

constexpr int kChunkBytes = 64 * 1024;
constexpr std::uint64_t kBytesPerRun = 1ULL << 30;
constexpr int kRuns = 5;

struct RunFigures {
    double wall_seconds = 0;
    std::uint64_t bytes = 0;
    std::uint64_t events = 0;
    double virtual_seconds = 0;
};

/// Drains one connection through the raw Transport: each completion re-arms the next receive.
class Reader {
public:
    Reader(World& world, ConnectionId connection) : world_(world), connection_(connection) {}

    void start() {
        world_.async_receive(
            connection_, buffer_, [this](std::error_code error, std::size_t bytes) {
                receive_done(error, bytes);
            });
    }
    [[nodiscard]] std::uint64_t received() const { return received_; }
    [[nodiscard]] bool saw_end() const { return saw_end_; }

private:
    void receive_done(std::error_code error, std::size_t bytes) {
        if (error) {
            saw_end_ = error == model::NetErrc::end_of_stream;
            world_.close(connection_);
            return;
        }
        received_ += bytes;
        start();
    }

    World& world_;
    ConnectionId connection_;
    std::vector<std::byte> buffer_ = std::vector<std::byte>(kChunkBytes);
    std::uint64_t received_ = 0;
    bool saw_end_ = false;
};

RunFigures measure(std::uint64_t bytes_total) {
    World::Options options;
    options.trace_mode = sim::Trace::Mode::off;
    World world(options);
    std::optional<Reader> reader;
    std::uint64_t sent = 0;
    bool client_done = false;
    world.spawn("client", [&] {
        const model::Result<model::ListenerId> listener =
            world.listen(model::Endpoint::loopback(0), 8);
        FAULTLINE_ASSERT(listener.has_value());
        auto socket = model::Socket<World>::Create(world, model::kDotnetUnix);
        socket->Connect(world.local_endpoint(listener.value()));
        World::Event accepted;
        ConnectionId server{};
        world.async_accept(listener.value(), [&](std::error_code error, ConnectionId id) {
            FAULTLINE_ASSERT(!error);
            server = id;
            world.signal(accepted);
        });
        std::unique_lock<World::Mutex> lock;
        const bool was_accepted = world.wait(accepted, lock, std::chrono::seconds(1));
        FAULTLINE_ASSERT(was_accepted);
        world.close(listener.value());
        reader.emplace(world, server);
        reader->start();
        const model::Buffer chunk = std::make_shared<std::vector<std::byte>>(kChunkBytes);
        while (sent < bytes_total) {
            const model::AsyncResultPtr result =
                socket->BeginSend(chunk, 0, kChunkBytes, model::SocketFlags::None, nullptr, {});
            sent += static_cast<std::uint64_t>(socket->EndSend(result));
        }
        socket->Dispose();
        client_done = true;
    });
    const std::uint64_t events_before = world.scheduler().events_run();
    const Clock::time_point start = Clock::now();
    const bool idle = world.run_until_idle(std::uint64_t{1} << 40U);
    const double wall_seconds = seconds_between(start, Clock::now());
    const bool complete =
        idle && client_done && reader && reader->saw_end() && reader->received() == sent;
    if (!complete) {
        std::fprintf(stderr,
                     "run incomplete: idle %d, sent %llu, received %llu\n",
                     idle ? 1 : 0,
                     static_cast<unsigned long long>(sent),
                     static_cast<unsigned long long>(reader ? reader->received() : 0));
    }
    return RunFigures{wall_seconds,
                      reader ? reader->received() : 0,
                      world.scheduler().events_run() - events_before,
                      std::chrono::duration<double>(world.now().time_since_epoch()).count()};
}

int run() {
    const bool pinned = pin_this_thread({0});
    std::printf(
        "faultline_bench_sim_stream: Socket<World> 64 KiB BeginSend/EndSend -> raw reader\n");
    std::printf("placement: single thread pinned to CPU %s%s\n",
                this_thread_cpus().c_str(),
                pinned ? "" : " (pinning refused)");
    std::printf(
        "world: Trace::Mode::off, default network (50 us latency, MSS 1460, 64 KiB "
        "buffers, no bandwidth limit); %llu MiB per run, %d runs, medians\n",
        static_cast<unsigned long long>(kBytesPerRun >> 20U),
        kRuns);
    static_cast<void>(measure(kBytesPerRun / 16));  // warm-up
    std::vector<double> byte_rates;
    std::vector<double> event_rates;
    std::vector<double> virtual_rates;
    std::uint64_t events_per_run = 0;
    for (int i = 0; i < kRuns; ++i) {
        const RunFigures figures = measure(kBytesPerRun);
        byte_rates.push_back(static_cast<double>(figures.bytes) / figures.wall_seconds);
        event_rates.push_back(static_cast<double>(figures.events) / figures.wall_seconds);
        virtual_rates.push_back(static_cast<double>(figures.bytes) / figures.virtual_seconds);
        events_per_run = figures.events;
    }
    const double byte_rate = median(byte_rates);
    const double event_rate = median(event_rates);
    std::printf("simulated bytes per wall second  %8.1f MiB/s (runs %s)\n",
                byte_rate / (1 << 20),
                spread(byte_rates, 1 << 20, "%.1f").c_str());
    std::printf("events per wall second           %8.2f M/s (runs %s)\n",
                event_rate / 1e6,
                spread(event_rates, 1e6, "%.2f").c_str());
    std::printf(
        "events per run                   %llu (%.1f per 64 KiB chunk)\n",
        static_cast<unsigned long long>(events_per_run),
        static_cast<double>(events_per_run) * kChunkBytes / static_cast<double>(kBytesPerRun));
    std::printf("simulated stream rate            %8.1f MiB per virtual second\n",
                median(virtual_rates) / (1 << 20));
    print_result("sim stream: simulated bytes per wall second",
                 fixed(byte_rate / (1 << 20), 1) + " MiB/s",
                 "- (no target)",
                 "-");
    print_result("sim stream: events per wall second",
                 fixed(event_rate / 1e6, 2) + " M/s",
                 "- (no target)",
                 "-");
    return 0;
}

}  // namespace
}  // namespace faultline::bench

int main() { return faultline::bench::bench_main(faultline::bench::run); }
