#include "faultline/conformance/scenario.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "faultline/model/profile.h"
#include "smtp_script_json.h"

namespace faultline::conformance {
namespace {

using nlohmann::json;

// Bounds on every size a file can ask for: generous for real use, small enough that a hostile
// file cannot exhaust memory or time.
constexpr std::int64_t kBytesMax = 64LL * 1024 * 1024;
constexpr std::int64_t kSendAllBytesMax = 1LL << 30;
constexpr std::int64_t kNsMax = 24LL * 3600 * 1'000'000'000;
constexpr std::size_t kStepsMax = 10'000;
constexpr std::size_t kThreadsMax = 64;
constexpr std::size_t kSocketsMax = 16;
constexpr std::size_t kSegmentsMax = 64;
constexpr std::size_t kFaultsMax = 256;
constexpr std::size_t kRecordedStepsMax = 10'000;
constexpr std::size_t kFileBytesMax = 4 * 1024 * 1024;

struct Position {
    std::size_t line = 1;
    std::size_t column = 1;
};

std::string escape_pointer_token(const std::string& token) {
    std::string escaped;
    for (const char character : token) {
        if (character == '~') {
            escaped += "~0";
        } else if (character == '/') {
            escaped += "~1";
        } else {
            escaped += character;
        }
    }
    return escaped;
}

/// Maps each JSON pointer of an already-valid document to the line and column where its value
/// starts. nlohmann/json keeps no positions, so this is a small second scan of the text.
class PositionIndex {
public:
    explicit PositionIndex(const std::string& text) : text_(text) {
        skip_space();
        value("");
    }
    [[nodiscard]] Position at(const std::string& pointer) const {
        auto found = positions_.find(pointer);
        std::string prefix = pointer;
        while (found == positions_.end() && !prefix.empty()) {
            prefix.erase(prefix.rfind('/'));
            found = positions_.find(prefix);
        }
        return found == positions_.end() ? Position{} : found->second;
    }

private:
    void advance() {
        if (text_[offset_] == '\n') {
            ++position_.line;
            position_.column = 1;
        } else {
            ++position_.column;
        }
        ++offset_;
    }
    void skip_space() {
        while (offset_ < text_.size() &&
               (text_[offset_] == ' ' || text_[offset_] == '\n' || text_[offset_] == '\r' ||
                text_[offset_] == '\t')) {
            advance();
        }
    }
    std::string string_token() {
        std::string token;
        advance();  // opening quote
        while (offset_ < text_.size() && text_[offset_] != '"') {
            if (text_[offset_] == '\\') {
                advance();
            }
            if (offset_ < text_.size()) {
                token += text_[offset_];
                advance();
            }
        }
        if (offset_ < text_.size()) {
            advance();  // closing quote
        }
        return token;
    }
    void value(const std::string& pointer) {
        if (offset_ >= text_.size() || depth_ > 512) {
            return;
        }
        positions_.emplace(pointer, position_);
        const char first = text_[offset_];
        if (first == '{') {
            ++depth_;
            advance();
            skip_space();
            while (offset_ < text_.size() && text_[offset_] != '}') {
                const std::string key = string_token();
                skip_space();
                advance();  // ':'
                skip_space();
                value(pointer + "/" + escape_pointer_token(key));
                skip_space();
                if (offset_ < text_.size() && text_[offset_] == ',') {
                    advance();
                    skip_space();
                }
            }
            advance();
            --depth_;
        } else if (first == '[') {
            ++depth_;
            advance();
            skip_space();
            std::size_t index = 0;
            while (offset_ < text_.size() && text_[offset_] != ']') {
                value(pointer + "/" + std::to_string(index++));
                skip_space();
                if (offset_ < text_.size() && text_[offset_] == ',') {
                    advance();
                    skip_space();
                }
            }
            advance();
            --depth_;
        } else if (first == '"') {
            string_token();
        } else {
            while (offset_ < text_.size() && std::string_view(",]} \n\r\t").find(text_[offset_]) ==
                                                 std::string_view::npos) {
                advance();
            }
        }
    }

    const std::string& text_;
    std::size_t offset_ = 0;
    std::size_t depth_ = 0;
    Position position_;
    std::map<std::string, Position> positions_;
};

struct LoadError {
    std::string pointer;
    std::string message;
};

[[noreturn]] void fail(const std::string& pointer, const std::string& message) {
    throw LoadError{pointer, message};
}

const std::map<std::string, std::vector<std::string>>& key_table() {
    static std::map<std::string, std::vector<std::string>> table = {
        {"scenario",
         {"schema_version", "name", "description", "clauses", "profiles", "transports", "seed",
          "network", "sockets", "connect", "peer", "faults", "swarm", "threads", "expect",
          "smtp", "recorded"}},
        {"recorded",
         {"transport", "profile", "faultline", "source", "steps", "completion_order", "schedule"}},
        {"smtp", {"server", "clients"}},
        {"smtp_client",
         {"to", "host", "port", "timeout_ms", "date", "credentials", "enable_ssl",
          "delivery_format"}},
        {"credentials", {"user", "password"}},
        {"mail",
         {"from", "from_display_name", "sender", "to", "cc", "bcc", "subject", "body",
          "body_repeat", "subject_encoding", "body_encoding", "body_transfer_encoding",
          "is_body_html", "headers", "delivery_notification"}},
        {"mail_header", {"name", "value"}},
        {"transports", {"sim", "real"}},
        {"network",
         {"latency_ns", "jitter_ns", "bytes_per_second", "mss_bytes", "send_buffer_bytes",
          "receive_buffer_bytes", "syn_retries", "syn_timeout_ns"}},
        {"peer",
         {"read", "read_after_ns", "read_chunk_bytes", "close_after_bytes", "reset_after_bytes",
          "send_bytes"}},
        {"fault",
         {"kind", "side", "connection", "at_ns", "after_bytes", "on_send", "bytes", "duration_ns",
          "latency_ns", "jitter_ns", "bytes_per_second", "thread", "after_step", "count",
          "interval_ns"}},
        {"thread", {"name", "steps"}},
        {"step",
         {"op", "id", "socket", "target", "overload", "size", "offset", "buffer_length",
          "null_buffer", "null_list", "segments", "callback", "bytes", "chunk", "ns", "how", "to",
          "expect", "callback_expect", "note", "args", "address", "backlog", "count", "wait",
          "client", "message", "mail", "token", "property", "value", "transactions",
          "commands", "source", "cancelled", "cancel"}},
        {"segment", {"array_length", "offset", "count", "null_array"}},
        {"expectation",
         {"throws", "param", "socket_error", "error_code", "returns", "returns_null", "error",
          "completed_synchronously", "callback_before_return", "is_completed", "connected",
          "pending", "args_error", "bytes_transferred", "accept_socket", "completions",
          "clients_connected", "inner", "status_code", "cancelled", "send_error", "delivery",
          "user_state", "failed_recipients", "message_contains", "task_status"}},
        {"global_expectation",
         {"peer_received_bytes", "peer_saw", "accepted", "completions", "smtp_sessions",
          "smtp_delivered", "smtp_commands", "smtp_messages", "smtp_recipients",
          "send_completed"}},
    };
    static const bool merged = [] {
        for (const auto& [kind, keys] : detail::smtp_script_keys()) {
            table[kind] = keys;
        }
        return true;
    }();
    static_cast<void>(merged);
    return table;
}

void check_object(const json& value, const std::string& pointer, const std::string& kind) {
    if (!value.is_object()) {
        fail(pointer, "expected an object");
    }
    const auto& allowed = key_table().at(kind);
    for (const auto& item : value.items()) {
        if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
            fail(pointer + "/" + escape_pointer_token(item.key()),
                 "unknown key \"" + item.key() + "\" in " + kind);
        }
    }
}

std::int64_t get_integer(const json& value, const std::string& pointer, std::int64_t low,
                         std::int64_t high) {
    if (!value.is_number_integer()) {
        fail(pointer, "expected an integer");
    }
    if (value.is_number_unsigned() && value.get<std::uint64_t>() > static_cast<std::uint64_t>(high)) {
        fail(pointer, "must be at most " + std::to_string(high));
    }
    const auto number = value.get<std::int64_t>();
    if (number < low) {
        fail(pointer, "must be at least " + std::to_string(low));
    }
    if (number > high) {
        fail(pointer, "must be at most " + std::to_string(high));
    }
    return number;
}

std::uint64_t get_seed(const json& value, const std::string& pointer) {
    if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<std::int64_t>() >= 0)) {
        fail(pointer, "expected a non-negative integer");
    }
    return value.get<std::uint64_t>();
}

