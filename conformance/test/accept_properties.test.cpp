// Goal: AcceptLoop<T> keeps the AcceptAsync contract under an accept storm, and the EchoServer
// built on it echoes exactly or reports an error under generated faults. Storm properties: every
// established connection is accepted exactly once or its client sees the reset; a refused client
// was never accepted; Completed fires exactly once per true return and never after a false one
// the loop's SocketAsyncEventArgs is never armed while busy and always re-armed with
// AcceptSocket cleared; half-open scans are re-armed past under documented and never seen
// under dotnet-unix; the loop always ends once the listener is disposed. Queued connections
// are accepted synchronously without growing the stack.
// Method: RapidCheck generates the storm on sim::World: N clients (raw transport connects) at
// generated times, half_open_scan faults, the profile, a backlog, one to three AcceptLoops on one
// listener (several SocketAsyncEventArgs) started at generated times, handlers that block for
// generated times (so connections queue and AcceptAsync returns false), and the end: the listener
// disposed or a loop stopped at a generated moment, or only after every client has connected.
// The echo property is one function template over the transport (sim: generated faults and
// swarm; real: a small generated workload on loopback).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "echo_server/echo_workload.h"
#include "rc_support.h"
#include "faultline/conformance/run.h"
#include "faultline/model/accept_loop.h"
#include "faultline/model/socket.h"
#include "faultline/real/transport.h"
#include "faultline/sim/world.h"

