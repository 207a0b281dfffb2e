// SMTP server scripts as JSON: the format `faultline smtp-server --script FILE` reads and that
// scenario files embed under "smtp"/"server". One parser for both, so a script that works in a
// scenario works against other mail software unchanged. Bad input gets "/pointer: message".
#pragma once

#include <string>
#include <variant>

#include "faultline/model/smtp_server.h"

namespace faultline::conformance {

/// The parsed script, or the first error as "/json/pointer: message".
using SmtpScriptResult = std::variant<model::SmtpScript, std::string>;

/// Parses the text of a script file. Never throws for bad input.
[[nodiscard]] SmtpScriptResult load_smtp_script_text(const std::string& text);

}  // namespace faultline::conformance
