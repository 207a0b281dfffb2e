// Goal: Socket<T>::AcceptAsync and SocketAsyncEventArgs<T> as clauses A-1 … A-14 and the
// AcceptAsync page say, under both profiles where they differ: the check order, true/false
// returns with Completed exactly once after true, results, listener disposal, the pre-created
// AcceptSocket, caller-supplied sockets, receive-on-accept, reuse, FIFO, half-open scans.
// Method: drive Socket<sim::World> from a logical thread; clients are raw transport connects.
#include <gtest/gtest.h>

#include <atomic>

#include "faultline/model/socket.h"
#include "faultline/sim/world.h"

namespace faultline {
namespace {

using model::Socket;
using model::SocketError;
using sim::World;
using Args = model::SocketAsyncEventArgs<World>;
using std::chrono::milliseconds;

/// Runs `body` on a logical thread of a fresh world and drives the world until idle.
void run(World::Options options, const std::function<void(World&)>& body) {
    World world(std::move(options));
    world.spawn("main", [&] { body(world); });
    ASSERT_TRUE(world.run_until_idle());
}

std::shared_ptr<Socket<World>> listening(World& world, const model::Profile& profile,
                                         int backlog = 8) {
    auto listener = Socket<World>::Create(world, profile);
    listener->Bind(model::Endpoint::loopback(0));
    listener->Listen(backlog);
    return listener;
}

/// Connects a raw client and returns its connection id once connected (0 if refused).
model::ConnectionId connect_client(World& world, model::Endpoint to) {
    World::Event done;
    model::ConnectionId id{};
    world.async_connect(to, [&](std::error_code error, model::ConnectionId connection) {
        if (!error) {
            id = connection;
        }
        world.signal(done);
    });
    std::unique_lock<World::Mutex> lock;
    EXPECT_TRUE(world.wait(done, lock, std::chrono::seconds(200)));
    return id;
}

void sleep(World& world, model::Duration duration) {
    World::Event never;
    std::unique_lock<World::Mutex> lock;
    static_cast<void>(world.wait(never, lock, duration));
}

struct Recorder {
    std::atomic<int> completed{0};
    std::shared_ptr<Socket<World>> sender;
    SocketError error = SocketError::Success;

    void attach(const std::shared_ptr<Args>& args) {
        args->AddCompleted([this](const std::shared_ptr<Socket<World>>& from,
                                  const std::shared_ptr<Args>& e) {
            sender = from;
            error = e->SocketError();
            ++completed;
        });
    }
};

class AcceptSim : public testing::TestWithParam<model::Profile> {};

}  // namespace
}  // namespace faultline

namespace faultline::model {
void PrintTo(const Profile& profile, std::ostream* out) { *out << profile.name; }
}  // namespace faultline::model

