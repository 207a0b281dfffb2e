// Goal: the scenario fuzzer's parts do what `faultline fuzz` relies on: every generated scenario
// is a valid scenario file, generation is a pure function of (family, seed), the real
// implementation passes a pinned campaign with every fault kind and completion path met
// ("sometimes" checks), and a failing scenario shrinks to a smaller file that fails the same
// way and replays with the same trace.
// Method: generate, load, run on sim; plant a failure with an expectation that cannot hold and
// shrink it.
#include "faultline/conformance/fuzz.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <variant>

#include "faultline/conformance/run.h"
#include "faultline/conformance/scenario.h"

namespace faultline::conformance {
namespace {

using json = nlohmann::json;

TEST(FuzzGenerator, EveryGeneratedScenarioLoadsAndIsTheSameForTheSameSeed) {
    for (const std::string& family : fuzz_families()) {
        for (std::uint64_t seed = 1; seed <= 300; ++seed) {
            const json scenario = generate_scenario(family, seed);
            EXPECT_EQ(scenario, generate_scenario(family, seed)) << family << " " << seed;
            const std::string name = scenario["name"].get<std::string>();
            const auto loaded = load_scenario_text(name + ".json", scenario.dump(2));
            ASSERT_TRUE(std::holds_alternative<Scenario>(loaded))
                << family << " seed " << seed << ": " << std::get<std::string>(loaded);
        }
    }
    EXPECT_NE(generate_scenario("smtp", 1), generate_scenario("smtp", 2));
    EXPECT_THROW(static_cast<void>(generate_scenario("nope", 1)), std::invalid_argument);
}

// A pinned campaign: the oracle's invariants hold on 200 generated scenarios per family and
// profile (S-9, S-11, S-20, M-5, M-9, M-26, W-10 and the rest the oracle checks every run), and
// over the campaign every fault kind was scheduled and every completion path taken.
TEST(FuzzSim, APinnedCampaignPassesAndMeetsEveryFaultAndPath) {
    install_throwing_assert_handler();
    FuzzCoverage coverage;
    for (const std::string& family : fuzz_families()) {
        for (std::uint64_t seed = 1; seed <= 200; ++seed) {
            const std::string profile = seed % 2 == 0 ? "documented" : "dotnet-unix";
            const json scenario = generate_scenario(family, seed);
            const RunOutcome outcome = run_scenario_json(scenario, profile);
            record_coverage(scenario, outcome, coverage);
            std::string failures;
            for (const std::string& failure : outcome.failures) {
                failures += "\n  " + failure;
            }
            EXPECT_EQ(outcome.status, RunStatus::passed)
                << family << " seed " << seed << " " << profile << failures;
        }
    }
    for (const std::string& kind : fuzz_fault_kinds()) {
        EXPECT_GT(coverage.faults[kind], 0U) << "fault kind never scheduled: " << kind;
    }
    for (const std::string& path : fuzz_completion_paths()) {
        EXPECT_GT(coverage.paths[path], 0U) << "completion path never taken: " << path;
    }
}

TEST(FuzzSim, AFailureShrinksToASmallerFileThatFailsTheSameWayAndReplays) {
    install_throwing_assert_handler();
    // Plant a failure: a generated send workload whose first thread starts with a send that
    // must return a byte count it cannot return.
    json scenario;
    for (std::uint64_t seed = 1;; ++seed) {
        scenario = generate_scenario("send", seed);
        if (scenario_step_count(scenario) >= 5) {
            break;
        }
    }
    scenario.erase("faults");  // keep the planted failure the only one
    json& steps = scenario["threads"][0]["steps"];
    steps.insert(
        steps.begin(),
        json::object({{"op", "end_send"}, {"target", "planted"}, {"expect", {{"returns", 11}}}}));
    steps.insert(steps.begin(),
                 json::object({{"op", "begin_send"}, {"id", "planted"}, {"size", 10}}));
    const RunOutcome failed = run_scenario_json(scenario, "documented");
    ASSERT_EQ(failed.status, RunStatus::failed);
    const std::string signature = failure_signature(failed);
    ASSERT_NE(signature.find("returns expected"), std::string::npos) << signature;

    const ShrinkResult shrunk =
        shrink_scenario(scenario, "documented", [&signature](const RunOutcome& outcome) {
            return failure_signature(outcome) == signature;
        });
    EXPECT_EQ(failure_signature(shrunk.outcome), signature);
    EXPECT_LT(shrunk.steps_after, shrunk.steps_before);
    EXPECT_LE(shrunk.steps_after, 2U);  // the planted begin_send and end_send are all it needs
    EXPECT_LT(shrunk.scenario.dump().size(), scenario.dump().size());

    // Written out, the file replays the failure with the same trace, run after run.
    const std::string dir = testing::TempDir() + "faultline_fuzz_regressions";
    FuzzFinding finding{.family = "send",
                        .seed = scenario["seed"].get<std::uint64_t>(),
                        .profile = "documented",
                        .signature = signature,
                        .path = {},
                        .steps_before = shrunk.steps_before,
                        .steps_after = shrunk.steps_after};
    const std::string path =
        write_regression(dir, "planted_failure", shrunk.scenario, finding, shrunk.outcome);
    const auto loaded = load_scenario_file(path);
    ASSERT_TRUE(std::holds_alternative<Scenario>(loaded)) << std::get<std::string>(loaded);
    const Scenario& replay = std::get<Scenario>(loaded);
    EXPECT_EQ(replay.seed, finding.seed);
    EXPECT_NE(replay.description.find("returns expected"), std::string::npos);
    EXPECT_NE(replay.description.find("faultline fuzz 0.1.0"), std::string::npos);
    const RunOutcome first = run_on_sim(replay, "documented");
    const RunOutcome again = run_on_sim(replay, "documented");
    EXPECT_EQ(first.status, RunStatus::failed);
    EXPECT_EQ(failure_signature(first), signature);
    EXPECT_EQ(first.trace_hash, again.trace_hash);
    std::filesystem::remove_all(dir);
}

TEST(FuzzSignature, IgnoresNumbersAndQuotedNames) {
    RunOutcome a;
    a.failures = {"/threads/0/steps/3: returns expected 11 but was 10"};
    RunOutcome b;
    b.failures = {"/threads/1/steps/7: returns expected 4096 but was 17"};
    RunOutcome c;
    c.failures = {"/threads/0/steps/3: throws expected none but was SocketException"};
    EXPECT_EQ(failure_signature(a), failure_signature(b));
    EXPECT_NE(failure_signature(a), failure_signature(c));
    EXPECT_EQ(failure_signature(RunOutcome{}), "");
}

}  // namespace
}  // namespace faultline::conformance
