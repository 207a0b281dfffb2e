// Goal: RealTransport keeps the Transport contract (faultline/model/transport.h) on Linux loopback,
// and its real-only hooks (send caps, buffer sizes, find_peer, join_threads) do what they say.
// Method: each test drives real sockets from the gtest thread and waits for completions on
// transport Events, every wait with a deadline and no sleeps. Handlers record what they saw in
// shared state; the test thread checks it after the wait. Outcomes are transcripts and error
// codes, never timing (except the lower bounds the contract promises).
#include "faultline/real/transport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace faultline::real {
namespace {

using namespace std::chrono_literals;
using model::ConnectionId;
using model::ListenerId;
using model::NetErrc;
using model::ThreadId;

constexpr model::Duration wait_budget = 10s;

std::vector<std::byte> bytes_of(std::string_view text) {
    std::vector<std::byte> bytes;
    for (const char character : text) {
        bytes.push_back(static_cast<std::byte>(character));
    }
    return bytes;
}

/// One completion, written by a handler on a pool thread and read by the test thread after
/// await() (the mutex orders the two).
struct Completion {
    std::mutex mutex;
    RealTransport::Event done;
    int calls = 0;
    std::error_code error;
    std::size_t bytes = 0;
    ConnectionId connection{};
    ThreadId thread{};
    bool flag = false;  // test-specific observation
};
using CompletionPtr = std::shared_ptr<Completion>;

CompletionPtr make_completion() { return std::make_shared<Completion>(); }

model::IoHandler io_handler(RealTransport& transport, const CompletionPtr& completion) {
    return [&transport, completion](std::error_code error, std::size_t bytes) {
        const std::lock_guard lock(completion->mutex);
        ++completion->calls;
        completion->error = error;
        completion->bytes = bytes;
        completion->thread = transport.current_thread();
        transport.signal(completion->done);
    };
}

model::ConnectHandler connect_handler(RealTransport& transport, const CompletionPtr& completion) {
    return [&transport, completion](std::error_code error, ConnectionId connection) {
        const std::lock_guard lock(completion->mutex);
        ++completion->calls;
        completion->error = error;
        completion->connection = connection;
        completion->thread = transport.current_thread();
        transport.signal(completion->done);
    };
}

bool await(RealTransport& transport, const CompletionPtr& completion,
           model::Duration budget = wait_budget) {
    std::unique_lock lock(completion->mutex);
    return transport.wait(completion->done, lock, budget);
}

struct Pair {
    ConnectionId client{};
    ConnectionId server{};
};

void connect_pair(RealTransport& transport, ListenerId listener, Pair& pair) {
    const CompletionPtr accepted = make_completion();
    const CompletionPtr connected = make_completion();
    transport.async_accept(listener, connect_handler(transport, accepted));
    transport.async_connect(transport.local_endpoint(listener),
                            connect_handler(transport, connected));
    ASSERT_TRUE(await(transport, accepted));
    ASSERT_TRUE(await(transport, connected));
    ASSERT_FALSE(accepted->error) << accepted->error.message();
    ASSERT_FALSE(connected->error) << connected->error.message();
    pair.client = connected->connection;
    pair.server = accepted->connection;
}

ListenerId listen_loopback(RealTransport& transport) {
    auto listener = transport.listen(model::Endpoint::loopback(0), 16);
    EXPECT_TRUE(listener.has_value()) << listener.error().message();
    return listener.value();
}

/// Receives with async_receive until `count` bytes have arrived or an operation fails.
std::vector<std::byte> receive_exactly(RealTransport& transport, ConnectionId connection,
                                       std::size_t count) {
    std::vector<std::byte> received;
    std::array<std::byte, 4096> buffer{};
    while (received.size() < count) {
        const CompletionPtr completion = make_completion();
        transport.async_receive(connection, buffer, io_handler(transport, completion));
        if (!await(transport, completion) || completion->error) {
            ADD_FAILURE() << "receive failed: " << completion->error.message();
            break;
        }
        received.insert(received.end(), buffer.begin(),
                        buffer.begin() + static_cast<std::ptrdiff_t>(completion->bytes));
    }
    return received;
}

/// Lets a handler check, from its pool thread, that the call that started it had returned.
struct InlineProbe {
    std::mutex gate;
    std::thread::id initiator;  // written before the operation starts, read by the handler
    bool returned = false;      // guarded by gate

