// Goal: targeted checks of Socket<T> on the simulated network that scenario files express poorly:
// many outstanding sends from several threads stay FIFO and whole (S-20), a blocking EndSend is
// bounded by its budget (a LivenessFailure, not a hang), and callbacks of pending sends run on
// pool threads, never on the initiating thread (S-4).
// Method: drive Socket<sim::World> directly from logical threads.
#include <gtest/gtest.h>

#include "faultline/conformance/harness.h"
#include "faultline/model/socket.h"
#include "faultline/sim/world.h"

namespace faultline {
namespace {

using model::Socket;
using sim::World;

struct Connected {
    std::shared_ptr<Socket<World>> client;
    std::shared_ptr<Socket<World>> server;
};

Connected connect(World& world, const model::Profile& profile) {
    auto listener = Socket<World>::Create(world, profile);
    listener->Bind(model::Endpoint::loopback(0));
    listener->Listen(4);
    auto client = Socket<World>::Create(world, profile);
    client->Connect(*listener->LocalEndPoint());
    auto server = listener->Accept();
    listener->Dispose();
    return {client, server};
}

TEST(SocketSim, ManyOutstandingSendsFromTwoThreadsAreFifoAndWhole) {  // S-20
    World::Options options;
    options.network.send_buffer_bytes = 3000;
    options.network.receive_buffer_bytes = 3000;
    World world(options);
    std::vector<std::byte> received;
    std::vector<std::vector<std::byte>> sent_in_order;
    world.spawn("main", [&] {
        auto [client, server] = connect(world, model::kDotnetUnix);
        std::vector<model::AsyncResultPtr> results;
        for (int i = 0; i < 20; ++i) {
            auto buffer = conformance::pattern_buffer("send" + std::to_string(i),
                                                      static_cast<std::size_t>(1000 + i * 37));
            sent_in_order.push_back(*buffer);
            results.push_back(client->BeginSend(buffer, 0, static_cast<int>(buffer->size()),
                                                model::SocketFlags::None, nullptr, {}));
        }
        auto sink = std::make_shared<std::vector<std::byte>>(4096);
        std::size_t expected = 0;
        for (const auto& bytes : sent_in_order) {
            expected += bytes.size();
        }
        while (received.size() < expected) {
            const int got = server->EndReceive(
                server->BeginReceive(sink, 0, 4096, model::SocketFlags::None, nullptr, {}));
            ASSERT_GT(got, 0);
            received.insert(received.end(), sink->begin(), sink->begin() + got);
        }
        for (std::size_t i = 0; i < results.size(); ++i) {
            EXPECT_EQ(client->EndSend(results[i]), static_cast<int>(sent_in_order[i].size()));
        }
    });
    ASSERT_TRUE(world.run_until_idle());
    std::vector<std::byte> concatenated;
    for (const auto& bytes : sent_in_order) {
        concatenated.insert(concatenated.end(), bytes.begin(), bytes.end());
    }
    EXPECT_EQ(received, concatenated);
}

TEST(SocketSim, BlockingEndSendIsBoundedByItsBudget) {
    World::Options options;
    options.network.send_buffer_bytes = 1000;
    options.network.receive_buffer_bytes = 1000;
    World world(options);
    bool liveness_reported = false;
    world.spawn("main", [&] {
        auto [client, server] = connect(world, model::kDotnetUnix);
        client->SetWaitBudget(std::chrono::seconds(5));
        auto buffer = conformance::pattern_buffer("big", 100'000);
        auto result = client->BeginSend(buffer, 0, 100'000, model::SocketFlags::None, nullptr, {});
        EXPECT_FALSE(result->IsCompleted());  // nobody reads: the send cannot finish
        try {
            static_cast<void>(client->EndSend(result));
        } catch (const model::LivenessFailure&) {
            liveness_reported = true;
        }
        client->Dispose();
        server->Dispose();
    });
    ASSERT_TRUE(world.run_until_idle());
    EXPECT_TRUE(liveness_reported);
    EXPECT_GE(world.now().time_since_epoch(), std::chrono::seconds(5));
}

TEST(SocketSim, PendingCallbacksRunOnPoolThreads) {  // S-4, S-23
    World::Options options;
    options.network.send_buffer_bytes = 1000;
    World world(options);
    std::string callback_thread;
    world.spawn("main", [&] {
        auto [client, server] = connect(world, model::kDocumented);
        auto buffer = conformance::pattern_buffer("x", 5000);
        auto first = client->BeginSend(buffer, 0, 1000, model::SocketFlags::None, nullptr, {});
        auto second = client->BeginSend(buffer, 1000, 1000, model::SocketFlags::None,
                                        [&](const model::AsyncResultPtr&) {
                                            callback_thread = world.current_thread_name();
                                        },
                                        {});
        EXPECT_TRUE(first->CompletedSynchronously());
        EXPECT_FALSE(second->CompletedSynchronously());
        auto sink = std::make_shared<std::vector<std::byte>>(2000);
        int got = 0;
        while (got < 2000) {
            got += server->EndReceive(server->BeginReceive(sink, 0, 2000, model::SocketFlags::None,
                                                           nullptr, {}));
        }
        EXPECT_EQ(client->EndSend(second), 1000);
        client->Dispose();
        server->Dispose();
    });
    ASSERT_TRUE(world.run_until_idle());
    EXPECT_EQ(callback_thread.rfind("pool-", 0), 0U) << callback_thread;
}

}  // namespace
}  // namespace faultline
