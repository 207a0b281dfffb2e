#include "faultline/model/mime.h"

#include <array>
#include <cstddef>
#include <optional>
#include <vector>

#include "faultline/model/assert.h"
#include "faultline/model/mutants.h"

namespace faultline::model {
namespace {

constexpr std::string_view kHexDigits = "0123456789ABCDEF";
constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

unsigned byte_at(std::string_view text, std::size_t index) {
    return static_cast<unsigned char>(text[index]);
}

void append_hex(std::string& out, unsigned byte) {
    out += '=';
    out += kHexDigits[byte >> 4U];
    out += kHexDigits[byte & 0xFU];
}

// Length of the UTF-8 sequence starting with `lead`; a stray byte counts as one.
std::size_t utf8_sequence_length(unsigned lead) {
    if (lead >= 0xF0U && lead <= 0xF7U) {
        return 4;
    }
    if (lead >= 0xE0U && lead <= 0xEFU) {
        return 3;
    }
    if (lead >= 0xC0U && lead <= 0xDFU) {
        return 2;
    }
    return 1;
}

// Splits UTF-8 text into characters, so encoded words never split one (RFC 2047 §5).
std::vector<std::string_view> utf8_characters(std::string_view text) {
    std::vector<std::string_view> characters;
    std::size_t index = 0;
    while (index < text.size()) {
        std::size_t length = utf8_sequence_length(byte_at(text, index));
        if (length > text.size() - index) {
            length = text.size() - index;
        }
        characters.push_back(text.substr(index, length));
        index += length;
    }
    return characters;
}

// Encoding.ASCII.GetBytes: each non-ASCII character becomes '?'.
std::string to_ascii_lossy(std::string_view text) {
    std::string ascii;
    ascii.reserve(text.size());
    for (const std::string_view character : utf8_characters(text)) {
        ascii += byte_at(character, 0) < 0x80U ? character[0] : '?';
    }
    return ascii;
}

std::string encode_bytes(std::string_view text, TextEncoding encoding) {
    return encoding == TextEncoding::ascii ? to_ascii_lossy(text) : std::string(text);
}

// RFC 2047 §4.2 and §5(3): in a phrase only letters, digits and "!*+-/" may stand for themselves;
// '_' stands for space; everything else is =XX.
std::string q_encode(std::string_view bytes) {
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        const char c = bytes[i];
        if (c == ' ') {
            out += '_';
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '!' || c == '*' || c == '+' || c == '-' || c == '/') {
            out += c;
        } else {
            append_hex(out, byte_at(bytes, i));
        }
    }
    return out;
}

std::size_t base64_length(std::size_t bytes) { return (bytes + 2) / 3 * 4; }

std::string normalise_line_ends(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (bytes[i] == '\r') {
            out += "\r\n";
            if (i + 1 < bytes.size() && bytes[i + 1] == '\n') {
                ++i;
            }
        } else if (bytes[i] == '\n') {
            out += "\r\n";
        } else {
            out += bytes[i];
        }
    }
    return out;
}

bool equals_ignoring_ascii_case(std::string_view left, std::string_view right) {
    if (left.size() != right.size()) {
        return false;
    }
    for (std::size_t i = 0; i < left.size(); ++i) {
        const auto lower = [](char c) {
            return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
        };
        if (lower(left[i]) != lower(right[i])) {
            return false;
        }
    }
    return true;
}

std::string join_addresses(const std::vector<MailAddress>& addresses, bool allow_unicode) {
    std::string joined;
    for (const MailAddress& address : addresses) {
        if (!joined.empty()) {
            joined += ", ";
        }
        joined += address.encoded(allow_unicode);
    }
    return joined;
}

std::string_view transfer_encoding_name(TransferEncoding encoding) {
    switch (encoding) {
        case TransferEncoding::seven_bit:
            return "7bit";
        case TransferEncoding::eight_bit:
            return "8bit";
        case TransferEncoding::quoted_printable:
            return "quoted-printable";
        case TransferEncoding::base64:
            return "base64";
        case TransferEncoding::unknown:
            break;
    }
    FAULTLINE_ASSERT(false);  // The writer resolves `unknown` before naming it.
    return "";
}

}  // namespace

std::string encode_base64(std::string_view bytes, std::size_t line_length) {
    std::string out;
    out.reserve(base64_length(bytes.size()) + base64_length(bytes.size()) / 38);
    std::size_t line_used = 0;
    const auto put = [&](char c) {
        if (line_length != 0 && line_used == line_length) {
            out += "\r\n";
            line_used = 0;
        }
        out += c;
        ++line_used;
    };
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        const std::size_t remaining = bytes.size() - i;
        const unsigned group = (byte_at(bytes, i) << 16U) |
                               (remaining > 1 ? byte_at(bytes, i + 1) << 8U : 0U) |
                               (remaining > 2 ? byte_at(bytes, i + 2) : 0U);
        put(kBase64Alphabet[(group >> 18U) & 0x3FU]);
        put(kBase64Alphabet[(group >> 12U) & 0x3FU]);
        put(remaining > 1 ? kBase64Alphabet[(group >> 6U) & 0x3FU] : '=');
        put(remaining > 2 ? kBase64Alphabet[group & 0x3FU] : '=');
    }
    return out;
}