    bool initiator_had_returned() {
        if (std::this_thread::get_id() == initiator) {
            return false;  // ran inline, inside the initiating call
        }
        const std::lock_guard lock(gate);
        return returned;
    }
};

/// Starts an operation under the probe's gate, so a handler racing the initiator on another
/// thread blocks until the initiator has returned and set `returned`.
template <typename Start>
void start_probed(InlineProbe& probe, Start start) {
    probe.initiator = std::this_thread::get_id();
    const std::lock_guard lock(probe.gate);
    start();
    probe.returned = true;
}

TEST(RealTransport, ListensOnAnEphemeralLoopbackPortAndConnects) {
    RealTransport transport;
    const ListenerId listener = listen_loopback(transport);
    const model::Endpoint bound = transport.local_endpoint(listener);
    EXPECT_EQ(bound.address, 0x7f000001U);
    EXPECT_NE(bound.port, 0);

    Pair pair;
    ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, pair));
    EXPECT_NE(pair.client, pair.server);
    EXPECT_EQ(transport.remote_endpoint(pair.client), bound);
    EXPECT_EQ(transport.local_endpoint(pair.server), bound);
    EXPECT_EQ(transport.remote_endpoint(pair.server), transport.local_endpoint(pair.client));
    EXPECT_EQ(transport.find_peer(pair.client), pair.server);
    EXPECT_EQ(transport.find_peer(pair.server), pair.client);
}

TEST(RealTransport, TrySendAndTryReceiveRoundTrip) {
    RealTransport transport;
    const ListenerId listener = listen_loopback(transport);
    Pair pair;
    ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, pair));

    std::array<std::byte, 16> buffer{};
    EXPECT_EQ(transport.try_receive(pair.server, buffer).error(), NetErrc::would_block);

    const std::vector<std::byte> hello = bytes_of("hello");
    const auto sent = transport.try_send(pair.client, hello);
    ASSERT_TRUE(sent.has_value()) << sent.error().message();
    EXPECT_EQ(sent.value(), hello.size());

    // A one-byte async receive waits for readability; loopback delivers the 5-byte segment whole,
    // so the other four bytes are there for try_receive at once.
    std::array<std::byte, 1> first{};
    const CompletionPtr received = make_completion();
    transport.async_receive(pair.server, first, io_handler(transport, received));
    ASSERT_TRUE(await(transport, received));
    ASSERT_FALSE(received->error) << received->error.message();
    ASSERT_EQ(received->bytes, 1U);
    EXPECT_EQ(first[0], hello[0]);
    const auto rest = transport.try_receive(pair.server, buffer);
    ASSERT_TRUE(rest.has_value()) << rest.error().message();
    ASSERT_EQ(rest.value(), 4U);
    EXPECT_TRUE(std::equal(hello.begin() + 1, hello.end(), buffer.begin()));
    EXPECT_EQ(transport.try_receive(pair.server, buffer).error(), NetErrc::would_block);

    // And back, with async_send.
    const std::vector<std::byte> reply = bytes_of("250 ok");
    const CompletionPtr replied = make_completion();
    transport.async_send(pair.server, reply, io_handler(transport, replied));
    ASSERT_TRUE(await(transport, replied));
    ASSERT_FALSE(replied->error);
    EXPECT_EQ(replied->bytes, reply.size());
    EXPECT_EQ(receive_exactly(transport, pair.client, reply.size()), reply);
}

TEST(RealTransport, TryAcceptIsWouldBlockUntilAConnectionIsQueued) {
    RealTransport transport;
    const ListenerId listener = listen_loopback(transport);
    EXPECT_EQ(transport.try_accept(listener).error(), NetErrc::would_block);

    const CompletionPtr connected = make_completion();
    transport.async_connect(transport.local_endpoint(listener),
                            connect_handler(transport, connected));
    ASSERT_TRUE(await(transport, connected));
    ASSERT_FALSE(connected->error);
    // The server side reaches the accept queue when the final ACK is processed, which may trail
    // the client's completion slightly: retry, each retry a bounded wait on an idle event.
    std::mutex idle_mutex;
    RealTransport::Event never;
    model::Result<ConnectionId> accepted = NetErrc::would_block;
    for (int attempt = 0; attempt < 1000; ++attempt) {
        accepted = transport.try_accept(listener);
        if (accepted.has_value() || accepted.error() != NetErrc::would_block) {
            break;
        }
        std::unique_lock lock(idle_mutex);
        EXPECT_FALSE(transport.wait(never, lock, 1ms));
    }
    ASSERT_TRUE(accepted.has_value()) << accepted.error().message();
    EXPECT_EQ(transport.find_peer(accepted.value()), connected->connection);
}

