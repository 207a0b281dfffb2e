// Goal: both transports honour the contract table in faultline/model/transport.h, row by row.
// Method: one typed suite, instantiated for sim::World ("Sim") and real::RealTransport ("Real");
// each test body runs on a logical thread of the transport and waits only on events with budgets.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>

#include "transport_env.h"
#include "faultline/model/transport.h"
#include "faultline/real/transport.h"
#include "faultline/sim/world.h"

namespace faultline {
namespace {

using model::ConnectionId;
using model::Endpoint;
using model::NetErrc;
using std::chrono::milliseconds;

template <typename Env>
class TransportContract : public testing::Test {
protected:
    using T = typename Env::T;
    Env env;
    T& transport_ref = env.transport;

    /// Blocks until `done` is signalled; the budget is generous, the test fails if it runs out.
    void await(typename T::Event& done, typename T::Mutex& mutex) {
        std::unique_lock lock(mutex);
        EXPECT_TRUE(transport_ref.wait(done, lock, std::chrono::seconds(10)));
    }

    struct Pair {
        ConnectionId client{};
        ConnectionId server{};
    };

    /// Starts a receive on `connection`, runs `action`, and returns how the receive completed.
    std::error_code pending_receive_after(ConnectionId connection,
                                          const std::function<void()>& action) {
        T& t = transport_ref;
        typename T::Mutex mutex;
        typename T::Event done;
        std::error_code result;
        std::vector<std::byte> buffer(16);
        t.async_receive(connection, buffer, [&](std::error_code error, std::size_t bytes) {
            std::unique_lock lock(mutex);
            result = error;
            EXPECT_EQ(bytes, 0U);
            t.signal(done);
        });
        action();
        await(done, mutex);
        return result;
    }

