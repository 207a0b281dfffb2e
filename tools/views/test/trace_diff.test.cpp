// faultline diff: the first divergent event of two traces, with context and the fields that
// differ; ignoring fields and keeping only some events for sim-versus-real comparisons.
#include "faultline/views/trace_diff.h"

#include <gtest/gtest.h>

namespace faultline::views {
namespace {

const std::vector<std::string> kRun = {
    R"({"t":0,"seq":0,"thread":"sim","ev":"world","seed":1})",
    R"({"t":0,"seq":1,"thread":"main","ev":"api","call":"begin_send","detail":"a"})",
    R"({"t":150,"seq":2,"thread":"main","ev":"send","asked":10,"bytes":10,"conn":1})",
    R"({"t":200,"seq":3,"thread":"sim","ev":"segment","from":1,"to":2,"bytes":10})",
    R"({"t":200,"seq":4,"thread":"main","ev":"api","call":"completed","detail":"a"})",
    R"({"ev":"end","events":5,"hash":"0123456789abcdef"})",
};

TEST(TraceDiff, IdenticalTracesCompareEveryEvent) {
    const TraceDiff diff = diff_traces(kRun, kRun);
    EXPECT_TRUE(diff.identical);
    EXPECT_EQ(diff.compared, kRun.size());
    EXPECT_EQ(format_trace_diff(diff, "a", "b"), "identical: 6 events compared\n");
}

TEST(TraceDiff, FirstDivergentEventWithContextAndFields) {
    auto other = kRun;
    other[2] = R"({"t":150,"seq":2,"thread":"main","ev":"send","asked":10,"bytes":4,"conn":1})";
    other[3] = R"({"t":210,"seq":3,"thread":"sim","ev":"segment","from":1,"to":2,"bytes":4})";
    DiffOptions options;
    options.context = 1;
    const TraceDiff diff = diff_traces(kRun, other, options);
    ASSERT_FALSE(diff.identical);
    EXPECT_EQ(diff.index_a, 2U);
    EXPECT_EQ(diff.index_b, 2U);
    EXPECT_EQ(diff.compared, 2U);
    ASSERT_EQ(diff.context.size(), 1U);
    EXPECT_EQ(diff.context.front(), kRun[1]);
    EXPECT_EQ(diff.fields, std::vector<std::string>{"bytes"});
    const std::string text = format_trace_diff(diff, "A.jsonl", "B.jsonl");
    EXPECT_NE(text.find("line 3 of A.jsonl"), std::string::npos) << text;
    EXPECT_NE(text.find("- A.jsonl: " + kRun[2]), std::string::npos) << text;
    EXPECT_NE(text.find("+ B.jsonl: " + other[2]), std::string::npos) << text;
    EXPECT_NE(text.find("fields that differ: bytes"), std::string::npos) << text;
}

TEST(TraceDiff, ATraceThatStopsEarlyDivergesWhereItEnds) {
    const std::vector<std::string> shorter(kRun.begin(), kRun.begin() + 3);
    const TraceDiff diff = diff_traces(kRun, shorter);
    ASSERT_FALSE(diff.identical);
    EXPECT_EQ(diff.index_a, 3U);
    EXPECT_TRUE(diff.line_a.has_value());
    EXPECT_FALSE(diff.line_b.has_value());
    EXPECT_NE(format_trace_diff(diff, "a", "b").find("+ b: (ends here)"), std::string::npos);
}

// Sim versus real: the clocks differ and only the API events are comparable.
TEST(TraceDiff, IgnoredFieldsAndSelectedEvents) {
    const std::vector<std::string> real = {
        R"({"t":91234,"seq":0,"thread":"real","ev":"api","call":"begin_send","detail":"a"})",
        R"({"t":99999,"seq":1,"thread":"real","ev":"api","call":"completed","detail":"a"})",
    };
    DiffOptions options;
    options.ignore_fields = {"t", "seq", "thread"};
    options.only_events = {"api"};
    EXPECT_TRUE(diff_traces(kRun, real, options).identical);
    options.ignore_fields = {"seq", "thread"};
    const TraceDiff timed = diff_traces(kRun, real, options);
    ASSERT_FALSE(timed.identical);
    EXPECT_EQ(timed.index_a, 1U);
    EXPECT_EQ(timed.index_b, 0U);
    EXPECT_EQ(timed.fields, std::vector<std::string>{"t"});
}

TEST(TraceDiff, LinesThatAreNotJsonCompareAsText) {
    const TraceDiff diff = diff_traces({"garbage", kRun[0]}, {"garbage!", kRun[0]});
    ASSERT_FALSE(diff.identical);
    EXPECT_EQ(diff.index_a, 0U);
    EXPECT_TRUE(diff.fields.empty());
}

}  // namespace
}  // namespace faultline::views
