#include "faultline/views/junit.h"

#include <cstdio>

namespace faultline::views {
namespace {

std::string escaped(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (const char character : text) {
        const auto byte = static_cast<unsigned char>(character);
        switch (character) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default:
                if (byte < 0x20 && character != '\t' && character != '\n' && character != '\r') {
                    out += "\xEF\xBF\xBD";  // not allowed in XML 1.0, even as a reference
                } else {
                    out += character;
                }
        }
    }
    return out;
}

std::string seconds_text(double seconds) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f", seconds);
    return text;
}

}  // namespace

std::string junit_xml(const std::string& suite, const std::vector<JunitCase>& cases) {
    std::size_t failures = 0;
    std::size_t skipped = 0;
    double seconds = 0;
    for (const JunitCase& test : cases) {
        failures += test.status == JunitCase::Status::failed ? 1U : 0U;
        skipped += test.status == JunitCase::Status::skipped ? 1U : 0U;
        seconds += test.seconds;
    }
    std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out += "<testsuites><testsuite name=\"" + escaped(suite) + "\" tests=\"" +
           std::to_string(cases.size()) + "\" failures=\"" + std::to_string(failures) +
           "\" errors=\"0\" skipped=\"" + std::to_string(skipped) + "\" time=\"" +
           seconds_text(seconds) + "\">\n";
    for (const JunitCase& test : cases) {
        out += "  <testcase classname=\"" + escaped(test.classname) + "\" name=\"" +
               escaped(test.name) + "\" time=\"" + seconds_text(test.seconds) + "\">";
        if (test.status == JunitCase::Status::failed) {
            out += "<failure message=\"" + escaped(test.message) + "\">" + escaped(test.body) +
                   "</failure>";
        } else if (test.status == JunitCase::Status::skipped) {
            out += "<skipped message=\"" + escaped(test.message) + "\"/>";
        }
        out += "</testcase>\n";
    }
    out += "</testsuite></testsuites>\n";
    return out;
}

}  // namespace faultline::views
