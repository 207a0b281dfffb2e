// Goal: the example EchoServer<T> (tools/examples/echo_server) gives every client exactly its bytes
// back, on the simulated network and on loopback, under both profiles; under faults (partial
// sends, resets, half-open scans, swarm) each client gets its bytes back exactly or sees a socket
// error, never wrong bytes; Stop() cuts open connections and the server ends within its budget.
// Method: run_echo_workload (one template for both transports) on a logical thread of sim::World,
// or on a RealTransport from the test thread, then compare each client's outcome with its payload.
// Every wait has a budget; nothing sleeps on real.
#include "echo_server/echo_server.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "echo_server/echo_client.h"
#include "echo_server/echo_workload.h"
#include "faultline/model/socket.h"
#include "faultline/real/transport.h"
#include "faultline/sim/world.h"

namespace faultline {
namespace {

using examples::EchoClientOutcome;
using examples::EchoClientPlan;
using examples::EchoWorkloadResult;
using model::SocketError;
using real::RealTransport;
using sim::World;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr model::Duration kBudget = seconds(30);

std::string describe(const EchoClientOutcome& outcome, std::size_t sent) {
    std::string text =
        "sent " + std::to_string(sent) + ", received " + std::to_string(outcome.received.size());
    text += outcome.connected ? ", connected" : ", not connected";
    text += outcome.end_of_stream ? ", end of stream" : "";
    if (outcome.error) {
        text += ", error " + std::string(model::to_string(*outcome.error));
    }
    if (!outcome.failure.empty()) {
        text += ", failure: " + outcome.failure;
    }
    return text;
}

std::uint64_t total_bytes(const EchoWorkloadResult& result) {
    std::uint64_t total = 0;
    for (const auto& payload : result.payloads) {
        total += payload.size();
    }
    return total;
}

/// Every client got exactly its payload back, then a clean end; the server saw all of them.
void expect_all_echoed(const EchoWorkloadResult& result) {
    EXPECT_EQ(result.failure, "");
    EXPECT_TRUE(result.server_stopped);
    ASSERT_EQ(result.outcomes.size(), result.payloads.size());
    for (std::size_t i = 0; i < result.outcomes.size(); ++i) {
        EXPECT_TRUE(result.outcomes[i].echoed(result.payloads[i]))
            << "client " << i << ": " << describe(result.outcomes[i], result.payloads[i].size());
    }
    EXPECT_EQ(result.counters.accepted, result.payloads.size());
    EXPECT_EQ(result.counters.closed_clean, result.payloads.size());
    EXPECT_EQ(result.counters.closed_error, 0U);
    EXPECT_EQ(result.counters.bytes_echoed, total_bytes(result));
}

/// Under faults: each client got its payload back exactly or saw a socket error, and what it
/// received is a prefix of what it sent. A clean but early end of stream is allowed only when a
/// fault may close the server's socket behind its back (swarm `close`).
void expect_echoed_or_error(const EchoWorkloadResult& result,
                            bool early_end_allowed,
                            const std::string& context) {
    EXPECT_EQ(result.failure, "") << context;
    EXPECT_TRUE(result.server_stopped) << context;
    ASSERT_EQ(result.outcomes.size(), result.payloads.size()) << context;
    for (std::size_t i = 0; i < result.outcomes.size(); ++i) {
        const EchoClientOutcome& outcome = result.outcomes[i];
        const std::string what = context + " client " + std::to_string(i) + ": " +
                                 describe(outcome, result.payloads[i].size());
        EXPECT_TRUE(outcome.failure.empty()) << what;
        EXPECT_TRUE(outcome.is_prefix_of(result.payloads[i])) << what;
        const bool early_end = outcome.end_of_stream && !outcome.error &&
                               outcome.received.size() < result.payloads[i].size();
        EXPECT_TRUE(outcome.echoed(result.payloads[i]) || outcome.error.has_value() ||
                    (early_end && early_end_allowed))
            << what;
    }
}

EchoWorkloadResult run_on_sim(World::Options options,
                              const model::Profile& profile,
                              const std::vector<EchoClientPlan>& plans) {
    World world(std::move(options));
    EchoWorkloadResult result;
    world.spawn("main",
                [&] { result = examples::run_echo_workload(world, profile, plans, kBudget); });
    EXPECT_TRUE(world.run_until_idle());
    return result;
}

EchoWorkloadResult run_on_real(const model::Profile& profile,
                               const std::vector<EchoClientPlan>& plans) {
    RealTransport transport;
    EchoWorkloadResult result = examples::run_echo_workload(transport, profile, plans, kBudget);
    EXPECT_TRUE(transport.join_threads(seconds(10)));
    EXPECT_EQ(transport.take_exception(), nullptr);
    return result;
}

/// Sizes around the server's 16 KiB receive and the 1460-byte MSS, sent in chunks from one byte
/// (many receives per echo) to more than the payload (one send).
std::vector<EchoClientPlan> mixed_plans(bool with_delays) {
    const std::vector<std::size_t> sizes = {1, 100, 1460, 16384, 16385, 30000, 7, 5000};
    const std::vector<int> chunks = {1, 7, 1000, 70000, 4096, 1460, 3, 16384};
    std::vector<EchoClientPlan> plans;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        EchoClientPlan plan;
        plan.bytes = sizes[i];
        plan.chunk_bytes = sizes[i] > 5000 && chunks[i] < 100 ? 512 : chunks[i];
        plan.start_after = with_delays ? milliseconds(static_cast<int>(i % 3)) : model::Duration{};
        plans.push_back(plan);
    }
    return plans;
}

/// Parameterised by profile name, so test names and failure messages say which profile ran.
class EchoServerSim : public testing::TestWithParam<std::string> {
protected:
    static model::Profile profile() { return *model::profile_by_name(GetParam()); }
};
class EchoServerReal : public testing::TestWithParam<std::string> {
protected:
    static model::Profile profile() { return *model::profile_by_name(GetParam()); }
};

TEST_P(EchoServerSim, EchoesEveryClientExactly) {
    World::Options options;
    options.network.jitter = std::chrono::microseconds(40);
    expect_all_echoed(run_on_sim(options, profile(), mixed_plans(true)));
}

TEST_P(EchoServerSim, PartialServerSendsAreResentUntilEveryByteIsEchoed) {  // S-9
    World::Options options;
    sim::Fault every_send;  // no on_send: every server send takes at most 333 bytes
    every_send.kind = sim::FaultKind::partial_send;
    every_send.side = sim::Side::server;
    every_send.bytes = 333;
    options.faults.push_back(every_send);
    sim::Fault first_send;
    first_send.kind = sim::FaultKind::partial_send;
    first_send.side = sim::Side::server;
    first_send.on_send = 1;
    first_send.bytes = 1;
    options.faults.push_back(first_send);
    options.trace_mode = sim::Trace::Mode::full;
    World world(options);
    EchoWorkloadResult result;
    world.spawn("main", [&] {
        result = examples::run_echo_workload(world, profile(), mixed_plans(false), kBudget);
    });
    ASSERT_TRUE(world.run_until_idle());
    expect_all_echoed(result);
    const auto& lines = world.trace().lines();
    const auto partials = std::count_if(lines.begin(), lines.end(), [](const std::string& line) {
        return line.find("\"partial_send\"") != std::string::npos;
    });
    EXPECT_GT(partials, 10);  // the faults did cut the server's sends
}

TEST_P(EchoServerSim, AResetClientSeesTheResetAndTheOthersTheirBytes) {
    World::Options options;
    sim::Fault reset;
    reset.kind = sim::FaultKind::reset;
    reset.side = sim::Side::client;
    reset.connection = 1;  // the second client to connect
    reset.after_bytes = 5000;
    options.faults.push_back(reset);
    std::vector<EchoClientPlan> plans(4);
    for (std::size_t i = 0; i < plans.size(); ++i) {
        plans[i].bytes = 20000;
        plans[i].chunk_bytes = 2000;
        plans[i].start_after = milliseconds(static_cast<int>(i));  // connect order = index
    }
    const EchoWorkloadResult result = run_on_sim(options, profile(), plans);
    expect_echoed_or_error(result, false, "reset");
    ASSERT_EQ(result.outcomes.size(), 4U);
    EXPECT_EQ(result.outcomes[1].error, SocketError::ConnectionReset)
        << describe(result.outcomes[1], 20000);
    for (const std::size_t i : {0U, 2U, 3U}) {
        EXPECT_TRUE(result.outcomes[i].echoed(result.payloads[i])) << "client " << i;
    }
    EXPECT_EQ(result.counters.closed_error, 1U);
}

TEST_P(EchoServerSim, HalfOpenScansNeitherLoseNorDuplicateConnections) {  // AcceptAsync page
    const model::Profile chosen = profile();
    World::Options options;
    sim::Fault scans;
    scans.kind = sim::FaultKind::half_open_scan;
    scans.at = std::chrono::microseconds(10);
    scans.count = 30;
    scans.interval = std::chrono::microseconds(300);
    options.faults.push_back(scans);
    std::vector<EchoClientPlan> plans(6);
    for (std::size_t i = 0; i < plans.size(); ++i) {
        plans[i].bytes = 3000 + i;
        plans[i].start_after = std::chrono::microseconds(static_cast<int>(700 * i + 50));
    }
    const EchoWorkloadResult result = run_on_sim(options, chosen, plans);
    expect_all_echoed(result);
    if (chosen.accept_reports_half_open_reset) {
        EXPECT_GT(result.counters.accept_resets, 0U);  // seen, and re-armed
    } else {
        EXPECT_EQ(result.counters.accept_resets, 0U);  // never visible on Linux
    }
}

TEST_P(EchoServerSim, SwarmNeverCorruptsAnEcho) {
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
        World::Options options;
        options.seed = seed;
        options.swarm.enabled = true;
        options.trace_mode = sim::Trace::Mode::off;
        std::vector<EchoClientPlan> plans(5);
        for (std::size_t i = 0; i < plans.size(); ++i) {
            plans[i].bytes = 2000 + 3000 * i;
            plans[i].chunk_bytes = static_cast<int>(700 + 900 * i);
            plans[i].start_after = std::chrono::microseconds(static_cast<int>(100 * i));
        }
        expect_echoed_or_error(
            run_on_sim(options, profile(), plans), true, "seed " + std::to_string(seed));
    }
}

