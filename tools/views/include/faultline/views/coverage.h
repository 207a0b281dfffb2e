// Clause coverage: every clause of the conformance list (conformance/clauses.tsv) with the
// scenario files and the tests that pin it, per behaviour profile; uncovered ones flagged.
#pragma once

#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace faultline::views {

struct Clause {
    std::string id;       // "S-7"
    bool differs = false; // a Δ clause: the profiles disagree
    std::string summary;  // one line
};

/// Parses clauses.tsv (id TAB differs TAB summary; '#' comments); an error message on bad input.
[[nodiscard]] std::variant<std::vector<Clause>, std::string> parse_clauses(const std::string& text);

struct ScenarioCitation {
    std::string path;
    std::vector<std::string> clauses;
    std::vector<std::string> profiles;
};

struct TestCitation {
    std::string test;  // "SendSim.S07_EndSendOtherSocket" or "file.test.cpp:123"
    std::vector<std::string> clauses;
};

struct ClauseCoverage {
    Clause clause;
    std::map<std::string, std::vector<std::string>> scenarios_by_profile;  // profile -> paths
    std::vector<std::string> tests;
    [[nodiscard]] bool covered() const { return !scenarios_by_profile.empty() || !tests.empty(); }
};

/// The clause ids cited in a test source file: in test names ("S07", "S_7"), comments and
/// strings ("S-7", "M-27/M-28", "A-12b" counts as A-12). One citation per test (TEST/TEST_F/
/// TEST_P/RC_GTEST_PROP...), with file:line for clause ids outside any test.
[[nodiscard]] std::vector<TestCitation> cited_in_test_source(const std::string& file_name,
                                                             const std::string& source);

[[nodiscard]] std::vector<ClauseCoverage> clause_coverage(
    const std::vector<Clause>& clauses, const std::vector<ScenarioCitation>& scenarios,
    const std::vector<TestCitation>& tests, const std::vector<std::string>& profiles);

/// The table as Markdown (what the README embeds) with a closing line of totals.
[[nodiscard]] std::string coverage_markdown(const std::vector<ClauseCoverage>& coverage,
                                            const std::vector<std::string>& profiles);

}  // namespace faultline::views
