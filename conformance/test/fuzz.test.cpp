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

// The fuzzer loads its JSON directly and runs untraced: that must be the run the file gives.
// A generator holds numbers as signed integers where a parsed file holds them as unsigned (the
// SMTP script's counts refused signed ones until this test), and a trace must not change a
// run: same status, same failures, same completion paths, and the same hash as the file's
// traced run.
TEST(FuzzGenerator, TheUntracedJsonRunIsTheRunOfTheFileText) {
    install_throwing_assert_handler();
    for (const std::string& family : fuzz_families()) {
        for (std::uint64_t seed = 1; seed <= 60; ++seed) {
            const std::string profile = seed % 2 == 0 ? "documented" : "dotnet-unix";
            const json scenario = generate_scenario(family, seed);
            CompletionPaths paths;
            const RunOutcome fast = run_scenario_json(scenario, profile, &paths);
            EXPECT_TRUE(fast.trace_hash.empty());
            const std::string path = "fuzz/" + scenario["name"].get<std::string>() + ".json";
            const auto loaded = load_scenario_text(path, scenario.dump(2));
            ASSERT_TRUE(std::holds_alternative<Scenario>(loaded)) << std::get<std::string>(loaded);
            const auto direct = load_scenario_json(path, scenario);
            ASSERT_TRUE(std::holds_alternative<Scenario>(direct)) << std::get<std::string>(direct);
            SimRunOptions traced;
            traced.events_max = 2'000'000;
            CompletionPaths traced_paths;
            traced.observe = completion_path_observer(traced_paths);
            const RunOutcome from_text = run_on_sim(std::get<Scenario>(loaded), profile, traced);
            const RunOutcome from_json = run_on_sim(std::get<Scenario>(direct), profile, traced);
            EXPECT_EQ(fast.status, from_text.status) << family << " " << seed;
            EXPECT_EQ(fast.failures, from_text.failures) << family << " " << seed;
            EXPECT_EQ(paths, traced_paths) << family << " " << seed;
            EXPECT_EQ(from_json.trace_hash, from_text.trace_hash) << family << " " << seed;
            EXPECT_FALSE(from_text.trace_hash.empty());
        }
    }
}

TEST(FuzzGenerator, DirectJsonLoadingReportsThePointerOfABadValue) {
    json scenario = generate_scenario("smtp", 1);
    scenario["smtp"]["server"]["recipients_max"] = -1;
    const auto refused = load_scenario_json("fuzz/fuzz_smtp_1.json", scenario);
    ASSERT_TRUE(std::holds_alternative<std::string>(refused));
    EXPECT_NE(std::get<std::string>(refused).find("fuzz/fuzz_smtp_1.json: /smtp/server/recipients_max: "),
              std::string::npos)
        << std::get<std::string>(refused);
    scenario["smtp"]["server"]["recipients_max"] = 2;  // signed, as code builds it
    EXPECT_TRUE(
        std::holds_alternative<Scenario>(load_scenario_json("fuzz/fuzz_smtp_1.json", scenario)));
}

// Generated workloads stay bounded in work: a partial_send that cuts every send never makes a
// scenario take more than ~1,024 sends, and a peer never reads all of it in more than ~2,048
// reads (what made a few generated runs take most of a campaign).
TEST(FuzzGenerator, EverySendCutAndPeerReadIsBoundedByTheScenariosBytes) {
    for (std::uint64_t seed = 1; seed <= 2000; ++seed) {
        const json scenario = generate_scenario("send", seed);
        std::uint64_t bytes = 0;
        for (const json& thread : scenario["threads"]) {
            for (const json& step : thread["steps"]) {
                if (step["op"] == "send_all") {
                    bytes += step["bytes"].get<std::uint64_t>();
                } else if (step["op"] == "begin_send" && step.contains("size")) {
                    bytes += step["size"].get<std::uint64_t>();
                }
            }
        }
        for (const json& fault : scenario.value("faults", json::array())) {
            if (fault["kind"] == "partial_send" && !fault.contains("on_send")) {
                EXPECT_GT(fault["bytes"].get<std::uint64_t>() * 1024, bytes) << seed;
            }
        }
        if (scenario.contains("peer") && scenario["peer"].contains("read_chunk_bytes")) {
            EXPECT_GT(scenario["peer"]["read_chunk_bytes"].get<std::uint64_t>() * 2048, bytes)
                << seed;
        }
    }
    // SMTP: the message bodies (found by the campaign: a 650 kB body sent a byte at a time took
    // 2.6 million events, past the fuzzer's budget, a liveness failure that was not one).
    for (std::uint64_t seed = 1; seed <= 2000; ++seed) {
        const json scenario = generate_scenario("smtp", seed);
        std::uint64_t largest_body = 0;
        for (const json& step : scenario["threads"][0]["steps"]) {
            if (step.contains("mail")) {
                const json& mail = step["mail"];
                largest_body = std::max<std::uint64_t>(
                    largest_body,
                    mail["body"].get<std::string>().size() *
                        (mail.contains("body_repeat") ? mail["body_repeat"].get<std::uint64_t>()
                                                      : 1U));
            }
        }
        for (const json& fault : scenario.value("faults", json::array())) {
            if (fault["kind"] == "partial_send" && !fault.contains("on_send")) {
                EXPECT_GT(fault["bytes"].get<std::uint64_t>() * 1024, largest_body) << seed;
            }
        }
    }
}