/// A client that has its first bytes echoed, then the server stops: the client's pending receive
/// ends with a reset (the server's receive was pending, so Dispose is abortive, S-17) or, if the
/// stop fell between the echo and the next receive, a clean end of stream.
template <model::Transport T>
void check_stop_cuts_open_connections(T& transport, const model::Profile& profile) {
    auto server = examples::EchoServer<T>::Create(transport, profile);
    const model::Endpoint endpoint = server->Start(model::Endpoint::loopback(0));
    auto client = model::Socket<T>::Create(transport, profile);
    client->SetWaitBudget(kBudget);
    client->Connect(endpoint);
    auto payload = std::make_shared<std::vector<std::byte>>(examples::echo_payload(0, 10));
    EXPECT_EQ(
        client->EndSend(client->BeginSend(payload, 0, 10, model::SocketFlags::None, nullptr, {})),
        10);
    auto buffer = std::make_shared<std::vector<std::byte>>(64);
    int received = 0;
    while (received < 10) {
        const int bytes = client->EndReceive(client->BeginReceive(
            buffer, received, 64 - received, model::SocketFlags::None, nullptr, {}));
        ASSERT_GT(bytes, 0);
        received += bytes;
    }
    const model::AsyncResultPtr pending =
        client->BeginReceive(buffer, 0, 64, model::SocketFlags::None, nullptr, {});
    server->Stop();
    EXPECT_TRUE(server->WaitStopped(kBudget));
    try {
        EXPECT_EQ(client->EndReceive(pending), 0);
    } catch (const model::SocketException& exception) {
        EXPECT_EQ(exception.SocketErrorCode(), SocketError::ConnectionReset);
    }
    client->Dispose();
    EXPECT_THROW(client->Connect(endpoint), model::ObjectDisposedException);
    const auto counters = server->counters();
    EXPECT_EQ(counters.accepted, 1U);
    EXPECT_EQ(counters.closed_error, 1U);
    // The client already has its 10 bytes, but on real sockets Stop() can dispose the server's
    // socket between the kernel taking the echo and the server thread's EndSend, which then
    // throws (S-16: End* on a disposed socket) and the bytes go uncounted. Both orders are legal.
    EXPECT_TRUE(counters.bytes_echoed == 10U || counters.bytes_echoed == 0U)
        << counters.bytes_echoed;
}

TEST_P(EchoServerSim, StopCutsOpenConnectionsAndEndsWithinItsBudget) {
    World world(World::Options{});
    world.spawn("main", [&] { check_stop_cuts_open_connections(world, profile()); });
    ASSERT_TRUE(world.run_until_idle());
}

TEST_P(EchoServerReal, EchoesEveryClientExactly) {
    expect_all_echoed(run_on_real(profile(), mixed_plans(false)));
}

TEST_P(EchoServerReal, StopCutsOpenConnectionsAndEndsWithinItsBudget) {
    RealTransport transport;
    check_stop_cuts_open_connections(transport, profile());
    EXPECT_EQ(transport.take_exception(), nullptr);
}

std::string profile_test_name(const testing::TestParamInfo<std::string>& param_info) {
    return param_info.param == "documented" ? "documented" : "dotnet_unix";
}

INSTANTIATE_TEST_SUITE_P(Profiles,
                         EchoServerSim,
                         testing::Values("documented", "dotnet-unix"),
                         profile_test_name);
INSTANTIATE_TEST_SUITE_P(Profiles,
                         EchoServerReal,
                         testing::Values("documented", "dotnet-unix"),
                         profile_test_name);

}  // namespace
}  // namespace faultline
