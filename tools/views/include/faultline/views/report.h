// Results of a `faultline run` as a file (`run --results FILE`), and the self-contained HTML
// report drawn from one or more of them (`faultline report RESULTS... --html OUT`).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace faultline::views {

/// One scenario x transport x profile run.
struct ReportRun {
    std::string scenario;
    std::string path;
    std::string description;
    std::vector<std::string> clauses;
    std::string transport;   // "sim" or "real"
    std::string profile;
    std::uint64_t seed = 0;
    std::string status;      // "passed", "failed", "not_applicable"
    std::vector<std::string> failures;
    std::string reason;      // why not applicable
    std::string replay;      // the replay command (failed runs)
    std::string trace_hash;  // sim
    std::uint64_t events = 0;
    std::int64_t virtual_ns = 0;
    double wall_ms = 0;
    /// The sim trace (JSON Lines, end line last) of a failed run; for a failed real run, the sim
    /// run of the same scenario and profile. Empty for passed runs.
    std::vector<std::string> trace;

    /// Field by field; results_from_json(results_to_json(runs)) gives back equal runs.
    friend bool operator==(const ReportRun&, const ReportRun&) = default;
};

/// {"faultline_results": 1, "runs": [...]}
[[nodiscard]] nlohmann::json results_to_json(const std::vector<ReportRun>& runs);
/// The runs of a results document, or a message saying what is wrong with it.
[[nodiscard]] std::variant<std::vector<ReportRun>, std::string> results_from_json(
    const nlohmann::json& document);

/// One HTML page, no external fetches: summary, pass/fail table by clause and profile, and for
/// every failure its failures, replay command, sequence diagram and timeline as inline SVG.
/// Every string from `runs` is escaped. The same runs, in any order, give the same bytes. A
/// diagram draws at most 400 rows of a long trace (its start, around the first step a failure
/// points at, its end) and the timeline reads at most its first 50,000 lines; the page says so.
[[nodiscard]] std::string render_report_html(const std::vector<ReportRun>& runs);

}  // namespace faultline::views