bool get_bool(const json& value, const std::string& pointer) {
    if (!value.is_boolean()) {
        fail(pointer, "expected true or false");
    }
    return value.get<bool>();
}

std::string get_string(const json& value, const std::string& pointer, std::size_t length_max = 4096) {
    if (!value.is_string()) {
        fail(pointer, "expected a string");
    }
    auto text = value.get<std::string>();
    if (text.size() > length_max) {
        fail(pointer, "string longer than " + std::to_string(length_max));
    }
    return text;
}

std::string get_choice(const json& value, const std::string& pointer,
                       std::initializer_list<std::string_view> choices) {
    std::string text = get_string(value, pointer);
    std::string listed;
    for (std::string_view choice : choices) {
        if (text == choice) {
            return text;
        }
        listed += (listed.empty() ? "" : ", ") + std::string(choice);
    }
    fail(pointer, "\"" + text + "\" is not one of: " + listed);
}

model::SocketError get_socket_error(const json& value, const std::string& pointer) {
    const std::string name = get_string(value, pointer);
    const auto error = model::socket_error_from_string(name);
    if (!error) {
        fail(pointer, "unknown SocketError \"" + name + "\"");
    }
    return *error;
}

std::vector<std::string> get_strings(const json& value, const std::string& pointer,
                                     std::size_t count_max, std::size_t length_max = 4096) {
    if (!value.is_array() || value.size() > count_max) {
        fail(pointer, "expected an array of at most " + std::to_string(count_max) + " strings");
    }
    std::vector<std::string> strings;
    for (std::size_t i = 0; i < value.size(); ++i) {
        strings.push_back(get_string(value[i], pointer + "/" + std::to_string(i), length_max));
    }
    return strings;
}

bool is_profile_name(const std::string& name) { return model::profile_by_name(name).has_value(); }