TEST(FuzzPaths, CompletionPathsComeFromTheStepsObservation) {
    const auto paths_of = [](const Observation& observation) {
        CompletionPaths paths;
        add_completion_paths(observation, paths);
        return paths;
    };
    Observation synchronous;
    synchronous.completed_synchronously = true;
    EXPECT_EQ(paths_of(synchronous), CompletionPaths{"synchronous"});
    Observation pending;
    pending.completed_synchronously = false;
    EXPECT_EQ(paths_of(pending), CompletionPaths{"pending"});
    Observation no_completion_yet;
    no_completion_yet.completions = 0;
    EXPECT_EQ(paths_of(no_completion_yet), CompletionPaths{"pending"});
    Observation socket_error;
    socket_error.threw = "SocketException";
    EXPECT_EQ(paths_of(socket_error), CompletionPaths{"error"});
    Observation smtp_error;
    smtp_error.threw = "SmtpFailedRecipientException";
    EXPECT_EQ(paths_of(smtp_error), CompletionPaths{"error"});
    Observation argument_error;  // a usage error is not an error completion
    argument_error.threw = "ArgumentException";
    EXPECT_TRUE(paths_of(argument_error).empty());
    Observation completed_with_error;
    completed_with_error.send_error = "SmtpException";
    completed_with_error.cancelled = false;
    EXPECT_EQ(paths_of(completed_with_error), CompletionPaths{"error"});
    Observation completed_clean;
    completed_clean.send_error = "none";
    EXPECT_TRUE(paths_of(completed_clean).empty());
    Observation cancelled;
    cancelled.cancelled = true;
    cancelled.send_error = "none";
    EXPECT_EQ(paths_of(cancelled), CompletionPaths{"cancel"});
    Observation unknown;
    unknown.delivery = "unknown";
    EXPECT_EQ(paths_of(unknown), CompletionPaths{"unknown"});
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
            CompletionPaths paths;
            const RunOutcome outcome = run_scenario_json(scenario, profile, &paths);
            record_coverage(scenario, paths, coverage);
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

/// Runs `scenario`, which must fail with a planted "returns expected" expectation, and shrinks
/// it keeping that failure's signature. Returns the signature and what the shrinker did.
std::pair<std::string, ShrinkResult> shrink_planted_failure(const json& scenario) {
    const RunOutcome failed = run_scenario_json(scenario, "documented");
    EXPECT_EQ(failed.status, RunStatus::failed);
    std::string signature = failure_signature(failed);
    EXPECT_NE(signature.find("returns expected"), std::string::npos) << signature;
    ShrinkResult shrunk =
        shrink_scenario(scenario, "documented", [&signature](const RunOutcome& outcome) {
            return failure_signature(outcome) == signature;
        });
    return {std::move(signature), std::move(shrunk)};
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
    const auto [signature, shrunk] = shrink_planted_failure(scenario);
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

// Byte counts shrink whether the JSON holds them signed (as generators and code build them) or
// unsigned (as a parsed file does): a send_all of 1000 bytes that fails whatever it sends ends
// as a send_all of 1 byte.
TEST(FuzzSim, SignedAndUnsignedByteCountsBothShrink) {
    install_throwing_assert_handler();
    for (const bool from_text : {false, true}) {
        json scenario = {
            {"schema_version", 1},
            {"name", "shrink_counts"},
            {"description", "a send_all that must return 7"},
            {"clauses", json::array({"S-9"})},
            {"threads",
             json::array({{{"name", "t1"},
                           {"steps",
                            json::array({{{"op", "send_all"},
                                          {"id", "big"},
                                          {"bytes", 1000},
                                          {"expect", {{"returns", 7}}}}})}}})}};
        if (from_text) {
            scenario = json::parse(scenario.dump());
        }
        ASSERT_EQ(scenario["threads"][0]["steps"][0]["bytes"].is_number_unsigned(), from_text);
        const ShrinkResult shrunk = shrink_planted_failure(scenario).second;
        EXPECT_EQ(shrunk.scenario["threads"][0]["steps"][0]["bytes"], 1) << shrunk.scenario.dump();
    }
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
