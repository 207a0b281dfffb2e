// Goal: the results file survives a round trip and rejects what is not one, and the HTML report
// is self-contained, escapes what it draws, is the same bytes for the same runs, stays bounded
// on huge traces and draws a sequence diagram and a timeline for every failure.
// Method: real sim traces from scenarios/ (run through the conformance library) dressed up as
// failed runs, hand-written hostile documents and runs, and a synthetic 120,000-line trace. The
// page as Chromium renders it is checked by tools/test_report.sh.
#include "faultline/views/report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "faultline/conformance/run.h"
#include "faultline/conformance/scenario.h"

namespace faultline::views {
namespace {

using nlohmann::json;

std::size_t count_of(const std::string& text, const std::string& needle) {
    std::size_t count = 0;
    for (std::size_t at = text.find(needle); at != std::string::npos;
         at = text.find(needle, at + 1)) {
        ++count;
    }
    return count;
}

/// A scenario from scenarios/ run on sim, as the failed run a report would show.
ReportRun failed_run(const std::string& relative, const std::vector<std::string>& failures) {
    const auto path =
        std::filesystem::path(__FILE__).parent_path() / "../../../scenarios" / relative;
    auto loaded = conformance::load_scenario_file(path.string());
    const auto* scenario = std::get_if<conformance::Scenario>(&loaded);
    EXPECT_NE(scenario, nullptr) << relative;
    if (scenario == nullptr) {
        return {};
    }
    const auto outcome =
        conformance::run_on_sim(*scenario, scenario->profiles.front(), std::nullopt);
    EXPECT_EQ(outcome.status, conformance::RunStatus::passed) << relative;
    ReportRun run;
    run.scenario = outcome.scenario;
    run.path = "scenarios/" + relative;
    run.description = "from " + relative;
    run.clauses = {"S-9", "M-27"};
    run.transport = "sim";
    run.profile = outcome.profile;
    run.seed = outcome.seed;
    run.status = "failed";
    run.failures = failures;
    run.replay = conformance::replay_command(outcome);
    run.trace_hash = outcome.trace_hash;
    run.events = outcome.events;
    run.virtual_ns = outcome.virtual_ns;
    run.wall_ms = outcome.wall_ms;
    run.trace = outcome.trace;
    EXPECT_FALSE(run.trace.empty()) << relative;
    return run;
}

ReportRun simple_run(const std::string& name,
                     const std::string& transport,
                     const std::string& profile,
                     const std::string& status,
                     std::vector<std::string> clauses = {"S-1"}) {
    ReportRun run;
    run.scenario = name;
    run.path = "scenarios/send/" + name + ".json";
    run.clauses = std::move(clauses);
    run.transport = transport;
    run.profile = profile;
    run.seed = 1;
    run.status = status;
    if (status == "not_applicable") {
        run.reason = "unreachable and silent hosts exist only on the simulated network";
    }
    return run;
}

std::variant<std::vector<ReportRun>, std::string> through_text(const std::vector<ReportRun>& runs) {
    return results_from_json(json::parse(results_to_json(runs).dump()));
}

TEST(Report, ResultsRoundTrip) {
    std::vector<ReportRun> runs = {
        failed_run("send/s09_partial_completion.json", {"/threads/0/steps/1: no"}),
        simple_run("s01", "real", "dotnet-unix", "passed"),
        simple_run("s12d", "real", "documented", "not_applicable", {})};
    runs[1].seed = 18'446'744'073'709'551'615ULL;
    runs[1].virtual_ns = -5;
    runs[1].wall_ms = 1.0 / 3.0;
    runs[1].description = "ünïcødé \"quoted\" \t tab";
    const auto back = through_text(runs);
    ASSERT_TRUE(std::holds_alternative<std::vector<ReportRun>>(back))
        << std::get<std::string>(back);
    EXPECT_EQ(std::get<std::vector<ReportRun>>(back), runs);
    EXPECT_EQ(results_to_json(runs).at("faultline_results"), 1);

    const auto empty = through_text({});
    ASSERT_TRUE(std::holds_alternative<std::vector<ReportRun>>(empty));
    EXPECT_TRUE(std::get<std::vector<ReportRun>>(empty).empty());
}

TEST(Report, MalformedResultsGiveErrorsNamingWhatIsWrong) {
    const json good_run =
        results_to_json({simple_run("s01", "sim", "documented", "passed")}).at("runs").at(0);
    const auto with = [&](const char* key, const json& value) {
        json run = good_run;
        run[key] = value;
        return json{{"faultline_results", 1}, {"runs", {run}}};
    };
    const auto without = [&](const char* key) {
        json run = good_run;
        run.erase(key);
        return json{{"faultline_results", 1}, {"runs", {run}}};
    };
    const std::vector<std::pair<json, std::string>> cases = {
        {json::array(), "JSON object, got array"},
        {json("results"), "JSON object, got string"},
        {json(nullptr), "JSON object, got null"},
        {json::object(), "missing \"faultline_results\""},
        {json{{"faultline_results", 2}, {"runs", json::array()}}, "unsupported results version 2"},
        {json{{"faultline_results", -1}, {"runs", json::array()}},
         "unsupported results version -1"},
        {json{{"faultline_results", "1"}, {"runs", json::array()}},
         "expected the version number, got string"},
        {json{{"faultline_results", 1.5}, {"runs", json::array()}},
         "expected the version number, got number"},
        {json{{"faultline_results", 1}}, "missing field \"runs\""},
        {json{{"faultline_results", 1}, {"runs", json::object()}},
         "\"runs\": expected an array, got object"},
        {json{{"faultline_results", 1}, {"runs", {1}}}, "runs[0]: expected an object, got number"},
        {without("scenario"), "runs[0]: missing field \"scenario\""},
        {without("status"), "runs[0]: missing field \"status\""},
        {without("seed"), "runs[0]: missing field \"seed\""},
        {with("seed", "1"), "runs[0].seed: expected a non-negative integer, got string"},
        {with("seed", -1), "runs[0].seed: expected a non-negative integer, got -1"},
        {with("seed", 1.5), "runs[0].seed: expected a non-negative integer, got 1.5"},
        {with("status", "flaky"),
         "runs[0].status: expected \"passed\", \"failed\" or \"not_applicable\""},
        {with("profile", json::array()), "runs[0].profile: expected a string, got array"},
        {with("clauses", "S-1"), "runs[0].clauses: expected an array of strings, got string"},
        {with("failures", json{"ok", 7}), "runs[0].failures[1]: expected a string, got number"},
        {with("trace", json{nullptr}), "runs[0].trace[0]: expected a string, got null"},
        {with("events", -3), "runs[0].events: expected a non-negative integer, got -3"},
        {with("virtual_ns", 18'446'744'073'709'551'615ULL),
         "runs[0].virtual_ns: expected a 64-bit integer"},
        {with("virtual_ns", "soon"), "runs[0].virtual_ns: expected a 64-bit integer, got string"},
        {with("wall_ms", true), "runs[0].wall_ms: expected a number, got boolean"},
    };
    for (const auto& [document, expected] : cases) {
        const auto result = results_from_json(document);
        ASSERT_TRUE(std::holds_alternative<std::string>(result)) << document.dump();
        EXPECT_NE(std::get<std::string>(result).find(expected), std::string::npos)
            << document.dump() << "\n  gave: " << std::get<std::string>(result)
            << "\n  wanted: " << expected;
    }
    // A later version's extra fields in a run are ignored, not an error.
    const auto extra = results_from_json(with("flakiness", 0.5));
    EXPECT_TRUE(std::holds_alternative<std::vector<ReportRun>>(extra));
}

TEST(Report, HostileRunsAndTracesRenderWithoutCrashing) {
    // Deep nesting stays in the document (nothing here dumps it); garbage lines, wrong types,
    // huge and negative numbers and malformed UTF-8 in a trace are drawn or skipped.
    json deep = json::array();
    for (int depth = 0; depth < 5000; ++depth) {
        deep = json::array({deep});
    }
    json document = {{"faultline_results", 1}, {"runs", {{{"scenario", deep}}}}};
    const auto nested = results_from_json(document);
    ASSERT_TRUE(std::holds_alternative<std::string>(nested));
    EXPECT_NE(std::get<std::string>(nested).find("runs[0].scenario"), std::string::npos);

    ReportRun run = simple_run("hostile", "sim", "documented", "failed");
    run.scenario =
        std::string("bad \xC3\x28 utf8 \xFF\xFE and \x01 control \xED\xA0\x80 surrogate");
    run.failures = {"", std::string(100'000, 'x'), "\xF4\x90\x80\x80 beyond U+10FFFF"};
    run.virtual_ns = std::numeric_limits<std::int64_t>::min();
    run.trace = {
        "not json",
        "",
        "[1,2,3]",
        R"({"t":"soon","seq":-4,"thread":7,"ev":"segment","from":{"a":[1]},"to":null,)"
        R"("bytes":1e300})",
        R"({"t":9223372036854775807,"seq":1,"thread":"main","ev":"api","call":"completed",)"
        R"("detail":"never begun"})",
        R"({"t":-50,"seq":2,"thread":"main","ev":"api","call":"step_result"})",
        R"({"t":18446744073709551615,"seq":3,"thread":"","ev":"fault"})",
        R"({"t":1,"seq":4,"thread":"sim","ev":"rst"})",
        R"({"t":2,"seq":5,"thread":"main","ev":"send","conn":"x y","bytes":"many","asked":[]})",
        R"({"t":3,"seq":6,"thread":"main","ev":"api","call":"begin_send","detail":""})",
        R"({"t":3,"seq":7,"thread":"main","ev":"api","call":"step_result",)"
        R"("detail":"/threads/0/steps/99999999999999999999999"})",
        R"({"t":4,"seq":8,"ev":"brand_new_event","payload":{"nested":[[[[]]]]}})",
        "{\"t\":5,\"seq\":9,\"thread\":\"main\",\"ev\":\"api\",\"call\":\"x\",\"detail\":"
        "\"\\u0000\\u001f\"}",
        R"({"ev":"end","events":10,"hash":"<b>"})",
    };
    // A line nested deeper than printing it recursively could survive.
    run.trace.insert(run.trace.begin(),
                     R"({"t":1,"ev":"fault","kind":)" + std::string(200'000, '[') +
                         std::string(200'000, ']') + "}");
    ReportRun no_trace = simple_run("no_trace", "real", "documented", "failed");
    ReportRun unknown = simple_run("weird",
                                   "carrier-pigeon",
                                   "",
                                   "passed",
                                   {"", "-", "S-", "S-x", "Z-99999999999999999999999"});
    const std::string html = render_report_html({run, no_trace, unknown});
    EXPECT_EQ(html.rfind("</html>\n"), html.size() - 8);
    EXPECT_EQ(count_of(html, "<svg class=\"seq\""), 1U);
    EXPECT_NE(html.find("No trace was recorded"), std::string::npos);
    EXPECT_NE(html.find("1 trace line longer than 16,384 bytes is left out"), std::string::npos);
    // Every byte of the page is valid UTF-8 and no C0 control other than tab and newline.
    EXPECT_EQ(html.find('\x01'), std::string::npos);
    EXPECT_EQ(html.find('\0'), std::string::npos);
    EXPECT_EQ(html.find("\xFF"), std::string::npos);
    EXPECT_EQ(html.find("\xED\xA0\x80"), std::string::npos);
    EXPECT_NO_THROW(static_cast<void>(json(html).dump()));  // dump throws on invalid UTF-8
}

TEST(Report, EscapesEveryStringFromResultsAndTraces) {
    ReportRun run = failed_run("send/s16_dispose_while_send_pending.json",
                               {"<script>alert(\"failure\")</script> & 'quotes'"});
    run.scenario = "<img src=x onerror=alert(1)>";
    run.description = "\"><svg onload=alert(2)>";
    run.replay = "./faultline replay '</code></pre><script>alert(3)</script>'";
    run.clauses = {"<b>S-1</b>"};
    run.profile = "docu\"mented";
    run.trace.insert(run.trace.end() - 1,
                     R"({"t":150000,"seq":99,"thread":"<script>","ev":"api","call":"begin_send",)"
                     R"("detail":"<script>alert(4)</script>"})");
    const std::string html = render_report_html({run});
    EXPECT_EQ(html.find("<script>alert"), std::string::npos);
    EXPECT_EQ(html.find("<img"), std::string::npos);
    EXPECT_EQ(html.find("<svg onload"), std::string::npos);
    EXPECT_EQ(html.find("<b>S-1"), std::string::npos);
    EXPECT_NE(
        html.find("&lt;script&gt;alert(&quot;failure&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;"),
        std::string::npos);
    EXPECT_NE(html.find("&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
    EXPECT_NE(html.find("&lt;script&gt;alert(4)&lt;/script&gt;"), std::string::npos);
    EXPECT_NE(html.find("docu&quot;mented"), std::string::npos);
    // Only the page's own two scripts: the error hook and the render check.
    EXPECT_EQ(count_of(html, "<script"), 2U);
}

TEST(Report, EveryFailureHasBothDiagramsAndNothingIsFetched) {
    std::vector<ReportRun> runs = {
        failed_run("smtp/m32_seed_example.json",
                   {"/threads/0/steps/2/expect/delivery: expected unknown"}),
        failed_run("send/s16_dispose_while_send_pending.json",
                   {"/threads/0/steps/6: expected no exception"}),
        failed_run("send/s09_partial_completion.json",
                   {"/threads/0/steps/1/expect/returns: expected 100, got 17"}),
        failed_run("accept/a03_burst_drained_synchronously.json", {"/: planted"}),
        simple_run("s01", "sim", "documented", "passed"),
        simple_run("s12d", "real", "documented", "not_applicable"),
    };
    runs[2].transport = "real";  // a failed real run shows the sim run of the same scenario
    const std::string html = render_report_html(runs);
    EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0U);
    EXPECT_NE(html.find("<meta charset=\"utf-8\">"), std::string::npos);
    EXPECT_EQ(count_of(html, "<section class=\"failure\""), 4U);
    EXPECT_EQ(count_of(html, "<svg class=\"seq\""), 4U);
    EXPECT_EQ(count_of(html, "<svg class=\"timeline\""), 4U);
    for (const char* id :
         {"id=\"failure-1\"", "id=\"failure-2\"", "id=\"failure-3\"", "id=\"failure-4\""}) {
        EXPECT_NE(html.find(id), std::string::npos) << id;
    }
    EXPECT_NE(html.find("<code>./faultline replay "), std::string::npos);
    EXPECT_NE(html.find("s16_dispose_while_send_pending.json --profile documented --seed 1</code>"),
              std::string::npos);
    // What the diagrams must show: calls with their results, partial sends, segments, FIN, RST,
    // faults, callbacks and SendCompleted.
    for (const char* label : {"begin_send s1<",
                              "end_send s1 \xE2\x86\x92 returns=17",
                              "send 17 of 100 B (partial)",
                              ">39 B<",
                              ">FIN<",
                              ">RST<",
                              "fault partial_send",
                              "callback b",
                              "SendCompleted client error=none",
                              "step 5 \xE2\x86\x92 connected=false pending=false",
                              "the simulated run of the same scenario"}) {
        EXPECT_NE(html.find(label), std::string::npos) << label;
    }
    // The step a failure message points at is marked.
    EXPECT_NE(html.find("class=\"r step failed\""), std::string::npos);
    // Self-contained: no URL a browser would fetch, not even the SVG namespace.
    EXPECT_EQ(html.find("http://"), std::string::npos);
    EXPECT_EQ(html.find("https://"), std::string::npos);
    EXPECT_EQ(html.find("src="), std::string::npos);
    EXPECT_EQ(html.find("url("), std::string::npos);
    EXPECT_EQ(html.find("@import"), std::string::npos);
    // Every link stays on the page (no <regex>: GCC 12 under ASan warns inside it).
    const std::string href = "href=\"";
    for (auto at = html.find(href); at != std::string::npos; at = html.find(href, at + 1)) {
        const auto begin = at + href.size();
        const std::string target = html.substr(begin, html.find('"', begin) - begin);
        EXPECT_TRUE(target.rfind('#', 0) == 0 || target == "data:,") << target;
    }
    // The render check the Chromium test reads.
    EXPECT_NE(html.find("body.dataset.rendered"), std::string::npos);
    EXPECT_NE(html.find("window.onerror"), std::string::npos);
}

TEST(Report, SameRunsGiveTheSameBytesInAnyOrder) {
    std::vector<ReportRun> runs = {
        failed_run("send/s09_partial_completion.json", {"/threads/0/steps/1: x"}),
        failed_run("smtp/m32_seed_example.json", {"/threads/0/steps/2: y"}),
        simple_run("s01", "sim", "documented", "passed"),
        simple_run("s01", "real", "documented", "passed"),
        simple_run("s12d", "real", "dotnet-unix", "not_applicable"),
    };
    const std::string first = render_report_html(runs);
    EXPECT_EQ(render_report_html(runs), first);
    std::reverse(runs.begin(), runs.end());
    EXPECT_EQ(render_report_html(runs), first);
    std::rotate(runs.begin(), runs.begin() + 2, runs.end());
    EXPECT_EQ(render_report_html(runs), first);
}

TEST(Report, HugeTracesAreCappedAndSaySo) {
    // A long swarm-like run: 40,000 round trips of segment and read, a fault and a failing step
    // in the middle, then a reset at the end.
    ReportRun run = simple_run("huge", "sim", "documented", "failed");
    run.failures = {"/threads/0/steps/7: expected 3, got 2"};
    std::vector<std::string>& trace = run.trace;
    trace.push_back(R"({"t":0,"seq":0,"thread":"sim","ev":"world","latency_ns":50000})");
    trace.push_back(
        R"({"t":0,"seq":1,"thread":"harness","ev":"connect","conn":1,"remote":"127.0.0.1:1"})");
    trace.push_back(
        R"({"t":100000,"seq":2,"thread":"sim","ev":"established","conn":2,"side":"server"})");
    std::uint64_t seq = 3;
    std::int64_t t = 100000;
    for (int round = 0; round < 40'000; ++round) {
        t += 1000;
        const std::string head = R"({"t":)" + std::to_string(t) + R"(,"seq":)";
        trace.push_back(head + std::to_string(seq++) +
                        R"(,"thread":"main","ev":"send","conn":1,"bytes":9,"asked":9})");
        trace.push_back(head + std::to_string(seq++) +
                        R"(,"thread":"sim","ev":"segment","from":1,"to":2,"bytes":9})");
        trace.push_back(head + std::to_string(seq++) +
                        R"(,"thread":"sim","ev":"receive","conn":2,"bytes":9})");
        if (round == 20'000) {
            trace.push_back(head + std::to_string(seq++) +
                            R"(,"thread":"main","ev":"api","call":"step_result",)"
                            R"("detail":"/threads/0/steps/7 returns=2"})");
            trace.push_back(head + std::to_string(seq++) +
                            R"(,"thread":"sim","ev":"fault","kind":"reset","conn":1})");
        }
    }
    trace.push_back(R"({"t":)" + std::to_string(t) + R"(,"seq":)" + std::to_string(seq++) +
                    R"(,"thread":"sim","ev":"reset","conn":1,"error":"connection reset by peer"})");
    trace.push_back(R"({"ev":"end","events":)" + std::to_string(seq) +
                    R"(,"hash":"0123456789abcdef"})");
    ASSERT_GT(trace.size(), 120'000U);

    const std::string html = render_report_html({run});
    EXPECT_LT(html.size(), 1'500'000U);
    EXPECT_LE(count_of(html, "<g class=\"r "), 400U);
    EXPECT_NE(html.find("Showing 400 of 120,006 events"), std::string::npos);
    EXPECT_NE(html.find("events omitted"), std::string::npos);
    // The window around the failing step keeps it, and the end keeps the reset.
    EXPECT_NE(html.find("class=\"r step failed\""), std::string::npos);
    EXPECT_NE(html.find("reset: connection reset by peer"), std::string::npos);
    EXPECT_NE(html.find("Marks that would fall on the same pixel are drawn once"),
              std::string::npos);
    // The timeline reads only the start of a trace this long.
    EXPECT_NE(html.find("The timeline covers the first 50,000 of 120,007 trace lines"),
              std::string::npos);
}

TEST(Report, ClauseTableSortsFamiliesThenNumbers) {
    std::vector<ReportRun> runs;
    for (const char* clause :
         {"W-1", "M-27", "S-10", "X-1", "S-9", "A-12", "S-12b", "S-12", "A-2"}) {
        runs.push_back(
            simple_run(std::string("scenario_") + clause, "sim", "documented", "passed", {clause}));
    }
    runs.push_back(simple_run("unclaused", "sim", "documented", "passed", {}));
    const std::string html = render_report_html(runs);
    const std::size_t table = html.find("id=\"clause-table\"");
    ASSERT_NE(table, std::string::npos);
    std::size_t previous = table;
    for (const char* clause : {"S-9<",
                               "S-10<",
                               "S-12<",
                               "S-12b<",
                               "A-2<",
                               "A-12<",
                               "M-27<",
                               "W-1<",
                               "X-1<",
                               "(no clause)<"}) {
        const std::size_t at = html.find(std::string("<th class=\"mono\">") + clause, table);
        ASSERT_NE(at, std::string::npos) << clause;
        EXPECT_GT(at, previous) << clause;
        previous = at;
    }
}

TEST(Report, SummaryCountsByStatusTransportAndProfile) {
    const std::vector<ReportRun> runs = {
        simple_run("a", "sim", "documented", "passed"),
        simple_run("a", "real", "documented", "failed"),
        simple_run("b", "sim", "dotnet-unix", "passed"),
        simple_run("b", "real", "dotnet-unix", "not_applicable"),
        simple_run("c", "sim", "documented", "passed"),
    };
    const std::string html = render_report_html(runs);
    EXPECT_NE(html.find("1 of 5 runs failed"), std::string::npos);
    EXPECT_NE(html.find("<div class=\"n\">3</div><div class=\"l\">passed</div>"),
              std::string::npos);
    EXPECT_NE(html.find("<div class=\"n\">1</div><div class=\"l\">not applicable</div>"),
              std::string::npos);
    EXPECT_NE(html.find("<tr><th>transport sim</th><td class=\"c\">3</td>"), std::string::npos);
    EXPECT_NE(html.find("<tr><th>profile dotnet-unix</th><td class=\"c\">2</td>"),
              std::string::npos);
    // Columns: profile x transport, sim before real.
    const std::size_t sim = html.find("documented<br><span class=\"muted small\">sim");
    const std::size_t real = html.find("documented<br><span class=\"muted small\">real");
    ASSERT_NE(sim, std::string::npos);
    ASSERT_NE(real, std::string::npos);
    EXPECT_LT(sim, real);
    // A failure with no trace still gets its section, its replay and a link from the tables.
    EXPECT_NE(html.find("href=\"#failure-1\""), std::string::npos);

    const std::string passing =
        render_report_html({simple_run("a", "sim", "documented", "passed")});
    EXPECT_NE(passing.find("Every applicable run passed"), std::string::npos);
    EXPECT_EQ(passing.find("<svg"), std::string::npos);
}

}  // namespace
}  // namespace faultline::views
