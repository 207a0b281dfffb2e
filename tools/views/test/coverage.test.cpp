// faultline coverage: the clause list, citations in scenarios and test sources, and the table.
#include "faultline/views/coverage.h"

#include <gtest/gtest.h>

namespace faultline::views {
namespace {

std::vector<Clause> clauses_of(const std::string& text) {
    auto parsed = parse_clauses(text);
    const auto* clauses = std::get_if<std::vector<Clause>>(&parsed);
    EXPECT_NE(clauses, nullptr) << std::get<std::string>(parsed);
    return clauses == nullptr ? std::vector<Clause>{} : *clauses;
}

TEST(Coverage, ClauseListParsesAndRejectsBadLines) {
    const auto clauses = clauses_of("# comment\nS-1\t0\tBeginSend checks.\nS-7\t1\tNo ownership check.\n");
    ASSERT_EQ(clauses.size(), 2U);
    EXPECT_EQ(clauses[1].id, "S-7");
    EXPECT_TRUE(clauses[1].differs);
    EXPECT_EQ(clauses[1].summary, "No ownership check.");
    for (const char* bad : {"S-1 0 spaces not tabs\n", "X-1\t0\tnot a family\n", "S-1\t2\tbad flag\n",
                            "S-1\t0\ta\nS-1\t0\tb\n", "# only comments\n", ""}) {
        EXPECT_TRUE(std::holds_alternative<std::string>(parse_clauses(bad))) << bad;
    }
}

TEST(Coverage, TestSourcesCiteClausesInNamesCommentsAndBodies) {
    const std::string source = R"(// File header: S-1 ... S-26 are tested here (pins nothing).
#include <x>

// S-9: partial completion.
// and M-27/M-28 in one comment.
TEST(SendSim, PartialCompletion) {
    check("A-12b");  // a sub-case counts as its clause
    int size_S1 = 1;  // not an id: part of a word
}

TEST(RecordReal, KernelCut_S9_S21) {
}

RC_GTEST_PROP(SmtpPropSim, Once_M5_M9, ()) {
}

TEST(Other, NoClausesHere) {
    int size_S = 1;
}
)";
    const auto citations = cited_in_test_source("x.test.cpp", source);
    ASSERT_EQ(citations.size(), 3U);
    EXPECT_EQ(citations[0].test, "SendSim.PartialCompletion");
    EXPECT_EQ(citations[0].clauses, (std::vector<std::string>{"S-9", "M-27", "M-28", "A-12"}));
    EXPECT_EQ(citations[1].test, "RecordReal.KernelCut_S9_S21");
    EXPECT_EQ(citations[1].clauses, (std::vector<std::string>{"S-9", "S-21"}));
    EXPECT_EQ(citations[2].test, "SmtpPropSim.Once_M5_M9");
    EXPECT_EQ(citations[2].clauses, (std::vector<std::string>{"M-5", "M-9"}));
}

TEST(Coverage, TableListsScenariosPerProfileAndFlagsTheUncovered) {
    const auto clauses = clauses_of("M-9\t0\tx\nS-1\t0\ty\nS-10\t0\tz\nS-2\t1\tw\nA-3\t0\tv\n");
    const std::vector<ScenarioCitation> scenarios = {
        {"scenarios/send/s01.json", {"S-1"}, {"documented", "dotnet-unix"}},
        {"scenarios/send/s02.json", {"S-2", "S-1"}, {"dotnet-unix"}},
    };
    const std::vector<TestCitation> tests = {{"SmtpSim.Cancel_M9", {"M-9"}}};
    const std::vector<std::string> profiles = {"documented", "dotnet-unix"};
    const auto coverage = clause_coverage(clauses, scenarios, tests, profiles);
    ASSERT_EQ(coverage.size(), 5U);
    // S, A, M, W, each by number.
    EXPECT_EQ(coverage[0].clause.id, "S-1");
    EXPECT_EQ(coverage[1].clause.id, "S-2");
    EXPECT_EQ(coverage[2].clause.id, "S-10");
    EXPECT_EQ(coverage[3].clause.id, "A-3");
    EXPECT_EQ(coverage[4].clause.id, "M-9");
    EXPECT_EQ(coverage[0].scenarios_by_profile.at("documented").size(), 1U);
    EXPECT_EQ(coverage[0].scenarios_by_profile.at("dotnet-unix").size(), 2U);
    EXPECT_FALSE(coverage[2].covered());
    EXPECT_TRUE(coverage[4].covered());
    const std::string table = coverage_markdown(coverage, profiles);
    EXPECT_NE(table.find("| S-1 |  | 1 / 2 | s01, s02 (dotnet-unix only) |"), std::string::npos) << table;
    EXPECT_NE(table.find("| S-2 | Δ | 0 / 1 | s02 (dotnet-unix only) |  | **no scenario in every profile** |"),
              std::string::npos) << table;
    EXPECT_NE(table.find("| S-10 |  | 0 / 0 |  |  | **UNCOVERED** |"), std::string::npos) << table;
    EXPECT_NE(table.find("| M-9 |  | 0 / 0 |  | SmtpSim.Cancel_M9 | **no scenario in every profile** |"),
              std::string::npos) << table;
    EXPECT_NE(table.find("5 clauses: 3 covered, 2 uncovered (S-10, A-3); 1 pinned by a scenario under every profile"),
              std::string::npos) << table;
}

}  // namespace
}  // namespace faultline::views