namespace faultline {
namespace {

using model::AcceptLoop;
using model::Duration;
using model::Endpoint;
using model::NetErrc;
using model::Socket;
using model::SocketError;
using sim::World;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SocketPtr = std::shared_ptr<Socket<World>>;

/// Blocks the calling logical thread (a pool thread too) for `duration` of virtual time.
void sleep(World& world, Duration duration) {
    World::Event never;
    std::unique_lock<World::Mutex> lock;
    static_cast<void>(world.wait(never, lock, duration));
}

Duration generate_duration(std::int64_t below_ns) {
    return Duration(*rc::gen::inRange<std::int64_t>(0, below_ns));
}

// ---- the accept storm ------------------------------------------------------------------------

struct LoopPlan {
    Duration start_after{};
    std::vector<Duration> handler_delays;  // used in turn, one per accepted socket
};

enum class StormEnd : std::uint8_t { dispose_listener, stop_a_loop, after_every_client };

struct StormPlan {
    bool documented = true;
    std::uint64_t seed = 1;
    Duration latency{};
    int backlog = 1;
    std::vector<Duration> connect_at;  // one per client
    std::vector<LoopPlan> loops;
    std::vector<sim::Fault> scans;
    StormEnd end = StormEnd::after_every_client;
    Duration end_at{};  // dispose_listener, stop_a_loop
    Duration drain{};   // after every client's connect finished, before the final Stop()
};

StormPlan generate_storm() {
    StormPlan plan;
    plan.documented = *rc::gen::arbitrary<bool>();
    plan.seed = *rc::gen::inRange<std::uint64_t>(1, 1'000'000);
    plan.latency = Duration(*rc::gen::inRange<std::int64_t>(1'000, 1'000'000));
    plan.backlog = *rc::gen::inRange<int>(0, 48);
    const auto clients = *rc::gen::inRange<std::size_t>(1, 41);
    for (std::size_t i = 0; i < clients; ++i) {
        plan.connect_at.push_back(generate_duration(20'000'000));
    }
    const auto loops = *rc::gen::inRange<std::size_t>(1, 4);
    for (std::size_t i = 0; i < loops; ++i) {
        LoopPlan loop;
        loop.start_after = generate_duration(10'000'000);
        const auto delays = *rc::gen::inRange<std::size_t>(1, 4);
        for (std::size_t d = 0; d < delays; ++d) {
            // Half of the handlers return at once; the others block, so connections queue.
            const bool blocks = *rc::gen::arbitrary<bool>();
            loop.handler_delays.push_back(blocks ? generate_duration(3'000'000) : Duration{});
        }
        plan.loops.push_back(loop);
    }
    const auto scans = *rc::gen::inRange<int>(0, 4);
    for (int i = 0; i < scans; ++i) {
        sim::Fault scan;
        scan.kind = sim::FaultKind::half_open_scan;
        scan.at = generate_duration(20'000'000);
        scan.count = *rc::gen::inRange<std::uint64_t>(1, 6);
        scan.interval = generate_duration(2'000'000);
        plan.scans.push_back(scan);
    }
    plan.end = *rc::gen::element(
        StormEnd::dispose_listener, StormEnd::stop_a_loop, StormEnd::after_every_client);
    plan.end_at = generate_duration(25'000'000);
    plan.drain = generate_duration(5'000'000);
    RC_TAG(plan.documented ? "documented" : "dotnet-unix");
    return plan;
}

/// The plan in words, logged with a counterexample.
std::string describe(const StormPlan& plan) {
    std::ostringstream text;
    text << (plan.documented ? "documented" : "dotnet-unix") << " seed=" << plan.seed
         << " latency_ns=" << plan.latency.count() << " backlog=" << plan.backlog
         << "\nconnect_at_ns:";
    for (const Duration at : plan.connect_at) {
        text << ' ' << at.count();
    }
    for (const LoopPlan& loop : plan.loops) {
        text << "\nloop start_after_ns=" << loop.start_after.count() << " handler_delays_ns:";
        for (const Duration delay : loop.handler_delays) {
            text << ' ' << delay.count();
        }
    }
    for (const sim::Fault& scan : plan.scans) {
        text << "\nhalf_open_scan at_ns=" << scan.at->count() << " count=" << scan.count
             << " interval_ns=" << scan.interval.count();
    }
    text << (plan.end == StormEnd::dispose_listener ? "\nlistener disposed at_ns="
             : plan.end == StormEnd::stop_a_loop    ? "\nlast loop stopped at_ns="
                                                    : "\nstopped only after the clients, at_ns=")
         << plan.end_at.count() << " drain_ns=" << plan.drain.count();
    return text.str();
}

/// What the handlers and Completed events saw, filled on pool threads, checked afterwards.
struct StormRecord {
    explicit StormRecord(std::size_t loops)
        : handler_calls(loops, 0), completed_seen(loops, 0), handlers_running(loops, 0) {}

    std::map<Endpoint, int> accepted_from;  // client endpoint → times accepted
    std::vector<std::uint64_t> handler_calls;
    std::vector<std::uint64_t> completed_seen;  // Completed events counted by the test
    std::vector<int> handlers_running;
    int handlers_overlapping = 0;  // a handler of a loop ran while another of it was running
    int not_connected = 0;         // an accepted socket that was not Connected
    int args_busy_in_handler = 0;  // the loop's args were armed while its handler ran
};

struct ClientRecord {
    bool finished = false;
    std::error_code error;
    model::ConnectionId connection{};
};

void check_storm(const StormPlan& plan) {
    conformance::install_throwing_assert_handler();
    RC_LOG() << describe(plan) << "\n";
    const model::Profile profile = plan.documented ? model::kDocumented : model::kDotnetUnix;
    World::Options options;
    options.seed = plan.seed;
    options.network.latency = plan.latency;
    options.faults = plan.scans;
    options.trace_mode = sim::Trace::Mode::off;
    World world(options);

    auto listener = Socket<World>::Create(world, profile);
    listener->Bind(Endpoint::loopback(0));
    listener->Listen(plan.backlog);
    const Endpoint endpoint = *listener->LocalEndPoint();

    StormRecord record(plan.loops.size());
    std::vector<std::shared_ptr<AcceptLoop<World>>> loops;
    for (std::size_t k = 0; k < plan.loops.size(); ++k) {
        const LoopPlan& loop_plan = plan.loops[k];
        auto loop = AcceptLoop<World>::Create(
            listener, [&world, &record, &loops, &loop_plan, k](const SocketPtr& accepted) {
                if (++record.handlers_running[k] > 1) {
                    ++record.handlers_overlapping;
                }
                if (loops[k]->args()->busy()) {
                    ++record.args_busy_in_handler;
                }
                if (!accepted->Connected()) {
                    ++record.not_connected;
                }
                ++record.accepted_from[*accepted->RemoteEndPoint()];
                const auto& delays = loop_plan.handler_delays;
                const Duration delay = delays[record.handler_calls[k]++ % delays.size()];
                if (delay > Duration::zero()) {
                    sleep(world, delay);
                }
                accepted->Dispose();  // graceful: the client reads a clean end of stream
                --record.handlers_running[k];
            });
        loop->args()->AddCompleted(
            [&record, k](const SocketPtr& /*sender*/,
                         const model::SocketAsyncEventArgs<World>::Ptr& /*e*/) {
                ++record.completed_seen[k];
            });
        loops.push_back(loop);
    }
    // Accepts start on pool threads: the documented profile cancels I/O when its initiating
    // thread exits, and pool threads never do.
    for (std::size_t k = 0; k < loops.size(); ++k) {
        world.post_after(plan.loops[k].start_after, [loop = loops[k]] { loop->Start(); });
    }

    std::vector<ClientRecord> clients(plan.connect_at.size());
    std::size_t clients_finished = 0;
    auto stop_all = [&loops] {
        for (const auto& loop : loops) {
            loop->Stop();
        }
    };
    for (std::size_t i = 0; i < clients.size(); ++i) {
        world.post_after(plan.connect_at[i], [&, i] {
            world.async_connect(endpoint,
                                [&, i](std::error_code error, model::ConnectionId connection) {
                                    clients[i] = ClientRecord{true, error, connection};
                                    if (++clients_finished == clients.size()) {
                                        world.post_after(plan.drain, stop_all);  // every run ends
                                    }
                                });
        });
    }
    if (plan.end == StormEnd::dispose_listener) {
        world.post_after(plan.end_at, [listener] { listener->Dispose(); });
    } else if (plan.end == StormEnd::stop_a_loop) {
        world.post_after(plan.end_at, [loop = loops.back()] { loop->Stop(); });
    }
    RC_ASSERT(world.run_until_idle());

    // The loops: all ended; Completed exactly once per true return (seen by the loop and,
    // independently, by the test's own handler), so never after a false return.
    std::uint64_t accepted_total = 0;
    std::uint64_t resets_total = 0;
    for (std::size_t k = 0; k < loops.size(); ++k) {
        const model::AcceptLoopCounters counters = loops[k]->counters();
        RC_ASSERT(loops[k]->finished());
        RC_ASSERT(counters.completed == counters.pending);
        RC_ASSERT(record.completed_seen[k] == counters.pending);
        RC_ASSERT(counters.errors == 0U);
        RC_ASSERT(counters.accepted == record.handler_calls[k]);
        accepted_total += counters.accepted;
        resets_total += counters.resets;
    }
    RC_ASSERT(record.handlers_overlapping == 0);
    RC_ASSERT(record.args_busy_in_handler == 0);
    RC_ASSERT(record.not_connected == 0);

    // Half-open scans: the page's ConnectionReset under documented, invisible under dotnet-unix.
    std::uint64_t scans_total = 0;
    for (const sim::Fault& scan : plan.scans) {
        scans_total += scan.count;
    }
    if (profile.accept_reports_half_open_reset) {
        RC_ASSERT(resets_total <= scans_total);
    } else {
        RC_ASSERT(resets_total == 0U);
    }

    // The clients: accepted exactly once (then the server closed: a clean end of stream) or
    // never accepted (the listener's close reset it); refused ones never reached a handler.
    std::uint64_t accepted_clients = 0;
    std::uint64_t refused_clients = 0;
    for (const ClientRecord& client : clients) {
        RC_ASSERT(client.finished);
        if (client.error) {
            ++refused_clients;
            RC_ASSERT(client.error == NetErrc::connection_refused ||
                      client.error == NetErrc::timed_out);
            continue;
        }
        const auto found = record.accepted_from.find(world.local_endpoint(client.connection));
        const int times = found == record.accepted_from.end() ? 0 : found->second;
        std::array<std::byte, 1> byte{};
        const model::Result<std::size_t> read = world.try_receive(client.connection, byte);
        RC_ASSERT(!read.has_value());
        if (read.error() == NetErrc::end_of_stream) {
            RC_ASSERT(times == 1);
        } else {
            RC_ASSERT(read.error() == NetErrc::connection_reset);
            RC_ASSERT(times == 0);
        }
        accepted_clients += static_cast<std::uint64_t>(times);
    }
    RC_ASSERT(accepted_clients == accepted_total);  // nothing accepted that no client made

    // Coverage: how often the generated storms reach each path.
    std::uint64_t synchronous = 0;
    for (const auto& loop : loops) {
        synchronous += loop->counters().synchronous;
    }
    RC_CLASSIFY(synchronous > 0, "synchronous accepts");
    RC_CLASSIFY(resets_total > 0, "scan resets");
    RC_CLASSIFY(accepted_clients + refused_clients < clients.size(), "queued clients reset");
}

RC_GTEST_PROP(AcceptStormSim, EveryConnectionIsAcceptedOnceOrReset, ()) {
    check_storm(generate_storm());
}

// ---- the echo server under generated faults ------------------------------------------------

struct EchoPlan {
    bool documented = true;
    std::vector<examples::EchoClientPlan> clients;
    World::Options options;      // sim only
    bool may_fail = false;       // a reset or a swarm is planned
    bool may_end_early = false;  // a swarm may close the server's socket behind its back
};

EchoPlan generate_echo(bool real) {
    EchoPlan plan;
    plan.documented = *rc::gen::arbitrary<bool>();
    const auto clients = *rc::gen::inRange<std::size_t>(1, real ? 4 : 7);
    for (std::size_t i = 0; i < clients; ++i) {
        examples::EchoClientPlan client;
        client.bytes = *rc::gen::inRange<std::size_t>(1, real ? 20'000 : 32'000);
        client.chunk_bytes = *rc::gen::inRange<int>(real ? 256 : 16, 20'000);
        if (!real) {
            client.start_after = generate_duration(3'000'000);
        }
        plan.clients.push_back(client);
    }
    if (real) {
        RC_TAG(plan.documented ? "documented" : "dotnet-unix");
        return plan;
    }
    plan.options.seed = *rc::gen::inRange<std::uint64_t>(1, 1'000'000);
    plan.options.trace_mode = sim::Trace::Mode::off;
    plan.options.network.latency = Duration(*rc::gen::inRange<std::int64_t>(1'000, 1'000'000));
    const auto partials = *rc::gen::inRange<int>(0, 5);
    for (int i = 0; i < partials; ++i) {
        sim::Fault fault;
        fault.kind = sim::FaultKind::partial_send;
        fault.side = *rc::gen::element(sim::Side::client, sim::Side::server);
        fault.on_send = *rc::gen::inRange<std::uint64_t>(1, 20);
        fault.bytes = *rc::gen::inRange<std::uint64_t>(1, 2000);
        plan.options.faults.push_back(fault);
    }
    if (*rc::gen::weightedElement<bool>({{3, false}, {1, true}})) {
        sim::Fault reset;
        reset.kind = sim::FaultKind::reset;
        reset.side = *rc::gen::element(sim::Side::client, sim::Side::server);
        reset.connection = *rc::gen::inRange<std::uint32_t>(0, static_cast<std::uint32_t>(clients));
        reset.after_bytes = *rc::gen::inRange<std::uint64_t>(0, 40'000);
        plan.options.faults.push_back(reset);
        plan.may_fail = true;
    }
    if (*rc::gen::arbitrary<bool>()) {
        sim::Fault scans;
        scans.kind = sim::FaultKind::half_open_scan;
        scans.at = generate_duration(3'000'000);
        scans.count = *rc::gen::inRange<std::uint64_t>(1, 10);
        scans.interval = generate_duration(1'000'000);
        plan.options.faults.push_back(scans);
    }
    plan.options.swarm.enabled = *rc::gen::weightedElement<bool>({{3, false}, {1, true}});
    plan.may_fail = plan.may_fail || plan.options.swarm.enabled;
    plan.may_end_early = plan.options.swarm.enabled;
    RC_TAG(plan.documented ? "documented" : "dotnet-unix", plan.may_fail ? "faults" : "clean");
    return plan;
}

/// One property body for both transports: every client gets its bytes back exactly, or (when a
/// reset or swarm was planned) sees a socket error; what it got is always a prefix of what it sent.
void check_echo_outcomes(const EchoPlan& plan,
                         const examples::EchoWorkloadResult& result,
                         const model::Profile& profile) {
    RC_ASSERT(result.failure.empty());
    RC_ASSERT(result.server_stopped);
    RC_ASSERT(result.outcomes.size() == plan.clients.size());
    for (std::size_t i = 0; i < result.outcomes.size(); ++i) {
        const examples::EchoClientOutcome& outcome = result.outcomes[i];
        const std::vector<std::byte>& payload = result.payloads[i];
        RC_ASSERT(outcome.failure.empty());
        RC_ASSERT(outcome.is_prefix_of(payload));  // never wrong bytes
        if (!plan.may_fail) {
            RC_ASSERT(outcome.echoed(payload));
            continue;
        }
        const bool early_end = outcome.end_of_stream && !outcome.error;
        RC_ASSERT(outcome.echoed(payload) || outcome.error.has_value() ||
                  (early_end && plan.may_end_early));
    }
    if (!profile.accept_reports_half_open_reset) {
        RC_ASSERT(result.counters.accept_resets == 0U);
    }
}

/// The plan in words, logged with a counterexample.
std::string describe(const EchoPlan& plan) {
    std::ostringstream text;
    text << (plan.documented ? "documented" : "dotnet-unix") << " seed=" << plan.options.seed
         << " latency_ns=" << plan.options.network.latency.count()
         << (plan.options.swarm.enabled ? " swarm" : "");
    for (const examples::EchoClientPlan& client : plan.clients) {
        text << "\nclient bytes=" << client.bytes << " chunk=" << client.chunk_bytes
             << " start_after_ns=" << client.start_after.count();
    }
    for (const sim::Fault& fault : plan.options.faults) {
        text << "\nfault kind=" << static_cast<int>(fault.kind)
             << " side=" << (fault.side == sim::Side::client ? "client" : "server")
             << " connection=" << fault.connection.value_or(0)
             << " on_send=" << fault.on_send.value_or(0)
             << " after_bytes=" << fault.after_bytes.value_or(0) << " bytes=" << fault.bytes
             << " at_ns=" << fault.at.value_or(Duration{}).count() << " count=" << fault.count
             << " interval_ns=" << fault.interval.count();
    }
    return text.str();
}

void check_echo(bool real) {
    conformance::install_throwing_assert_handler();
    const EchoPlan plan = generate_echo(real);
    const std::string description = describe(plan);
    RC_LOG() << description << "\n";
    const model::Profile profile = plan.documented ? model::kDocumented : model::kDotnetUnix;
    test::report_failure_as_it_happens(description, [&] {
        examples::EchoWorkloadResult result;
        if (real) {
            real::RealTransport transport;
            result = examples::run_echo_workload(transport, profile, plan.clients, seconds(20));
            RC_ASSERT(transport.join_threads(seconds(10)));
            RC_ASSERT(transport.take_exception() == nullptr);
        } else {
            World world(plan.options);
            world.spawn("main", [&] {
                result = examples::run_echo_workload(world, profile, plan.clients, seconds(60));
            });
            RC_ASSERT(world.run_until_idle());
        }
        check_echo_outcomes(plan, result, profile);
    });
}

RC_GTEST_PROP(EchoPropertySim, EchoesExactlyOrReportsAnError, ()) { check_echo(false); }

RC_GTEST_PROP(EchoPropertyReal, EchoesExactlyOrReportsAnError, ()) { check_echo(true); }

// ---- targeted AcceptLoop cases ------------------------------------------------------------

/// Connects `count` raw clients and lets their handshakes finish: they wait in the backlog.
std::vector<model::ConnectionId> queue_clients(World& world,
                                               const Endpoint& endpoint,
                                               std::size_t count) {
    auto connections = std::make_shared<std::vector<model::ConnectionId>>();
    for (std::size_t i = 0; i < count; ++i) {
        world.async_connect(endpoint,
                            [connections](std::error_code error, model::ConnectionId connection) {
                                if (!error) {
                                    connections->push_back(connection);
                                }
                            });
    }
    world.run_for(milliseconds(5));
    return *connections;
}

TEST(AcceptLoopSim, QueuedConnectionsAreAcceptedInOneStackFrame) {
    conformance::install_throwing_assert_handler();
    World::Options options;
    options.trace_mode = sim::Trace::Mode::off;
    World world(options);
    auto listener = Socket<World>::Create(world, model::kDotnetUnix);
    listener->Bind(Endpoint::loopback(0));
    constexpr std::size_t kClients = 3000;
    listener->Listen(static_cast<int>(kClients));
    const auto connections = queue_clients(world, *listener->LocalEndPoint(), kClients);
    ASSERT_EQ(connections.size(), kClients);
    std::vector<const void*> frames;
    std::vector<SocketPtr> accepted;
    auto loop = AcceptLoop<World>::Create(listener, [&](SocketPtr socket) {
        frames.push_back(__builtin_frame_address(0));
        accepted.push_back(std::move(socket));
    });
    world.post([loop] { loop->Start(); });
    world.run_for(milliseconds(1));
    // Every queued connection completed inside AcceptAsync (false): 3000 handler calls made from
    // one frame of the loop, not 3000 nested frames (a 256 KiB fiber stack would overflow).
    ASSERT_EQ(accepted.size(), kClients);
    EXPECT_EQ(loop->counters().synchronous, kClients);
    EXPECT_EQ(loop->counters().pending, 1U);  // then it waits
    EXPECT_EQ(std::set<const void*>(frames.begin(), frames.end()).size(), 1U);
    loop->Stop();
    ASSERT_TRUE(world.run_until_idle());
    EXPECT_TRUE(loop->finished());
    EXPECT_EQ(loop->counters().completed, 1U);
    EXPECT_EQ(loop->counters().aborted, 1U);
    for (const SocketPtr& socket : accepted) {
        socket->Dispose();
    }
}

TEST(AcceptLoopSim, StopInsideTheHandlerEndsTheLoopAfterIt) {
    conformance::install_throwing_assert_handler();
    World world(World::Options{});
    auto listener = Socket<World>::Create(world, model::kDocumented);
    listener->Bind(Endpoint::loopback(0));
    listener->Listen(8);
    static_cast<void>(queue_clients(world, *listener->LocalEndPoint(), 3));
    std::vector<SocketPtr> accepted;
    std::vector<SocketError> finished_with;
    std::shared_ptr<AcceptLoop<World>> loop;
    loop = AcceptLoop<World>::Create(
        listener,
        [&](SocketPtr socket) {
            accepted.push_back(std::move(socket));
            loop->Stop();
        },
        model::default_accept_error_policy,
        [&](SocketError reason) { finished_with.push_back(reason); });
    world.post([loop] { loop->Start(); });
    ASSERT_TRUE(world.run_until_idle());
    EXPECT_EQ(accepted.size(), 1U);  // the other queued connections are reset by the close
    EXPECT_TRUE(loop->finished());
    EXPECT_EQ(finished_with, std::vector<SocketError>{SocketError::OperationAborted});
    for (const SocketPtr& socket : accepted) {
        socket->Dispose();
    }
}

/// Seed note: under the documented profile I/O is cancelled when its initiating thread exits. A
/// loop started by a short-lived thread sees its first accept aborted and re-arms from the pool;
/// under dotnet-unix the accept simply stays pending.
class AcceptLoopThreadExitSim : public testing::TestWithParam<std::string> {};

TEST_P(AcceptLoopThreadExitSim, ALoopStartedByAThreadThatExitsKeepsAccepting) {
    conformance::install_throwing_assert_handler();
    const model::Profile profile = *model::profile_by_name(GetParam());
    World world(World::Options{});
    auto listener = Socket<World>::Create(world, profile);
    listener->Bind(Endpoint::loopback(0));
    listener->Listen(8);
    std::vector<SocketPtr> accepted;
    auto loop = AcceptLoop<World>::Create(
        listener, [&](SocketPtr socket) { accepted.push_back(std::move(socket)); });
    world.spawn("starter", [loop] { loop->Start(); });  // returns at once: the thread exits
    world.run_for(milliseconds(1));
    static_cast<void>(queue_clients(world, *listener->LocalEndPoint(), 2));
    EXPECT_EQ(accepted.size(), 2U);
    EXPECT_EQ(loop->counters().aborted, profile.thread_exit_cancels_io ? 1U : 0U);
    loop->Stop();
    ASSERT_TRUE(world.run_until_idle());
    EXPECT_TRUE(loop->finished());
    for (const SocketPtr& socket : accepted) {
        socket->Dispose();
    }
}

INSTANTIATE_TEST_SUITE_P(Profiles,
                         AcceptLoopThreadExitSim,
                         testing::Values("documented", "dotnet-unix"),
                         [](const testing::TestParamInfo<std::string>& param_info) {
                             return param_info.param == "documented" ? std::string("documented")
                                                                     : std::string("dotnet_unix");
                         });

/// Real threads: connections arrive from client threads while the loop runs on the pool, and
/// Stop() comes from the test thread. Every wait is on an event with a budget.
TEST(AcceptLoopReal, StopFromAnotherThreadEndsALoopThatAcceptedEveryClient) {
    using real::RealTransport;
    conformance::install_throwing_assert_handler();
    RealTransport transport;
    auto listener = Socket<RealTransport>::Create(transport, model::kDotnetUnix);
    listener->Bind(Endpoint::loopback(0));
    listener->Listen(64);
    constexpr std::size_t kClients = 24;
    RealTransport::Mutex mutex;
    RealTransport::Event all_accepted;
    RealTransport::Event finished;
    std::vector<std::shared_ptr<Socket<RealTransport>>> accepted;
    auto loop = AcceptLoop<RealTransport>::Create(
        listener,
        [&](std::shared_ptr<Socket<RealTransport>> socket) {
            std::unique_lock lock(mutex);
            accepted.push_back(std::move(socket));
            if (accepted.size() == kClients) {
                transport.signal(all_accepted);
            }
        },
        model::default_accept_error_policy,
        [&](SocketError /*reason*/) {
            std::unique_lock lock(mutex);
            transport.signal(finished);
        });
    transport.post([loop] { loop->Start(); });
    const Endpoint endpoint = *listener->LocalEndPoint();
    std::vector<std::shared_ptr<Socket<RealTransport>>> clients;
    for (std::size_t i = 0; i < kClients; ++i) {
        clients.push_back(Socket<RealTransport>::Create(transport, model::kDotnetUnix));
        clients.back()->SetWaitBudget(seconds(10));
        clients.back()->Connect(endpoint);
    }
    {
        std::unique_lock lock(mutex);
        ASSERT_TRUE(transport.wait(all_accepted, lock, seconds(10)));
    }
    loop->Stop();
    {
        std::unique_lock lock(mutex);
        ASSERT_TRUE(transport.wait(finished, lock, seconds(10)));
    }
    const model::AcceptLoopCounters counters = loop->counters();
    EXPECT_EQ(counters.accepted, kClients);
    EXPECT_EQ(counters.completed, counters.pending);
    EXPECT_EQ(counters.errors, 0U);
    EXPECT_EQ(counters.resets, 0U);
    for (const auto& socket : accepted) {
        EXPECT_TRUE(socket->Connected());
        socket->Dispose();
    }
    for (const auto& client : clients) {
        client->Dispose();
    }
    EXPECT_EQ(transport.take_exception(), nullptr);
}

}  // namespace
}  // namespace faultline
