#include "faultline/model/smtp_codec.h"

#include <algorithm>

namespace faultline::model {
namespace {

constexpr std::string_view crlf = "\r\n";

std::string_view as_chars(std::span<const std::byte> bytes) {
    // Bytes and chars share representation; SMTP is an octet protocol held in std::string.
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};  // NOLINT
}

bool holds_line_break(std::string_view text) {
    return text.find_first_of("\r\n") != std::string_view::npos;
}

/// The length a line would have with its CRLF, for a partial line with no LF yet: a trailing CR
/// may be the first half of the CRLF.
std::size_t partial_line_bytes(std::string_view partial) {
    const std::size_t text = partial.size() - (!partial.empty() && partial.back() == '\r' ? 1 : 0);
    return text + crlf.size();
}

bool in_range(char c, char low, char high) { return c >= low && c <= high; }

Result<std::string> finish_line(std::string line) {
    line += crlf;
    if (line.size() > smtp_command_line_bytes_max) {
        return SmtpErrc::invalid_argument;
    }
    return line;
}

Result<std::string> greeting_command(std::string_view verb, std::string_view domain) {
    if (holds_line_break(domain)) {
        return SmtpErrc::invalid_argument;
    }
    std::string line(verb);
    line += ' ';
    line += domain;
    return finish_line(std::move(line));
}

Result<std::string> path_command(std::string_view prefix,
                                 std::string_view address,
                                 std::string_view parameters) {
    if (holds_line_break(address) || holds_line_break(parameters)) {
        return SmtpErrc::invalid_argument;
    }
    std::string line(prefix);
    line += '<';
    line += address;
    line += '>';
    if (!parameters.empty()) {
        line += ' ';
        line += parameters;
    }
    return finish_line(std::move(line));
}

}  // namespace

// ---- ReplyParser ------------------------------------------------------------------------------

void ReplyParser::feed(std::string_view bytes) {
    if (!error_) {
        buffer_.append(bytes);
    }
}

void ReplyParser::feed(std::span<const std::byte> bytes) { feed(as_chars(bytes)); }

Result<std::optional<Reply>> ReplyParser::next() {
    if (error_) {
        return error_;
    }
    Reply reply;
    std::size_t position = 0;
    while (true) {
        const std::string_view rest = std::string_view(buffer_).substr(position);
        const std::size_t end = rest.find(crlf);
        if (end == std::string_view::npos) {
            if (partial_line_bytes(rest) > smtp_reply_line_bytes_max) {
                error_ = SmtpErrc::line_too_long;
                return error_;
            }
            return std::optional<Reply>{};
        }
        const std::string_view line = rest.substr(0, end);
        if (line.size() + crlf.size() > smtp_reply_line_bytes_max) {
            error_ = SmtpErrc::line_too_long;
            return error_;
        }
        bool last = false;
        int code = 0;
        if (mode_ == ReplyMode::strict_dotnet) {
            // M-24: the separator must be present; the "digits" are taken as they come, as
            // octets (.NET reads bytes: 0xC3 counts as 195, not as a negative char).
            if (line.size() < 4 || (line[3] != '-' && line[3] != ' ')) {
                error_ = SmtpErrc::malformed_reply;
                return error_;
            }
            const auto octet = [&line](std::size_t index) {
                return static_cast<int>(static_cast<unsigned char>(line[index]));
            };
            code = (octet(0) - '0') * 100 + (octet(1) - '0') * 10 + (octet(2) - '0');
            last = line[3] == ' ';
        } else {
            // W-4 (RFC 5321 §4.2): Reply-code = %x32-35 %x30-35 %x30-39; a bare code is legal.
            if (line.size() < 3 || !in_range(line[0], '2', '5') || !in_range(line[1], '0', '5') ||
                !in_range(line[2], '0', '9') ||
                (line.size() > 3 && line[3] != '-' && line[3] != ' ')) {
                error_ = SmtpErrc::malformed_reply;
                return error_;
            }
            code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
            last = line.size() == 3 || line[3] == ' ';
            if (!reply.lines.empty() && code != reply.code) {
                error_ = SmtpErrc::malformed_reply;
                return error_;
            }
        }
        if (reply.lines.empty()) {
            reply.code = code;  // M-24: the first line's code is the reply's.
        }
        reply.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view{});
        position += end + crlf.size();
        if (last) {
            reply.raw = buffer_.substr(0, position);
            buffer_.erase(0, position);
            return std::optional<Reply>{std::move(reply)};
        }
    }
}

