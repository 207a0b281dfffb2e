#include "faultline/conformance/smtp_script.h"

#include <algorithm>
#include <chrono>

#include "smtp_script_json.h"

namespace faultline::conformance {
namespace detail {
namespace {

using nlohmann::json;
using model::SmtpScript;
using model::SmtpStep;

const std::vector<std::string>& keys_of(const std::string& kind) {
    return smtp_script_keys().at(kind);
}

void check_keys(const json& value, const std::string& pointer, const std::string& kind) {
    if (!value.is_object()) {
        throw SmtpScriptError{pointer, "expected an object"};
    }
    const auto& allowed = keys_of(kind);
    for (const auto& item : value.items()) {
        if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
            throw SmtpScriptError{pointer + "/" + item.key(), "unknown key \"" + item.key() + "\""};
        }
    }
}

std::uint64_t get_count(const json& value, const std::string& pointer, std::uint64_t high) {
    // A parsed file holds non-negative numbers as unsigned; a scenario built in code may hold
    // them as signed. Both count.
    const bool non_negative =
        value.is_number_unsigned() || (value.is_number_integer() && value.get<std::int64_t>() >= 0);
    if (!non_negative || value.get<std::uint64_t>() > high) {
        throw SmtpScriptError{pointer, "expected an integer from 0 to " + std::to_string(high)};
    }
    return value.get<std::uint64_t>();
}

std::string get_text(const json& value, const std::string& pointer) {
    if (!value.is_string() || value.get<std::string>().size() > 4096) {
        throw SmtpScriptError{pointer, "expected a string of at most 4096 bytes"};
    }
    return value.get<std::string>();
}

bool get_flag(const json& value, const std::string& pointer) {
    if (!value.is_boolean()) {
        throw SmtpScriptError{pointer, "expected true or false"};
    }
    return value.get<bool>();
}

SmtpStep parse_step(const json& value, const std::string& pointer) {
    check_keys(value, pointer, "smtp_reply_step");
    SmtpStep step;
    if (value.contains("action")) {
        static const std::map<std::string, model::SmtpAction> kActions = {
            {"reply", model::SmtpAction::reply},
            {"reply_then_close", model::SmtpAction::reply_then_close},
            {"close_without_reply", model::SmtpAction::close_without_reply},
            {"abort_without_reply", model::SmtpAction::abort_without_reply},
            {"stall", model::SmtpAction::stall}};
        const std::string action = get_text(value["action"], pointer + "/action");
        const auto found = kActions.find(action);
        if (found == kActions.end()) {
            throw SmtpScriptError{pointer + "/action",
                                  "\"" + action + "\" is not one of: reply, reply_then_close, "
                                  "close_without_reply, abort_without_reply, stall"};
        }
        step.action = found->second;
    }
    if (value.contains("reply")) {
        const json& lines = value["reply"];
        if (!lines.is_array() || lines.size() > 100) {
            throw SmtpScriptError{pointer + "/reply", "expected an array of at most 100 lines"};
        }
        for (std::size_t i = 0; i < lines.size(); ++i) {
            std::string line = get_text(lines[i], pointer + "/reply/" + std::to_string(i));
            if (line.find_first_of("\r\n") != std::string::npos) {
                throw SmtpScriptError{pointer + "/reply/" + std::to_string(i),
                                      "a reply line holds no CR or LF (use raw_reply for that)"};
            }
            step.reply.push_back(std::move(line));
        }
    }
    if (value.contains("raw_reply")) {
        step.raw_reply = get_text(value["raw_reply"], pointer + "/raw_reply");
    }
    if (value.contains("delay_ms")) {
        step.delay = std::chrono::milliseconds(
            get_count(value["delay_ms"], pointer + "/delay_ms", 3'600'000));
    }
    if (value.contains("drop_after_data_bytes")) {
        step.drop_after_data_bytes = static_cast<std::size_t>(get_count(
            value["drop_after_data_bytes"], pointer + "/drop_after_data_bytes", 1U << 30U));
    }
    return step;
}

}  // namespace

const std::map<std::string, std::vector<std::string>>& smtp_script_keys() {
    static const std::map<std::string, std::vector<std::string>> table = {
        {"smtp_script",
         {"domain", "capabilities", "steps", "recipients", "bare_line_feed",
          "reject_unauthorised_pipelining", "message_bytes_max", "recipients_max", "auth_users",
          "advertise_auth", "require_auth"}},
        {"smtp_reply_step", {"action", "reply", "raw_reply", "delay_ms", "drop_after_data_bytes"}},
        {"smtp_script_steps",
         {"CONNECT", "EHLO", "HELO", "AUTH", "MAIL", "RCPT", "DATA", ".", "RSET", "NOOP", "QUIT"}},
    };
    return table;
}

SmtpScript parse_smtp_script(const json& root, const std::string& pointer) {
    check_keys(root, pointer, "smtp_script");
    SmtpScript script;
    if (root.contains("domain")) {
        script.domain = get_text(root["domain"], pointer + "/domain");
    }
    if (root.contains("capabilities")) {
        const json& list = root["capabilities"];
        if (!list.is_array() || list.size() > 64) {
            throw SmtpScriptError{pointer + "/capabilities",
                                  "expected an array of at most 64 strings"};
        }
        script.capabilities.clear();
        for (std::size_t i = 0; i < list.size(); ++i) {
            script.capabilities.push_back(
                get_text(list[i], pointer + "/capabilities/" + std::to_string(i)));
        }
    }
    if (root.contains("steps")) {
        check_keys(root["steps"], pointer + "/steps", "smtp_script_steps");
        for (const auto& item : root["steps"].items()) {
            script.steps[item.key()] = parse_step(item.value(), pointer + "/steps/" + item.key());
        }
    }
    if (root.contains("recipients")) {
        if (!root["recipients"].is_object() || root["recipients"].size() > 1000) {
            throw SmtpScriptError{pointer + "/recipients",
                                  "expected an object keyed by address (at most 1000)"};
        }
        for (const auto& item : root["recipients"].items()) {
            script.recipient_steps[item.key()] =
                parse_step(item.value(), pointer + "/recipients/" + item.key());
        }
    }
    if (root.contains("bare_line_feed")) {
        const std::string policy = get_text(root["bare_line_feed"], pointer + "/bare_line_feed");
        if (policy == "reject") {
            script.bare_line_feed = model::BareLineFeedPolicy::reject;
        } else if (policy == "normalize") {
            script.bare_line_feed = model::BareLineFeedPolicy::normalize;
        } else if (policy == "legacy_accept") {
            script.bare_line_feed = model::BareLineFeedPolicy::legacy_accept;
        } else {
            throw SmtpScriptError{pointer + "/bare_line_feed",
                                  "expected reject, normalize or legacy_accept"};
        }
    }
    if (root.contains("reject_unauthorised_pipelining")) {
        script.reject_unauthorised_pipelining = get_flag(
            root["reject_unauthorised_pipelining"], pointer + "/reject_unauthorised_pipelining");
    }
    if (root.contains("message_bytes_max")) {
        script.message_bytes_max = static_cast<std::size_t>(
            get_count(root["message_bytes_max"], pointer + "/message_bytes_max", 1U << 30U));
    }
    if (root.contains("auth_users")) {
        const json& users = root["auth_users"];
        if (!users.is_object() || users.size() > 100) {
            throw SmtpScriptError{pointer + "/auth_users",
                                  "expected an object of user: password (at most 100)"};
        }
        for (const auto& item : users.items()) {
            script.auth_users[item.key()] =
                get_text(item.value(), pointer + "/auth_users/" + item.key());
        }
    }
    if (root.contains("advertise_auth")) {
        script.advertise_auth = get_flag(root["advertise_auth"], pointer + "/advertise_auth");
    }
    if (root.contains("require_auth")) {
        script.require_auth = get_flag(root["require_auth"], pointer + "/require_auth");
    }
    if (root.contains("recipients_max")) {
        script.recipients_max = static_cast<std::size_t>(
            get_count(root["recipients_max"], pointer + "/recipients_max", 100'000));
    }
    return script;
}

}  // namespace detail

SmtpScriptResult load_smtp_script_text(const std::string& text) {
    nlohmann::json root;
    try {
        root = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& error) {
        return std::string("(syntax): ") + error.what();
    }
    try {
        return detail::parse_smtp_script(root, "");
    } catch (const detail::SmtpScriptError& error) {
        return (error.pointer.empty() ? std::string("/") : error.pointer) + ": " + error.message;
    }
}

}  // namespace faultline::conformance