TEST(RealTransport, SendCapMakesAsyncAndTrySendsPartial) {
    RealTransport transport;
    const ListenerId listener = listen_loopback(transport);
    Pair pair;
    ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, pair));
    const std::vector<std::byte> payload = bytes_of("0123456789");

    transport.set_send_cap(pair.client, 3);
    const CompletionPtr sent = make_completion();
    transport.async_send(pair.client, payload, io_handler(transport, sent));
    ASSERT_TRUE(await(transport, sent));
    ASSERT_FALSE(sent->error);
    EXPECT_EQ(sent->bytes, 3U);  // partial, and legal: 1 ≤ n ≤ size

    const auto capped = transport.try_send(pair.client, payload);
    ASSERT_TRUE(capped.has_value());
    EXPECT_EQ(capped.value(), 3U);
    transport.set_send_cap_once(pair.client, 1);
    const auto once = transport.try_send(pair.client, payload);
    ASSERT_TRUE(once.has_value());
    EXPECT_EQ(once.value(), 1U);
    const auto after_once = transport.try_send(pair.client, payload);
    ASSERT_TRUE(after_once.has_value());
    EXPECT_EQ(after_once.value(), 3U);
    transport.set_send_cap(pair.client, 0);
    const auto uncapped = transport.try_send(pair.client, payload);
    ASSERT_TRUE(uncapped.has_value());
    EXPECT_EQ(uncapped.value(), payload.size());

    // Every byte the sends reported arrives once, in order.
    const std::vector<std::byte> expected =
        bytes_of(std::string("012") + "012" + "0" + "012" + "0123456789");
    EXPECT_EQ(receive_exactly(transport, pair.server, expected.size()), expected);
}

TEST(RealTransport, ReceiveReportsEndOfStreamAfterPeerClose) {
    RealTransport transport;
    const ListenerId listener = listen_loopback(transport);
    Pair pair;
    ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, pair));

    const CompletionPtr received = make_completion();
    std::array<std::byte, 8> buffer{};
    transport.async_receive(pair.client, buffer, io_handler(transport, received));
    transport.close(pair.server);
    ASSERT_TRUE(await(transport, received));
    EXPECT_EQ(received->error, NetErrc::end_of_stream);
    EXPECT_EQ(received->bytes, 0U);
    EXPECT_EQ(transport.try_receive(pair.client, buffer).error(), NetErrc::end_of_stream);
    EXPECT_EQ(transport.find_peer(pair.client), std::nullopt);
}

TEST(RealTransport, ReceiveReportsConnectionResetAfterPeerAbort) {
    RealTransport transport;
    const ListenerId listener = listen_loopback(transport);
    Pair pair;
    ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, pair));

    const std::optional<ConnectionId> peer = transport.find_peer(pair.client);
    ASSERT_EQ(peer, pair.server);
    const CompletionPtr received = make_completion();
    std::array<std::byte, 8> buffer{};
    transport.async_receive(pair.client, buffer, io_handler(transport, received));
    transport.abort(*peer);
    ASSERT_TRUE(await(transport, received));
    EXPECT_EQ(received->error, NetErrc::connection_reset);
    EXPECT_EQ(received->bytes, 0U);
}

TEST(RealTransport, CloseWithUnreadDataResetsThePeer) {
    RealTransport transport;
    const ListenerId listener = listen_loopback(transport);
    Pair pair;
    ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, pair));

    // Both bytes arrive in one segment; reading one leaves the other unread at the server.
    const std::vector<std::byte> two = bytes_of("ab");
    ASSERT_TRUE(transport.try_send(pair.client, two).has_value());
    std::array<std::byte, 1> one{};
    const CompletionPtr partial = make_completion();
    transport.async_receive(pair.server, one, io_handler(transport, partial));
    ASSERT_TRUE(await(transport, partial));
    ASSERT_EQ(partial->bytes, 1U);

    const CompletionPtr received = make_completion();
    std::array<std::byte, 8> buffer{};
    transport.async_receive(pair.client, buffer, io_handler(transport, received));
    transport.close(pair.server);  // Linux answers unread data with RST, not FIN
    ASSERT_TRUE(await(transport, received));
    EXPECT_EQ(received->error, NetErrc::connection_reset);
}

void throwing_assert_handler(const char* expression, const char*, int) {
    throw std::logic_error(expression);
}