std::string encode_quoted_printable(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() + bytes.size() / 8);
    std::size_t line_used = 0;
    const auto put = [&](std::string_view token) {
        // Leave room for the soft-break '=' so no line passes kBodyLineLengthMax (RFC 2045 §6.7(5)).
        if (line_used + token.size() > kBodyLineLengthMax - 1) {
            out += "=\r\n";
            line_used = 0;
        }
        out += token;
        line_used += token.size();
    };
    const auto crlf_at = [&](std::size_t index) {
        return index + 1 < bytes.size() && bytes[index] == '\r' && bytes[index + 1] == '\n';
    };
    std::string escaped;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        const char c = bytes[i];
        if (crlf_at(i)) {
            out += "\r\n";  // A hard line break stays one; lone CR and LF fall through to =0D/=0A.
            line_used = 0;
            ++i;
            continue;
        }
        const bool whitespace = c == ' ' || c == '\t';
        const bool at_line_end = i + 1 == bytes.size() || crlf_at(i + 1);
        const bool literal = (whitespace && !at_line_end) || (c >= '!' && c <= '~' && c != '=');
        if (literal) {
            put(std::string_view(&bytes[i], 1));
        } else {
            escaped.clear();
            append_hex(escaped, byte_at(bytes, i));
            put(escaped);
        }
    }
    return out;
}

std::string encode_words(std::string_view text, TextEncoding encoding, bool use_base64) {
    const std::string bytes = encode_bytes(text, encoding);
    const std::string prefix =
        "=?" + std::string(charset_name(encoding)) + (use_base64 ? "?B?" : "?Q?");
    constexpr std::string_view suffix = "?=";
    FAULTLINE_ASSERT(prefix.size() + suffix.size() + 12 <= kEncodedWordLengthMax);
    const std::size_t payload_max = kEncodedWordLengthMax - prefix.size() - suffix.size();

    std::string words;
    std::string chunk;  // Raw bytes of the current word.
    const auto flush = [&]() {
        if (chunk.empty()) {
            return;
        }
        if (!words.empty()) {
            words += ' ';
        }
        words += prefix;
        words += use_base64 ? encode_base64(chunk, 0) : q_encode(chunk);
        words += suffix;
        chunk.clear();
    };
    std::size_t q_length = 0;
    for (const std::string_view character : utf8_characters(bytes)) {
        const std::size_t character_q_length = q_encode(character).size();
        const bool fits = use_base64
                              ? base64_length(chunk.size() + character.size()) <= payload_max
                              : q_length + character_q_length <= payload_max;
        if (!fits) {
            flush();
            q_length = 0;
        }
        chunk += character;
        q_length += character_q_length;
    }
    flush();
    return words;
}

std::string write_header(std::string_view name, std::string_view value) {
    FAULTLINE_ASSERT(name.find_first_of("\r\n") == std::string_view::npos);
    FAULTLINE_ASSERT(value.find_first_of("\r\n") == std::string_view::npos);
    const std::string field = std::string(name) + ": " + std::string(value);
    std::string_view rest = field;
    std::string out;
    // Fold before a space (RFC 5322 §2.2.3): the space starts the continuation line. A break must
    // leave non-whitespace on the line it ends; on the first line, after the value has begun.
    std::size_t content_from = name.size() + 2;
    while (rest.size() > kHeaderLineLengthMax) {
        std::size_t first_content = rest.find_first_not_of(" \t");
        if (first_content < content_from) {
            first_content = content_from;
        }
        std::size_t cut = std::string_view::npos;
        for (std::size_t i = first_content + 1; i < rest.size(); ++i) {
            if (rest[i] == ' ' || rest[i] == '\t') {
                if (i > kHeaderLineLengthMax && cut != std::string_view::npos) {
                    break;
                }
                cut = i;
                if (i > kHeaderLineLengthMax) {
                    break;  // No break fits; take the first one after the limit.
                }
            }
        }
        if (cut == std::string_view::npos) {
            break;
        }
        out += rest.substr(0, cut);
        out += "\r\n";
        rest.remove_prefix(cut);
        content_from = 0;
    }
    out += rest;
    out += "\r\n";
    return out;
}

