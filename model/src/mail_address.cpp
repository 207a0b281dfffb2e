#include "faultline/model/mail_address.h"

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "faultline/model/assert.h"
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

namespace {

// ---- RFC 3492 Punycode and a simplified IDNA ToASCII (M-13) ------------------------------------

// Strict UTF-8 → code points: no overlong forms, surrogates or values above U+10FFFF.
std::optional<std::vector<std::uint32_t>> decode_utf8(std::string_view text) {
    std::vector<std::uint32_t> code_points;
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        std::size_t length = 0;
        std::uint32_t value = 0;
        std::uint32_t minimum = 0;
        if (lead < 0x80U) {
            length = 1;
            value = lead;
        } else if ((lead & 0xE0U) == 0xC0U) {
            length = 2;
            value = lead & 0x1FU;
            minimum = 0x80U;
        } else if ((lead & 0xF0U) == 0xE0U) {
            length = 3;
            value = lead & 0x0FU;
            minimum = 0x800U;
        } else if ((lead & 0xF8U) == 0xF0U) {
            length = 4;
            value = lead & 0x07U;
            minimum = 0x10000U;
        } else {
            return std::nullopt;
        }
        if (length > text.size() - i) {
            return std::nullopt;
        }
        for (std::size_t k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xC0U) != 0x80U) {
                return std::nullopt;
            }
            value = (value << 6U) | (next & 0x3FU);
        }
        if (value < minimum || value > 0x10FFFFU || (value >= 0xD800U && value <= 0xDFFFU)) {
            return std::nullopt;
        }
        code_points.push_back(value);
        i += length;
    }
    return code_points;
}

// RFC 3492 §5 parameters.
constexpr std::uint32_t kBase = 36;
constexpr std::uint32_t kTmin = 1;
constexpr std::uint32_t kTmax = 26;
constexpr std::uint32_t kSkew = 38;
constexpr std::uint32_t kDamp = 700;
constexpr std::uint32_t kInitialBias = 72;
constexpr std::uint32_t kInitialN = 0x80;
constexpr std::uint32_t kMaxInt = 0xFFFFFFFFU;

// RFC 3492 §6.1.
std::uint32_t adapt(std::uint32_t delta, std::uint32_t points, bool first_time) {
    delta = first_time ? delta / kDamp : delta / 2;
    delta += delta / points;
    std::uint32_t k = 0;
    while (delta > ((kBase - kTmin) * kTmax) / 2) {
        delta /= kBase - kTmin;
        k += kBase;
    }
    return k + (kBase - kTmin + 1) * delta / (delta + kSkew);
}

char punycode_digit(std::uint32_t digit) {
    FAULTLINE_ASSERT(digit < kBase);
    return static_cast<char>(digit < 26 ? 'a' + digit : '0' + (digit - 26));
}

// RFC 3492 §6.3, over code points.
std::optional<std::string> punycode_encode_points(const std::vector<std::uint32_t>& input) {
    std::string output;
    for (const std::uint32_t c : input) {
        if (c < 0x80U) {
            output += static_cast<char>(c);
        }
    }
    const auto basic = static_cast<std::uint32_t>(output.size());
    std::uint32_t handled = basic;
    if (basic > 0) {
        output += '-';
    }
    std::uint32_t n = kInitialN;
    std::uint32_t delta = 0;
    std::uint32_t bias = kInitialBias;
    const auto length = static_cast<std::uint32_t>(input.size());
    while (handled < length) {
        std::uint32_t m = kMaxInt;
        for (const std::uint32_t c : input) {
            if (c >= n && c < m) {
                m = c;
            }
        }
        if (m - n > (kMaxInt - delta) / (handled + 1)) {
            return std::nullopt;
        }
        delta += (m - n) * (handled + 1);
        n = m;
        for (const std::uint32_t c : input) {
            if (c < n) {
                if (delta == kMaxInt) {
                    return std::nullopt;
                }
                ++delta;
            }
            if (c != n) {
                continue;
            }
            std::uint32_t q = delta;
            for (std::uint32_t k = kBase;; k += kBase) {
                const std::uint32_t t = k <= bias ? kTmin : (k >= bias + kTmax ? kTmax : k - bias);
                if (q < t) {
                    break;
                }
                output += punycode_digit(t + (q - t) % (kBase - t));
                q = (q - t) / (kBase - t);
            }
            output += punycode_digit(q);
            bias = adapt(delta, handled + 1, handled == basic);
            delta = 0;
            ++handled;
        }
        ++delta;
        ++n;
    }
    return output;
}

