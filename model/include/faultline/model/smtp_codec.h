// The SMTP wire codec (RFC 5321): an incremental reply parser for clients, a command writer, and
// for servers a command-line parser and the DATA reader with its end-of-data policy.
// Invariant: everything is a pure function of the bytes fed so far, however they are split.
// It does no I/O, keeps no clock, and never throws: errors are SmtpErrc values; a 4xx/5xx reply
// is an ordinary Reply.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "faultline/model/result.h"
#include "faultline/model/smtp_error.h"

namespace faultline::model {

/// RFC 5321 §4.5.3.1.4–§4.5.3.1.6 (W-8): line limits, each including the CRLF.
inline constexpr std::size_t smtp_command_line_bytes_max = 512;
inline constexpr std::size_t smtp_reply_line_bytes_max = 512;
inline constexpr std::size_t smtp_text_line_bytes_max = 1000;

/// How strictly a reply is read.
enum class ReplyMode : std::uint8_t {
    /// M-24, as SmtpReplyReaderFactory: three characters then '-' or ' '; a code-only line or any
    /// other separator is malformed; the digits are not checked (a non-digit yields a garbage
    /// code); continuation lines may carry another code (the first line's code is used).
    strict_dotnet,
    /// W-4: three digits (2–5, 0–5, 0–9), then ' ' or '-' and text, or CRLF directly; every line
    /// of a multi-line reply must carry the same code.
    rfc5321,
};

/// One complete reply.
struct Reply {
    int code = 0;
    /// The text of each line, after the code and its separator, without CRLF.
    std::vector<std::string> lines;
    /// Every byte of the reply as received, CRLFs included.
    std::string raw;

    friend bool operator==(const Reply&, const Reply&) = default;
};

/// Incremental reply reader. In both modes only CRLF ends a line: a bare LF is ordinary text,
/// so a reply whose lines end in bare LF is never complete (M-24: the reader keeps waiting).
class ReplyParser {
public:
    explicit ReplyParser(ReplyMode mode) : mode_(mode) {}

    /// Appends received bytes. Bytes after the first error are ignored.
    void feed(std::string_view bytes);
    void feed(std::span<const std::byte> bytes);

    /// The next complete reply (removed from the buffer), nullopt if more bytes are needed, or an
    /// error: malformed_reply or line_too_long. Errors are sticky: every later call returns it.
    [[nodiscard]] Result<std::optional<Reply>> next();

    /// Bytes fed but not yet part of a returned reply.
    [[nodiscard]] std::size_t buffered_bytes() const noexcept { return buffer_.size(); }

private:
    ReplyMode mode_;
    std::string buffer_;
    std::error_code error_;
};

/// Builds command lines. Every result ends in CRLF; an argument holding CR or LF (W-1), or a
/// line longer than 512 bytes (W-8), is refused with SmtpErrc::invalid_argument and nothing is
/// built. Addresses are given without angle brackets; `parameters` (e.g. "BODY=8BITMIME") are
/// appended after one space when not empty.
class CommandWriter {
public:
    [[nodiscard]] static Result<std::string> ehlo(std::string_view domain);
    [[nodiscard]] static Result<std::string> helo(std::string_view domain);
    [[nodiscard]] static Result<std::string> mail_from(std::string_view address,
                                                       std::string_view parameters = {});
    [[nodiscard]] static Result<std::string> rcpt_to(std::string_view address,
                                                     std::string_view parameters = {});
    [[nodiscard]] static std::string data();
    [[nodiscard]] static std::string quit();
    [[nodiscard]] static std::string rset();
    [[nodiscard]] static std::string noop();
    [[nodiscard]] static std::string starttls();
    /// "AUTH LOGIN": the server answers 334, then send auth_response(user), then the password.
    [[nodiscard]] static std::string auth_login();
    /// One AUTH continuation line: base64 of `secret` (any bytes; base64 cannot hold CR/LF).
    [[nodiscard]] static std::string auth_response(std::string_view secret);
    /// "AUTH PLAIN " + base64(authorization NUL user NUL password) (RFC 4616), one line.
    [[nodiscard]] static Result<std::string> auth_plain(std::string_view user,
                                                        std::string_view password,
                                                        std::string_view authorization = {});
};

/// RFC 4648 base64 with padding.
[[nodiscard]] std::string base64_encode(std::string_view bytes);

/// One command line as a server reads it.
struct Command {
    /// The first word, upper-cased ("MAIL"); empty for an empty line.
    std::string verb;
    /// Everything after the first space, as sent ("FROM:<a@b> SIZE=10").
    std::string argument;
    /// The whole line without its CRLF.
    std::string line;
};

/// What a server does with a bare LF (W-13, W-16). Postfix smtpd_forbid_bare_newline names.
enum class BareLineFeedPolicy : std::uint8_t {
    /// A command line holding a bare LF is refused (SmtpErrc::bare_line_feed); a message holding
    /// one is read to its proper end and then refused with 550.
    reject,
    /// A bare LF ends a line as CRLF would, but only CRLF "." CRLF ends the data.
    normalize,
    /// Pre-fix MTAs (CVE-2023-51764/5/6): any LF ends a line, so LF "." LF, LF "." CRLF and
    /// CRLF "." LF end the data too. Vulnerable to smuggling on purpose.
    legacy_accept,
};

/// Incremental command-line reader for servers. Lines end in CRLF; under normalize and
/// legacy_accept a bare LF ends a line too.
class CommandParser {
public:
    explicit CommandParser(BareLineFeedPolicy policy) : policy_(policy) {}

