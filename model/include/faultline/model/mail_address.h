// MailAddress: an RFC 5322 mailbox ("local@domain" or "Display Name <local@domain>") as
// System.Net.Mail.MailAddress shapes it. Invariant: a constructed address has a non-empty User and
// Host and no CR or LF anywhere (M-31). Pure value type: it knows how to write its envelope form
// with or without SMTPUTF8 (IDNA for the domain, M-13), but the SmtpClient decides which applies.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "faultline/model/exceptions.h"

namespace faultline::model {

namespace detail {
struct ParsedMailAddress;  // The parser's result; defined in mail_address.cpp.
}  // namespace detail

/// System.FormatException: malformed text, here a mail address or header name that does not parse.
class FormatException : public DotnetException {
public:
    using DotnetException::DotnetException;
    [[nodiscard]] std::string_view type_name() const noexcept override {
        return "FormatException";
    }
};

/// The text encodings the mail model supports (the .NET Encoding objects it mirrors:
/// Encoding.ASCII and Encoding.UTF8). C++ strings in the model always hold UTF-8.
enum class TextEncoding { ascii, utf8 };

/// The MIME charset name: "us-ascii" or "utf-8" (lower case, as .NET's Encoding.WebName).
[[nodiscard]] std::string_view charset_name(TextEncoding encoding) noexcept;

/// True if every byte of `text` is 7-bit ASCII. With `permit_cr_or_lf` false, CR and LF count as
/// non-ASCII, as in .NET MimeBasePart.IsAscii, which is what makes header values holding them get
/// encoded (M-31).
[[nodiscard]] bool is_ascii(std::string_view text, bool permit_cr_or_lf) noexcept;

/// RFC 3492 Punycode of one label given as UTF-8 (the part after "xn--"; the ASCII code points
/// first, then the encoded deltas). nullopt for invalid UTF-8 or an arithmetic overflow. An
/// all-ASCII label comes back with a trailing '-' as RFC 3492 §6.3 prescribes.
[[nodiscard]] std::optional<std::string> punycode_encode(std::string_view label);

/// IDNA ToASCII for a whole domain (what MailAddress.GetHost does with IdnMapping.GetAscii when
/// SMTPUTF8 is not in use, M-13), simplified: labels split at '.', U+3002, U+FF0E and U+FF61;
/// letters lower-cased (ASCII, Latin-1, basic Greek and Cyrillic only: no full nameprep or
/// UTS #46 mapping); every label holding non-ASCII becomes "xn--" + punycode. nullopt for invalid
/// UTF-8, an empty label or a label longer than 63 octets (RFC 5890 §2.3.2.1).
[[nodiscard]] std::optional<std::string> idna_to_ascii(std::string_view domain);

class MailAddress {
public:
    /// Parses "local@domain", "<local@domain>", "Display <local@domain>" or
    /// "\"Quoted Display\" <local@domain>". Throws ArgumentException (param "address") for an empty
    /// string and FormatException for anything that does not parse, including CR or LF other than
    /// folding whitespace (CRLF followed by SP or HT) and any CR or LF inside a domain literal (M-31).
    /// The display name is encoded as UTF-8 when written.
    explicit MailAddress(std::string_view address);
    /// As above; a non-empty `display_name` replaces the parsed one. Surrounding double quotes on
    /// `display_name` are removed (they are re-added when written); a CR or LF in it throws
    /// FormatException.
    MailAddress(std::string_view address, std::string_view display_name);
    MailAddress(std::string_view address, std::string_view display_name,
                TextEncoding display_name_encoding);

    /// MailAddress.TryCreate: the parsed address, or nullopt where the constructor would throw.
    [[nodiscard]] static std::optional<MailAddress> TryCreate(std::string_view address);

    /// "user@host".
    [[nodiscard]] std::string Address() const;
    [[nodiscard]] const std::string& DisplayName() const noexcept { return display_name_; }
    [[nodiscard]] const std::string& User() const noexcept { return user_; }
    [[nodiscard]] const std::string& Host() const noexcept { return host_; }
    [[nodiscard]] TextEncoding DisplayNameEncoding() const noexcept {
        return display_name_encoding_;
    }
    /// "\"Display\" <user@host>", or "user@host" without a display name (MailAddress.ToString).
    [[nodiscard]] std::string ToString() const;

    /// The envelope form used in MAIL FROM and RCPT TO: "<user@host>" (M-13). No IDN mapping: a
    /// non-ASCII address is returned as is, and the SmtpClient decides (M-13).
    [[nodiscard]] std::string smtp_address() const;
    /// MailAddress.GetSmtpAddress(allowUnicode) (M-13): "<user@host>" as is with
    /// `allow_unicode` (SMTPUTF8 negotiated and DeliveryFormat International); otherwise a
    /// non-ASCII host is IDNA-encoded (idna_to_ascii). nullopt where .NET throws SmtpException:
    /// a non-ASCII User without `allow_unicode`, or a host IDNA refuses (the caller tells them
    /// apart by User()).
    [[nodiscard]] std::optional<std::string> smtp_address(bool allow_unicode) const;

    /// The header form (MailAddress.Encode): "user@host" without a display name; otherwise an
    /// ASCII display name quoted, a non-ASCII one as RFC 2047 Q-encoded words in
    /// DisplayNameEncoding (M-30), then " <user@host>". Never contains CR or LF; folding is the
    /// header writer's job.
    [[nodiscard]] std::string encoded() const;
    /// MailAddress.Encode(allowUnicode): with `allow_unicode` (M-30, SMTPUTF8 in use) any display
    /// name is quoted as it stands, UTF-8 and all, and the address is written raw; otherwise as
    /// encoded(), but with a non-ASCII host IDNA-encoded when that succeeds (M-13).
    [[nodiscard]] std::string encoded(bool allow_unicode) const;

    /// Case-insensitive comparison of ToString(), as MailAddress.Equals (ASCII case folding only).
    friend bool operator==(const MailAddress& left, const MailAddress& right);

private:
    MailAddress(detail::ParsedMailAddress parsed, TextEncoding display_name_encoding);
    /// The header form around `address` ("user@host" in the chosen form).
    [[nodiscard]] std::string encode_with(const std::string& address, bool allow_unicode) const;

    std::string display_name_;
    std::string user_;
    std::string host_;
    TextEncoding display_name_encoding_ = TextEncoding::utf8;
};

}  // namespace faultline::model
