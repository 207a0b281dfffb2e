// Goal: the simulated world behaves as the Transport contract and Linux TCP say, deterministically:
// blocking waits park fibers, thread exits wake blocked threads, resets and FINs surface as the
// S-12 error sequence, and the same seed gives the same trace hash.
// Method: drive the World through its Transport API from logical threads and inspect the results.
#include "faultline/sim/world.h"

#include <gtest/gtest.h>

#include <vector>

namespace faultline::sim {
namespace {

using model::ConnectionId;
using model::Endpoint;
using model::NetErrc;
using std::chrono::milliseconds;

struct Pair {
    ConnectionId client{};
    ConnectionId server{};
};

/// Listens, connects and accepts inside logical thread "main", then runs `body`.
void with_pair(World& world, const std::function<void(Pair)>& body) {
    world.spawn("main", [&world, body] {
        auto listener = world.listen(Endpoint::loopback(0), 8);
        ASSERT_TRUE(listener.has_value());
        World::Event connected;
        Pair pair;
        world.async_connect(world.local_endpoint(listener.value()),
                            [&](std::error_code error, ConnectionId id) {
                                ASSERT_FALSE(error);
                                pair.client = id;
                                world.signal(connected);
                            });
        std::unique_lock<World::Mutex> lock;
        ASSERT_TRUE(world.wait(connected, lock, milliseconds(100)));
        World::Event accepted;
        world.async_accept(listener.value(), [&](std::error_code error, ConnectionId id) {
            ASSERT_FALSE(error);
            pair.server = id;
            world.signal(accepted);
        });
        ASSERT_TRUE(world.wait(accepted, lock, milliseconds(100)));
        body(pair);
    });
}

TEST(World, HandlersNeverRunInsideTheInitiatingCall) {
    World world(World::Options{});
    bool initiator_returned = false;
    bool handler_saw_return = false;
    world.spawn("main", [&] {
        world.async_connect(Endpoint::loopback(9), [&](std::error_code error, ConnectionId) {
            EXPECT_EQ(error, NetErrc::connection_refused);
            handler_saw_return = initiator_returned;
        });
        initiator_returned = true;
    });
    ASSERT_TRUE(world.run_until_idle());
    EXPECT_TRUE(handler_saw_return);
}

TEST(World, ResetReportsConnectionResetThenBrokenPipe) {  // S-12
    World world(World::Options{});
    std::vector<std::error_code> errors;
    with_pair(world, [&](Pair pair) {
        world.abort(pair.server);
        World::Event later;
        std::unique_lock<World::Mutex> lock;
        EXPECT_FALSE(world.wait(later, lock, milliseconds(1)));  // let the RST arrive
        const std::byte byte{1};
        errors.push_back(world.try_send(pair.client, {&byte, 1}).error());
        errors.push_back(world.try_send(pair.client, {&byte, 1}).error());
    });
    ASSERT_TRUE(world.run_until_idle());
    ASSERT_EQ(errors.size(), 2U);
    EXPECT_EQ(errors[0], NetErrc::connection_reset);
    EXPECT_EQ(errors[1], NetErrc::broken_pipe);
}

TEST(World, SendAfterPeerCloseSucceedsOnceThenBrokenPipe) {  // S-12, FIN then RST
    World world(World::Options{});
    std::vector<std::error_code> errors;
    with_pair(world, [&](Pair pair) {
        world.close(pair.server);
        World::Event later;
        std::unique_lock<World::Mutex> lock;
        EXPECT_FALSE(world.wait(later, lock, milliseconds(1)));
        const std::byte byte{1};
        errors.push_back(world.try_send(pair.client, {&byte, 1}).error());
        World::Event after_rst;
        EXPECT_FALSE(world.wait(after_rst, lock, milliseconds(1)));
        errors.push_back(world.try_send(pair.client, {&byte, 1}).error());
        errors.push_back(world.try_send(pair.client, {&byte, 1}).error());
    });
    ASSERT_TRUE(world.run_until_idle());
    ASSERT_EQ(errors.size(), 3U);
    EXPECT_FALSE(errors[0]);
    EXPECT_EQ(errors[1], NetErrc::broken_pipe);
    EXPECT_EQ(errors[2], NetErrc::broken_pipe);
}

TEST(World, ThreadExitWakesABlockedThreadAndFiresWatches) {
    World world(World::Options{});
    bool watch_fired = false;
    bool unwound = false;
    World::Event never;
    const model::ThreadId blocked = world.spawn("blocked", [&] {
        struct Guard {
            bool& flag;
            ~Guard() { flag = true; }
        } guard{unwound};
        std::unique_lock<World::Mutex> lock;
        static_cast<void>(world.wait(never, lock, std::chrono::hours(1)));
        ADD_FAILURE() << "wait returned instead of unwinding";
    });
    static_cast<void>(world.on_thread_exit(blocked, [&] { watch_fired = true; }));
    world.post_after(milliseconds(5), [&] { world.request_thread_exit(blocked); });
    ASSERT_TRUE(world.run_until_idle());
    EXPECT_TRUE(unwound);
    EXPECT_TRUE(watch_fired);
    EXPECT_TRUE(world.thread_finished(blocked));
    EXPECT_EQ(world.now().time_since_epoch(), milliseconds(5));
}

TEST(World, SilentHostTimesOutAfterSynRetriesInVirtualTime) {  // S-12 TimedOut
    World::Options options;
    options.network.silent_addresses = {0x0a000001U};
    World world(options);
    std::error_code result;
    world.spawn("main", [&] {
        world.async_connect(Endpoint{0x0a000001U, 80},
                            [&](std::error_code error, ConnectionId) { result = error; });
    });
    ASSERT_TRUE(world.run_until_idle());
    EXPECT_EQ(result, NetErrc::timed_out);
    // 1 + 2 + 4 + 8 + 16 + 32 + 64 seconds of backoff.
    EXPECT_EQ(world.now().time_since_epoch(), std::chrono::seconds(127));
}

std::string run_once(std::uint64_t seed) {
    World::Options options;
    options.seed = seed;
    options.swarm.enabled = true;
    options.network.jitter = std::chrono::microseconds(30);
    World world(options);
    with_pair(world, [&](Pair pair) {
        std::vector<std::byte> data(200'000, std::byte{7});
        std::size_t sent = 0;
        std::vector<std::byte> sink(4096);
        while (sent < data.size()) {
            auto taken = world.try_send(pair.client, std::span(data).subspan(sent));
            if (taken) {
                sent += taken.value();
            } else if (taken.error() != NetErrc::would_block) {
                break;
            }
            while (world.try_receive(pair.server, sink)) {
            }
            World::Event tick;
            std::unique_lock<World::Mutex> lock;
            static_cast<void>(world.wait(tick, lock, std::chrono::microseconds(200)));
        }
    });
    EXPECT_TRUE(world.run_until_idle());
    return world.trace().hash_hex();
}

TEST(World, SameSeedSameTraceHash) {
    EXPECT_EQ(run_once(7), run_once(7));
    EXPECT_NE(run_once(7), run_once(8));
}

}  // namespace
}  // namespace faultline::sim