// ---- CommandWriter ----------------------------------------------------------------------------

Result<std::string> CommandWriter::ehlo(std::string_view domain) {
    return greeting_command("EHLO", domain);
}

Result<std::string> CommandWriter::helo(std::string_view domain) {
    return greeting_command("HELO", domain);
}

Result<std::string> CommandWriter::mail_from(std::string_view address,
                                             std::string_view parameters) {
    return path_command("MAIL FROM:", address, parameters);
}

Result<std::string> CommandWriter::rcpt_to(std::string_view address, std::string_view parameters) {
    return path_command("RCPT TO:", address, parameters);
}

std::string CommandWriter::data() { return "DATA\r\n"; }
std::string CommandWriter::quit() { return "QUIT\r\n"; }
std::string CommandWriter::rset() { return "RSET\r\n"; }
std::string CommandWriter::noop() { return "NOOP\r\n"; }
std::string CommandWriter::starttls() { return "STARTTLS\r\n"; }
std::string CommandWriter::auth_login() { return "AUTH LOGIN\r\n"; }

std::string CommandWriter::auth_response(std::string_view secret) {
    return base64_encode(secret) + std::string(crlf);
}

Result<std::string> CommandWriter::auth_plain(std::string_view user,
                                              std::string_view password,
                                              std::string_view authorization) {
    std::string message(authorization);
    message += '\0';
    message += user;
    message += '\0';
    message += password;
    return finish_line("AUTH PLAIN " + base64_encode(message));
}

std::string base64_encode(std::string_view bytes) {
    static constexpr std::string_view alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t group =
            (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16U) |
            (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8U) |
            std::uint32_t{static_cast<unsigned char>(bytes[i + 2])};
        out += alphabet[(group >> 18U) & 63U];
        out += alphabet[(group >> 12U) & 63U];
        out += alphabet[(group >> 6U) & 63U];
        out += alphabet[group & 63U];
    }
    const std::size_t left = bytes.size() - i;
    if (left > 0) {
        std::uint32_t group = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16U;
        if (left == 2) {
            group |= std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8U;
        }
        out += alphabet[(group >> 18U) & 63U];
        out += alphabet[(group >> 12U) & 63U];
        out += left == 2 ? alphabet[(group >> 6U) & 63U] : '=';
        out += '=';
    }
    return out;
}

// ---- CommandParser ----------------------------------------------------------------------------

void CommandParser::feed(std::string_view bytes) { buffer_.append(bytes); }

void CommandParser::feed(std::span<const std::byte> bytes) { feed(as_chars(bytes)); }

std::string CommandParser::take_buffered() {
    std::string out;
    out.swap(buffer_);
    return out;
}

void CommandParser::drop_partial_line() {
    // Under reject a trailing CR may be the first half of the CRLF that ends the line.
    const bool keep_cr =
        policy_ == BareLineFeedPolicy::reject && !buffer_.empty() && buffer_.back() == '\r';
    buffer_.assign(keep_cr ? "\r" : "");
}