std::string write_message(const MailMessage& message, const MimeOptions& options) {
    FAULTLINE_ASSERT(message.From().has_value());
    FAULTLINE_ASSERT(!options.date.empty());
    FAULTLINE_ASSERT(options.date.find_first_of("\r\n") == std::string::npos);

    std::string out;
    // User headers come first: they are already in .NET's HeaderCollection (insertion-ordered)
    // when Message.PrepareHeaders appends its own.
    static constexpr std::array<std::string_view, 10> kWriterHeaders = {
        "MIME-Version", "From",    "Sender",       "To",
        "Cc",           "Bcc",     "Date",         "Subject",
        "Content-Type", "Content-Transfer-Encoding"};
    for (const MailHeader& header : message.Headers()) {
        bool ours = false;
        for (const std::string_view name : kWriterHeaders) {
            ours = ours || equals_ignoring_ascii_case(header.name, name);
        }
        if (ours) {
            continue;
        }
        // M-30/M-31: CR, LF or non-ASCII text becomes encoded words. Message.EncodeHeaders turns a
        // null HeadersEncoding into UTF-8, for which ShouldUseBase64Encoding is true: B words.
        const bool raw = options.allow_unicode
                             ? header.value.find_first_of("\r\n") == std::string::npos
                             : is_ascii(header.value, false);
        out += write_header(header.name,
                            raw ? header.value
                                : encode_words(header.value, TextEncoding::utf8, true));
    }

    out += write_header("MIME-Version", "1.0");
    // PrepareHeaders adds Sender before From.
    if (message.Sender()) {
        out += write_header("Sender", message.Sender()->encoded(options.allow_unicode));
    }
    out += write_header("From", message.From()->encoded(options.allow_unicode));
    if (!message.To().empty()) {
        out += write_header("To", join_addresses(message.To(), options.allow_unicode));
    }
    if (!message.CC().empty()) {
        out += write_header("Cc", join_addresses(message.CC(), options.allow_unicode));
    }
    // Bcc is envelope-only (M-13).
    out += write_header("Date", options.date);
    if (!message.Subject().empty()) {
        // M-30: ASCII as is; otherwise B for UTF-8, Q for other encodings; null means UTF-8.
        const TextEncoding encoding = message.SubjectEncoding().value_or(TextEncoding::utf8);
        out += write_header("Subject",
                            options.allow_unicode || is_ascii(message.Subject(), false)
                                ? message.Subject()
                                : encode_words(message.Subject(), encoding,
                                               encoding == TextEncoding::utf8));
    }
    const TextEncoding body_encoding = message.BodyEncoding().value_or(
        is_ascii(message.Body(), true) ? TextEncoding::ascii : TextEncoding::utf8);
    TransferEncoding transfer = message.BodyTransferEncoding();
    if (transfer == TransferEncoding::unknown) {
        // M-29: base64 for UTF-8, quoted-printable for ASCII (MimeBasePart.ShouldUseBase64Encoding).
        transfer = body_encoding == TextEncoding::utf8 ? TransferEncoding::base64
                                                       : TransferEncoding::quoted_printable;
    }
    out += write_header("Content-Type", std::string(message.IsBodyHtml() ? "text/html" : "text/plain") +
                                            "; charset=" + std::string(charset_name(body_encoding)));
    out += write_header("Content-Transfer-Encoding", transfer_encoding_name(transfer));
    out += "\r\n";

    const std::string body = encode_bytes(message.Body(), body_encoding);
    switch (transfer) {
        case TransferEncoding::quoted_printable:
            out += encode_quoted_printable(body);
            break;
        case TransferEncoding::base64:
            out += encode_base64(body, kBodyLineLengthMax);
            break;
        case TransferEncoding::seven_bit:
        case TransferEncoding::eight_bit:
            // M-29/W-12: .NET passes these through as they are; by default we normalise (W-16).
            out += options.pass_bare_line_ends ? body : normalise_line_ends(body);
            break;
        case TransferEncoding::unknown:
            FAULTLINE_ASSERT(false);
    }
    out += "\r\n";  // MailWriter.Close (M-27).
    return out;
}

std::string dot_stuff(std::string_view data) {
    std::string out;
    out.reserve(data.size() + 8);
    bool at_line_start = true;
    for (std::size_t i = 0; i < data.size(); ++i) {
        if (at_line_start && data[i] == '.' && !mutant(Mutant::dot_stuffing_skips_dot_lines)) {
            out += '.';
        }
        out += data[i];
        // M-28: only CRLF starts a line; a bare LF does not.
        at_line_start = data[i] == '\n' && i > 0 && data[i - 1] == '\r';
    }
    return out;
}

bool contains_bare_line_feed(std::string_view data) noexcept {
    for (std::size_t i = 0; i < data.size(); ++i) {
        if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r')) {
            return true;
        }
    }
    return false;
}

bool contains_bare_carriage_return(std::string_view data) noexcept {
    for (std::size_t i = 0; i < data.size(); ++i) {
        if (data[i] == '\r' && (i + 1 == data.size() || data[i + 1] != '\n')) {
            return true;
        }
    }
    return false;
}

}  // namespace faultline::model