    void feed(std::string_view bytes);
    void feed(std::span<const std::byte> bytes);

    /// The next command (removed from the buffer), nullopt if more bytes are needed, or an error
    /// for one line: command_too_long (the rest of that line is skipped, W-8) or bare_line_feed.
    /// Errors are not sticky: the next call reads the following line.
    [[nodiscard]] Result<std::optional<Command>> next();

    /// True if bytes beyond the last returned command are buffered: the client sent them before
    /// hearing the reply (pipelining, W-11).
    [[nodiscard]] bool has_buffered() const noexcept { return !buffer_.empty(); }
    /// Hands over every buffered byte (e.g. message content after DATA) and empties the buffer.
    [[nodiscard]] std::string take_buffered();

private:
    /// Drops the buffered start of an over-long line (all of the buffer: no line end in it).
    void drop_partial_line();

    BareLineFeedPolicy policy_;
    std::string buffer_;
    bool skipping_ = false;  // inside an over-long line, dropping bytes up to its end
};

/// Limits and policy for one message's content.
struct DataOptions {
    BareLineFeedPolicy bare_line_feed = BareLineFeedPolicy::reject;
    /// Content larger than this (after un-stuffing) → 552. 0: no limit.
    std::size_t message_bytes_max = 0;
    /// W-8: a text line longer than this, CRLF included → 500 after the data.
    std::size_t text_line_bytes_max = smtp_text_line_bytes_max;
};

/// Reads message content after the 354, byte by byte, until the end-of-data line (W-6, W-7).
class DataReader {
public:
    explicit DataReader(DataOptions options) : options_(options) {}

    /// Consumes bytes up to and including the end-of-data line and returns how many it took;
    /// the rest belongs to the command stream. Once finished() it takes nothing.
    std::size_t feed(std::string_view bytes);

    [[nodiscard]] bool finished() const noexcept { return finished_; }
    /// Every byte consumed, exactly as received (dot-stuffed, terminator included).
    [[nodiscard]] const std::string& raw() const noexcept { return raw_; }
    /// The content with dot-stuffing undone and without the terminating "." line; lines end as
    /// received, except that normalize turns a bare LF into CRLF. Stops growing past the limit.
    [[nodiscard]] const std::string& content() const noexcept { return content_; }
    [[nodiscard]] bool saw_bare_line_feed() const noexcept { return saw_bare_line_feed_; }
    [[nodiscard]] bool saw_long_line() const noexcept { return saw_long_line_; }
    [[nodiscard]] bool exceeded_size() const noexcept { return exceeded_size_; }
    /// The reply code a server owes after the terminator: 550 for a bare LF under reject, else
    /// 552 for an oversized message, else 500 for an over-long line, else 250.
    [[nodiscard]] int reply_code() const noexcept;

private:
    enum class Ending : std::uint8_t { crlf, bare_lf };
    void end_line(Ending ending);

    DataOptions options_;
    std::string raw_;
    std::string content_;
    std::string line_;
    Ending previous_ending_ = Ending::crlf;  // the DATA command line ended in CRLF
    bool finished_ = false;
    bool saw_bare_line_feed_ = false;
    bool saw_long_line_ = false;
    bool exceeded_size_ = false;
};

}  // namespace faultline::model