    Pair connect_pair() {
        Pair pair;
        T& t = transport_ref;
        auto listener = t.listen(Endpoint::loopback(0), 8);
        EXPECT_TRUE(listener.has_value());
        typename T::Mutex mutex;
        typename T::Event connected;
        typename T::Event accepted;
        t.async_connect(t.local_endpoint(listener.value()), [&](std::error_code error, ConnectionId id) {
            EXPECT_FALSE(error);
            std::unique_lock lock(mutex);
            pair.client = id;
            t.signal(connected);
        });
        await(connected, mutex);
        t.async_accept(listener.value(), [&](std::error_code error, ConnectionId id) {
            EXPECT_FALSE(error);
            std::unique_lock lock(mutex);
            pair.server = id;
            t.signal(accepted);
        });
        await(accepted, mutex);
        t.close(listener.value());
        return pair;
    }
};

TYPED_TEST_SUITE(TransportContract, test::Environments, test::EnvNames);

TYPED_TEST(TransportContract, PostRunsLaterNeverInline) {
    auto& t = this->transport_ref;
    this->env.run([&] {
        // "Inline" means on the calling thread inside the call; on real a pool thread may well
        // run the task before the caller's next statement, which is legal.
        typename TypeParam::T::Mutex mutex;
        typename TypeParam::T::Event ran;
        const model::ThreadId caller = t.current_thread();
        std::atomic<std::uint32_t> ran_on{0};
        t.post([&] {
            ran_on = model::to_underlying(t.current_thread());
            std::unique_lock lock(mutex);
            t.signal(ran);
        });
        this->await(ran, mutex);
        EXPECT_NE(ran_on.load(), model::to_underlying(caller));
    });
}

TYPED_TEST(TransportContract, PostAfterWaitsAtLeastTheDelay) {
    auto& t = this->transport_ref;
    this->env.run([&] {
        typename TypeParam::T::Mutex mutex;
        typename TypeParam::T::Event ran;
        const model::TimePoint start = t.now();
        model::TimePoint when{};
        t.post_after(milliseconds(20), [&] {
            std::unique_lock lock(mutex);
            when = t.now();
            t.signal(ran);
        });
        this->await(ran, mutex);
        EXPECT_GE(when - start, milliseconds(20));
    });
}

TYPED_TEST(TransportContract, ListenReportsAddressInUseAsAValue) {
    auto& t = this->transport_ref;
    this->env.run([&] {
        auto first = t.listen(Endpoint::loopback(0), 4);
        ASSERT_TRUE(first.has_value());
        const Endpoint bound = t.local_endpoint(first.value());
        EXPECT_NE(bound.port, 0);
        auto second = t.listen(bound, 4);
        EXPECT_EQ(second.error(), NetErrc::address_in_use);
        t.close(first.value());
    });
}

TYPED_TEST(TransportContract, ConnectToAClosedPortIsRefused) {
    auto& t = this->transport_ref;
    this->env.run([&] {
        auto probe = t.listen(Endpoint::loopback(0), 1);
        ASSERT_TRUE(probe.has_value());
        const Endpoint closed = t.local_endpoint(probe.value());
        t.close(probe.value());
        typename TypeParam::T::Mutex mutex;
        typename TypeParam::T::Event done;
        std::error_code result;
        t.async_connect(closed, [&](std::error_code error, ConnectionId) {
            std::unique_lock lock(mutex);
            result = error;
            t.signal(done);
        });
        this->await(done, mutex);
        EXPECT_EQ(result, NetErrc::connection_refused);
    });
}

TYPED_TEST(TransportContract, BytesArriveInOrderThenEndOfStream) {
    auto& t = this->transport_ref;
    this->env.run([&] {
        auto pair = this->connect_pair();
        std::vector<std::byte> data(100'000);
        for (std::size_t i = 0; i < data.size(); ++i) {
            data[i] = static_cast<std::byte>(i * 7);
        }
        std::vector<std::byte> received;
        std::size_t sent = 0;
        std::vector<std::byte> buffer(8192);
        bool eof = false;
        typename TypeParam::T::Mutex mutex;
        const model::TimePoint deadline = t.now() + std::chrono::seconds(10);
        while (!eof && t.now() < deadline) {
            if (sent < data.size()) {
                auto taken = t.try_send(pair.client, std::span(data).subspan(sent));
                if (taken) {
                    ASSERT_GE(taken.value(), 1U);
                    sent += taken.value();
                    if (sent == data.size()) {
                        t.shutdown(pair.client, model::ShutdownHow::send);
                    }
                } else {
                    ASSERT_EQ(taken.error(), NetErrc::would_block);
                }
            }
            auto got = t.try_receive(pair.server, buffer);
            if (got) {
                received.insert(received.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(got.value()));
            } else if (got.error() == NetErrc::end_of_stream) {
                eof = true;
            } else {
                ASSERT_EQ(got.error(), NetErrc::would_block);
                typename TypeParam::T::Event tick;
                std::unique_lock lock(mutex);
                static_cast<void>(t.wait(tick, lock, std::chrono::microseconds(200)));
            }
        }
        EXPECT_TRUE(eof);
        EXPECT_EQ(received, data);
        t.close(pair.client);
        t.close(pair.server);
    });
}

TYPED_TEST(TransportContract, CloseAbortsPendingOperationsWithOperationAborted) {
    auto& t = this->transport_ref;
    this->env.run([&] {
        auto pair = this->connect_pair();
        EXPECT_EQ(this->pending_receive_after(pair.client, [&] { t.close(pair.client); }),
                  NetErrc::operation_aborted);
        t.close(pair.server);
    });
}

TYPED_TEST(TransportContract, AbortResetsThePeer) {
    auto& t = this->transport_ref;
    this->env.run([&] {
        auto pair = this->connect_pair();
        EXPECT_EQ(this->pending_receive_after(pair.client, [&] { t.abort(pair.server); }),
                  NetErrc::connection_reset);
        t.close(pair.client);
    });
}

TYPED_TEST(TransportContract, CancelReceiveCompletesWithOperationAborted) {
    auto& t = this->transport_ref;
    this->env.run([&] {
        auto pair = this->connect_pair();
        EXPECT_EQ(this->pending_receive_after(pair.client, [&] { t.cancel_receive(pair.client); }),
                  NetErrc::operation_aborted);
        t.close(pair.client);
        t.close(pair.server);
    });
}

TYPED_TEST(TransportContract, ThreadExitWatchFiresAfterTheBodyReturns) {
    auto& t = this->transport_ref;
    this->env.run([&] {
        typename TypeParam::T::Mutex mutex;
        typename TypeParam::T::Event fired;
        std::atomic<bool> body_done{false};
        std::atomic<bool> fired_after_body{false};
        const model::ThreadId worker = t.spawn("worker", [&] { body_done = true; });
        static_cast<void>(t.on_thread_exit(worker, [&] {
            fired_after_body = body_done.load();
            std::unique_lock lock(mutex);
            t.signal(fired);
        }));
        this->await(fired, mutex);
        EXPECT_TRUE(fired_after_body.load());
    });
}

TYPED_TEST(TransportContract, WaitReturnsFalseWhenTheBudgetRunsOut) {
    auto& t = this->transport_ref;
    this->env.run([&] {
        typename TypeParam::T::Mutex mutex;
        typename TypeParam::T::Event never;
        std::unique_lock lock(mutex);
        const model::TimePoint start = t.now();
        EXPECT_FALSE(t.wait(never, lock, milliseconds(30)));
        EXPECT_GE(t.now() - start, milliseconds(30));
    });
}

TYPED_TEST(TransportContract, ABlockedHandlerDoesNotStallOthers) {  // S-23
    auto& t = this->transport_ref;
    this->env.run([&] {
        typename TypeParam::T::Mutex mutex;
        typename TypeParam::T::Event release;
        typename TypeParam::T::Event second_ran;
        typename TypeParam::T::Event first_done;
        t.post([&] {
            std::unique_lock lock(mutex);
            EXPECT_TRUE(t.wait(release, lock, std::chrono::seconds(10)));
            t.signal(first_done);
        });
        t.post([&] {
            std::unique_lock lock(mutex);
            t.signal(second_ran);
            t.signal(release);
        });
        this->await(second_ran, mutex);
        this->await(first_done, mutex);
    });
}

}  // namespace
}  // namespace faultline