TEST(RealTransport, UsingADeadIdIsAnAssertion) {
    RealTransport transport;
    const ListenerId listener = listen_loopback(transport);
    Pair pair;
    ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, pair));
    transport.close(pair.client);
    transport.abort(pair.server);
    transport.close(listener);

    const AssertHandler previous = set_assert_handler(&throwing_assert_handler);
    const std::vector<std::byte> payload = bytes_of("x");
    EXPECT_THROW(static_cast<void>(transport.try_send(pair.client, payload)), std::logic_error);
    EXPECT_THROW(transport.close(pair.server), std::logic_error);
    EXPECT_THROW(static_cast<void>(transport.try_accept(listener)), std::logic_error);
    EXPECT_THROW(transport.on_thread_exit(ThreadId{0}, [] {}), std::logic_error);
    set_assert_handler(previous);
}

TEST(RealTransport, ShutdownSendGivesThePeerEndOfStreamAndLaterSendsBrokenPipe) {
    RealTransport transport;
    const ListenerId listener = listen_loopback(transport);
    Pair pair;
    ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, pair));

    transport.shutdown(pair.client, model::ShutdownHow::send);
    const CompletionPtr received = make_completion();
    std::array<std::byte, 8> buffer{};
    transport.async_receive(pair.server, buffer, io_handler(transport, received));
    ASSERT_TRUE(await(transport, received));
    EXPECT_EQ(received->error, NetErrc::end_of_stream);
    const std::vector<std::byte> late = bytes_of("late");
    EXPECT_EQ(transport.try_send(pair.client, late).error(), NetErrc::broken_pipe);
}

TEST(RealTransport, ConnectToAClosedPortIsRefused) {
    RealTransport transport;
    const ListenerId listener = listen_loopback(transport);
    const model::Endpoint endpoint = transport.local_endpoint(listener);
    transport.close(listener);

    const CompletionPtr connected = make_completion();
    transport.async_connect(endpoint, connect_handler(transport, connected));
    ASSERT_TRUE(await(transport, connected));
    EXPECT_EQ(connected->error, NetErrc::connection_refused);
    EXPECT_EQ(connected->connection, ConnectionId{0});
}

TEST(RealTransport, ListenOnABusyPortIsAddressInUse) {
    RealTransport transport;
    const ListenerId listener = listen_loopback(transport);
    const auto second = transport.listen(transport.local_endpoint(listener), 16);
    EXPECT_EQ(second.error(), NetErrc::address_in_use);
}

TEST(RealTransport, HandlersNeverRunInsideTheInitiatingCall) {
    RealTransport transport;
    const ListenerId listener = listen_loopback(transport);
    std::vector<std::pair<std::string, CompletionPtr>> probes;
    const auto probed = [&](const std::string& name, auto start) {
        auto probe = std::make_shared<InlineProbe>();
        const CompletionPtr completion = make_completion();
        const auto record = [&transport, probe, completion] {
            const bool returned = probe->initiator_had_returned();
            const std::lock_guard lock(completion->mutex);
            ++completion->calls;
            completion->flag = returned;
            transport.signal(completion->done);
        };
        start_probed(*probe, [&] { start(record); });
        probes.emplace_back(name, completion);
    };

    probed("post", [&](auto record) { transport.post(record); });
    probed("post_after", [&](auto record) { transport.post_after(0ns, record); });
    probed("async_accept", [&](auto record) {
        transport.async_accept(listener, [record](std::error_code, ConnectionId) { record(); });
    });
    probed("async_connect", [&](auto record) {
        transport.async_connect(transport.local_endpoint(listener),
                                [record](std::error_code, ConnectionId) { record(); });
    });
    for (const auto& [name, completion] : probes) {
        ASSERT_TRUE(await(transport, completion)) << name;
        EXPECT_TRUE(completion->flag) << name;
    }

    Pair pair;
    ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, pair));
    probes.clear();
    const std::vector<std::byte> payload = bytes_of("x");
    std::array<std::byte, 4> buffer{};
    std::array<std::byte, 4> unused{};
    probed("async_send", [&](auto record) {
        transport.async_send(pair.client, payload,
                             [record](std::error_code, std::size_t) { record(); });
    });
    probed("async_receive", [&](auto record) {
        transport.async_receive(pair.server, buffer,
                                [record](std::error_code, std::size_t) { record(); });
    });
    probed("cancel_receive", [&](auto record) {
        transport.async_receive(pair.client, unused,
                                [record](std::error_code, std::size_t) { record(); });
        transport.cancel_receive(pair.client);
    });
    probed("cancel_accept", [&](auto record) {
        transport.async_accept(listener, [record](std::error_code, ConnectionId) { record(); });
        transport.cancel_accept(listener);
    });
    probed("close", [&](auto record) {
        transport.async_receive(pair.client, unused,
                                [record](std::error_code, std::size_t) { record(); });
        transport.close(pair.client);
    });
    for (const auto& [name, completion] : probes) {
        ASSERT_TRUE(await(transport, completion)) << name;
        EXPECT_TRUE(completion->flag) << name;
        EXPECT_EQ(completion->calls, 1) << name;
    }
}

