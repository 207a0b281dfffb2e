// The timeline read from real sim traces: spans from Begin to completion, tracks per thread and
// connection end, segments as flows; and its Trace Event file.
#include "faultline/views/timeline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "faultline/conformance/run.h"
#include "faultline/conformance/scenario.h"

namespace faultline::views {
namespace {

std::vector<std::string> trace_of(const std::string& relative, const std::string& profile = "") {
    const auto path = std::filesystem::path(__FILE__).parent_path() / "../../../scenarios" / relative;
    auto loaded = conformance::load_scenario_file(path.string());
    const auto* scenario = std::get_if<conformance::Scenario>(&loaded);
    EXPECT_NE(scenario, nullptr) << relative;
    if (scenario == nullptr) {
        return {};
    }
    const auto outcome = conformance::run_on_sim(
        *scenario, profile.empty() ? scenario->profiles.front() : profile, std::nullopt);
    EXPECT_EQ(outcome.status, conformance::RunStatus::passed) << relative;
    return outcome.trace;
}

const Track* track_named(const Timeline& timeline, const std::string& name) {
    for (const Track& track : timeline.tracks) {
        if (track.name == name) {
            return &track;
        }
    }
    return nullptr;
}

const TimelineEvent* event_named(const Timeline& timeline, const std::string& name) {
    for (const TimelineEvent& event : timeline.events) {
        if (event.name == name) {
            return &event;
        }
    }
    return nullptr;
}

// M-5, M-32: SendAsync is a span on the calling thread that ends when SendCompleted fires.
TEST(Timeline, SmtpSendAsyncSpansFromTheCallToSendCompleted) {
    const Timeline timeline = timeline_from_trace(trace_of("smtp/m32_seed_example.json"));
    EXPECT_EQ(timeline.scenario, "m32_seed_example");
    EXPECT_EQ(timeline.profile, "documented");
    EXPECT_EQ(timeline.hash.size(), 16U);
    for (const char* name : {"main", "harness", "pool-1", "network", "conn 1 (client)",
                             "conn 2 (server)"}) {
        EXPECT_NE(track_named(timeline, name), nullptr) << name;
    }
    const TimelineEvent* send = event_named(timeline, "send_async client m");
    ASSERT_NE(send, nullptr);
    EXPECT_FALSE(send->instant);
    EXPECT_FALSE(send->unfinished);
    EXPECT_EQ(timeline.tracks[send->track].name, "main");
    const TimelineEvent* done = event_named(timeline, "SendCompleted client error=none");
    ASSERT_NE(done, nullptr);
    EXPECT_EQ(send->end_ns, done->start_ns);
    EXPECT_GT(send->end_ns, send->start_ns);
    // The greeting goes from the server end to the client end: a flow between their tracks.
    ASSERT_FALSE(timeline.flows.empty());
    const TimelineFlow& greeting = timeline.flows.front();
    EXPECT_EQ(timeline.tracks[greeting.from_track].name, "conn 2 (server)");
    EXPECT_EQ(timeline.tracks[greeting.to_track].name, "conn 1 (client)");
    EXPECT_EQ(greeting.name, "39 B");
    EXPECT_EQ(greeting.end_ns - greeting.start_ns, 50'000);  // the world's one-way latency
    EXPECT_TRUE(std::any_of(timeline.flows.begin(), timeline.flows.end(),
                            [](const TimelineFlow& flow) { return flow.name == "FIN"; }));
    EXPECT_TRUE(std::any_of(timeline.flows.begin(), timeline.flows.end(),
                            [](const TimelineFlow& flow) { return flow.name == "RST"; }));
}

// S-4, S-16: a send that completes inside BeginSend is a span of no length; the pending ones end
// at their callbacks, on the pool thread, when Dispose aborts them.
TEST(Timeline, BeginSendSpansEndAtTheirCallbacks) {
    const Timeline timeline =
        timeline_from_trace(trace_of("send/s16_dispose_while_send_pending.json"));
    const TimelineEvent* a = event_named(timeline, "begin_send a");
    const TimelineEvent* b = event_named(timeline, "begin_send b");
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(a->end_ns, a->start_ns);
    EXPECT_FALSE(b->unfinished);
    const TimelineEvent* b_done = event_named(timeline, "completed b");
    ASSERT_NE(b_done, nullptr);
    EXPECT_EQ(timeline.tracks[b_done->track].name, "pool-1");
    EXPECT_GE(b_done->seq, b->seq);
    const TimelineEvent* reset = event_named(timeline, "reset: connection reset by peer");
    ASSERT_NE(reset, nullptr);
    EXPECT_EQ(timeline.tracks[reset->track].name, "conn 2 (server)");
}

// A-2: AcceptAsync returning false completed synchronously (no Completed event follows): its
// span closes at the step's result; pending ones close at Completed.
TEST(Timeline, AcceptAsyncSpansCloseOnSynchronousResultOrCompleted) {
    const Timeline timeline = timeline_from_trace(trace_of("accept/a02_sync_vs_pending.json"));
    std::size_t accepts = 0;
    for (const TimelineEvent& event : timeline.events) {
        if (event.name.rfind("accept_async ", 0) == 0) {
            ++accepts;
            EXPECT_FALSE(event.instant);
            EXPECT_FALSE(event.unfinished) << event.name;
            EXPECT_GE(event.end_ns, event.start_ns);
        }
    }
    EXPECT_GE(accepts, 2U);
}

// A half-open scan and faults are instants; an operation never completed is marked unfinished.
TEST(Timeline, FaultsAreInstantsAndOpenOperationsAreUnfinished) {
    const Timeline timeline =
        timeline_from_trace(trace_of("accept/a20_half_open_scans_interleaved.json"));
    const TimelineEvent* scan = event_named(timeline, "fault half_open_scan");
    ASSERT_NE(scan, nullptr);
    EXPECT_TRUE(scan->instant);
    EXPECT_EQ(scan->category, "fault");
    EXPECT_EQ(timeline.tracks[scan->track].kind, TrackKind::network);

    const std::vector<std::string> cut = {
        R"({"t":0,"seq":0,"thread":"sim","ev":"spawn","name":"main","id":1})",
        R"({"t":5,"seq":1,"thread":"main","ev":"api","call":"begin_send","detail":"x"})",
        "not json at all",
        R"({"t":9,"seq":2,"thread":"main","ev":"thread_exit","name":"main"})",
    };
    const Timeline open = timeline_from_trace(cut);
    const TimelineEvent* x = event_named(open, "begin_send x");
    ASSERT_NE(x, nullptr);
    EXPECT_TRUE(x->unfinished);
    EXPECT_EQ(x->end_ns, 9);
    EXPECT_TRUE(timeline_from_trace({}).events.empty());
}

// The Trace Event file: valid JSON, every track named, spans with durations, flows paired,
// microsecond timestamps from virtual time, and the same bytes for the same trace.
TEST(Timeline, ChromeTraceIsWellFormedAndDeterministic) {
    const auto trace = trace_of("smtp/m32_seed_example.json");
    const std::string text = chrome_trace_json(timeline_from_trace(trace));
    EXPECT_EQ(text, chrome_trace_json(timeline_from_trace(trace)));
    const auto document = nlohmann::json::parse(text);
    ASSERT_TRUE(document.contains("traceEvents"));
    std::set<std::pair<int, int>> named;
    std::set<std::pair<int, int>> used;
    std::map<int, int> flow_ends;
    bool send_span = false;
    for (const auto& event : document.at("traceEvents")) {
        const std::string ph = event.at("ph").get<std::string>();
        const std::pair<int, int> where{event.at("pid").get<int>(), event.at("tid").get<int>()};
        if (ph == "M") {
            if (event.at("name") == "thread_name") {
                named.insert(where);
            }
            continue;
        }
        used.insert(where);
        ASSERT_TRUE(event.at("ts").is_number());
        EXPECT_GE(event.at("ts").get<double>(), 0.0);
        if (ph == "X") {
            EXPECT_GE(event.at("dur").get<double>(), 0.0);
            if (event.at("name") == "send_async client m") {
                send_span = true;
                EXPECT_DOUBLE_EQ(event.at("dur").get<double>(), 700.0);  // 0.7 ms virtual
            }
        } else if (ph == "s" || ph == "f") {
            flow_ends[event.at("id").get<int>()] += ph == "s" ? 1 : 10;
        } else {
            EXPECT_EQ(ph, "i");
        }
    }
    EXPECT_TRUE(send_span);
    for (const auto& where : used) {
        EXPECT_TRUE(named.count(where) == 1) << where.first << "/" << where.second;
    }
    ASSERT_FALSE(flow_ends.empty());
    for (const auto& [id, ends] : flow_ends) {
        EXPECT_EQ(ends, 11) << "flow " << id;
    }
}

}  // namespace
}  // namespace faultline::views
