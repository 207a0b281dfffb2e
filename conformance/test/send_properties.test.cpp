// Goal: a user's send-all loop over BeginSend/EndSend, under any generated schedule of partial
// sends, latency, jitter and resets, delivers exactly its buffer in order or reports the error;
// the sum of EndSend counts equals what the peer received; every callback runs exactly once.
// Method: RapidCheck generates the schedule and the profile, builds a scenario and runs it through
// the harness, whose oracle checks the stream and the callbacks. One property body serves both
// transports; ctest gives the sim label 1000 cases and the real label 60 (RC_PARAMS).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "rc_support.h"
#include "faultline/conformance/run.h"
#include "faultline/conformance/scenario.h"

namespace faultline::conformance {
namespace {

Scenario generate_send_all(bool real) {
    Scenario scenario;
    scenario.name = "generated_send_all";
    scenario.path = "<generated>";
    scenario.clauses = {"S-9", "S-11", "S-20"};
    scenario.seed = *rc::gen::inRange<std::uint64_t>(1, 1'000'000);
    const std::string profile = *rc::gen::element<std::string>("documented", "dotnet-unix");
    scenario.profiles = {profile};
    scenario.sockets = {"client"};
    const auto total = *rc::gen::inRange<std::uint64_t>(1, real ? 300'000 : 200'000);
    const auto chunk = *rc::gen::inRange<int>(0, 70'000);
    if (!real) {
        scenario.network.latency = model::Duration(*rc::gen::inRange<std::int64_t>(0, 2'000'000));
        scenario.network.jitter = model::Duration(*rc::gen::inRange<std::int64_t>(0, 1'000'000));
        scenario.network.send_buffer_bytes = *rc::gen::inRange<std::size_t>(512, 200'000);
        scenario.network.receive_buffer_bytes = *rc::gen::inRange<std::size_t>(512, 200'000);
        scenario.network.mss_bytes = *rc::gen::inRange<std::size_t>(64, 9000);
    }
    const auto partials = *rc::gen::inRange<int>(0, 6);
    for (int i = 0; i < partials; ++i) {
        sim::Fault fault;
        fault.kind = sim::FaultKind::partial_send;
        fault.side = sim::Side::client;
        fault.on_send = *rc::gen::inRange<std::uint64_t>(1, 20);
        fault.bytes = *rc::gen::inRange<std::uint64_t>(1, 5000);
        scenario.faults.push_back(fault);
    }
    const bool reset = *rc::gen::weightedElement<bool>({{3, false}, {1, true}});
    if (reset) {
        sim::Fault fault;
        fault.kind = sim::FaultKind::reset;
        fault.side = sim::Side::client;
        fault.after_bytes = *rc::gen::inRange<std::uint64_t>(0, total);
        scenario.faults.push_back(fault);
    }
    Step step;
    step.op = StepOp::send_all;
    step.pointer = "/threads/0/steps/0";
    step.id = "all";
    step.bytes = total;
    step.chunk = chunk;
    Expectation delivered;
    delivered.returns = static_cast<std::int64_t>(total);
    Expectation failed;
    failed.throws = "SocketException";
    step.expect["*"] = reset ? ExpectationSet{delivered, failed} : ExpectationSet{delivered};
    scenario.threads = {ThreadSpec{"main", {step}, std::nullopt, std::nullopt}};
    if (!reset) {
        GlobalExpectation global;
        global.peer_received_bytes = total;
        global.peer_saw = "eof";
        scenario.expect["*"] = global;
    }
    RC_TAG(profile, reset ? "reset" : "clean", partials > 0 ? "partial" : "whole");
    return scenario;
}

void check_send_all(bool real) {
    install_throwing_assert_handler();
    const Scenario scenario = generate_send_all(real);
    const RunOutcome outcome = real ? run_on_real(scenario, scenario.profiles.front())
                                    : run_on_sim(scenario, scenario.profiles.front(), std::nullopt,
                                                 sim::Trace::Mode::off);
    std::string report;
    for (const std::string& failure : outcome.failures) {
        report += failure + "\n";
    }
    RC_LOG() << report;
    test::report_failure_as_it_happens(scenario.name + "\n" + report, [&] {
        RC_ASSERT(outcome.status == RunStatus::passed);
        RC_ASSERT(report.empty());
    });
}

RC_GTEST_PROP(SendAllSim, DeliversEveryByteInOrderOrReportsTheError, ()) { check_send_all(false); }

RC_GTEST_PROP(SendAllReal, DeliversEveryByteInOrderOrReportsTheError, ()) { check_send_all(true); }

}  // namespace
}  // namespace faultline::conformance