TEST(RealTransport, CancelAndClosePendingOperationsCompleteWithOperationAborted) {
    RealTransport transport;
    const ListenerId listener = listen_loopback(transport);
    Pair pair;
    ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, pair));
    std::array<std::byte, 8> buffer{};

    const CompletionPtr cancelled = make_completion();
    transport.async_receive(pair.server, buffer, io_handler(transport, cancelled));
    transport.cancel_receive(pair.server);
    ASSERT_TRUE(await(transport, cancelled));
    EXPECT_EQ(cancelled->error, NetErrc::operation_aborted);
    EXPECT_EQ(cancelled->bytes, 0U);

    // The connection still works after a cancel.
    const std::vector<std::byte> payload = bytes_of("after");
    ASSERT_TRUE(transport.try_send(pair.client, payload).has_value());
    EXPECT_EQ(receive_exactly(transport, pair.server, payload.size()), payload);

    const CompletionPtr accept_cancelled = make_completion();
    transport.async_accept(listener, connect_handler(transport, accept_cancelled));
    transport.cancel_accept(listener);
    ASSERT_TRUE(await(transport, accept_cancelled));
    EXPECT_EQ(accept_cancelled->error, NetErrc::operation_aborted);

    const CompletionPtr accept_closed = make_completion();
    transport.async_accept(listener, connect_handler(transport, accept_closed));
    transport.close(listener);
    ASSERT_TRUE(await(transport, accept_closed));
    EXPECT_EQ(accept_closed->error, NetErrc::operation_aborted);

    const CompletionPtr receive_closed = make_completion();
    transport.async_receive(pair.server, buffer, io_handler(transport, receive_closed));
    transport.close(pair.server);
    ASSERT_TRUE(await(transport, receive_closed));
    EXPECT_EQ(receive_closed->error, NetErrc::operation_aborted);
    EXPECT_EQ(receive_closed->bytes, 0U);
}

TEST(RealTransport, AsyncSendWaitsForRoomWhenTheSocketBuffersAreFull) {
    RealTransport transport;
    const ListenerId listener = listen_loopback(transport);
    Pair pair;
    ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, pair));
    transport.set_socket_buffers(pair.client, 4096, 0);
    transport.set_socket_buffers(pair.server, 0, 4096);

    const std::vector<std::byte> chunk(16 * 1024, std::byte{0x5a});
    std::size_t sent_total = 0;
    bool full = false;
    for (int attempt = 0; attempt < 10'000 && !full; ++attempt) {
        const auto sent = transport.try_send(pair.client, chunk);
        if (sent.has_value()) {
            sent_total += sent.value();
        } else {
            ASSERT_EQ(sent.error(), NetErrc::would_block);
            full = true;
        }
    }
    ASSERT_TRUE(full);

    // Nobody reads, so this send waits; cancelling it aborts it unless room opened meanwhile.
    const CompletionPtr cancelled = make_completion();
    transport.async_send(pair.client, chunk, io_handler(transport, cancelled));
    transport.cancel_send(pair.client);
    ASSERT_TRUE(await(transport, cancelled));
    if (cancelled->error) {
        EXPECT_EQ(cancelled->error, NetErrc::operation_aborted);
        EXPECT_EQ(cancelled->bytes, 0U);
    } else {
        EXPECT_GE(cancelled->bytes, 1U);
        sent_total += cancelled->bytes;
    }

    // Draining the peer makes room, and the waiting send completes.
    const CompletionPtr sent = make_completion();
    transport.async_send(pair.client, chunk, io_handler(transport, sent));
    std::size_t received_total = 0;
    std::array<std::byte, 4096> buffer{};
    for (int attempt = 0; attempt < 10'000; ++attempt) {
        {
            const std::lock_guard lock(sent->mutex);
            if (sent->calls > 0) {
                break;
            }
        }
        const CompletionPtr received = make_completion();
        transport.async_receive(pair.server, buffer, io_handler(transport, received));
        ASSERT_TRUE(await(transport, received));
        ASSERT_FALSE(received->error) << received->error.message();
        received_total += received->bytes;
    }
    ASSERT_TRUE(await(transport, sent));
    ASSERT_FALSE(sent->error);
    EXPECT_GE(sent->bytes, 1U);
    sent_total += sent->bytes;
    EXPECT_LE(received_total, sent_total);
    EXPECT_EQ(receive_exactly(transport, pair.server, sent_total - received_total).size(),
              sent_total - received_total);
}

