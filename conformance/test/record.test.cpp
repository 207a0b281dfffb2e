// Goal: record and replay from the real network. A scenario run on real loopback with a recording
// becomes a sim scenario (the kernel's partial sends as faults, every observation and the
// completion order and thread interleaving as "recorded") that loads, and replays on sim with the
// same observable outcome; for send, accept and SMTP. A replay that observes something else is
// reported as a divergence, so the replay check can fail.
// Method: record shipped scenarios on loopback (RecordReal: real sockets), read the written files
// back, replay them; hand-write recordings on sim to prove divergence reports and that a recorded
// schedule reorders threads (RecordSim).
#include "faultline/conformance/record.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <variant>

#include "faultline/conformance/run.h"
#include "faultline/conformance/scenario.h"

namespace faultline::conformance {
namespace {

using json = nlohmann::ordered_json;

std::string temp_dir(const std::string& leaf) {
    const std::filesystem::path dir =
        std::filesystem::path(::testing::TempDir()) / "faultline_record" / leaf;
    std::filesystem::create_directories(dir);
    return dir.string();
}

Scenario load(const std::string& path) {
    LoadResult loaded = load_scenario_file(path);
    if (const auto* error = std::get_if<std::string>(&loaded)) {
        ADD_FAILURE() << *error;
        return {};
    }
    return std::get<Scenario>(std::move(loaded));
}

json read_json(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return json::parse(text.str());
}

std::string joined(const std::vector<std::string>& lines) {
    std::string text;
    for (const std::string& line : lines) {
        text += "\n  " + line;
    }
    return text;
}

/// Records `relative` (under scenarios/) on real, checks the written file and its replay.
json record_and_check(const std::string& relative, const std::string& profile) {
    const Scenario scenario = load(std::string(FAULTLINE_SCENARIO_DIR) + "/" + relative);
    const std::string out = temp_dir("real") + "/" + scenario.name + "_recorded.json";
    const RecordedRun run = record_and_replay(scenario, profile, out);
    EXPECT_EQ(run.real.status, RunStatus::passed) << relative << joined(run.real.failures);
    EXPECT_EQ(run.error, "");
    EXPECT_EQ(run.written, out);
    EXPECT_EQ(run.replay.status, RunStatus::passed)
        << relative << " replay on sim:" << joined(run.replay.failures);
    const json recorded = read_json(out);
    // Every step the real run took is in the recording, each as an exact expectation.
    std::size_t steps = 0;
    for (const ThreadSpec& thread : scenario.threads) {
        steps += thread.steps.size();
        for (const Step& step : thread.steps) {
            EXPECT_TRUE(recorded["recorded"]["steps"].contains(step.pointer))
                << relative << " " << step.pointer;
        }
    }
    EXPECT_GE(recorded["recorded"]["steps"].size(), steps);
    EXPECT_EQ(recorded["recorded"]["profile"], profile);
    EXPECT_EQ(recorded["profiles"], json::array({profile}));
    return recorded;
}

std::size_t faults_of_kind(const json& scenario, const std::string& kind) {
    std::size_t count = 0;
    if (scenario.contains("faults")) {
        for (const json& fault : scenario["faults"]) {
            count += fault["kind"] == kind ? 1U : 0U;
        }
    }
    return count;
}

// S-9, S-21: the peer never reads, so a 48 MiB BeginSend is more than loopback's buffers hold:
// the kernel takes part of it (under documented the send completes with that count), and the
// next BeginSend's immediate attempt finds no room, so it goes pending. The recording names the
// kernel's cut as a partial_send fault and the full buffer as a would_block fault before the
// end's second taking call (the source has neither), and the replay takes the same paths. (A
// peer that reads while the sends run would make later completion paths depend on timing that
// step-level recording does not capture.)
TEST(RecordReal, SendKernelCutAndFullBufferBecomeFaultsAndReplayOnSim_S9_S21) {
    const std::string dir = temp_dir("full_buffer");
    const std::string source = dir + "/full_buffer.json";
    {
        std::ofstream out(source);
        out << json{{"schema_version", 1},
                    {"name", "full_buffer"},
                    {"clauses", json::array({"S-21"})},
                    {"profiles", json::array({"documented"})},
                    {"peer", {{"read", false}}},
                    {"threads",
                     json::array(
                         {json{{"name", "main"},
                               {"steps",
                                json::array(
                                    {json{{"op", "begin_send"},
                                          {"id", "a"},
                                          {"size", 50331648},
                                          {"expect", {{"completed_synchronously", true}}}},
                                     json{{"op", "begin_send"},
                                          {"id", "b"},
                                          {"size", 1000},
                                          {"expect", {{"completed_synchronously", false}}}}})}}})}}
                   .dump();
    }
    const Scenario scenario = load(source);
    const RecordedRun run =
        record_and_replay(scenario, "documented", dir + "/full_buffer_rec.json");
    ASSERT_EQ(run.real.status, RunStatus::passed) << joined(run.real.failures);
    ASSERT_EQ(run.error, "");
    EXPECT_EQ(run.replay.status, RunStatus::passed) << joined(run.replay.failures);
    const json recorded = read_json(run.written);
    ASSERT_EQ(faults_of_kind(recorded, "partial_send"), 1U) << recorded["faults"].dump();
    EXPECT_EQ(recorded["faults"][0]["on_send"], 1);
    EXPECT_EQ(recorded["recorded"]["steps"]["/threads/0/steps/0"]["completed_synchronously"], true);
    ASSERT_EQ(faults_of_kind(recorded, "would_block"), 1U) << recorded["faults"].dump();
    for (const json& fault : recorded["faults"]) {
        if (fault["kind"] == "would_block") {
            EXPECT_EQ(fault["on_send"], 2);
            EXPECT_EQ(fault["side"], "client");
        }
    }
}

// S-9: scripted partial sends are recorded as the seam saw them, one fault per cut call.
TEST(RecordReal, SendScriptedPartialSendsReplayOnSim_S9) {
    const json recorded = record_and_check("send/s09b_every_send_partial.json", "dotnet-unix");
    EXPECT_GE(faults_of_kind(recorded, "partial_send"), 2U);
}

// A-6, the listener disposed from another thread: two threads, so the recording carries the
// order their steps started and ended, and the replay on sim follows it.
TEST(RecordReal, AcceptTwoThreadsReplayInTheRecordedInterleaving) {
    const json recorded =
        record_and_check("accept/a28_listener_disposed_from_other_thread.json", "documented");
    ASSERT_TRUE(recorded["recorded"].contains("schedule"));
    EXPECT_GE(recorded["recorded"]["schedule"].size(), 4U);
}

TEST(RecordReal, AcceptSuccessResultFieldsReplayOnSim_A4) {
    static_cast<void>(record_and_check("accept/a04_success_result_fields.json", "dotnet-unix"));
}

// M-32: the seed's SendAsync example. On loopback the whole transaction can finish before
// SendAsync's caller looks; the recording keeps how many SendCompleted events it saw, and the
// replay waits for as many before it looks.
TEST(RecordReal, SmtpSeedExampleReplaysOnSim_M32_M5) {
    const json recorded = record_and_check("smtp/m32_seed_example.json", "documented");
    EXPECT_EQ(recorded["recorded"]["steps"]["/threads/0/steps/2"]["delivery"], "delivered");
}

TEST(RecordReal, SmtpNextSendAfterCompletionReplaysOnSim_M7) {
    static_cast<void>(record_and_check("smtp/m07_next_send_after_completion.json", "dotnet-unix"));
}

// A scenario the real transport cannot run is not recorded, and says why.
TEST(RecordReal, NotApplicableOnRealWritesNothing) {
    const Scenario scenario =
        load(std::string(FAULTLINE_SCENARIO_DIR) + "/send/s30_latency_jitter_bandwidth.json");
    const std::string out = temp_dir("real") + "/never_written.json";
    std::filesystem::remove(out);
    const RecordedRun run = record_and_replay(scenario, "documented", out);
    EXPECT_EQ(run.real.status, RunStatus::not_applicable);
    EXPECT_EQ(run.written, "");
    EXPECT_FALSE(std::filesystem::exists(out));
}

// ---- on sim only: the replay checks can fail ------------------------------------------------

/// A one-thread scenario that sends 100 bytes, with a recording.
json recorded_send(const json& recorded) {
    return json{
        {"schema_version", 1},
        {"name", "recorded_send"},
        {"clauses", json::array({"S-9"})},
        {"profiles", json::array({"documented"})},
        {"threads",
         json::array({json{{"name", "main"},
                           {"steps", json::array({json{{"op", "send_all"}, {"bytes", 100}}})}}})},
        {"recorded", recorded}};
}

RunOutcome run_text(const json& scenario) {
    LoadResult loaded =
        load_scenario_text(scenario["name"].get<std::string>() + ".json", scenario.dump());
    if (const auto* error = std::get_if<std::string>(&loaded)) {
        ADD_FAILURE() << *error;
        return {};
    }
    return run_on_sim(std::get<Scenario>(loaded), "documented");
}

TEST(RecordSim, AReplayThatObservesWhatWasRecordedPasses) {
    const RunOutcome outcome = run_text(recorded_send(
        {{"profile", "documented"},
         {"steps", {{"/threads/0/steps/0", {{"throws", "none"}, {"returns", 100}}}}}}));
    EXPECT_EQ(outcome.status, RunStatus::passed) << joined(outcome.failures);
}

TEST(RecordSim, AReplayThatObservesSomethingElseReportsTheDivergence) {
    const RunOutcome outcome = run_text(recorded_send(
        {{"profile", "documented"},
         {"steps", {{"/threads/0/steps/0", {{"throws", "none"}, {"returns", 99}}}}}}));
    ASSERT_EQ(outcome.status, RunStatus::failed);
    ASSERT_EQ(outcome.failures.size(), 1U) << joined(outcome.failures);
    EXPECT_NE(outcome.failures.front().find(
                  "/threads/0/steps/0: diverges from the recorded real run: returns expected 99"),
              std::string::npos)
        << outcome.failures.front();
}

TEST(RecordSim, ACompletionOrderThatDiffersIsReported) {
    json scenario = recorded_send({{"profile", "documented"},
                                   {"steps", json::object()},
                                   {"completion_order", json::array({"x"})}});
    scenario["threads"][0]["steps"][0] = {{"op", "begin_send"}, {"id", "s"}, {"size", 10}};
    const RunOutcome outcome = run_text(scenario);
    ASSERT_EQ(outcome.status, RunStatus::failed);
    EXPECT_NE(joined(outcome.failures).find("at completion 1: recorded \"x\", this run \"s\""),
              std::string::npos)
        << joined(outcome.failures);
}

TEST(RecordSim, ARecordingUnderAnotherProfileIsNotChecked) {
    json scenario =
        recorded_send({{"profile", "documented"},
                       {"steps", {{"/threads/0/steps/0", {{"throws", "none"}, {"returns", 99}}}}}});
    scenario["profiles"] = json::array({"documented", "dotnet-unix"});
    LoadResult loaded = load_scenario_text("recorded_send.json", scenario.dump());
    ASSERT_TRUE(std::holds_alternative<Scenario>(loaded));
    EXPECT_EQ(run_on_sim(std::get<Scenario>(loaded), "dotnet-unix").status, RunStatus::passed);
}

// Two threads: `closer` disposes the socket, `sender` sends. The recorded schedule says the
// dispose ended before the send started, so the replay holds the sender back and its send sees
// a disposed socket (ObjectDisposedException); with the other schedule the send succeeds.
json two_threads(const json& schedule) {
    json scenario = {
        {"schema_version", 1},
        {"name", "two_threads"},
        {"clauses", json::array({"S-5"})},
        {"profiles", json::array({"documented"})},
        {"threads",
         json::array(
             {json{{"name", "sender"},
                   {"steps",
                    json::array({json{
                        {"op", "send_all"}, {"bytes", 10}, {"expect", {{"throws", "any"}}}}})}},
              json{
                  {"name", "closer"},
                  {"steps",
                   json::array({json{{"op", "sleep"}, {"ns", 1000}}, json{{"op", "dispose"}}})}}})},
        {"recorded",
         {{"profile", "documented"}, {"steps", json::object()}, {"schedule", schedule}}}};
    return scenario;
}

TEST(RecordSim, ARecordedScheduleReordersThreadsOnReplay) {
    // As recorded: the closer slept and disposed before the sender started.
    json disposed_first = two_threads(json::array({"+/threads/1/steps/0",
                                                   "-/threads/1/steps/0",
                                                   "+/threads/1/steps/1",
                                                   "-/threads/1/steps/1",
                                                   "+/threads/0/steps/0",
                                                   "-/threads/0/steps/0"}));
    disposed_first["recorded"]["steps"]["/threads/0/steps/0"] = {
        {"throws", "ObjectDisposedException"}};
    const RunOutcome held = run_text(disposed_first);
    EXPECT_EQ(held.status, RunStatus::passed) << joined(held.failures);

    // Without the schedule sim runs the sender first: the send succeeds, which the same
    // recorded observation reports as a divergence.
    json unscheduled = disposed_first;
    unscheduled["recorded"].erase("schedule");
    const RunOutcome free_run = run_text(unscheduled);
    EXPECT_EQ(free_run.status, RunStatus::failed);
}

// S-4, S-21: a would_block fault sends an immediate attempt down the pending path once; the
// send still completes, later, with every byte.
TEST(RecordSim, AWouldBlockFaultMakesThatSendPending_S4_S21) {
    json scenario = recorded_send({{"profile", "documented"}, {"steps", json::object()}});
    scenario.erase("recorded");
    scenario["threads"][0]["steps"] = json::array(
        {json{{"op", "begin_send"},
              {"id", "a"},
              {"size", 10},
              {"expect", {{"completed_synchronously", true}}}},
         json{{"op", "begin_send"},
              {"id", "b"},
              {"size", 10},
              {"callback", "end"},
              {"expect", {{"completed_synchronously", false}, {"callback_before_return", false}}},
              {"callback_expect", {{"returns", 10}}}},
         json{{"op", "wait_completed"}, {"target", "b"}}});
    scenario["faults"] =
        json::array({json{{"kind", "would_block"}, {"side", "client"}, {"on_send", 2}}});
    scenario["expect"] = {{"peer_received_bytes", 20}};
    const RunOutcome outcome = run_text(scenario);
    EXPECT_EQ(outcome.status, RunStatus::passed) << joined(outcome.failures);

    scenario["faults"][0].erase("on_send");
    const LoadResult loaded = load_scenario_text("recorded_send.json", scenario.dump());
    ASSERT_TRUE(std::holds_alternative<std::string>(loaded));
    EXPECT_NE(std::get<std::string>(loaded).find("would_block needs \"on_send\""),
              std::string::npos);
}

TEST(RecordSim, TheLoaderChecksTheRecordedSection) {
    json bad_pointer = recorded_send(
        {{"profile", "documented"}, {"steps", {{"/threads/0/steps/5", {{"throws", "none"}}}}}});
    const LoadResult a = load_scenario_text("recorded_send.json", bad_pointer.dump());
    ASSERT_TRUE(std::holds_alternative<std::string>(a));
    EXPECT_NE(std::get<std::string>(a).find("no step at /threads/0/steps/5"), std::string::npos);

    json bad_profile = recorded_send({{"profile", "dotnet-unix"}, {"steps", json::object()}});
    const LoadResult b = load_scenario_text("recorded_send.json", bad_profile.dump());
    ASSERT_TRUE(std::holds_alternative<std::string>(b));
    EXPECT_NE(std::get<std::string>(b).find("/recorded/profile"), std::string::npos);

    json bad_event = two_threads(json::array({"*/threads/0/steps/0"}));
    const LoadResult c = load_scenario_text("two_threads.json", bad_event.dump());
    ASSERT_TRUE(std::holds_alternative<std::string>(c));
    EXPECT_NE(std::get<std::string>(c).find("/recorded/schedule/0"), std::string::npos);
}

TEST(RecordSim, ExpectationJsonMatchesItsObservationExactly) {
    Observation observation;
    observation.threw = "SocketException";
    observation.socket_error = model::SocketError::ConnectionReset;
    observation.error_code = 10054;
    observation.connected = false;
    observation.message = std::string(2000, 'm');
    const json expectation = expectation_json(observation);
    EXPECT_EQ(expectation["throws"], "SocketException");
    EXPECT_EQ(expectation["socket_error"], "ConnectionReset");
    EXPECT_EQ(expectation["message_contains"].get<std::string>().size(), 1024U);
    LoadResult loaded = load_scenario_text(
        "recorded_send.json",
        recorded_send({{"profile", "documented"}, {"steps", {{"/threads/0/steps/0", expectation}}}})
            .dump());
    ASSERT_TRUE(std::holds_alternative<Scenario>(loaded)) << std::get<std::string>(loaded);
    const Expectation& parsed = std::get<Scenario>(loaded).recorded->steps.at("/threads/0/steps/0");
    EXPECT_EQ(mismatch(parsed, observation), "");
    observation.connected = true;
    EXPECT_NE(mismatch(parsed, observation), "");
}

}  // namespace
}  // namespace faultline::conformance
