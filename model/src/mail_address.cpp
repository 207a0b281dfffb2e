#include "faultline/model/mail_address.h"

#include <cstddef>
#include <utility>

#include "faultline/model/mime.h"

namespace faultline::model {

std::string_view charset_name(TextEncoding encoding) noexcept {
    return encoding == TextEncoding::ascii ? "us-ascii" : "utf-8";
}

bool is_ascii(std::string_view text, bool permit_cr_or_lf) noexcept {
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte > 0x7F) {
            return false;
        }
        if (!permit_cr_or_lf && (c == '\r' || c == '\n')) {
            return false;
        }
    }
    return true;
}

namespace detail {
struct ParsedMailAddress {
    std::string display_name;
    std::string user;
    std::string host;
};
}  // namespace detail

namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// RFC 5322 §3.2.3 atext, plus any byte of a non-ASCII UTF-8 sequence: .NET accepts Unicode
// local parts and domains and leaves the SMTPUTF8/IDN decision to send time (M-13).
bool is_atext(char c) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x80) {
        return true;
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

bool is_dot_atom(std::string_view text) {
    if (text.empty() || text.front() == '.' || text.back() == '.') {
        return false;
    }
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '.') {
            if (text[i - 1] == '.') {
                return false;
            }
        } else if (!is_atext(text[i])) {
            return false;
        }
    }
    return true;
}

// RFC 5322 §3.2.4 quoted-string without folding: '"' (qtext | quoted-pair)* '"'.
bool is_quoted_string(std::string_view text) {
    if (text.size() < 2 || text.front() != '"' || text.back() != '"') {
        return false;
    }
    for (std::size_t i = 1; i + 1 < text.size(); ++i) {
        if (text[i] == '\\') {
            ++i;
            if (i + 1 >= text.size()) {
                return false;  // The backslash escaped the closing quote.
            }
        } else if (text[i] == '"') {
            return false;
        }
    }
    return true;
}

// RFC 5322 §3.4.1 domain-literal without whitespace: '[' dtext* ']'.
bool is_domain_literal(std::string_view text) {
    if (text.size() < 2 || text.front() != '[' || text.back() != ']') {
        return false;
    }
    for (std::size_t i = 1; i + 1 < text.size(); ++i) {
        const char c = text[i];
        if (c < '!' || c > '~' || c == '[' || c == ']' || c == '\\') {
            return false;
        }
    }
    return true;
}

std::string_view trim_wsp(std::string_view text) {
    while (!text.empty() && is_wsp(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && is_wsp(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

// M-31: CR or LF may appear only as folding whitespace (CRLF then SP or HT), and never inside a
// domain literal (the MultiLineDomainLiterals_Disabled_Throws case). Returns the unfolded text.
std::optional<std::string> unfold(std::string_view text) {
    std::string unfolded;
    unfolded.reserve(text.size());
    bool in_quotes = false;
    bool in_literal = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\r' || c == '\n') {
            const bool folding = c == '\r' && i + 2 < text.size() && text[i + 1] == '\n' &&
                                 is_wsp(text[i + 2]);
            if (!folding || in_literal) {
                return std::nullopt;
            }
            ++i;  // Drop CRLF, keep the whitespace that follows.
            continue;
        }
        if (c == '\\' && in_quotes && i + 1 < text.size()) {
            unfolded += c;
            unfolded += text[++i];
            continue;
        }
        if (c == '"' && !in_literal) {
            in_quotes = !in_quotes;
        } else if (c == '[' && !in_quotes) {
            in_literal = true;
        } else if (c == ']' && !in_quotes) {
            in_literal = false;
        }
        unfolded += c;
    }
    return unfolded;
}

// Position of the last `wanted` outside a quoted string, or npos.
std::size_t find_last_unquoted(std::string_view text, char wanted) {
    std::size_t found = std::string_view::npos;
    bool in_quotes = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (in_quotes && text[i] == '\\') {
            ++i;
        } else if (text[i] == '"') {
            in_quotes = !in_quotes;
        } else if (!in_quotes && text[i] == wanted) {
            found = i;
        }
    }
    return found;
}

std::string unquote(std::string_view quoted) {
    std::string text;
    for (std::size_t i = 1; i + 1 < quoted.size(); ++i) {
        if (quoted[i] == '\\') {
            ++i;
        }
        text += quoted[i];
    }
    return text;
}

std::optional<detail::ParsedMailAddress> parse_addr_spec(std::string_view spec) {
    const std::size_t at = find_last_unquoted(spec, '@');
    if (at == std::string_view::npos) {
        return std::nullopt;
    }
    const std::string_view local = spec.substr(0, at);
    const std::string_view domain = spec.substr(at + 1);
    if (!is_dot_atom(local) && !is_quoted_string(local)) {
        return std::nullopt;
    }
    if (!is_dot_atom(domain) && !is_domain_literal(domain)) {
        return std::nullopt;
    }
    return detail::ParsedMailAddress{std::string(), std::string(local), std::string(domain)};
}


std::optional<detail::ParsedMailAddress> parse(std::string_view address) {
    const std::optional<std::string> unfolded = unfold(address);
    if (!unfolded) {
        return std::nullopt;
    }
    const std::string_view text = trim_wsp(*unfolded);
    if (text.empty() || text.back() != '>') {
        return parse_addr_spec(text);
    }
    const std::size_t open = find_last_unquoted(text, '<');
    if (open == std::string_view::npos) {
        return std::nullopt;
    }
    std::optional<detail::ParsedMailAddress> parsed =
        parse_addr_spec(trim_wsp(text.substr(open + 1, text.size() - open - 2)));
    if (!parsed) {
        return std::nullopt;
    }
    const std::string_view display = trim_wsp(text.substr(0, open));
    if (is_quoted_string(display)) {
        parsed->display_name = unquote(display);
    } else if (display.find_first_of("\"<>") == std::string_view::npos) {
        // An unquoted phrase; .NET is lenient here (e.g. "Jane Ø Clayton <jane@contoso.com>").
        parsed->display_name = std::string(display);
    } else {
        return std::nullopt;
    }
    return parsed;
}



detail::ParsedMailAddress parse_or_throw(std::string_view address) {
    if (address.empty()) {
        throw ArgumentException("The parameter 'address' cannot be an empty string.", "address");
    }
    std::optional<detail::ParsedMailAddress> parsed = parse(address);
    if (!parsed) {
        throw FormatException("The specified string is not in the form required for an e-mail "
                              "address.");
    }
    return std::move(*parsed);
}

}  // namespace