TEST(RealTransport, PostAfterRunsNoEarlierThanItsDelay) {
    RealTransport transport;
    const model::TimePoint start = transport.now();
    const CompletionPtr late = make_completion();
    const CompletionPtr soon = make_completion();
    model::TimePoint late_at{};
    model::TimePoint soon_at{};
    transport.post_after(30ms, [&transport, late, &late_at] {
        const std::lock_guard lock(late->mutex);
        late_at = transport.now();
        transport.signal(late->done);
    });
    transport.post_after(0ms, [&transport, soon, &soon_at] {
        const std::lock_guard lock(soon->mutex);
        soon_at = transport.now();
        transport.signal(soon->done);
    });
    ASSERT_TRUE(await(transport, late));
    ASSERT_TRUE(await(transport, soon));
    EXPECT_GE(late_at - start, 30ms);
    EXPECT_GE(soon_at, start);
    EXPECT_GE(transport.now(), late_at);
}

TEST(RealTransport, WaitReturnsFalseWhenTheBudgetRunsOutAndTrueOnceSignalled) {
    RealTransport transport;
    std::mutex mutex;
    RealTransport::Event event;
    std::unique_lock lock(mutex);
    const model::TimePoint start = transport.now();
    EXPECT_FALSE(transport.wait(event, lock, 50ms));
    EXPECT_GE(transport.now() - start, 50ms);
    EXPECT_TRUE(lock.owns_lock());
    transport.signal(event);
    EXPECT_TRUE(transport.wait(event, lock, 0ms));  // sticky
    EXPECT_TRUE(transport.wait(event, lock, 50ms));
}

/// Shared by the blocking-continuation tests: one handler blocks until another completes.
struct BlockingState {
    std::mutex mutex;
    RealTransport::Event blocked;   // the blocking handler has started waiting
    RealTransport::Event released;  // the other operation's handler has run
    RealTransport::Event finished;  // the blocking handler has returned
    bool saw_release = false;
};

void blocking_handler_does_not_stall_another_connection(RealTransportOptions options) {
    RealTransport transport(options);
    const ListenerId listener = listen_loopback(transport);
    Pair first;
    Pair second;
    ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, first));
    ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, second));
    auto state = std::make_shared<BlockingState>();
    std::array<std::byte, 8> first_buffer{};
    std::array<std::byte, 8> second_buffer{};
    transport.async_receive(first.server, first_buffer,
                            [&transport, state](std::error_code, std::size_t) {
                                std::unique_lock lock(state->mutex);
                                transport.signal(state->blocked);
                                state->saw_release =
                                    transport.wait(state->released, lock, wait_budget);
                                transport.signal(state->finished);
                            });
    transport.async_receive(second.server, second_buffer,
                            [&transport, state](std::error_code, std::size_t) {
                                const std::lock_guard lock(state->mutex);
                                transport.signal(state->released);
                            });
    const std::vector<std::byte> payload = bytes_of("x");
    ASSERT_TRUE(transport.try_send(first.client, payload).has_value());
    std::unique_lock lock(state->mutex);
    ASSERT_TRUE(transport.wait(state->blocked, lock, wait_budget));
    lock.unlock();
    ASSERT_TRUE(transport.try_send(second.client, payload).has_value());
    lock.lock();
    ASSERT_TRUE(transport.wait(state->finished, lock, wait_budget));
    EXPECT_TRUE(state->saw_release);
}

TEST(RealTransport, BlockingHandlerDoesNotStallAnotherConnection) {
    blocking_handler_does_not_stall_another_connection(RealTransportOptions{});
}

TEST(RealTransport, BlockingHandlerDoesNotStallAnotherConnectionWithOnePoolThread) {
    // With one pool thread, only the pool's growth on a blocked wait lets the second handler run.
    blocking_handler_does_not_stall_another_connection(
        RealTransportOptions{.pool_threads = 1, .pool_threads_max = 4});
}

