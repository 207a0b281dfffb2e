// JUnit XML, the report format CI systems read (GitLab, Jenkins, GitHub test reporters): one
// testsuite of testcases, each passed, failed (message and body) or skipped (reason).
#pragma once

#include <string>
#include <vector>

namespace faultline::views {

struct JunitCase {
    enum class Status { passed, failed, skipped };
    std::string classname;
    std::string name;
    double seconds = 0;
    Status status = Status::passed;
    std::string message;  // failed: the first failure; skipped: the reason
    std::string body;     // failed: every failure and the replay command
};

/// The document, UTF-8, every attribute and text escaped; characters XML 1.0 cannot carry
/// (control characters other than tab, CR, LF) are written as U+FFFD.
[[nodiscard]] std::string junit_xml(const std::string& suite, const std::vector<JunitCase>& cases);

}  // namespace faultline::views
