// Internal: the JSON-level SMTP script parser shared by smtp_script.cpp and the scenario loader.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "faultline/model/smtp_server.h"

namespace faultline::conformance::detail {

/// Where a script is wrong: a JSON pointer (relative to the document) and a sentence.
struct SmtpScriptError {
    std::string pointer;
    std::string message;
};

/// Parses the script object at `pointer`; throws SmtpScriptError.
[[nodiscard]] model::SmtpScript parse_smtp_script(const nlohmann::json& root,
                                                  const std::string& pointer);

/// The keys accepted per object kind ("smtp_script", "smtp_reply_step"), for the schema check.
[[nodiscard]] const std::map<std::string, std::vector<std::string>>& smtp_script_keys();

}  // namespace faultline::conformance::detail