// A small stand-in for nameprep's case folding: ASCII, Latin-1, basic Greek and Cyrillic capitals.
std::uint32_t lower_code_point(std::uint32_t c) {
    if (c >= 'A' && c <= 'Z') {
        return c + 0x20U;
    }
    if ((c >= 0xC0U && c <= 0xDEU && c != 0xD7U) || (c >= 0x391U && c <= 0x3A9U && c != 0x3A2U) ||
        (c >= 0x410U && c <= 0x42FU)) {
        return c + 0x20U;
    }
    if (c >= 0x400U && c <= 0x40FU) {
        return c + 0x50U;
    }
    return c;
}

bool is_label_separator(std::uint32_t c) {
    return c == '.' || c == 0x3002U || c == 0xFF0EU || c == 0xFF61U;
}

constexpr std::size_t kLabelOctetsMax = 63;

}  // namespace

std::optional<std::string> punycode_encode(std::string_view label) {
    const auto code_points = decode_utf8(label);
    if (!code_points) {
        return std::nullopt;
    }
    return punycode_encode_points(*code_points);
}

std::optional<std::string> idna_to_ascii(std::string_view domain) {
    const auto code_points = decode_utf8(domain);
    if (!code_points) {
        return std::nullopt;
    }
    std::string out;
    std::vector<std::uint32_t> label;
    const auto finish_label = [&]() -> bool {
        if (label.empty()) {
            return false;
        }
        bool ascii = true;
        for (std::uint32_t& c : label) {
            c = lower_code_point(c);
            ascii = ascii && c < 0x80U;
        }
        std::string encoded;
        if (ascii) {
            for (const std::uint32_t c : label) {
                encoded += static_cast<char>(c);
            }
        } else {
            const auto punycode = punycode_encode_points(label);
            if (!punycode) {
                return false;
            }
            encoded = "xn--" + *punycode;
        }
        if (encoded.size() > kLabelOctetsMax) {
            return false;
        }
        if (!out.empty()) {
            out += '.';
        }
        out += encoded;
        label.clear();
        return true;
    };
    for (const std::uint32_t c : *code_points) {
        if (is_label_separator(c)) {
            if (!finish_label()) {
                return std::nullopt;
            }
        } else {
            label.push_back(c);
        }
    }
    if (!finish_label()) {
        return std::nullopt;
    }
    return out;
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

std::optional<std::string> MailAddress::smtp_address(bool allow_unicode) const {
    if (allow_unicode) {
        return smtp_address();
    }
    // MailAddress.GetUser: a Unicode local part cannot be downgraded (is_ascii permits CR/LF as
    // .NET's IsAscii(value, true) does; the parser never lets them through anyway).
    if (!is_ascii(user_, true)) {
        return std::nullopt;
    }
    std::optional<std::string> host = host_;
    if (!is_ascii(host_, true)) {
        host = idna_to_ascii(host_);  // MailAddress.GetHost: IdnMapping.GetAscii
        if (!host) {
            return std::nullopt;
        }
    }
    std::string address;
    address.reserve(user_.size() + 3 + host->size());
    address.append(1, '<').append(user_).append(1, '@').append(*host).append(1, '>');
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

std::string MailAddress::encoded() const { return encode_with(Address(), false); }

std::string MailAddress::encoded(bool allow_unicode) const {
    if (allow_unicode || is_ascii(host_, true)) {
        return encode_with(Address(), allow_unicode);
    }
    // The envelope already refused what cannot be downgraded (M-13); if IDNA fails here the
    // address is written as it stands rather than failing a second time.
    const std::optional<std::string> host = idna_to_ascii(host_);
    std::string address;
    address.append(user_).append(1, '@').append(host ? *host : host_);
    return encode_with(address, false);
}

std::string MailAddress::encode_with(const std::string& address, bool allow_unicode) const {
    if (display_name_.empty()) {
        return address;
    }
    std::string text;
    if (allow_unicode || is_ascii(display_name_, false)) {
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
    text.append(" <").append(address).append(1, '>');
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
