// JUnit for CI: counts, escaping of hostile text, and characters XML cannot carry.
#include "faultline/views/junit.h"

#include <gtest/gtest.h>

namespace faultline::views {
namespace {

TEST(Junit, CountsEscapesAndCarriesTheReplayCommand) {
    std::vector<JunitCase> cases(3);
    cases[0].classname = "scenarios/send/s09.json";
    cases[0].name = "s09 [sim/documented]";
    cases[0].seconds = 0.25;
    cases[1].classname = "f.json";
    cases[1].name = "f [real/dotnet-unix]";
    cases[1].status = JunitCase::Status::failed;
    cases[1].message = "expected <none> & \"x\"";
    cases[1].body = "replay: ./faultline replay f.json --seed 1\n\x01";
    cases[2].status = JunitCase::Status::skipped;
    cases[2].message = "not applicable: sim only";
    const std::string xml = junit_xml("faultline", cases);
    EXPECT_NE(xml.find("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\" time=\"0.250\""),
              std::string::npos) << xml;
    EXPECT_NE(xml.find("message=\"expected &lt;none&gt; &amp; &quot;x&quot;\""), std::string::npos);
    EXPECT_NE(xml.find("replay: ./faultline replay f.json --seed 1\n\xEF\xBF\xBD</failure>"),
              std::string::npos) << xml;
    EXPECT_NE(xml.find("<skipped message=\"not applicable: sim only\"/>"), std::string::npos);
    EXPECT_EQ(xml.find('\x01'), std::string::npos);
}

}  // namespace
}  // namespace faultline::views
