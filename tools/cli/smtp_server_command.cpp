// `faultline smtp-server`: the scriptable SMTP server (model::SmtpServer) on real loopback sockets,
// so other mail clients can be tested against scripted faults. Bounded by --max-sessions and
// --max-seconds; records every session to --record DIR.
#include "smtp_server_command.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "faultline/model/smtp_server.h"
#include "faultline/real/transport.h"

namespace faultline::cli {
namespace {

using nlohmann::json;
using model::SmtpScript;
using model::SmtpStep;

struct ScriptError {
    std::string pointer;
    std::string message;
};

void check_keys(const json& value, const std::string& pointer,
                std::initializer_list<std::string_view> allowed) {
    if (!value.is_object()) {
        throw ScriptError{pointer, "expected an object"};
    }
    for (const auto& item : value.items()) {
        bool known = false;
        for (std::string_view key : allowed) {
            known = known || item.key() == key;
        }
        if (!known) {
            throw ScriptError{pointer + "/" + item.key(), "unknown key \"" + item.key() + "\""};
        }
    }
}

std::uint64_t get_count(const json& value, const std::string& pointer, std::uint64_t high) {
    if (!value.is_number_unsigned() || value.get<std::uint64_t>() > high) {
        throw ScriptError{pointer, "expected an integer from 0 to " + std::to_string(high)};
    }
    return value.get<std::uint64_t>();
}

std::string get_text(const json& value, const std::string& pointer) {
    if (!value.is_string() || value.get<std::string>().size() > 4096) {
        throw ScriptError{pointer, "expected a string of at most 4096 bytes"};
    }
    return value.get<std::string>();
}

SmtpStep parse_step(const json& value, const std::string& pointer) {
    check_keys(value, pointer, {"action", "reply", "raw_reply", "delay_ms", "drop_after_data_bytes"});
    SmtpStep step;
    if (value.contains("action")) {
        const std::string action = get_text(value["action"], pointer + "/action");
        if (action == "reply") {
            step.action = model::SmtpAction::reply;
        } else if (action == "reply_then_close") {
            step.action = model::SmtpAction::reply_then_close;
        } else if (action == "close_without_reply") {
            step.action = model::SmtpAction::close_without_reply;
        } else if (action == "abort_without_reply") {
            step.action = model::SmtpAction::abort_without_reply;
        } else if (action == "stall") {
            step.action = model::SmtpAction::stall;
        } else {
            throw ScriptError{pointer + "/action",
                              "\"" + action + "\" is not one of: reply, reply_then_close, "
                              "close_without_reply, abort_without_reply, stall"};
        }
    }
    if (value.contains("reply")) {
        const json& lines = value["reply"];
        if (!lines.is_array() || lines.size() > 100) {
            throw ScriptError{pointer + "/reply", "expected an array of at most 100 lines"};
        }
        for (std::size_t i = 0; i < lines.size(); ++i) {
            step.reply.push_back(get_text(lines[i], pointer + "/reply/" + std::to_string(i)));
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
        step.drop_after_data_bytes = static_cast<std::size_t>(
            get_count(value["drop_after_data_bytes"], pointer + "/drop_after_data_bytes", 1U << 30U));
    }
    return step;
}

SmtpScript parse_script(const json& root) {
    check_keys(root, "", {"domain", "capabilities", "steps", "recipients", "bare_line_feed",
                          "reject_unauthorised_pipelining", "message_bytes_max", "recipients_max"});
    SmtpScript script;
    if (root.contains("domain")) {
        script.domain = get_text(root["domain"], "/domain");
    }
    if (root.contains("capabilities")) {
        const json& list = root["capabilities"];
        if (!list.is_array() || list.size() > 64) {
            throw ScriptError{"/capabilities", "expected an array of at most 64 strings"};
        }
        script.capabilities.clear();
        for (std::size_t i = 0; i < list.size(); ++i) {
            script.capabilities.push_back(get_text(list[i], "/capabilities/" + std::to_string(i)));
        }
    }
    static const std::vector<std::string> kVerbs = {"CONNECT", "EHLO", "HELO", "AUTH", "MAIL",
                                                    "RCPT", "DATA", ".", "RSET", "NOOP", "QUIT"};
    if (root.contains("steps")) {
        check_keys(root["steps"], "/steps",
                   {"CONNECT", "EHLO", "HELO", "AUTH", "MAIL", "RCPT", "DATA", ".", "RSET", "NOOP",
                    "QUIT"});
        for (const auto& item : root["steps"].items()) {
            script.steps[item.key()] = parse_step(item.value(), "/steps/" + item.key());
        }
    }
    if (root.contains("recipients")) {
        if (!root["recipients"].is_object()) {
            throw ScriptError{"/recipients", "expected an object keyed by address"};
        }
        for (const auto& item : root["recipients"].items()) {
            script.recipient_steps[item.key()] =
                parse_step(item.value(), "/recipients/" + item.key());
        }
    }
    if (root.contains("bare_line_feed")) {
        const std::string policy = get_text(root["bare_line_feed"], "/bare_line_feed");
        if (policy == "reject") {
            script.bare_line_feed = model::BareLineFeedPolicy::reject;
        } else if (policy == "normalize") {
            script.bare_line_feed = model::BareLineFeedPolicy::normalize;
        } else if (policy == "legacy_accept") {
            script.bare_line_feed = model::BareLineFeedPolicy::legacy_accept;
        } else {
            throw ScriptError{"/bare_line_feed", "expected reject, normalize or legacy_accept"};
        }
    }
    if (root.contains("reject_unauthorised_pipelining")) {
        if (!root["reject_unauthorised_pipelining"].is_boolean()) {
            throw ScriptError{"/reject_unauthorised_pipelining", "expected true or false"};
        }
        script.reject_unauthorised_pipelining = root["reject_unauthorised_pipelining"].get<bool>();
    }
    if (root.contains("message_bytes_max")) {
        script.message_bytes_max = static_cast<std::size_t>(
            get_count(root["message_bytes_max"], "/message_bytes_max", 1U << 30U));
    }
    if (root.contains("recipients_max")) {
        script.recipients_max =
            static_cast<std::size_t>(get_count(root["recipients_max"], "/recipients_max", 100'000));
    }
    return script;
}

/// Raw octets as readable JSON text: printable ASCII as is, anything else as \xNN.
std::string printable(const std::string& bytes) {
    std::string text;
    for (const char character : bytes) {
        const auto byte = static_cast<unsigned char>(character);
        if (byte >= 0x20 && byte < 0x7f && byte != '\\') {
            text += character;
        } else {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
            text += escaped;
        }
    }
    return text;
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
}

/// session-N.json (commands, envelopes, reply codes), session-N.received (raw bytes) and
/// session-N-message-M.eml (each message's content, dot-stuffing undone).
void record_sessions(const std::string& directory,
                     const std::vector<model::SmtpSessionRecord>& sessions) {
    std::filesystem::create_directories(directory);
    for (std::size_t s = 0; s < sessions.size(); ++s) {
        const auto& session = sessions[s];
        const std::string base = directory + "/session-" + std::to_string(s + 1);
        json summary;
        summary["commands"] = json::array();
        for (const std::string& command : session.commands) {
            summary["commands"].push_back(printable(command));
        }
        summary["transactions"] = json::array();
        for (std::size_t t = 0; t < session.transactions.size(); ++t) {
            const auto& transaction = session.transactions[t];
            json entry;
            entry["mail_from"] = printable(transaction.mail_from);
            entry["recipients"] = json::array();
            for (const auto& recipient : transaction.recipients) {
                entry["recipients"].push_back(
                    {{"address", printable(recipient.address)}, {"reply_code", recipient.reply_code}});
            }
            entry["data_complete"] = transaction.data_complete;
            entry["final_reply_code"] = transaction.final_reply_code;
            entry["content_bytes"] = transaction.content.size();
            summary["transactions"].push_back(entry);
            write_file(base + "-message-" + std::to_string(t + 1) + ".eml", transaction.content);
        }
        write_file(base + ".json", summary.dump(2) + "\n");
        write_file(base + ".received", session.received);
    }
}

}  // namespace

int smtp_server_command(const SmtpServerOptions& options) {
    SmtpScript script;
    if (options.script_file) {
        std::ifstream file(*options.script_file);
        if (!file) {
            std::cerr << *options.script_file << ": cannot open\n";
            return 2;
        }
        try {
            script = parse_script(json::parse(file));
        } catch (const json::exception& error) {
            std::cerr << *options.script_file << ": " << error.what() << "\n";
            return 2;
        } catch (const ScriptError& error) {
            std::cerr << *options.script_file << ": " << (error.pointer.empty() ? "/" : error.pointer)
                      << ": " << error.message << "\n";
            return 2;
        }
    }
    script.sessions_max = options.max_sessions;
    real::RealTransport transport;
    model::SmtpServer<real::RealTransport> server(transport, script);
    const auto bound = server.start(options.listen);
    if (!bound) {
        std::cerr << "smtp-server: cannot listen on " << options.listen.to_string() << ": "
                  << bound.error().message() << "\n";
        return 2;
    }
    std::printf("listening on %s\n", bound.value().to_string().c_str());
    std::fflush(stdout);
    // Run until max-sessions sessions have come and gone, or max-seconds passed.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.max_seconds);
    std::mutex mutex;
    while (std::chrono::steady_clock::now() < deadline) {
        const auto sessions = server.sessions();
        const bool all_closed = std::all_of(sessions.begin(), sessions.end(),
                                            [](const auto& s) { return s.closed; });
        if (sessions.size() >= options.max_sessions && all_closed) {
            break;
        }
        real::RealTransport::Event tick;
        std::unique_lock lock(mutex);
        static_cast<void>(transport.wait(tick, lock, std::chrono::milliseconds(20)));
    }
    server.stop();
    const auto sessions = server.sessions();
    for (std::size_t s = 0; s < sessions.size(); ++s) {
        std::size_t messages = 0;
        for (const auto& transaction : sessions[s].transactions) {
            messages += transaction.data_complete ? 1U : 0U;
        }
        std::printf("session %zu: %zu commands, %zu messages, %zu bytes received\n", s + 1,
                    sessions[s].commands.size(), messages, sessions[s].received.size());
    }
    if (options.record_dir) {
        record_sessions(*options.record_dir, sessions);
        std::printf("recorded %zu sessions in %s\n", sessions.size(), options.record_dir->c_str());
    }
    return 0;
}

}  // namespace faultline::cli
