// Goal: the oracle's properties hold on every generated scenario, with the fuzzer's families as
// RapidCheck generators (rc_gen.h), and a counterexample is shrunk to a small scenario file and
// written out, ready to replay.
// Method: one RapidCheck property per family (ctest gives the sim label 1000 cases and a pinned
// seed) runs each generated scenario on sim under a generated profile; the oracle checks what
// it checks on every run (S-9, S-11, S-20, A-2, M-5, M-9, M-26, W-10 and the rest). The shrink
// tree is walked by hand on a planted failure to check where RapidCheck's shrinking ends.
#include "faultline/conformance/rc_gen.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <variant>

#include "faultline/conformance/fuzz.h"
#include "faultline/conformance/run.h"
#include "faultline/conformance/scenario.h"

namespace faultline::conformance {
namespace {

using json = nlohmann::json;

/// Where a failing case is written: $FAULTLINE_RC_OUT, else rc-regressions/ in the working
/// directory (the build folder under ctest).
std::string regression_dir() {
    const char* chosen = std::getenv("FAULTLINE_RC_OUT");
    return chosen != nullptr && *chosen != '\0' ? std::string(chosen) : "rc-regressions";
}

/// Runs one generated scenario (after `plant`, if given, changed it). A failing case is written
/// to <dir>/rc_<family>.json before the property fails; RapidCheck then tries smaller cases, and
/// every one that still fails overwrites the file, so when RapidCheck reports, the file holds
/// the smallest counterexample.
void check_generated(const std::string& family,
                     const std::string& dir,
                     const std::function<void(json&)>& plant = {}) {
    install_throwing_assert_handler();
    static std::map<std::string, std::size_t> first_failure_steps;  // by file
    json scenario = *rc_gen::scenario(family);
    const std::string profile = *rc_gen::profile();
    RC_TAG(profile, scenario.contains("swarm") ? "swarm" : "scripted");
    if (plant) {
        plant(scenario);
    }
    const RunOutcome outcome = run_scenario_json(scenario, profile);
    RC_PRE(!refused_by_loader(outcome));  // a broken shrink, not a smaller counterexample
    if (outcome.status == RunStatus::passed) {
        return;
    }
    const std::string name = "rc_" + family;
    const std::size_t steps = scenario_step_count(scenario);
    first_failure_steps.emplace(dir + "/" + name, steps);
    const FuzzFinding finding{.family = family,
                              .seed = scenario["seed"].get<std::uint64_t>(),
                              .profile = profile,
                              .signature = failure_signature(outcome),
                              .path = {},
                              .steps_before = first_failure_steps[dir + "/" + name],
                              .steps_after = steps,
                              .found_by = "a RapidCheck property"};
    const std::string path = write_regression(dir, name, scenario, finding, outcome);
    RC_FAIL(outcome.failures.front() + "\nwritten to " + path + "; replay: ./faultline replay " +
            path + " --profile " + profile);
}

RC_GTEST_PROP(FuzzPropertySim, GeneratedSendScenariosPassTheOracle, ()) { check_generated("send", regression_dir()); }

RC_GTEST_PROP(FuzzPropertySim, GeneratedAcceptScenariosPassTheOracle, ()) {
    check_generated("accept", regression_dir());
}

RC_GTEST_PROP(FuzzPropertySim, GeneratedSmtpScenariosPassTheOracle, ()) { check_generated("smtp", regression_dir()); }

// Every generated scenario, of any family, is a valid scenario file as it is.
RC_GTEST_PROP(FuzzPropertySim, GeneratedScenariosAreValidFiles, ()) {
    const json scenario = *rc_gen::any_scenario();
    const std::string path = scenario["name"].get<std::string>() + ".json";
    const auto loaded = load_scenario_text(path, scenario.dump(2));
    RC_ASSERT(std::holds_alternative<Scenario>(loaded));
}

/// Walks a shrink tree as RapidCheck does: take the first smaller value that still fails, until
/// none does.
json shrink_by_hand(rc::Shrinkable<json> node, const std::function<bool(const json&)>& fails) {
    for (bool improved = true; improved;) {
        improved = false;
        auto shrinks = node.shrinks();
        while (auto next = shrinks.next()) {
            if (fails(next->value())) {
                node = std::move(*next);
                improved = true;
                break;
            }
        }
    }
    return node.value();
}

// A planted failure, "a send_all of more than 100 bytes", found in a generated send scenario
// ends, after shrinking through the generator's shrink tree, as one send_all of exactly 101
// bytes with no faults: a minimal file.
TEST(FuzzGen, ShrinkingAGeneratedScenarioEndsAtTheSmallestFileThatStillFails) {
    const auto loads = [](const json& scenario) {
        return std::holds_alternative<Scenario>(load_scenario_json(
            "fuzz/" + scenario["name"].get<std::string>() + ".json", scenario));
    };
    const auto fails = [&loads](const json& scenario) {
        if (!loads(scenario)) {
            return false;
        }
        for (const json& thread : scenario["threads"]) {
            for (const json& step : thread["steps"]) {
                if (step["op"] == "send_all" && step["bytes"].get<std::uint64_t>() > 100) {
                    return true;
                }
            }
        }
        return false;
    };
    const rc::Gen<json> generator = rc_gen::scenario("send");
    for (std::uint64_t seed = 1;; ++seed) {
        ASSERT_LT(seed, 1000U) << "no generated scenario had a send_all over 100 bytes";
        rc::Shrinkable<json> generated = generator(rc::Random(seed), 0);
        if (!fails(generated.value()) || scenario_step_count(generated.value()) < 3) {
            continue;
        }
        const json smallest = shrink_by_hand(generated, fails);
        EXPECT_EQ(scenario_step_count(smallest), 1U) << smallest.dump();
        EXPECT_FALSE(smallest.contains("faults")) << smallest.dump();
        const json& step = smallest["threads"][0]["steps"][0];
        EXPECT_EQ(step["op"], "send_all");
        EXPECT_EQ(step["bytes"].get<std::uint64_t>(), 101U) << smallest.dump();
        EXPECT_TRUE(loads(smallest));
        break;
    }
}

// A property that fails leaves its smallest counterexample as a scenario file that replays the
// failure: planted here as a send that must return 11 bytes but was given 10, added to every
// generated send scenario. (RapidCheck prints "Some of your RapidCheck properties had failures"
// when the test binary exits after this test: that is this planted failure, expected.)
TEST(FuzzGen, AFailingPropertyLeavesItsSmallestCounterexampleAsAFileThatReplays) {
    const std::string dir = testing::TempDir() + "faultline_rc_regressions";
    std::filesystem::remove_all(dir);
    const auto plant = [](json& scenario) {
        json& steps = scenario["threads"][0]["steps"];
        steps.insert(steps.begin(), json::object({{"op", "end_send"},
                                                  {"target", "planted"},
                                                  {"expect", {{"returns", 11}}}}));
        steps.insert(steps.begin(),
                     json::object({{"op", "begin_send"}, {"id", "planted"}, {"size", 10}}));
    };
    const bool passed = rc::check("planted failure", [&] { check_generated("send", dir, plant); });
    EXPECT_FALSE(passed);
    const auto loaded = load_scenario_file(dir + "/rc_send.json");
    ASSERT_TRUE(std::holds_alternative<Scenario>(loaded)) << std::get<std::string>(loaded);
    const Scenario& replay = std::get<Scenario>(loaded);
    ASSERT_EQ(replay.profiles.size(), 1U);
    EXPECT_NE(replay.description.find("a RapidCheck property"), std::string::npos);
    // Shrunk: the planted pair and at most one step the generator cannot drop.
    std::size_t steps = 0;
    for (const ThreadSpec& thread : replay.threads) {
        steps += thread.steps.size();
    }
    EXPECT_LE(steps, 3U);
    const RunOutcome first = run_on_sim(replay, replay.profiles.front());
    const RunOutcome again = run_on_sim(replay, replay.profiles.front());
    EXPECT_EQ(first.status, RunStatus::failed);
    ASSERT_FALSE(first.failures.empty());
    EXPECT_NE(first.failures.front().find("returns expected 11"), std::string::npos)
        << first.failures.front();
    EXPECT_EQ(first.trace_hash, again.trace_hash);
    std::filesystem::remove_all(dir);
}

// The same seed gives the same scenario, and RapidCheck's draws give different ones.
TEST(FuzzGen, TheGeneratorIsAPureFunctionOfRapidChecksDraws) {
    const rc::Gen<json> generator = rc_gen::scenario("smtp");
    EXPECT_EQ(generator(rc::Random(7), 0).value(), generator(rc::Random(7), 0).value());
    EXPECT_NE(generator(rc::Random(7), 0).value(), generator(rc::Random(8), 0).value());
}

}  // namespace
}  // namespace faultline::conformance