Expectation parse_expectation(const json& value, const std::string& pointer) {
    check_object(value, pointer, "expectation");
    Expectation expectation;
    for (const auto& item : value.items()) {
        const std::string key = item.key();
        const std::string at = pointer + "/" + key;
        const json& field = item.value();
        if (key == "throws") {
            expectation.throws = get_choice(
                field, at,
                {"none", "any", "ArgumentException", "ArgumentNullException",
                 "ArgumentOutOfRangeException", "InvalidOperationException",
                 "ObjectDisposedException", "SocketException", "PlatformNotSupportedException",
                 "NotSupportedException", "LivenessFailure", "FormatException",
                 "SmtpException", "SmtpFailedRecipientException",
                 "SmtpFailedRecipientsException"});
        } else if (key == "param") {
            expectation.param = get_string(field, at);
        } else if (key == "socket_error") {
            expectation.socket_error = get_socket_error(field, at);
        } else if (key == "error_code") {
            expectation.error_code = static_cast<int>(get_integer(field, at, -1, 100000));
        } else if (key == "returns") {
            expectation.returns = get_integer(field, at, 0, kSendAllBytesMax);
        } else if (key == "returns_null") {
            expectation.returns_null = get_bool(field, at);
        } else if (key == "error") {
            expectation.error = get_socket_error(field, at);
        } else if (key == "completed_synchronously") {
            expectation.completed_synchronously = get_bool(field, at);
        } else if (key == "callback_before_return") {
            expectation.callback_before_return = get_bool(field, at);
        } else if (key == "is_completed") {
            expectation.is_completed = get_bool(field, at);
        } else if (key == "connected") {
            expectation.connected = get_bool(field, at);
        } else if (key == "pending") {
            expectation.pending = get_bool(field, at);
        } else if (key == "args_error") {
            expectation.args_error = get_socket_error(field, at);
        } else if (key == "bytes_transferred") {
            expectation.bytes_transferred = static_cast<int>(get_integer(field, at, 0, kBytesMax));
        } else if (key == "accept_socket") {
            expectation.accept_socket =
                get_choice(field, at, {"connected", "unconnected", "null", "supplied"});
        } else if (key == "completions") {
            expectation.completions = static_cast<int>(get_integer(field, at, 0, 1'000'000));
        } else if (key == "clients_connected") {
            expectation.clients_connected = static_cast<int>(get_integer(field, at, 0, 100'000));
        } else if (key == "inner") {
            expectation.inner = get_string(field, at, 64);
        } else if (key == "status_code") {
            expectation.status_code = static_cast<int>(get_integer(field, at, -1, 999));
        } else if (key == "cancelled") {
            expectation.cancelled = get_bool(field, at);
        } else if (key == "send_error") {
            expectation.send_error = get_string(field, at, 64);
        } else if (key == "delivery") {
            expectation.delivery = get_choice(field, at, {"delivered", "not_delivered", "unknown"});
        } else if (key == "user_state") {
            expectation.user_state = get_string(field, at, 256);
        } else if (key == "failed_recipients") {
            expectation.failed_recipients = get_strings(field, at, 1000);
        } else if (key == "message_contains") {
            expectation.message_contains = get_string(field, at, 1024);
        } else if (key == "task_status") {
            expectation.task_status =
                get_choice(field, at, {"ran_to_completion", "canceled", "faulted"});
        }
    }
    return expectation;
}

ExpectationSet parse_alternatives(const json& value, const std::string& pointer) {
    if (value.is_object() && value.contains("any_of")) {
        if (value.size() != 1) {
            fail(pointer, "\"any_of\" must be the only key");
        }
        const json& list = value["any_of"];
        if (!list.is_array() || list.empty() || list.size() > 16) {
            fail(pointer + "/any_of", "expected an array of 1 to 16 expectations");
        }
        ExpectationSet alternatives;
        for (std::size_t i = 0; i < list.size(); ++i) {
            alternatives.push_back(parse_expectation(list[i], pointer + "/any_of/" + std::to_string(i)));
        }
        return alternatives;
    }
    return {parse_expectation(value, pointer)};
}

/// Either one expectation for every profile, or an object keyed by profile names.
ProfileExpectations parse_profile_expectations(const json& value, const std::string& pointer) {
    if (!value.is_object()) {
        fail(pointer, "expected an object");
    }
    ProfileExpectations result;
    bool any_profile_key = false;
    for (const auto& item : value.items()) {
        any_profile_key = any_profile_key || is_profile_name(item.key());
    }
    if (!any_profile_key) {
        result["*"] = parse_alternatives(value, pointer);
        return result;
    }
    for (const auto& item : value.items()) {
        if (!is_profile_name(item.key())) {
            fail(pointer + "/" + escape_pointer_token(item.key()),
                 "mixes profile names with expectation keys");
        }
        result[item.key()] = parse_alternatives(item.value(), pointer + "/" + item.key());
    }
    return result;
}

GlobalExpectation parse_global(const json& value, const std::string& pointer) {
    check_object(value, pointer, "global_expectation");
    GlobalExpectation expectation;
    if (value.contains("peer_received_bytes")) {
        expectation.peer_received_bytes = static_cast<std::uint64_t>(
            get_integer(value["peer_received_bytes"], pointer + "/peer_received_bytes", 0,
                        kSendAllBytesMax));
    }
    if (value.contains("peer_saw")) {
        expectation.peer_saw =
            get_choice(value["peer_saw"], pointer + "/peer_saw", {"eof", "reset", "open"});
    }
    if (value.contains("accepted")) {
        expectation.accepted = static_cast<std::uint64_t>(
            get_integer(value["accepted"], pointer + "/accepted", 0, 1'000'000));
    }
    if (value.contains("completions")) {
        expectation.completions = static_cast<std::uint64_t>(
            get_integer(value["completions"], pointer + "/completions", 0, 1'000'000));
    }
    auto count = [&](const char* key) {
        return static_cast<std::uint64_t>(
            get_integer(value[key], pointer + "/" + key, 0, 1'000'000));
    };
    if (value.contains("smtp_sessions")) {
        expectation.smtp_sessions = count("smtp_sessions");
    }
    if (value.contains("smtp_delivered")) {
        expectation.smtp_delivered = count("smtp_delivered");
    }
    if (value.contains("send_completed")) {
        expectation.send_completed = count("send_completed");
    }
    if (value.contains("smtp_commands")) {
        const json& sessions = value["smtp_commands"];
        if (!sessions.is_array() || sessions.size() > 64) {
            fail(pointer + "/smtp_commands", "expected an array (one per session) of arrays");
        }
        expectation.smtp_commands.emplace();
        for (std::size_t i = 0; i < sessions.size(); ++i) {
            expectation.smtp_commands->push_back(get_strings(
                sessions[i], pointer + "/smtp_commands/" + std::to_string(i), 10'000, 1024));
        }
    }
    if (value.contains("smtp_messages")) {
        expectation.smtp_messages =
            get_strings(value["smtp_messages"], pointer + "/smtp_messages", 1000, kFileBytesMax);
    }
    if (value.contains("smtp_recipients")) {
        expectation.smtp_recipients =
            get_strings(value["smtp_recipients"], pointer + "/smtp_recipients", 10'000, 512);
    }
    return expectation;
}

MailSpec parse_mail(const json& value, const std::string& pointer) {
    check_object(value, pointer, "mail");
    MailSpec mail;
    for (const auto& item : value.items()) {
        const std::string key = item.key();
        const std::string at = pointer + "/" + key;
        const json& field = item.value();
        if (key == "from") {
            mail.from = get_string(field, at, 1024);
        } else if (key == "from_display_name") {
            mail.from_display_name = get_string(field, at, 1024);
        } else if (key == "sender") {
            mail.sender = get_string(field, at, 1024);
        } else if (key == "to") {
            mail.to = get_strings(field, at, 1000, 1024);
        } else if (key == "cc") {
            mail.cc = get_strings(field, at, 1000, 1024);
        } else if (key == "bcc") {
            mail.bcc = get_strings(field, at, 1000, 1024);
        } else if (key == "subject") {
            mail.subject = get_string(field, at, 65536);
        } else if (key == "body") {
            mail.body = get_string(field, at, kFileBytesMax);
        } else if (key == "body_repeat") {
            mail.body_repeat = static_cast<std::uint64_t>(get_integer(field, at, 1, 1'000'000));
        } else if (key == "subject_encoding" || key == "body_encoding") {
            (key == "subject_encoding" ? mail.subject_encoding : mail.body_encoding) =
                get_choice(field, at, {"ascii", "utf-8"});
        } else if (key == "body_transfer_encoding") {
            mail.body_transfer_encoding = get_choice(
                field, at, {"unknown", "seven_bit", "eight_bit", "quoted_printable", "base64"});
        } else if (key == "is_body_html") {
            mail.is_body_html = get_bool(field, at);
        } else if (key == "delivery_notification") {
            if (!field.is_array() || field.size() > 4) {
                fail(at, "expected an array of at most 4 options");
            }
            for (std::size_t i = 0; i < field.size(); ++i) {
                mail.delivery_notification.push_back(
                    get_choice(field[i], at + "/" + std::to_string(i),
                               {"on_success", "on_failure", "delay", "never"}));
            }
        } else if (key == "headers") {
            if (!field.is_array() || field.size() > 100) {
                fail(at, "expected an array of at most 100 headers");
            }
            for (std::size_t i = 0; i < field.size(); ++i) {
                const std::string header_at = at + "/" + std::to_string(i);
                check_object(field[i], header_at, "mail_header");
                if (!field[i].contains("name") || !field[i].contains("value")) {
                    fail(header_at, "a header needs \"name\" and \"value\"");
                }
                mail.headers.emplace_back(get_string(field[i]["name"], header_at + "/name", 256),
                                          get_string(field[i]["value"], header_at + "/value"));
            }
        }
    }
    if (mail.body.size() * mail.body_repeat > static_cast<std::uint64_t>(kBytesMax)) {
        fail(pointer + "/body_repeat", "the body would be larger than " +
                                           std::to_string(kBytesMax) + " bytes");
    }
    return mail;
}

void parse_smtp(const json& value, const std::string& pointer, Scenario& scenario) {
    check_object(value, pointer, "smtp");
    SmtpSpec smtp;
    if (value.contains("server")) {
        try {
            smtp.server = detail::parse_smtp_script(value["server"], pointer + "/server");
        } catch (const detail::SmtpScriptError& error) {
            fail(error.pointer, error.message);
        }
    }
    if (value.contains("clients")) {
        const json& clients = value["clients"];
        if (!clients.is_object() || clients.empty() || clients.size() > kSocketsMax) {
            fail(pointer + "/clients",
                 "expected an object of 1 to " + std::to_string(kSocketsMax) + " clients");
        }
        for (const auto& item : clients.items()) {
            const std::string at = pointer + "/clients/" + escape_pointer_token(item.key());
            check_object(item.value(), at, "smtp_client");
            SmtpClientSpec client;
            const json& field = item.value();
            if (field.contains("to")) {
                client.to = get_choice(field["to"], at + "/to",
                                       {"server", "refused", "unreachable", "silent"});
            }
            if (field.contains("host")) {
                if (field["host"].is_null()) {
                    client.host_null = true;
                } else {
                    client.host = get_string(field["host"], at + "/host", 255);
                }
            }
            if (field.contains("port")) {
                client.port = static_cast<int>(get_integer(field["port"], at + "/port", -1, 1'000'000));
            }
            if (field.contains("timeout_ms")) {
                client.timeout_ms = static_cast<int>(
                    get_integer(field["timeout_ms"], at + "/timeout_ms", 0, 86'400'000));
            }
            if (field.contains("date")) {
                client.date = get_string(field["date"], at + "/date", 128);
                if (client.date->empty() || client.date->find_first_of("\r\n") != std::string::npos) {
                    fail(at + "/date", "a date is non-empty and holds no CR or LF");
                }
            }
            if (field.contains("credentials")) {
                check_object(field["credentials"], at + "/credentials", "credentials");
                if (!field["credentials"].contains("user") ||
                    !field["credentials"].contains("password")) {
                    fail(at + "/credentials", "credentials need \"user\" and \"password\"");
                }
                client.credentials.emplace(
                    get_string(field["credentials"]["user"], at + "/credentials/user", 256),
                    get_string(field["credentials"]["password"], at + "/credentials/password", 256));
            }
            if (field.contains("enable_ssl")) {
                client.enable_ssl = get_bool(field["enable_ssl"], at + "/enable_ssl");
            }
            if (field.contains("delivery_format")) {
                client.international = get_choice(field["delivery_format"], at + "/delivery_format",
                                                  {"seven_bit", "international"}) == "international";
            }
            smtp.clients[item.key()] = std::move(client);
        }
    } else {
        smtp.clients["client"] = SmtpClientSpec{};
    }
    scenario.smtp = std::move(smtp);
}

Step parse_step(const json& value, const std::string& pointer) {
    check_object(value, pointer, "step");
    Step step;
    step.pointer = pointer;
    if (!value.contains("op")) {
        fail(pointer, "missing \"op\"");
    }
    static const std::map<std::string, StepOp> kOps = {
        {"begin_send", StepOp::begin_send},   {"end_send", StepOp::end_send},
        {"begin_receive", StepOp::begin_receive}, {"end_receive", StepOp::end_receive},
        {"send_all", StepOp::send_all},       {"wait_completed", StepOp::wait_completed},
        {"wait_peer", StepOp::wait_peer},     {"sleep", StepOp::sleep},
        {"shutdown", StepOp::shutdown},       {"dispose", StepOp::dispose},
        {"check", StepOp::check},             {"connect", StepOp::connect},
        {"bind", StepOp::bind},               {"listen", StepOp::listen},
        {"args_new", StepOp::args_new},       {"args_set_buffer", StepOp::args_set_buffer},
        {"args_set_buffer_list", StepOp::args_set_buffer_list},
        {"args_set_accept_socket", StepOp::args_set_accept_socket},
        {"args_dispose", StepOp::args_dispose}, {"accept_async", StepOp::accept_async},
        {"wait_args", StepOp::wait_args},     {"client_connect", StepOp::client_connect},
        {"begin_accept", StepOp::begin_accept}, {"end_accept", StepOp::end_accept},
        {"mail_new", StepOp::mail_new},       {"send_async", StepOp::send_async},
        {"send", StepOp::send},               {"send_async_cancel", StepOp::send_async_cancel},
        {"wait_send_completed", StepOp::wait_send_completed},
        {"client_dispose", StepOp::client_dispose}, {"client_set", StepOp::client_set},
        {"wait_server", StepOp::wait_server},
        {"send_mail_async", StepOp::send_mail_async},
        {"token_source_new", StepOp::token_source_new},
        {"token_cancel", StepOp::token_cancel}, {"wait_task", StepOp::wait_task},
    };
    const std::string op = get_string(value["op"], pointer + "/op");
    const auto found = kOps.find(op);
    if (found == kOps.end()) {
        fail(pointer + "/op", "unknown op \"" + op + "\"");
    }
    step.op = found->second;
    for (const auto& item : value.items()) {
        const std::string key = item.key();
        const std::string at = pointer + "/" + key;
        const json& field = item.value();
        if (key == "id") {
            step.id = get_string(field, at, 64);
        } else if (key == "socket") {
            step.socket = get_string(field, at, 64);
        } else if (key == "target") {
            step.target = get_string(field, at, 64);
        } else if (key == "overload") {
            step.overload = get_choice(field, at, {"plain", "out", "list", "list_out"});
        } else if (key == "size") {
            step.size = static_cast<int>(get_integer(field, at, -1000, kBytesMax));
        } else if (key == "offset") {
            step.offset = static_cast<int>(get_integer(field, at, -1000, kBytesMax));
        } else if (key == "buffer_length") {
            step.buffer_length = static_cast<int>(get_integer(field, at, 0, kBytesMax));
        } else if (key == "null_buffer") {
            step.null_buffer = get_bool(field, at);
        } else if (key == "null_list") {
            step.null_list = get_bool(field, at);
        } else if (key == "segments") {
            if (!field.is_array() || field.size() > kSegmentsMax) {
                fail(at, "expected an array of at most " + std::to_string(kSegmentsMax) +
                             " segments");
            }
            for (std::size_t i = 0; i < field.size(); ++i) {
                const std::string segment_at = at + "/" + std::to_string(i);
                check_object(field[i], segment_at, "segment");
                Segment segment;
                const json& item_value = field[i];
                if (item_value.contains("array_length")) {
                    segment.array_length = static_cast<int>(get_integer(
                        item_value["array_length"], segment_at + "/array_length", 0, kBytesMax));
                }
                if (item_value.contains("offset")) {
                    segment.offset = static_cast<int>(get_integer(
                        item_value["offset"], segment_at + "/offset", -1000, kBytesMax));
                }
                if (item_value.contains("count")) {
                    segment.count = static_cast<int>(get_integer(
                        item_value["count"], segment_at + "/count", -1000, kBytesMax));
                }
                if (item_value.contains("null_array")) {
                    segment.null_array =
                        get_bool(item_value["null_array"], segment_at + "/null_array");
                }
                step.segments.push_back(segment);
            }
        } else if (key == "callback") {
            step.callback = get_choice(field, at, {"none", "record", "end", "end_out"});
        } else if (key == "bytes") {
            step.bytes = static_cast<std::uint64_t>(get_integer(field, at, 0, kSendAllBytesMax));
        } else if (key == "chunk") {
            step.chunk = static_cast<int>(get_integer(field, at, 0, kBytesMax));
        } else if (key == "ns") {
            step.ns = static_cast<std::uint64_t>(get_integer(field, at, 0, kNsMax));
        } else if (key == "how") {
            step.how = get_choice(field, at, {"send", "receive", "both"});
        } else if (key == "to") {
            step.to = get_choice(field, at, {"peer", "refused", "unreachable", "silent"});
        } else if (key == "expect") {
            step.expect = parse_profile_expectations(field, at);
        } else if (key == "callback_expect") {
            step.callback_expect = parse_profile_expectations(field, at);
        } else if (key == "note") {
            static_cast<void>(get_string(field, at));
        } else if (key == "args") {
            step.args = get_string(field, at, 64);
        } else if (key == "address") {
            step.address = get_choice(field, at, {"127.0.0.1", "0.0.0.0"});
        } else if (key == "backlog") {
            step.backlog = static_cast<int>(get_integer(field, at, -1, 65535));
        } else if (key == "count") {
            step.count = static_cast<int>(get_integer(field, at, 1, 1000));
        } else if (key == "wait") {
            step.wait = get_bool(field, at);
        } else if (key == "client") {
            step.client = get_string(field, at, 64);
        } else if (key == "message") {
            step.message = get_string(field, at, 64);
        } else if (key == "mail") {
            step.mail = std::make_shared<MailSpec>(parse_mail(field, at));
        } else if (key == "token") {
            step.token = get_string(field, at, 256);
        } else if (key == "property") {
            step.property = get_choice(field, at, {"host", "port", "timeout"});
        } else if (key == "value") {
            if (!field.is_null() && !field.is_string() && !field.is_number_integer()) {
                fail(at, "expected a string, an integer or null");
            }
            if (field.is_string()) {
                static_cast<void>(get_string(field, at, 1024));
            }
            if (field.is_number_integer()) {
                static_cast<void>(get_integer(field, at, -1'000'000'000, 1'000'000'000));
            }
            step.value = field;
        } else if (key == "transactions") {
            step.transactions = static_cast<std::uint64_t>(get_integer(field, at, 0, 1'000'000));
        } else if (key == "commands") {
            step.commands = static_cast<std::uint64_t>(get_integer(field, at, 0, 1'000'000));
        } else if (key == "source") {
            step.source = get_string(field, at, 64);
        } else if (key == "cancelled") {
            step.cancelled = get_bool(field, at);
        } else if (key == "cancel") {
            step.cancel = get_string(field, at, 64);
        }
    }
    const bool smtp_op = step.op >= StepOp::mail_new;
    if (smtp_op && step.op != StepOp::wait_server && step.op != StepOp::client_set &&
        step.op != StepOp::client_dispose && step.op != StepOp::send_async_cancel &&
        step.op != StepOp::wait_send_completed && step.op != StepOp::token_source_new &&
        step.op != StepOp::token_cancel && step.op != StepOp::wait_task && step.message.empty()) {
        fail(pointer, "this step needs \"message\"");
    }
    if (step.op == StepOp::send_mail_async && step.id.empty()) {
        fail(pointer, "send_mail_async needs an \"id\" naming its task");
    }
    const bool names_source =
        step.op == StepOp::token_source_new || step.op == StepOp::token_cancel;
    if (names_source && step.source.empty()) {
        fail(pointer, "this step needs \"source\"");
    }
    if (!names_source && !step.source.empty()) {
        fail(pointer + "/source", "only token_source_new and token_cancel take \"source\"");
    }
    if (step.op != StepOp::token_source_new && step.cancelled) {
        fail(pointer + "/cancelled", "only token_source_new takes \"cancelled\"");
    }
    if (step.op != StepOp::send_mail_async && !step.cancel.empty()) {
        fail(pointer + "/cancel", "only send_mail_async takes \"cancel\"");
    }
    if (step.op == StepOp::wait_task && step.target.empty()) {
        fail(pointer, "wait_task needs a \"target\" (a send_mail_async id)");
    }
    if (step.op == StepOp::mail_new && !step.mail) {
        fail(pointer, "mail_new needs \"mail\"");
    }
    if (step.op != StepOp::mail_new && step.mail) {
        fail(pointer + "/mail", "only mail_new takes \"mail\"");
    }
    if (step.op == StepOp::client_set && step.property.empty()) {
        fail(pointer, "client_set needs \"property\" and \"value\"");
    }
    if (step.op == StepOp::wait_server && !step.transactions && !step.commands) {
        fail(pointer, "wait_server needs \"transactions\" or \"commands\"");
    }
    const bool begins = step.op == StepOp::begin_send || step.op == StepOp::begin_receive;
    if (begins && step.id.empty()) {
        fail(pointer, "begin steps need an \"id\"");
    }
    const bool uses_args = step.op == StepOp::args_new || step.op == StepOp::args_set_buffer ||
                           step.op == StepOp::args_set_buffer_list ||
                           step.op == StepOp::args_set_accept_socket ||
                           step.op == StepOp::args_dispose || step.op == StepOp::wait_args;
    if (uses_args && step.args.empty()) {
        fail(pointer, "this step needs \"args\"");
    }
    if (step.op == StepOp::begin_accept && step.id.empty()) {
        fail(pointer, "begin steps need an \"id\"");
    }
    const bool targets = step.op == StepOp::end_send || step.op == StepOp::end_receive ||
                         step.op == StepOp::wait_completed || step.op == StepOp::end_accept ||
                         step.op == StepOp::args_set_accept_socket;
    if (targets && step.target.empty()) {
        fail(pointer, "this step needs a \"target\"");
    }
    if (step.op == StepOp::send_all && step.bytes == 0) {
        fail(pointer, "send_all needs \"bytes\" > 0");
    }
    const bool list_overload = step.overload == "list" || step.overload == "list_out";
    if ((list_overload && step.op != StepOp::begin_send) ||
        (step.overload == "out" && step.op != StepOp::begin_send && step.op != StepOp::end_send)) {
        fail(pointer + "/overload", "\"" + step.overload + "\" does not exist for this op");
    }
    if (!step.callback_expect.empty() && step.callback != "end" && step.callback != "end_out") {
        fail(pointer + "/callback_expect", "needs \"callback\": \"end\" or \"end_out\"");
    }
    return step;
}

sim::Side get_side(const json& value, const std::string& pointer) {
    return get_choice(value, pointer, {"client", "server"}) == "client" ? sim::Side::client
                                                                       : sim::Side::server;
}

void parse_fault(const json& value, const std::string& pointer, Scenario& scenario) {
    check_object(value, pointer, "fault");
    if (!value.contains("kind")) {
        fail(pointer, "missing \"kind\"");
    }
    const std::string kind =
        get_choice(value["kind"], pointer + "/kind",
                   {"partial_send", "reset", "close", "stall", "latency", "bandwidth",
                    "thread_exit", "half_open_scan", "would_block"});
    auto integer = [&](const char* key, std::int64_t low, std::int64_t high) {
        return get_integer(value[key], pointer + "/" + key, low, high);
    };
    if (kind == "thread_exit") {
        if (!value.contains("thread")) {
            fail(pointer, "thread_exit needs \"thread\"");
        }
        const std::string name = get_string(value["thread"], pointer + "/thread");
        auto thread = std::find_if(scenario.threads.begin(), scenario.threads.end(),
                                   [&](const ThreadSpec& spec) { return spec.name == name; });
        if (thread == scenario.threads.end()) {
            fail(pointer + "/thread", "no thread named \"" + name + "\"");
        }
        if (value.contains("after_step") == value.contains("at_ns")) {
            fail(pointer, "thread_exit needs exactly one of \"after_step\" and \"at_ns\"");
        }
        if (value.contains("after_step")) {
            thread->exit_after_step = get_string(value["after_step"], pointer + "/after_step");
            const bool exists = std::any_of(thread->steps.begin(), thread->steps.end(),
                                            [&](const Step& step) {
                                                return step.id == *thread->exit_after_step;
                                            });
            if (!exists) {
                fail(pointer + "/after_step", "no step with that id in thread \"" + name + "\"");
            }
        } else {
            thread->exit_at_ns = static_cast<std::uint64_t>(integer("at_ns", 0, kNsMax));
        }
        for (const char* key : {"side", "connection", "after_bytes", "on_send", "bytes",
                                "duration_ns", "latency_ns", "jitter_ns", "bytes_per_second",
                                "count", "interval_ns"}) {
            if (value.contains(key)) {
                fail(pointer + "/" + key, "not used by thread_exit");
            }
        }
        return;
    }
    sim::Fault fault;
    static const std::map<std::string, sim::FaultKind> kKinds = {
        {"partial_send", sim::FaultKind::partial_send}, {"reset", sim::FaultKind::reset},
        {"close", sim::FaultKind::close},               {"stall", sim::FaultKind::stall},
        {"latency", sim::FaultKind::latency},           {"bandwidth", sim::FaultKind::bandwidth},
        {"half_open_scan", sim::FaultKind::half_open_scan},
        {"would_block", sim::FaultKind::would_block}};
    fault.kind = kKinds.at(kind);
    if (value.contains("thread") || value.contains("after_step")) {
        fail(pointer, "\"thread\"/\"after_step\" belong to thread_exit");
    }
    if (value.contains("side")) {
        fault.side = get_side(value["side"], pointer + "/side");
    }
    if (value.contains("connection")) {
        fault.connection = static_cast<std::uint32_t>(integer("connection", 0, 1'000'000));
    }
    if (value.contains("at_ns")) {
        fault.at = model::Duration(integer("at_ns", 0, kNsMax));
    }
    if (value.contains("after_bytes")) {
        fault.after_bytes = static_cast<std::uint64_t>(integer("after_bytes", 0, kSendAllBytesMax));
    }
    if (value.contains("on_send")) {
        fault.on_send = static_cast<std::uint64_t>(integer("on_send", 1, 1'000'000'000));
    }
    if (value.contains("bytes")) {
        fault.bytes = static_cast<std::uint64_t>(integer("bytes", 1, kBytesMax));
    }
    if (value.contains("duration_ns")) {
        fault.duration = model::Duration(integer("duration_ns", 1, kNsMax));
    }
    if (value.contains("latency_ns")) {
        fault.latency = model::Duration(integer("latency_ns", 0, 3'600'000'000'000LL));
    }
    if (value.contains("jitter_ns")) {
        fault.jitter = model::Duration(integer("jitter_ns", 0, 3'600'000'000'000LL));
    }
    if (value.contains("bytes_per_second")) {
        fault.bytes_per_second =
            static_cast<std::uint64_t>(integer("bytes_per_second", 0, 1'000'000'000'000LL));
    }
    if (value.contains("count")) {
        fault.count = static_cast<std::uint64_t>(integer("count", 1, 100'000));
    }
    if (value.contains("interval_ns")) {
        fault.interval = model::Duration(integer("interval_ns", 0, 3'600'000'000'000LL));
    }
    if (fault.kind != sim::FaultKind::half_open_scan &&
        (value.contains("count") || value.contains("interval_ns"))) {
        fail(pointer, "\"count\"/\"interval_ns\" belong to half_open_scan");
    }
    switch (fault.kind) {
        case sim::FaultKind::partial_send:
            if (!value.contains("bytes")) {
                fail(pointer, "partial_send needs \"bytes\"");
            }
            if (fault.at || fault.after_bytes) {
                fail(pointer, "partial_send is triggered by \"on_send\" (or every send)");
            }
            break;
        case sim::FaultKind::would_block:
            if (!fault.on_send || fault.at || fault.after_bytes || value.contains("bytes")) {
                fail(pointer, "would_block needs \"on_send\" and nothing else to trigger it");
            }
            break;
        case sim::FaultKind::reset:
            if (static_cast<int>(fault.at.has_value()) + static_cast<int>(fault.after_bytes.has_value()) +
                    static_cast<int>(fault.on_send.has_value()) != 1) {
                fail(pointer, "reset needs exactly one of \"at_ns\", \"after_bytes\", \"on_send\"");
            }
            break;
        case sim::FaultKind::close:
        case sim::FaultKind::stall:
            if (!fault.at) {
                fail(pointer, kind + " needs \"at_ns\"");
            }
            break;
        case sim::FaultKind::half_open_scan:
            if (!fault.at) {
                fail(pointer, "half_open_scan needs \"at_ns\"");
            }
            break;
        case sim::FaultKind::latency:
        case sim::FaultKind::bandwidth: break;
    }
    scenario.faults.push_back(fault);
}

void parse_network(const json& value, const std::string& pointer, sim::NetworkConfig& network) {
    check_object(value, pointer, "network");
    auto integer = [&](const char* key, std::int64_t low, std::int64_t high) {
        return get_integer(value[key], pointer + "/" + key, low, high);
    };
    if (value.contains("latency_ns")) {
        network.latency = model::Duration(integer("latency_ns", 0, 3'600'000'000'000LL));
    }
    if (value.contains("jitter_ns")) {
        network.jitter = model::Duration(integer("jitter_ns", 0, 3'600'000'000'000LL));
    }
    if (value.contains("bytes_per_second")) {
        network.bytes_per_second =
            static_cast<std::uint64_t>(integer("bytes_per_second", 0, 1'000'000'000'000LL));
    }
    if (value.contains("mss_bytes")) {
        network.mss_bytes = static_cast<std::size_t>(integer("mss_bytes", 1, 65535));
    }
    if (value.contains("send_buffer_bytes")) {
        network.send_buffer_bytes = static_cast<std::size_t>(integer("send_buffer_bytes", 1, kBytesMax));
    }
    if (value.contains("receive_buffer_bytes")) {
        network.receive_buffer_bytes =
            static_cast<std::size_t>(integer("receive_buffer_bytes", 1, kBytesMax));
    }
    if (value.contains("syn_retries")) {
        network.syn_retries = static_cast<int>(integer("syn_retries", 0, 10));
    }
    if (value.contains("syn_timeout_ns")) {
        network.syn_timeout = model::Duration(integer("syn_timeout_ns", 1, 60'000'000'000LL));
    }
}

void parse_peer(const json& value, const std::string& pointer, PeerSpec& peer) {
    check_object(value, pointer, "peer");
    auto integer = [&](const char* key, std::int64_t low, std::int64_t high) {
        return static_cast<std::uint64_t>(get_integer(value[key], pointer + "/" + key, low, high));
    };
    if (value.contains("read")) {
        peer.read = get_bool(value["read"], pointer + "/read");
    }
    if (value.contains("read_after_ns")) {
        peer.read_after_ns = integer("read_after_ns", 0, kNsMax);
    }
    if (value.contains("read_chunk_bytes")) {
        peer.read_chunk_bytes = integer("read_chunk_bytes", 1, kBytesMax);
    }
    if (value.contains("close_after_bytes")) {
        peer.close_after_bytes = integer("close_after_bytes", 0, kSendAllBytesMax);
    }
    if (value.contains("reset_after_bytes")) {
        peer.reset_after_bytes = integer("reset_after_bytes", 0, kSendAllBytesMax);
    }
    if (value.contains("send_bytes")) {
        peer.send_bytes = integer("send_bytes", 0, kBytesMax);
    }
}

/// SMTP steps need the "smtp" section, an existing client and a message some mail_new makes.
void check_smtp_references(Scenario& scenario, Step& step, const std::set<std::string>& messages) {
    if (step.op < StepOp::mail_new) {
        return;
    }
    if (!scenario.smtp) {
        fail(step.pointer + "/op", "SMTP steps need the \"smtp\" section");
    }
    if (step.client.empty()) {
        step.client = scenario.smtp->clients.begin()->first;
    }
    if (scenario.smtp->clients.count(step.client) == 0) {
        fail(step.pointer + "/client", "no client named \"" + step.client + "\"");
    }
    const bool sends = step.op == StepOp::send || step.op == StepOp::send_async ||
                       step.op == StepOp::send_mail_async;
    if (sends && step.message != "null" && messages.count(step.message) == 0) {
        fail(step.pointer + "/message", "no mail_new creates \"" + step.message + "\"");
    }
}

Recording parse_recording(const json& value, const std::string& pointer) {
    check_object(value, pointer, "recorded");
    for (const char* required : {"profile", "steps"}) {
        if (!value.contains(required)) {
            fail(pointer, std::string("missing required key \"") + required + "\"");
        }
    }
    Recording recording;
    if (value.contains("transport")) {
        recording.transport = get_choice(value["transport"], pointer + "/transport", {"real"});
    }
    recording.profile =
        get_choice(value["profile"], pointer + "/profile", {"documented", "dotnet-unix"});
    if (value.contains("faultline")) {
        recording.faultline = get_string(value["faultline"], pointer + "/faultline", 64);
    }
    if (value.contains("source")) {
        recording.source = get_string(value["source"], pointer + "/source", 1024);
    }
    const json& steps = value["steps"];
    if (!steps.is_object() || steps.size() > kRecordedStepsMax) {
        fail(pointer + "/steps", "expected an object of at most " +
                                     std::to_string(kRecordedStepsMax) + " step observations");
    }
    for (const auto& item : steps.items()) {
        const std::string at = pointer + "/steps/" + escape_pointer_token(item.key());
        if (item.key().rfind("/threads/", 0) != 0) {
            fail(at, "keys are JSON pointers of steps, like /threads/0/steps/1");
        }
        recording.steps[item.key()] = parse_expectation(item.value(), at);
    }
    if (value.contains("completion_order")) {
        recording.completion_order = get_strings(value["completion_order"],
                                                 pointer + "/completion_order", kRecordedStepsMax);
    }
    if (value.contains("schedule")) {
        recording.schedule = get_strings(value["schedule"], pointer + "/schedule",
                                         2 * kRecordedStepsMax);
        for (std::size_t i = 0; i < recording.schedule->size(); ++i) {
            const std::string& event = (*recording.schedule)[i];
            if (event.size() < 2 || (event[0] != '+' && event[0] != '-')) {
                fail(pointer + "/schedule/" + std::to_string(i),
                     "expected \"+\" or \"-\" and a step pointer");
            }
        }
    }
    return recording;
}

Scenario parse_scenario(const json& root, const std::string& path) {
    check_object(root, "", "scenario");
    Scenario scenario;
    scenario.path = path;
    for (const char* required : {"schema_version", "name", "clauses", "threads"}) {
        if (!root.contains(required)) {
            fail("", std::string("missing required key \"") + required + "\"");
        }
    }
    if (get_integer(root["schema_version"], "/schema_version", 1, 1) != 1) {
        fail("/schema_version", "only schema_version 1 is supported");
    }
    scenario.name = get_string(root["name"], "/name", 128);
    const std::string stem = std::filesystem::path(path).stem().string();
    if (!path.empty() && stem != scenario.name) {
        fail("/name", "must equal the file name stem \"" + stem + "\"");
    }
    if (root.contains("description")) {
        scenario.description = get_string(root["description"], "/description", 4096);
    }
    const json& clauses = root["clauses"];
    if (!clauses.is_array() || clauses.empty() || clauses.size() > 64) {
        fail("/clauses", "expected an array of 1 to 64 clause ids");
    }
    for (std::size_t i = 0; i < clauses.size(); ++i) {
        const std::string at = "/clauses/" + std::to_string(i);
        const std::string clause = get_string(clauses[i], at, 16);
        const bool well_formed = clause.size() >= 3 && std::string("SAMWPT").find(clause[0]) !=
                                                           std::string::npos &&
                                 clause[1] == '-' &&
                                 std::all_of(clause.begin() + 2, clause.end(),
                                             [](char c) { return c >= '0' && c <= '9'; });
        if (!well_formed) {
            fail(at, "\"" + clause + "\" is not a clause id like S-9");
        }
        scenario.clauses.push_back(clause);
    }
    if (root.contains("profiles")) {
        const json& profiles = root["profiles"];
        if (!profiles.is_array() || profiles.empty() || profiles.size() > 2) {
            fail("/profiles", "expected an array of profile names");
        }
        for (std::size_t i = 0; i < profiles.size(); ++i) {
            scenario.profiles.push_back(
                get_choice(profiles[i], "/profiles/" + std::to_string(i), {"documented", "dotnet-unix"}));
        }
    } else {
        scenario.profiles = {"documented", "dotnet-unix"};
    }
    if (root.contains("transports")) {
        const json& transports = root["transports"];
        check_object(transports, "/transports", "transports");
        for (const char* name : {"sim", "real"}) {
            if (!transports.contains(name)) {
                continue;
            }
            const json& value = transports[name];
            const std::string at = std::string("/transports/") + name;
            std::optional<std::string> reason;
            if (value.is_string()) {
                reason = get_string(value, at, 1024);
                if (reason->empty()) {
                    fail(at, "a not-applicable reason must not be empty");
                }
            } else if (!get_bool(value, at)) {
                fail(at, "use a string to say why this transport does not apply");
            }
            (std::string(name) == "sim" ? scenario.sim_not_applicable
                                        : scenario.real_not_applicable) = reason;
        }
    }
    if (root.contains("seed")) {
        scenario.seed = get_seed(root["seed"], "/seed");
    }
    if (root.contains("network")) {
        parse_network(root["network"], "/network", scenario.network);
        scenario.network_given = true;
    }
    if (root.contains("sockets")) {
        const json& sockets = root["sockets"];
        if (!sockets.is_array() || sockets.empty() || sockets.size() > kSocketsMax) {
            fail("/sockets", "expected an array of 1 to " + std::to_string(kSocketsMax) + " names");
        }
        for (std::size_t i = 0; i < sockets.size(); ++i) {
            scenario.sockets.push_back(get_string(sockets[i], "/sockets/" + std::to_string(i), 64));
        }
    } else {
        scenario.sockets = {"client"};
    }
    if (root.contains("connect")) {
        scenario.connect = get_choice(root["connect"], "/connect", {"peer", "none"});
    }
    if (root.contains("peer")) {
        parse_peer(root["peer"], "/peer", scenario.peer);
    }
    if (root.contains("swarm")) {
        scenario.swarm = get_bool(root["swarm"], "/swarm");
    }
    if (root.contains("smtp")) {
        parse_smtp(root["smtp"], "/smtp", scenario);
        if (!root.contains("connect")) {
            scenario.connect = "none";  // the clients connect by themselves
        }
    }
    const json& threads = root["threads"];
    if (!threads.is_array() || threads.empty() || threads.size() > kThreadsMax) {
        fail("/threads", "expected an array of 1 to " + std::to_string(kThreadsMax) + " threads");
    }
    std::set<std::string> ids;
    for (std::size_t t = 0; t < threads.size(); ++t) {
        const std::string at = "/threads/" + std::to_string(t);
        check_object(threads[t], at, "thread");
        ThreadSpec spec;
        if (!threads[t].contains("name") || !threads[t].contains("steps")) {
            fail(at, "a thread needs \"name\" and \"steps\"");
        }
        spec.name = get_string(threads[t]["name"], at + "/name", 64);
        const json& steps = threads[t]["steps"];
        if (!steps.is_array() || steps.size() > kStepsMax) {
            fail(at + "/steps", "expected an array of at most " + std::to_string(kStepsMax) + " steps");
        }
        for (std::size_t s = 0; s < steps.size(); ++s) {
            Step step = parse_step(steps[s], at + "/steps/" + std::to_string(s));
            if (step.socket.empty()) {
                step.socket = scenario.sockets.front();
            }
            if (std::find(scenario.sockets.begin(), scenario.sockets.end(), step.socket) ==
                scenario.sockets.end()) {
                fail(step.pointer + "/socket", "no socket named \"" + step.socket + "\"");
            }
            if (!step.id.empty() && !ids.insert(step.id).second) {
                fail(step.pointer + "/id", "duplicate id \"" + step.id + "\"");
            }
            spec.steps.push_back(std::move(step));
        }
        for (const ThreadSpec& other : scenario.threads) {
            if (other.name == spec.name) {
                fail(at + "/name", "duplicate thread name \"" + spec.name + "\"");
            }
        }
        scenario.threads.push_back(std::move(spec));
    }
    std::set<std::string> args_names;
    std::set<std::string> messages;
    std::set<std::string> sources;  // CancellationTokenSources (M-10)
    std::set<std::string> tasks;    // send_mail_async ids
    for (const ThreadSpec& thread : scenario.threads) {
        for (const Step& step : thread.steps) {
            if (step.op == StepOp::args_new) {
                args_names.insert(step.args);
            }
            if (step.op == StepOp::mail_new) {
                messages.insert(step.message);
            }
            if (step.op == StepOp::token_source_new) {
                sources.insert(step.source);
            }
            if (step.op == StepOp::send_mail_async) {
                tasks.insert(step.id);
            }
        }
    }
    for (ThreadSpec& thread : scenario.threads) {
        for (Step& step : thread.steps) {
            if (step.op == StepOp::args_set_accept_socket) {
                if (step.target != "null" &&
                    std::find(scenario.sockets.begin(), scenario.sockets.end(), step.target) ==
                        scenario.sockets.end()) {
                    fail(step.pointer + "/target", "no socket named \"" + step.target + "\"");
                }
            } else if (!step.target.empty() && step.target != "null" &&
                       step.target != "foreign" && ids.count(step.target) == 0) {
                fail(step.pointer + "/target", "no operation with id \"" + step.target + "\"");
            }
            if (!step.args.empty() && step.args != "null" && args_names.count(step.args) == 0) {
                fail(step.pointer + "/args", "no args_new creates \"" + step.args + "\"");
            }
            if ((step.op == StepOp::accept_async) && step.args.empty()) {
                fail(step.pointer, "accept_async needs \"args\"");
            }
            check_smtp_references(scenario, step, messages);
            if (step.op == StepOp::token_cancel && sources.count(step.source) == 0) {
                fail(step.pointer + "/source",
                     "no token_source_new creates \"" + step.source + "\"");
            }
            if (!step.cancel.empty() && sources.count(step.cancel) == 0) {
                fail(step.pointer + "/cancel",
                     "no token_source_new creates \"" + step.cancel + "\"");
            }
            if (step.op == StepOp::wait_task && tasks.count(step.target) == 0) {
                fail(step.pointer + "/target",
                     "no send_mail_async has id \"" + step.target + "\"");
            }
        }
    }
    if (root.contains("faults")) {
        const json& faults = root["faults"];
        if (!faults.is_array() || faults.size() > kFaultsMax) {
            fail("/faults", "expected an array of at most " + std::to_string(kFaultsMax) + " faults");
        }
        for (std::size_t i = 0; i < faults.size(); ++i) {
            parse_fault(faults[i], "/faults/" + std::to_string(i), scenario);
        }
    }
    if (root.contains("expect")) {
        const json& expect = root["expect"];
        if (!expect.is_object()) {
            fail("/expect", "expected an object");
        }
        bool by_profile = false;
        for (const auto& item : expect.items()) {
            by_profile = by_profile || is_profile_name(item.key());
        }
        if (by_profile) {
            for (const auto& item : expect.items()) {
                if (!is_profile_name(item.key())) {
                    fail("/expect/" + item.key(), "mixes profile names with expectation keys");
                }
                scenario.expect[item.key()] = parse_global(item.value(), "/expect/" + item.key());
            }
        } else {
            scenario.expect["*"] = parse_global(expect, "/expect");
        }
    }
    if (root.contains("recorded")) {
        scenario.recorded = parse_recording(root["recorded"], "/recorded");
        if (std::find(scenario.profiles.begin(), scenario.profiles.end(),
                      scenario.recorded->profile) == scenario.profiles.end()) {
            fail("/recorded/profile", "the recorded profile is not among the scenario's profiles");
        }
        std::set<std::string> pointers;
        for (const ThreadSpec& thread : scenario.threads) {
            for (const Step& step : thread.steps) {
                pointers.insert(step.pointer);
                pointers.insert(step.pointer + "/callback_expect");
            }
        }
        if (scenario.recorded->schedule) {
            for (std::size_t i = 0; i < scenario.recorded->schedule->size(); ++i) {
                const std::string step = (*scenario.recorded->schedule)[i].substr(1);
                if (pointers.count(step) == 0 || step.find("/callback_expect") != std::string::npos) {
                    fail("/recorded/schedule/" + std::to_string(i), "no step at " + step);
                }
            }
        }
        for (const auto& [pointer, expectation] : scenario.recorded->steps) {
            static_cast<void>(expectation);
            if (pointers.count(pointer) == 0) {
                fail("/recorded/steps/" + escape_pointer_token(pointer), "no step at " + pointer);
            }
        }
    }
    return scenario;
}

}  // namespace

LoadResult load_scenario_text(const std::string& path, const std::string& text) {
    const std::string shown = path.empty() ? std::string("<scenario>") : path;
    if (text.size() > kFileBytesMax) {
        return shown + ":1:1: (file): larger than " + std::to_string(kFileBytesMax) + " bytes";
    }
    json root;
    try {
        root = json::parse(text);
    } catch (const json::parse_error& error) {
        // Turn the byte offset into a line and column.
        std::size_t line = 1;
        std::size_t column = 1;
        const std::size_t end = std::min<std::size_t>(error.byte == 0 ? 0 : error.byte - 1, text.size());
        for (std::size_t i = 0; i < end; ++i) {
            if (text[i] == '\n') {
                ++line;
                column = 1;
            } else {
                ++column;
            }
        }
        std::string message = error.what();
        const auto cut = message.find("syntax error");
        if (cut != std::string::npos) {
            message = message.substr(cut);
        }
        return shown + ":" + std::to_string(line) + ":" + std::to_string(column) + ": (syntax): " +
               message;
    } catch (const json::exception& error) {
        // Not a syntax error but still unreadable, e.g. a number too large for a double.
        std::string message = error.what();
        const auto cut = message.find("] ");
        return shown + ":1:1: (syntax): " + (cut == std::string::npos ? message : message.substr(cut + 2));
    }
    try {
        return parse_scenario(root, path);
    } catch (const LoadError& error) {
        const PositionIndex index(text);
        const Position position = index.at(error.pointer);
        return shown + ":" + std::to_string(position.line) + ":" + std::to_string(position.column) +
               ": " + (error.pointer.empty() ? std::string("/") : error.pointer) + ": " +
               error.message;
    } catch (const std::exception& error) {
        return shown + ":1:1: /: " + error.what();
    }
}

LoadResult load_scenario_json(const std::string& path, const json& root) {
    const std::string shown = path.empty() ? std::string("<scenario>") : path;
    try {
        return parse_scenario(root, path);
    } catch (const LoadError& error) {
        return shown + ": " + (error.pointer.empty() ? std::string("/") : error.pointer) + ": " +
               error.message;
    } catch (const std::exception& error) {
        return shown + ": /: " + error.what();
    }
}

LoadResult load_scenario_file(const std::string& path) {
    std::error_code error;
    const auto size = std::filesystem::file_size(path, error);
    if (error) {
        return path + ":1:1: (file): cannot read: " + error.message();
    }
    if (size > kFileBytesMax) {
        return path + ":1:1: (file): larger than " + std::to_string(kFileBytesMax) + " bytes";
    }
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        return path + ":1:1: (file): cannot open";
    }
    std::ostringstream text;
    text << file.rdbuf();
    return load_scenario_text(path, text.str());
}

std::vector<std::string> list_scenario_files(const std::string& root) {
    std::vector<std::string> files;
    std::error_code error;
    if (std::filesystem::is_regular_file(root, error)) {
        return {root};
    }
    for (std::filesystem::recursive_directory_iterator it(root, error), end; !error && it != end;
         it.increment(error)) {
        if (it->is_directory() && it->path().filename() == "schema") {
            it.disable_recursion_pending();
            continue;
        }
        if (it->is_regular_file() && it->path().extension() == ".json") {
            files.push_back(it->path().string());
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

const std::map<std::string, std::vector<std::string>>& accepted_keys() { return key_table(); }

}  // namespace faultline::conformance