TEST(RealTransport, BlockingReceiveHandlerDoesNotStallASendOnTheSameConnection) {
    // S-23: a blocking continuation must not stall other operations on the same socket.
    RealTransport transport(RealTransportOptions{.pool_threads = 1, .pool_threads_max = 4});
    const ListenerId listener = listen_loopback(transport);
    Pair pair;
    ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, pair));
    auto state = std::make_shared<BlockingState>();
    std::array<std::byte, 8> buffer{};
    transport.async_receive(pair.server, buffer,
                            [&transport, state](std::error_code, std::size_t) {
                                std::unique_lock lock(state->mutex);
                                transport.signal(state->blocked);
                                state->saw_release =
                                    transport.wait(state->released, lock, wait_budget);
                                transport.signal(state->finished);
                            });
    const std::vector<std::byte> payload = bytes_of("x");
    ASSERT_TRUE(transport.try_send(pair.client, payload).has_value());
    std::unique_lock lock(state->mutex);
    ASSERT_TRUE(transport.wait(state->blocked, lock, wait_budget));
    lock.unlock();
    transport.async_send(pair.server, payload, [&transport, state](std::error_code, std::size_t) {
        const std::lock_guard send_lock(state->mutex);
        transport.signal(state->released);
    });
    lock.lock();
    ASSERT_TRUE(transport.wait(state->finished, lock, wait_budget));
    EXPECT_TRUE(state->saw_release);
    EXPECT_GE(transport.pool_thread_count(), 2U);
}

TEST(RealTransport, AHandlerBlockedOutsideWaitDoesNotStallOthers) {
    // S-23 for a handler that blocks without wait() (an OS sleep here, standing for a long
    // computation or a contended mutex): the pool thread that runs handlers one at a time cannot
    // see it block, so a follower's watchdog takes the reactor over and a later task still runs
    // while the first one sleeps.
    std::atomic<bool> sleeper_returned{false};
    RealTransport transport(RealTransportOptions{.pool_threads = 2, .pool_threads_max = 4});
    transport.post([&sleeper_returned] {
        std::this_thread::sleep_for(1s);
        sleeper_returned.store(true);
    });
    const CompletionPtr later = make_completion();
    transport.post([&transport, &sleeper_returned, later] {
        const std::lock_guard lock(later->mutex);
        later->flag = sleeper_returned.load();
        transport.signal(later->done);
    });
    ASSERT_TRUE(await(transport, later));
    EXPECT_FALSE(later->flag);  // it ran while the first task still slept
}

TEST(RealTransport, ThreadIdsNameTheCallingThread) {
    RealTransport transport;
    const ThreadId main_thread = transport.current_thread();
    EXPECT_NE(main_thread, ThreadId{0});
    EXPECT_EQ(transport.current_thread(), main_thread);

    const CompletionPtr inside = make_completion();
    const ThreadId spawned = transport.spawn("worker", [&transport, inside] {
        const std::lock_guard lock(inside->mutex);
        inside->thread = transport.current_thread();
        transport.signal(inside->done);
    });
    ASSERT_TRUE(await(transport, inside));
    EXPECT_EQ(inside->thread, spawned);
    EXPECT_NE(spawned, main_thread);

    const CompletionPtr pooled = make_completion();
    transport.post([&transport, pooled] {
        const std::lock_guard lock(pooled->mutex);
        pooled->thread = transport.current_thread();
        transport.signal(pooled->done);
    });
    ASSERT_TRUE(await(transport, pooled));
    EXPECT_NE(pooled->thread, ThreadId{0});
    EXPECT_NE(pooled->thread, main_thread);
    EXPECT_NE(pooled->thread, spawned);
    EXPECT_TRUE(transport.join_threads(wait_budget));
}

TEST(RealTransport, ExitWatchFiresOnAPoolThreadAfterTheBodyReturns) {
    RealTransport transport;
    struct State {
        std::mutex mutex;
        RealTransport::Event go;
        bool body_returned = false;
    };
    auto state = std::make_shared<State>();
    const ThreadId worker = transport.spawn("worker", [&transport, state] {
        std::unique_lock lock(state->mutex);
        static_cast<void>(transport.wait(state->go, lock, wait_budget));
        state->body_returned = true;
    });
    const CompletionPtr fired = make_completion();
    transport.on_thread_exit(worker, [&transport, state, fired] {
        bool body_returned = false;
        {
            const std::lock_guard lock(state->mutex);
            body_returned = state->body_returned;
        }
        const std::lock_guard lock(fired->mutex);
        ++fired->calls;
        fired->flag = body_returned;
        fired->thread = transport.current_thread();
        transport.signal(fired->done);
    });
    {
        const std::lock_guard lock(state->mutex);
        transport.signal(state->go);
    }
    ASSERT_TRUE(await(transport, fired));
    EXPECT_TRUE(fired->flag);
    EXPECT_NE(fired->thread, worker);
    EXPECT_TRUE(transport.join_threads(wait_budget));

    // A watch on a thread that has already exited fires too, once, posted.
    const CompletionPtr late = make_completion();
    transport.on_thread_exit(worker, [&transport, late] {
        const std::lock_guard lock(late->mutex);
        ++late->calls;
        transport.signal(late->done);
    });
    ASSERT_TRUE(await(transport, late));
    EXPECT_EQ(late->calls, 1);
    EXPECT_EQ(fired->calls, 1);
}

