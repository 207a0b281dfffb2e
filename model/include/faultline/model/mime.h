// The MIME writer: turns a MailMessage into the exact DATA content bytes, plus the SMTP
// transparency helpers (dot-stuffing, the end-of-data sequence). Invariant: with the default
// options every line it writes ends in CRLF and no bare CR or LF appears (W-1, M-29). Pure
// functions of their arguments: no clock (the caller supplies Date), no I/O, nothing throws.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "faultline/model/mail_address.h"
#include "faultline/model/mail_message.h"

namespace faultline::model {

/// Lines of a base64 body are at most this long (RFC 2045 §6.8); QP lines too (§6.7).
inline constexpr std::size_t kBodyLineLengthMax = 76;
/// The writer folds header lines at whitespace once they would pass this length (RFC 5322 §2.2.3
/// recommends 78; .NET folds near 76). An unbreakable token can still make a line longer.
inline constexpr std::size_t kHeaderLineLengthMax = 76;
/// Longest encoded word the writer produces (RFC 2047 §2 allows 75), chosen so that
/// "Subject: " plus one word stays within kHeaderLineLengthMax.
inline constexpr std::size_t kEncodedWordLengthMax = 64;

struct MimeOptions {
    /// The Date header value, an RFC 5322 date-time such as "21 Nov 2026 10:46:05 +0000"; the
    /// caller supplies it because model/ has no clock. Must be non-empty and free of CR and LF.
    std::string date;
    /// Reproduces the .NET exposure (M-29, W-12): with an explicit seven_bit or eight_bit body
    /// transfer encoding, .NET passes bare CR and LF through. When false (the default, W-16) such
    /// bodies have every bare CR or LF turned into CRLF. No effect on QP and base64 bodies.
    bool pass_bare_line_ends = false;
    /// M-30: SMTPUTF8 was negotiated and DeliveryFormat is International (.NET's allowUnicode).
    /// Display names are then quoted as they stand, addresses, Subject and user header values go
    /// out as raw UTF-8 (a user header value holding CR or LF is still encoded, M-31). When false,
    /// a non-ASCII address domain in a header is IDNA-encoded as in the envelope (M-13).
    bool allow_unicode = false;
};

/// RFC 4648 base64 of `bytes`, broken into CRLF-separated lines of `line_length` characters
/// (0 = one line). No trailing CRLF.
[[nodiscard]] std::string encode_base64(std::string_view bytes, std::size_t line_length);

/// RFC 2045 §6.7 quoted-printable body encoding with .NET's line-end rule: CRLF stays a hard line
/// break, a lone CR or LF becomes =0D or =0A (M-29); '=', controls and bytes above 126 become =XX;
/// space or tab before a line break or at the end becomes =20 or =09. Lines, including a trailing
/// soft-break '=', are at most kBodyLineLengthMax characters.
[[nodiscard]] std::string encode_quoted_printable(std::string_view bytes);

/// RFC 2047 encoded words for `text` (UTF-8) in `encoding`: B (base64) or Q. ASCII encoding
/// replaces each non-ASCII character with '?', as .NET's Encoding.ASCII does. Words are at most
/// kEncodedWordLengthMax characters, never split a UTF-8 sequence, and are joined by single spaces
/// (ignored between encoded words, RFC 2047 §6.2). Q words use only the characters RFC 2047 §5(3)
/// allows in a phrase, with '_' for space. Empty `text` gives "".
[[nodiscard]] std::string encode_words(std::string_view text, TextEncoding encoding,
                                       bool use_base64);

/// One header field: "name: value" folded at spaces into lines of at most kHeaderLineLengthMax
/// characters where possible, each ending CRLF. Precondition: no CR or LF in either argument.
[[nodiscard]] std::string write_header(std::string_view name, std::string_view value);

/// The DATA content for `message` before dot-stuffing: headers in the order .NET writes them
/// (user headers in insertion order, then as Message.PrepareHeaders adds them: MIME-Version,
/// Sender, From, To, Cc, Date, Subject; then the body part's Content-Type and
/// Content-Transfer-Encoding), a blank line, the encoded body, and the CRLF that .NET's MailWriter
/// adds on close (M-27). Bcc is never written (M-13). User headers whose names match a header the
/// writer produces are dropped, as .NET overwrites or removes them. User header values holding CR,
/// LF or non-ASCII text become UTF-8 B-encoded words (M-30, M-31).
/// Preconditions: From is set; options.date is non-empty and holds no CR or LF.
[[nodiscard]] std::string write_message(const MailMessage& message, const MimeOptions& options);

/// SMTP transparency (RFC 5321 §4.5.2, W-6) as .NET does it (M-28): doubles a '.' that is the
/// first byte of `data` or follows CRLF. A '.' after a bare LF is not doubled.
[[nodiscard]] std::string dot_stuff(std::string_view data);

/// The end-of-data sequence CRLF "." CRLF (W-7). Sent after the dot-stuffed content, which from
/// write_message already ends in CRLF, so the data ends with an empty line (M-27).
[[nodiscard]] constexpr std::string_view data_terminator() noexcept { return "\r\n.\r\n"; }

/// True if `data` holds an LF not preceded by CR (W-1).
[[nodiscard]] bool contains_bare_line_feed(std::string_view data) noexcept;
/// True if `data` holds a CR not followed by LF (W-1).
[[nodiscard]] bool contains_bare_carriage_return(std::string_view data) noexcept;

}  // namespace faultline::model
