#include "faultline/model/smtp_error.h"

#include <string>

namespace faultline::model {
namespace {

class SmtpCategory final : public std::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "faultline.smtp"; }
    [[nodiscard]] std::string message(int value) const override {
        switch (static_cast<SmtpErrc>(value)) {
            case SmtpErrc::malformed_reply:
                return "malformed reply";
            case SmtpErrc::line_too_long:
                return "reply line too long";
            case SmtpErrc::command_too_long:
                return "command line too long";
            case SmtpErrc::bare_line_feed:
                return "bare line feed in command";
            case SmtpErrc::invalid_argument:
                return "invalid command argument";
            case SmtpErrc::connection_closed:
                return "connection closed";
            case SmtpErrc::timed_out:
                return "timed out";
        }
        return "unknown smtp error " + std::to_string(value);
    }
};

}  // namespace

const std::error_category& smtp_category() noexcept {
    static const SmtpCategory category;
    return category;
}

}  // namespace faultline::model
