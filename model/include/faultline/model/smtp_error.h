// SMTP wire errors beneath the .NET-shaped surface: values in one category, never exceptions.
// A 4xx/5xx reply is data (a Reply), not an error; these codes say the bytes themselves were
// unusable (malformed, too long, refused before sending) or the conversation ended early.
#pragma once

#include <system_error>

namespace faultline::model {

enum class SmtpErrc {
    malformed_reply = 1,  // a reply line breaks the syntax of the parser's mode (M-24, W-4)
    line_too_long,        // a reply line longer than 512 bytes including CRLF (W-8)
    command_too_long,     // a command line longer than 512 bytes including CRLF (W-8)
    bare_line_feed,       // a command line holds a bare LF and the policy rejects it (W-16)
    invalid_argument,     // a command argument holds CR or LF, or the line would be too long (W-1)
    connection_closed,    // the peer closed before a complete reply arrived (M-25)
    timed_out,            // no complete reply within the caller's budget
};

const std::error_category& smtp_category() noexcept;

inline std::error_code make_error_code(SmtpErrc error) noexcept {
    return {static_cast<int>(error), smtp_category()};
}

}  // namespace faultline::model

template <>
struct std::is_error_code_enum<faultline::model::SmtpErrc> : std::true_type {};
