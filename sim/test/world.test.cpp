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

// ---- the packet tap ---------------------------------------------------------------------------

/// A tapped packet, its payload copied (the tap's span lives only during the call).
struct Tapped {
    model::TimePoint at{};
    Endpoint source;
    Endpoint destination;
    std::uint8_t flags = 0;
    std::vector<std::byte> payload;
};

constexpr std::uint8_t kSyn = WirePacket::syn;
constexpr std::uint8_t kSynAck = WirePacket::syn | WirePacket::ack;
constexpr std::uint8_t kAck = WirePacket::ack;
constexpr std::uint8_t kData = WirePacket::psh | WirePacket::ack;
constexpr std::uint8_t kFinAck = WirePacket::fin | WirePacket::ack;
constexpr std::uint8_t kRstAck = WirePacket::rst | WirePacket::ack;
constexpr std::uint8_t kRst = WirePacket::rst;

std::vector<std::byte> bytes_of(std::string_view text) {
    std::vector<std::byte> bytes;
    for (const char c : text) {
        bytes.push_back(static_cast<std::byte>(c));
    }
    return bytes;
}

/// Waits `duration` of virtual time inside a logical thread.
void pause(World& world, model::Duration duration) {
    World::Event never;
    std::unique_lock<World::Mutex> lock;
    static_cast<void>(world.wait(never, lock, duration));
}

enum class TapCase {
    dialogue,        // data both ways, then FIN from both ends
    data_to_closed,  // FIN, data to the closed end, its RST
    refused_silent,  // a connect refused (RST) and one to a silent host (SYN retransmissions)
    scan_and_reset,  // half-open scans on a listener, then a reset fault on a send
    bulk_swarm,      // 200 kB under swarm faults and jitter: rings wrap, segments are cut
};