TEST(RealTransport, CancelledExitWatchDoesNotFire) {
    // One pool thread runs posted tasks in order: the cancelled watch, had it been posted, would
    // have run before the one registered after it.
    RealTransport transport(RealTransportOptions{.pool_threads = 1, .pool_threads_max = 1});
    auto go = make_completion();
    const ThreadId worker = transport.spawn("worker", [&transport, go] {
        std::unique_lock lock(go->mutex);
        static_cast<void>(transport.wait(go->done, lock, wait_budget));
    });
    const CompletionPtr cancelled = make_completion();
    const model::ExitWatchId watch = transport.on_thread_exit(worker, [cancelled] {
        const std::lock_guard lock(cancelled->mutex);
        ++cancelled->calls;
    });
    const CompletionPtr kept = make_completion();
    transport.on_thread_exit(worker, [&transport, kept] {
        const std::lock_guard lock(kept->mutex);
        ++kept->calls;
        transport.signal(kept->done);
    });
    transport.cancel_exit_watch(watch);
    transport.cancel_exit_watch(model::ExitWatchId{999'999});  // unknown: ignored
    {
        const std::lock_guard lock(go->mutex);
        transport.signal(go->done);
    }
    ASSERT_TRUE(await(transport, kept));
    EXPECT_TRUE(transport.join_threads(wait_budget));
    const std::lock_guard lock(cancelled->mutex);
    EXPECT_EQ(cancelled->calls, 0);
}

TEST(RealTransport, ExitOfAThreadTheTransportDidNotStartIsWatchedToo) {
    RealTransport transport;
    const CompletionPtr fired = make_completion();
    const CompletionPtr registered = make_completion();
    std::thread outsider([&transport, fired, registered] {
        const ThreadId self = transport.current_thread();
        transport.on_thread_exit(self, [&transport, fired] {
            const std::lock_guard lock(fired->mutex);
            transport.signal(fired->done);
        });
        const std::lock_guard lock(registered->mutex);
        registered->thread = self;
        transport.signal(registered->done);
    });
    ASSERT_TRUE(await(transport, registered));
    outsider.join();
    EXPECT_TRUE(await(transport, fired));
}

TEST(RealTransport, JoinThreadsGivesUpWhenABodyOutlivesTheBudget) {
    RealTransport transport;
    auto go = make_completion();
    transport.spawn("sleeper", [&transport, go] {
        std::unique_lock lock(go->mutex);
        static_cast<void>(transport.wait(go->done, lock, wait_budget));
    });
    EXPECT_FALSE(transport.join_threads(20ms));
    {
        const std::lock_guard lock(go->mutex);
        transport.signal(go->done);
    }
    EXPECT_TRUE(transport.join_threads(wait_budget));
}

TEST(RealTransport, ExceptionsEscapingTasksAreKeptAndThePoolKeepsRunning) {
    RealTransport transport(RealTransportOptions{.pool_threads = 1, .pool_threads_max = 1});
    transport.post([] { throw std::runtime_error("task failed"); });
    const CompletionPtr after = make_completion();
    transport.post([&transport, after] {
        const std::lock_guard lock(after->mutex);
        transport.signal(after->done);
    });
    ASSERT_TRUE(await(transport, after));
    const std::exception_ptr exception = transport.take_exception();
    ASSERT_TRUE(exception != nullptr);
    EXPECT_THROW(std::rethrow_exception(exception), std::runtime_error);
    EXPECT_TRUE(transport.take_exception() == nullptr);
}

TEST(RealTransport, DestructorDropsPendingOperationsWithoutRunningThem) {
    const CompletionPtr received = make_completion();
    const CompletionPtr timer = make_completion();
    std::array<std::byte, 8> buffer{};  // outlives the transport and its pending receive
    {
        RealTransport transport;
        const ListenerId listener = listen_loopback(transport);
        Pair pair;
        ASSERT_NO_FATAL_FAILURE(connect_pair(transport, listener, pair));
        transport.async_receive(pair.server, buffer, io_handler(transport, received));
        transport.post_after(1h, [timer] {
            const std::lock_guard lock(timer->mutex);
            ++timer->calls;
        });
    }
    EXPECT_EQ(received->calls, 0);
    EXPECT_EQ(timer->calls, 0);
}

}  // namespace
}  // namespace faultline::real