Result<std::optional<Command>> CommandParser::next() {
    if (skipping_) {
        // The over-long line ends where any line ends under this policy: under reject only at
        // CRLF, so a bare LF inside it must not resume reading (found by tools/fuzz: it made
        // the commands depend on how the bytes were split across reads).
        const bool crlf_only = policy_ == BareLineFeedPolicy::reject;
        const std::size_t end = crlf_only ? buffer_.find(crlf) : buffer_.find('\n');
        if (end == std::string::npos) {
            drop_partial_line();
            return std::optional<Command>{};
        }
        buffer_.erase(0, end + (crlf_only ? crlf.size() : 1));
        skipping_ = false;
    }
    // Under reject only CRLF ends a line; otherwise any LF does (W-13 normalize / legacy).
    const std::size_t end =
        policy_ == BareLineFeedPolicy::reject ? buffer_.find(crlf) : buffer_.find('\n');
    if (end == std::string::npos) {
        if (partial_line_bytes(buffer_) > smtp_command_line_bytes_max) {
            drop_partial_line();
            skipping_ = true;
            return SmtpErrc::command_too_long;
        }
        return std::optional<Command>{};
    }
    std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + (policy_ == BareLineFeedPolicy::reject ? crlf.size() : 1));
    if (!line.empty() && line.back() == '\r') {
        line.pop_back();
    }
    if (line.size() + crlf.size() > smtp_command_line_bytes_max) {
        return SmtpErrc::command_too_long;
    }
    if (line.find('\n') != std::string::npos) {
        return SmtpErrc::bare_line_feed;
    }
    Command command;
    const std::size_t space = line.find(' ');
    command.verb = line.substr(0, space);
    for (char& c : command.verb) {
        if (in_range(c, 'a', 'z')) {
            c = static_cast<char>(c - ('a' - 'A'));
        }
    }
    if (space != std::string::npos) {
        command.argument = line.substr(space + 1);
    }
    command.line = std::move(line);
    return std::optional<Command>{std::move(command)};
}

// ---- DataReader -------------------------------------------------------------------------------

std::size_t DataReader::feed(std::string_view bytes) {
    std::size_t consumed = 0;
    for (const char c : bytes) {
        if (finished_) {
            break;
        }
        raw_ += c;
        ++consumed;
        if (c != '\n') {
            line_ += c;
            continue;
        }
        if (!line_.empty() && line_.back() == '\r') {
            line_.pop_back();
            end_line(Ending::crlf);
        } else {
            end_line(Ending::bare_lf);
        }
    }
    return consumed;
}

void DataReader::end_line(Ending ending) {
    const bool dot_line = line_ == ".";
    if (dot_line) {
        // W-7: only CRLF "." CRLF ends the data; legacy_accept simulates MTAs that took any LF
        // as a line end (W-12 … W-15).
        const bool ends = options_.bare_line_feed == BareLineFeedPolicy::legacy_accept ||
                          (previous_ending_ == Ending::crlf && ending == Ending::crlf);
        if (ends) {
            finished_ = true;
            line_.clear();
            return;
        }
    }
    if (ending == Ending::bare_lf) {
        saw_bare_line_feed_ = true;
    }
    if (line_.size() + crlf.size() > options_.text_line_bytes_max) {
        saw_long_line_ = true;
    }
    // W-6: remove one leading dot. A lone "." that did not end the data is kept as it came, so
    // a smuggling attempt stays visible in the recorded content.
    std::string_view text = line_;
    if (!dot_line && !text.empty() && text.front() == '.') {
        text.remove_prefix(1);
    }
    const std::string_view terminator =
        ending == Ending::crlf || options_.bare_line_feed == BareLineFeedPolicy::normalize
            ? crlf
            : std::string_view("\n");
    if (!exceeded_size_) {
        if (options_.message_bytes_max != 0 &&
            content_.size() + text.size() + terminator.size() > options_.message_bytes_max) {
            exceeded_size_ = true;
        } else {
            content_ += text;
            content_ += terminator;
        }
    }
    previous_ending_ = ending;
    line_.clear();
}

int DataReader::reply_code() const noexcept {
    if (saw_bare_line_feed_ && options_.bare_line_feed == BareLineFeedPolicy::reject) {
        return 550;
    }
    if (exceeded_size_) {
        return 552;
    }
    if (saw_long_line_) {
        return 500;
    }
    return 250;
}

}  // namespace faultline::model