/// Runs one world; with `packets` set, a tap records every packet. Returns the trace hash.
std::string run_tap_case(TapCase which, std::vector<Tapped>* packets) {
    World::Options options;
    options.seed = 11;
    options.network.silent_addresses = {0x0a000001U};
    options.network.syn_retries = 2;
    if (which == TapCase::scan_and_reset) {
        Fault scan;
        scan.kind = FaultKind::half_open_scan;
        scan.at = milliseconds(1);
        scan.count = 2;
        scan.interval = milliseconds(1);
        Fault reset;
        reset.kind = FaultKind::reset;
        reset.side = Side::client;
        reset.on_send = 2;
        options.faults = {scan, reset};
    }
    if (which == TapCase::bulk_swarm) {
        options.swarm.enabled = true;
        options.network.jitter = std::chrono::microseconds(30);
        options.network.mss_bytes = 1000;  // does not divide the 4 KiB rings: segments wrap
        options.network.send_buffer_bytes = 4096;
        options.network.receive_buffer_bytes = 4096;
    }
    if (packets != nullptr) {
        options.packet_tap = [packets](const WirePacket& packet) {
            packets->push_back(Tapped{packet.at,
                                      packet.source,
                                      packet.destination,
                                      packet.flags,
                                      {packet.payload.begin(), packet.payload.end()}});
        };
    }
    World world(options);
    const std::vector<std::byte> hello = bytes_of("hello, server");
    const std::vector<std::byte> reply = bytes_of("hello, client");
    std::vector<std::byte> sink(4096);
    switch (which) {
        case TapCase::dialogue:
            with_pair(world, [&](Pair pair) {
                EXPECT_TRUE(world.try_send(pair.client, hello).has_value());
                pause(world, milliseconds(1));
                EXPECT_TRUE(world.try_receive(pair.server, sink).has_value());
                EXPECT_TRUE(world.try_send(pair.server, reply).has_value());
                pause(world, milliseconds(1));
                EXPECT_TRUE(world.try_receive(pair.client, sink).has_value());
                world.close(pair.client);
                world.close(pair.server);
            });
            break;
        case TapCase::data_to_closed:
            with_pair(world, [&](Pair pair) {
                world.close(pair.server);
                pause(world, milliseconds(1));
                EXPECT_TRUE(world.try_send(pair.client, hello).has_value());
                pause(world, milliseconds(1));
                world.close(pair.client);
            });
            break;
        case TapCase::refused_silent:
            world.spawn("main", [&] {
                world.async_connect(Endpoint::loopback(9), [](std::error_code, ConnectionId) {});
                world.async_connect(Endpoint{0x0a000001U, 25},
                                    [](std::error_code, ConnectionId) {});
            });
            break;
        case TapCase::scan_and_reset:
            with_pair(world, [&](Pair pair) {
                pause(world, milliseconds(3));
                EXPECT_TRUE(world.try_send(pair.client, hello).has_value());
                pause(world, milliseconds(1));
                EXPECT_FALSE(world.try_send(pair.client, hello).has_value());
                pause(world, milliseconds(1));
            });
            break;
        case TapCase::bulk_swarm:
            with_pair(world, [&](Pair pair) {
                std::vector<std::byte> data(200'000);
                for (std::size_t i = 0; i < data.size(); ++i) {
                    data[i] = static_cast<std::byte>(i % 251);
                }
                std::size_t sent = 0;
                while (sent < data.size()) {
                    auto taken = world.try_send(pair.client, std::span(data).subspan(sent));
                    if (taken) {
                        sent += taken.value();
                    } else if (taken.error() != NetErrc::would_block) {
                        break;
                    }
                    while (world.try_receive(pair.server, sink)) {
                    }
                    // Shorter than a round trip: the sender refills a ring that is not yet
                    // empty, so its bytes wrap around the ring's end.
                    pause(world, std::chrono::microseconds(20));
                }
            });
            break;
    }
    EXPECT_TRUE(world.run_until_idle());
    return world.trace().hash_hex();
}

/// The packets of `packets` from `source` to `destination`'s port, payloads joined.
std::vector<std::byte> stream_of(const std::vector<Tapped>& packets, std::uint16_t source_port) {
    std::vector<std::byte> stream;
    for (const Tapped& packet : packets) {
        if (packet.source.port == source_port) {
            stream.insert(stream.end(), packet.payload.begin(), packet.payload.end());
        }
    }
    return stream;
}

std::vector<std::uint8_t> flags_of(const std::vector<Tapped>& packets) {
    std::vector<std::uint8_t> flags;
    for (const Tapped& packet : packets) {
        flags.push_back(packet.flags);
    }
    return flags;
}

// Goal: a packet tap only watches: the trace (every decision and PRNG draw shows in it) and the
// virtual time are the same with and without one, and every packet comes in time order.
// Method: each case's world run twice, once tapped, hashes compared.
TEST(World, PacketTapChangesNothingInTheRun) {
    for (const TapCase which : {TapCase::dialogue,
                                TapCase::data_to_closed,
                                TapCase::refused_silent,
                                TapCase::scan_and_reset,
                                TapCase::bulk_swarm}) {
        SCOPED_TRACE(static_cast<int>(which));
        std::vector<Tapped> packets;
        EXPECT_EQ(run_tap_case(which, nullptr), run_tap_case(which, &packets));
        EXPECT_FALSE(packets.empty());
        for (std::size_t i = 1; i < packets.size(); ++i) {
            EXPECT_LE(packets[i - 1].at, packets[i].at);
        }
    }
}

// Goal: a connection's packets are the TCP ones, in order: three-way handshake, each data
// segment with its bytes, the ACK for it, a FIN from each end.
TEST(World, PacketTapShowsHandshakeDataAcksAndFins) {
    std::vector<Tapped> packets;
    static_cast<void>(run_tap_case(TapCase::dialogue, &packets));
    const std::vector<std::uint8_t> expected = {
        kSyn, kSynAck, kAck, kData, kAck, kData, kAck, kFinAck, kFinAck};
    EXPECT_EQ(flags_of(packets), expected);
    ASSERT_EQ(packets.size(), expected.size());
    const Endpoint client = packets[0].source;
    const Endpoint server = packets[0].destination;
    EXPECT_EQ(client.address, 0x7f000001U);
    EXPECT_EQ(server.address, 0x7f000001U);
    EXPECT_EQ(packets[1].source, server);
    EXPECT_EQ(packets[2].source, client);
    EXPECT_EQ(packets[3].source, client);
    EXPECT_EQ(packets[4].source, server);  // the server acknowledges the client's segment
    EXPECT_EQ(packets[7].source, client);  // the client closes first
    EXPECT_EQ(stream_of(packets, client.port), bytes_of("hello, server"));
    EXPECT_EQ(stream_of(packets, server.port), bytes_of("hello, client"));
    // Each packet is stamped when it arrives: the handshake takes one latency per leg.
    EXPECT_EQ(packets[1].at - packets[0].at, std::chrono::microseconds(50));
    EXPECT_EQ(packets[2].at - packets[1].at, std::chrono::microseconds(50));
}

// Goal: data for a closed socket shows as the segment followed by that end's RST.
TEST(World, PacketTapShowsDataToAClosedSocketAndItsRst) {
    std::vector<Tapped> packets;
    static_cast<void>(run_tap_case(TapCase::data_to_closed, &packets));
    const std::vector<std::uint8_t> expected = {kSyn, kSynAck, kAck, kFinAck, kData, kRstAck};
    EXPECT_EQ(flags_of(packets), expected);
    ASSERT_EQ(packets.size(), expected.size());
    EXPECT_EQ(packets[5].source, packets[4].destination);
    EXPECT_EQ(packets[5].at, packets[4].at);  // sent as the segment arrives
}

// Goal: a refused connect is SYN then RST+ACK; a silent host gets the SYN and each
// retransmission (syn_retries = 2: three SYNs) and never answers.
TEST(World, PacketTapShowsRefusedConnectsAndSynRetransmissions) {
    std::vector<Tapped> packets;
    static_cast<void>(run_tap_case(TapCase::refused_silent, &packets));
    const std::vector<std::uint8_t> expected = {kSyn, kRstAck, kSyn, kSyn, kSyn};
    EXPECT_EQ(flags_of(packets), expected);
    ASSERT_EQ(packets.size(), expected.size());
    EXPECT_EQ(packets[0].destination.port, 9);
    EXPECT_EQ(packets[1].source, packets[0].destination);
    EXPECT_EQ(packets[1].destination, packets[0].source);
    EXPECT_EQ(packets[1].at, packets[0].at);  // sent as the SYN arrives
    for (const std::size_t syn : {2U, 3U, 4U}) {
        EXPECT_EQ(packets[syn].destination, (Endpoint{0x0a000001U, 25}));
        EXPECT_EQ(packets[syn].source, packets[2].source);
    }
    // Backoff 1 s, then 2 s.
    EXPECT_EQ(packets[3].at - packets[2].at, std::chrono::seconds(1));
    EXPECT_EQ(packets[4].at - packets[3].at, std::chrono::seconds(2));
}

// Goal: a half-open scan is SYN, SYN-ACK, RST from a scanner endpoint that no client uses, and
// a reset fault shows as an RST to each end.
TEST(World, PacketTapShowsScansAndResetFaults) {
    std::vector<Tapped> packets;
    static_cast<void>(run_tap_case(TapCase::scan_and_reset, &packets));
    std::vector<Tapped> scans;
    std::vector<Tapped> connection;
    for (const Tapped& packet : packets) {
        const bool scanner =
            packet.source.address == 0x7f000002U || packet.destination.address == 0x7f000002U;
        (scanner ? scans : connection).push_back(packet);
    }
    const std::vector<std::uint8_t> scan_flags = {kSyn, kSynAck, kRst, kSyn, kSynAck, kRst};
    EXPECT_EQ(flags_of(scans), scan_flags);
    ASSERT_EQ(scans.size(), scan_flags.size());
    EXPECT_EQ(scans[0].source.port, 40000);
    EXPECT_EQ(scans[3].source.port, 40001);
    EXPECT_EQ(scans[1].source, scans[0].destination);
    EXPECT_EQ(scans[2].source, scans[0].source);
    const std::vector<std::uint8_t> connection_flags = {
        kSyn, kSynAck, kAck, kData, kAck, kRstAck, kRstAck};
    EXPECT_EQ(flags_of(connection), connection_flags);
    ASSERT_EQ(connection.size(), connection_flags.size());
    EXPECT_EQ(connection[5].destination, connection[6].source);
    EXPECT_EQ(connection[5].source, connection[6].destination);
}

// Goal: the payloads handed to the tap are the stream's bytes even when they wrap around the
// end of a send buffer's ring, and segments cut by swarm faults stay in order.
TEST(World, PacketTapPayloadsReassembleTheStream) {
    std::vector<Tapped> packets;
    static_cast<void>(run_tap_case(TapCase::bulk_swarm, &packets));
    ASSERT_FALSE(packets.empty());
    const std::vector<std::byte> stream = stream_of(packets, packets[0].source.port);
    ASSERT_GT(stream.size(), 10'000U);
    for (std::size_t i = 0; i < stream.size(); ++i) {
        ASSERT_EQ(stream[i], static_cast<std::byte>(i % 251)) << "byte " << i;
    }
}

}  // namespace
}  // namespace faultline::sim