MailAddress::MailAddress(detail::ParsedMailAddress parsed, TextEncoding display_name_encoding)
    : display_name_(std::move(parsed.display_name)),
      user_(std::move(parsed.user)),
      host_(std::move(parsed.host)),
      display_name_encoding_(display_name_encoding) {}

MailAddress::MailAddress(std::string_view address)
    : MailAddress(parse_or_throw(address), TextEncoding::utf8) {}

MailAddress::MailAddress(std::string_view address, std::string_view display_name)
    : MailAddress(address, display_name, TextEncoding::utf8) {}

MailAddress::MailAddress(std::string_view address, std::string_view display_name,
                         TextEncoding display_name_encoding)
    : MailAddress(parse_or_throw(address), display_name_encoding) {
    if (display_name.find_first_of("\r\n") != std::string_view::npos) {
        throw FormatException("The display name cannot contain CR or LF characters.");
    }
    if (display_name.size() >= 2 && display_name.front() == '"' && display_name.back() == '"') {
        display_name.remove_prefix(1);
        display_name.remove_suffix(1);
    }
    if (!display_name.empty()) {
        display_name_ = std::string(display_name);
    }
}

std::optional<MailAddress> MailAddress::TryCreate(std::string_view address) {
    std::optional<detail::ParsedMailAddress> parsed = parse(address);
    if (!parsed) {
        return std::nullopt;
    }
    return MailAddress(std::move(*parsed), TextEncoding::utf8);
}

// Built by appending: GCC 12 reports a false -Wrestrict for `"<" + std::string&&` at -O2.
std::string MailAddress::Address() const {
    std::string address;
    address.reserve(user_.size() + 1 + host_.size());
    address.append(user_).append(1, '@').append(host_);
    return address;
}

std::string MailAddress::smtp_address() const {
    std::string address;
    address.reserve(user_.size() + 3 + host_.size());
    address.append(1, '<').append(user_).append(1, '@').append(host_).append(1, '>');
    return address;
}

std::string MailAddress::ToString() const {
    if (display_name_.empty()) {
        return Address();
    }
    std::string text;
    text.append(1, '"').append(display_name_).append("\" ").append(smtp_address());
    return text;
}

std::string MailAddress::encoded() const {
    if (display_name_.empty()) {
        return Address();
    }
    std::string text;
    if (is_ascii(display_name_, false)) {
        // .NET quotes the name as it stands (MailAddress.Encode); we escape '"' and '\' so the
        // result stays one quoted-string.
        text += '"';
        for (const char c : display_name_) {
            if (c == '"' || c == '\\') {
                text += '\\';
            }
            text += c;
        }
        text += '"';
    } else {
        text = encode_words(display_name_, display_name_encoding_, false);  // Q, M-30.
    }
    text.append(1, ' ').append(smtp_address());
    return text;
}

bool operator==(const MailAddress& left, const MailAddress& right) {
    const std::string a = left.ToString();
    const std::string b = right.ToString();
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

}  // namespace faultline::model