namespace faultline {
namespace {

TEST_P(AcceptSim, ChecksRunInTheDocumentedOrder) {
    const model::Profile profile = GetParam();
    run({}, [&](World& world) {
        auto unbound = Socket<World>::Create(world, profile);
        auto args = Args::Create();
        EXPECT_THROW(unbound->AcceptAsync(nullptr), model::ArgumentNullException);
        args->SetBufferList(std::make_shared<std::vector<model::ArraySegment>>());
        EXPECT_THROW(unbound->AcceptAsync(args), model::ArgumentException);
        args->SetBufferList(nullptr);
        EXPECT_THROW(unbound->AcceptAsync(args), model::InvalidOperationException);  // not bound
        unbound->Bind(model::Endpoint::loopback(0));
        EXPECT_THROW(unbound->AcceptAsync(args), model::InvalidOperationException);  // not listening
        unbound->Listen(4);
        auto bound_target = Socket<World>::Create(world, profile);
        bound_target->Bind(model::Endpoint::loopback(0));
        args->AcceptSocket(bound_target);
        EXPECT_THROW(unbound->AcceptAsync(args), model::InvalidOperationException);
        args->AcceptSocket(nullptr);
        EXPECT_TRUE(unbound->AcceptAsync(args));  // pending: nobody connected
        EXPECT_THROW(unbound->AcceptAsync(args), model::InvalidOperationException);  // busy, A-12
        EXPECT_THROW(args->SetBuffer(std::make_shared<std::vector<std::byte>>(300), 0, 300),
                     model::InvalidOperationException);
        unbound->Dispose();
        EXPECT_THROW(unbound->AcceptAsync(args), model::ObjectDisposedException);
        bound_target->Dispose();
    });
}

TEST_P(AcceptSim, QueuedConnectionCompletesSynchronouslyWithoutCompleted) {
    const model::Profile profile = GetParam();
    Recorder recorder;
    run({}, [&](World& world) {
        auto listener = listening(world, profile);
        const auto client = connect_client(world, *listener->LocalEndPoint());
        sleep(world, milliseconds(1));  // the handshake completes: the connection is queued
        auto args = Args::Create();
        recorder.attach(args);
        EXPECT_FALSE(listener->AcceptAsync(args));
        EXPECT_EQ(args->SocketError(), SocketError::Success);
        EXPECT_EQ(args->LastOperation(), model::SocketAsyncOperation::Accept);
        EXPECT_EQ(args->BytesTransferred(), 0);
        ASSERT_TRUE(args->AcceptSocket());
        EXPECT_TRUE(args->AcceptSocket()->Connected());
        EXPECT_EQ(*args->AcceptSocket()->RemoteEndPoint(), world.local_endpoint(client));
        EXPECT_EQ(*args->RemoteEndPoint(), world.local_endpoint(client));
        EXPECT_EQ(*args->AcceptSocket()->LocalEndPoint(), world.remote_endpoint(client));
        sleep(world, milliseconds(1));
        args->AcceptSocket()->Dispose();
        listener->Dispose();
        world.close(client);
    });
    EXPECT_EQ(recorder.completed.load(), 0);  // never after a false return
}

TEST_P(AcceptSim, PendingAcceptRaisesCompletedOnceWithTheListenerAsSender) {
    const model::Profile profile = GetParam();
    Recorder recorder;
    std::shared_ptr<Socket<World>> listener_seen;
    run({}, [&](World& world) {
        auto listener = listening(world, profile);
        listener_seen = listener;
        auto args = Args::Create();
        recorder.attach(args);
        EXPECT_TRUE(listener->AcceptAsync(args));
        const auto client = connect_client(world, *listener->LocalEndPoint());
        sleep(world, milliseconds(1));
        EXPECT_EQ(recorder.completed.load(), 1);
        EXPECT_FALSE(args->busy());
        args->AcceptSocket()->Dispose();
        listener->Dispose();
        world.close(client);
    });
    EXPECT_EQ(recorder.completed.load(), 1);
    EXPECT_EQ(recorder.sender, listener_seen);
    EXPECT_EQ(recorder.error, SocketError::Success);
}

TEST_P(AcceptSim, DisposingTheListenerFailsEveryPendingAccept) {
    const model::Profile profile = GetParam();
    Recorder first;
    Recorder second;
    std::shared_ptr<Args> first_args;
    run({}, [&](World& world) {
        auto listener = listening(world, profile);
        first_args = Args::Create();
        auto second_args = Args::Create();
        first.attach(first_args);
        second.attach(second_args);
        EXPECT_TRUE(listener->AcceptAsync(first_args));
        EXPECT_TRUE(listener->AcceptAsync(second_args));
        listener->Dispose();
        sleep(world, milliseconds(1));
    });
    EXPECT_EQ(first.completed.load(), 1);
    EXPECT_EQ(second.completed.load(), 1);
    EXPECT_EQ(first.error, SocketError::OperationAborted);
    EXPECT_EQ(second.error, SocketError::OperationAborted);
    // Windows pre-creates an unconnected socket; Unix leaves AcceptSocket null.
    EXPECT_EQ(first_args->AcceptSocket() != nullptr, profile.accept_socket_precreated);
    if (first_args->AcceptSocket()) {
        EXPECT_FALSE(first_args->AcceptSocket()->Connected());
    }
}

TEST_P(AcceptSim, SuppliedAcceptSocketBecomesTheConnectedSocketAndReuseNeedsReset) {
    const model::Profile profile = GetParam();
    run({}, [&](World& world) {
        auto listener = listening(world, profile);
        const auto first_client = connect_client(world, *listener->LocalEndPoint());
        const auto second_client = connect_client(world, *listener->LocalEndPoint());
        sleep(world, milliseconds(1));
        auto supplied = Socket<World>::Create(world, profile);
        auto args = Args::Create();
        args->AcceptSocket(supplied);
        EXPECT_FALSE(listener->AcceptAsync(args));
        EXPECT_EQ(args->AcceptSocket(), supplied);
        EXPECT_TRUE(supplied->Connected());
        // Reusing the args without clearing AcceptSocket trips the "already bound" check.
        EXPECT_THROW(listener->AcceptAsync(args), model::InvalidOperationException);
        args->AcceptSocket(nullptr);
        EXPECT_FALSE(listener->AcceptAsync(args));
        EXPECT_NE(args->AcceptSocket(), supplied);
        EXPECT_TRUE(args->AcceptSocket()->Connected());
        args->AcceptSocket()->Dispose();
        supplied->Dispose();
        listener->Dispose();
        world.close(first_client);
        world.close(second_client);
    });
}

TEST_P(AcceptSim, ReceiveBufferRulesDifferByProfile) {
    const model::Profile profile = GetParam();
    run({}, [&](World& world) {
        auto listener = listening(world, profile);
        auto args = Args::Create();
        args->SetBuffer(std::make_shared<std::vector<std::byte>>(100), 0, 100);
        EXPECT_THROW(listener->AcceptAsync(args), model::ArgumentException);
        // the shipped code leaves the args busy after that ArgumentException.
        EXPECT_EQ(args->busy(), profile.accept_small_buffer_leaves_args_busy);
        auto large = Args::Create();
        large->SetBuffer(std::make_shared<std::vector<std::byte>>(400), 0, 400);
        if (profile.accept_receive_buffer_supported) {
            EXPECT_TRUE(listener->AcceptAsync(large));
        } else {
            EXPECT_THROW(listener->AcceptAsync(large), model::PlatformNotSupportedException);
            EXPECT_FALSE(large->busy());
        }
        listener->Dispose();
        sleep(world, milliseconds(1));
    });
}

TEST(AcceptSimDocumented, ReceiveOnAcceptPutsDataAfterTheAddressSpace) {  // A-9 documented
    Recorder recorder;
    std::shared_ptr<Args> args;
    run({}, [&](World& world) {
        auto listener = listening(world, model::kDocumented);
        args = Args::Create();
        recorder.attach(args);
        const int count = Socket<World>::kAcceptAddressBytes + 5;
        args->SetBuffer(std::make_shared<std::vector<std::byte>>(static_cast<std::size_t>(count)),
                        0, count);
        EXPECT_TRUE(listener->AcceptAsync(args));
        const auto client = connect_client(world, *listener->LocalEndPoint());
        sleep(world, milliseconds(1));
        EXPECT_EQ(recorder.completed.load(), 0);  // waiting for the 5 bytes
        const std::array<std::byte, 5> data{std::byte{1}, std::byte{2}, std::byte{3},
                                            std::byte{4}, std::byte{5}};
        ASSERT_TRUE(world.try_send(client, data).has_value());
        sleep(world, milliseconds(1));
        EXPECT_EQ(recorder.completed.load(), 1);
        args->AcceptSocket()->Dispose();
        listener->Dispose();
        world.close(client);
    });
    EXPECT_EQ(recorder.error, SocketError::Success);
    EXPECT_EQ(args->BytesTransferred(), 5);
    EXPECT_EQ((*args->GetBuffer())[Socket<World>::kAcceptAddressBytes], std::byte{1});
    EXPECT_EQ((*args->GetBuffer())[Socket<World>::kAcceptAddressBytes + 4], std::byte{5});
}

TEST(AcceptSimDocumented, ReceiveOnAcceptTimesOutWithAReset) {  // A-9 documented
    Recorder recorder;
    run({}, [&](World& world) {
        auto listener = listening(world, model::kDocumented);
        auto args = Args::Create();
        recorder.attach(args);
        const int count = Socket<World>::kAcceptAddressBytes + 5;
        args->SetBuffer(std::make_shared<std::vector<std::byte>>(static_cast<std::size_t>(count)),
                        0, count);
        EXPECT_TRUE(listener->AcceptAsync(args));
        const auto client = connect_client(world, *listener->LocalEndPoint());
        sleep(world, std::chrono::seconds(31));
        std::vector<std::byte> sink(8);
        EXPECT_EQ(world.try_receive(client, sink).error(), model::NetErrc::connection_reset);
        listener->Dispose();
        world.close(client);
    });
    EXPECT_EQ(recorder.completed.load(), 1);
    EXPECT_EQ(recorder.error, SocketError::ConnectionReset);
}

TEST_P(AcceptSim, HalfOpenScanResetsAPendingAcceptOnlyUnderDocumented) {  // AcceptAsync page
    const model::Profile profile = GetParam();
    World::Options options;
    sim::Fault scan;
    scan.kind = sim::FaultKind::half_open_scan;
    scan.at = milliseconds(1);
    options.faults.push_back(scan);
    Recorder recorder;
    std::shared_ptr<Args> args;
    run(options, [&](World& world) {
        auto listener = listening(world, profile);
        args = Args::Create();
        recorder.attach(args);
        EXPECT_TRUE(listener->AcceptAsync(args));
        sleep(world, milliseconds(2));
        if (profile.accept_reports_half_open_reset) {
            EXPECT_EQ(recorder.completed.load(), 1);
            EXPECT_EQ(recorder.error, SocketError::ConnectionReset);
            EXPECT_TRUE(listener->AcceptAsync(args));  // re-arm, as the page tells servers to
        } else {
            EXPECT_EQ(recorder.completed.load(), 0);  // invisible
        }
        // A real connection after the scan is still accepted: none is lost.
        const auto client = connect_client(world, *listener->LocalEndPoint());
        sleep(world, milliseconds(1));
        EXPECT_EQ(args->SocketError(), SocketError::Success);
        ASSERT_TRUE(args->AcceptSocket());
        EXPECT_TRUE(args->AcceptSocket()->Connected());
        args->AcceptSocket()->Dispose();
        listener->Dispose();
        world.close(client);
    });
    EXPECT_EQ(recorder.completed.load(), profile.accept_reports_half_open_reset ? 2 : 1);
}

TEST_P(AcceptSim, ArgsDisposedDuringAnAcceptIsDeferred) {
    const model::Profile profile = GetParam();
    Recorder recorder;
    run({}, [&](World& world) {
        auto listener = listening(world, profile);
        auto args = Args::Create();
        recorder.attach(args);
        EXPECT_TRUE(listener->AcceptAsync(args));
        args->Dispose();
        const auto client = connect_client(world, *listener->LocalEndPoint());
        sleep(world, milliseconds(1));
        EXPECT_EQ(recorder.completed.load(), 1);  // the operation finished normally
        const auto accepted = args->AcceptSocket();
        args->AcceptSocket(nullptr);  // else A-1's "already bound" check comes first
        EXPECT_THROW(listener->AcceptAsync(args), model::ObjectDisposedException);
        accepted->Dispose();
        listener->Dispose();
        world.close(client);
    });
}

INSTANTIATE_TEST_SUITE_P(Profiles, AcceptSim, testing::Values(model::kDocumented, model::kDotnetUnix),
                         [](const testing::TestParamInfo<model::Profile>& param_info) {
                             return param_info.param.name == "documented" ? std::string("documented")
                                                                          : std::string("dotnet_unix");
                         });

}  // namespace
}  // namespace faultline
