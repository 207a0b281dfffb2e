// MailMessage: the content of one mail as System.Net.Mail.MailMessage shapes it (From, Sender,
// To/CC/Bcc, Subject, Body, encodings, extra headers). Invariant: Subject holds no CR or LF (M-31).
// A plain value: it neither encodes (see mime.h) nor sends (the SmtpClient does); it does not check
// that From or a recipient is present, because .NET checks that at send time (M-1).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faultline/model/exceptions.h"
#include "faultline/model/mail_address.h"

namespace faultline::model {

/// System.Net.Mime.TransferEncoding for the body. `unknown` (the .NET default) lets the writer
/// choose: base64 for a UTF-8 body, quoted-printable for an ASCII one (M-29).
enum class TransferEncoding { unknown, seven_bit, eight_bit, quoted_printable, base64 };

/// System.Net.Mail.DeliveryNotificationOptions (flags; M-23): the DSN NOTIFY= parameter of each
/// RCPT TO, sent only when the server advertised DSN. Never is exclusive; the setter refuses it
/// combined with the others.
enum class DeliveryNotificationOptions : int {
    None = 0,
    OnSuccess = 1,
    OnFailure = 2,
    Delay = 4,
    Never = 134217728,
};

[[nodiscard]] constexpr DeliveryNotificationOptions operator|(DeliveryNotificationOptions left,
                                                              DeliveryNotificationOptions right) {
    return static_cast<DeliveryNotificationOptions>(static_cast<int>(left) |
                                                    static_cast<int>(right));
}
[[nodiscard]] constexpr DeliveryNotificationOptions operator&(DeliveryNotificationOptions left,
                                                              DeliveryNotificationOptions right) {
    return static_cast<DeliveryNotificationOptions>(static_cast<int>(left) &
                                                    static_cast<int>(right));
}

/// The RCPT parameter for `options` as MailMessage.BuildDeliveryStatusNotificationString writes
/// it, without the leading space: "" for None, "NOTIFY=NEVER", else "NOTIFY=" and SUCCESS,
/// FAILURE, DELAY in that order, comma-separated.
[[nodiscard]] inline std::string delivery_notify_parameter(DeliveryNotificationOptions options) {
    if (options == DeliveryNotificationOptions::None) {
        return {};
    }
    if (options == DeliveryNotificationOptions::Never) {
        return "NOTIFY=NEVER";
    }
    std::string parameter = "NOTIFY=";
    const auto add = [&](DeliveryNotificationOptions flag, std::string_view keyword) {
        if ((options & flag) != DeliveryNotificationOptions::None) {
            if (parameter.back() != '=') {
                parameter += ',';
            }
            parameter += keyword;
        }
    };
    add(DeliveryNotificationOptions::OnSuccess, "SUCCESS");
    add(DeliveryNotificationOptions::OnFailure, "FAILURE");
    add(DeliveryNotificationOptions::Delay, "DELAY");
    return parameter;
}

/// One user-supplied header. Values holding CR, LF or non-ASCII text are written as encoded words
/// (M-31), so they cannot break the header block.
struct MailHeader {
    std::string name;
    std::string value;
};

/// MailMessage.Headers (a NameValueCollection): user headers in insertion order, duplicates kept.
class HeaderCollection {
public:
    /// Appends a header. Throws ArgumentException (param "name") for an empty name and
    /// FormatException for a name with a character outside RFC 5322 ftext (printable ASCII except
    /// ':'), which covers CR, LF and spaces.
    void Add(std::string name, std::string value) {
        if (name.empty()) {
            throw ArgumentException("The parameter 'name' cannot be an empty string.", "name");
        }
        for (const char c : name) {
            if (c < '!' || c > '~' || c == ':') {
                throw FormatException("An invalid character was found in header name.");
            }
        }
        headers_.push_back(MailHeader{std::move(name), std::move(value)});
    }
    [[nodiscard]] std::size_t Count() const noexcept { return headers_.size(); }
    [[nodiscard]] const MailHeader& operator[](std::size_t index) const {
        return headers_.at(index);
    }
    [[nodiscard]] auto begin() const noexcept { return headers_.begin(); }
    [[nodiscard]] auto end() const noexcept { return headers_.end(); }

private:
    std::vector<MailHeader> headers_;
};

class MailMessage {
public:
    MailMessage() = default;
    /// MailMessage(MailAddress from, MailAddress to).
    MailMessage(MailAddress from, MailAddress to) : from_(std::move(from)) {
        to_.push_back(std::move(to));
    }
    /// MailMessage(string from, string to): both parsed as MailAddress (FormatException if not).
    MailMessage(std::string_view from, std::string_view to)
        : MailMessage(MailAddress(from), MailAddress(to)) {}

    [[nodiscard]] const std::optional<MailAddress>& From() const noexcept { return from_; }
    void From(std::optional<MailAddress> value) { from_ = std::move(value); }
    /// When set, MAIL FROM and the Sender header use it instead of From (M-13).
    [[nodiscard]] const std::optional<MailAddress>& Sender() const noexcept { return sender_; }
    void Sender(std::optional<MailAddress> value) { sender_ = std::move(value); }

    /// Recipient lists, in the order they will be sent (M-13); duplicates are kept.
    [[nodiscard]] std::vector<MailAddress>& To() noexcept { return to_; }
    [[nodiscard]] const std::vector<MailAddress>& To() const noexcept { return to_; }
    [[nodiscard]] std::vector<MailAddress>& CC() noexcept { return cc_; }
    [[nodiscard]] const std::vector<MailAddress>& CC() const noexcept { return cc_; }
    /// Blind copies: envelope only, never written to a header (M-13).
    [[nodiscard]] std::vector<MailAddress>& Bcc() noexcept { return bcc_; }
    [[nodiscard]] const std::vector<MailAddress>& Bcc() const noexcept { return bcc_; }

    [[nodiscard]] const std::string& Subject() const noexcept { return subject_; }
    /// Throws ArgumentException (param "value") if `value` holds CR or LF (M-31); the subject is
    /// left unchanged then.
    void Subject(std::string value) {
        if (value.find_first_of("\r\n") != std::string::npos) {
            throw ArgumentException("The subject cannot contain CR or LF characters.", "value");
        }
        subject_ = std::move(value);
    }
    /// UTF-8 text; any line ends (CRLF, bare LF, bare CR) are kept until the writer encodes them.
    [[nodiscard]] const std::string& Body() const noexcept { return body_; }
    void Body(std::string value) { body_ = std::move(value); }

    /// nullopt (the .NET null) means: UTF-8 if the subject needs encoding.
    [[nodiscard]] std::optional<TextEncoding> SubjectEncoding() const noexcept {
        return subject_encoding_;
    }
    void SubjectEncoding(std::optional<TextEncoding> value) noexcept { subject_encoding_ = value; }
    /// nullopt (the .NET null) means: ASCII if the body is ASCII, else UTF-8, decided when written
    /// (.NET decides when Body is set; the result is the same for a body set once).
    [[nodiscard]] std::optional<TextEncoding> BodyEncoding() const noexcept {
        return body_encoding_;
    }
    void BodyEncoding(std::optional<TextEncoding> value) noexcept { body_encoding_ = value; }
    [[nodiscard]] TransferEncoding BodyTransferEncoding() const noexcept {
        return body_transfer_encoding_;
    }
    void BodyTransferEncoding(TransferEncoding value) noexcept { body_transfer_encoding_ = value; }
    [[nodiscard]] bool IsBodyHtml() const noexcept { return is_body_html_; }
    void IsBodyHtml(bool value) noexcept { is_body_html_ = value; }

    /// DSN requests for every recipient (M-23); None by default. A value above
    /// OnSuccess|OnFailure|Delay other than exactly Never → ArgumentOutOfRangeException("value").
    [[nodiscard]] model::DeliveryNotificationOptions DeliveryNotificationOptions() const noexcept {
        return delivery_notification_options_;
    }
    void DeliveryNotificationOptions(model::DeliveryNotificationOptions value) {
        if (static_cast<unsigned>(value) > 7U && value != model::DeliveryNotificationOptions::Never) {
            throw ArgumentOutOfRangeException("value");
        }
        delivery_notification_options_ = value;
    }

    [[nodiscard]] HeaderCollection& Headers() noexcept { return headers_; }
    [[nodiscard]] const HeaderCollection& Headers() const noexcept { return headers_; }

private:
    std::optional<MailAddress> from_;
    std::optional<MailAddress> sender_;
    std::vector<MailAddress> to_;
    std::vector<MailAddress> cc_;
    std::vector<MailAddress> bcc_;
    std::string subject_;
    std::string body_;
    std::optional<TextEncoding> subject_encoding_;
    std::optional<TextEncoding> body_encoding_;
    TransferEncoding body_transfer_encoding_ = TransferEncoding::unknown;
    bool is_body_html_ = false;
    model::DeliveryNotificationOptions delivery_notification_options_ =
        model::DeliveryNotificationOptions::None;
    HeaderCollection headers_;
};

/// The MAIL FROM address: Sender when set, else From; nullopt if neither is (M-13).
[[nodiscard]] inline std::optional<MailAddress> envelope_sender(const MailMessage& message) {
    return message.Sender() ? message.Sender() : message.From();
}

/// The RCPT TO addresses in order: To, then CC, then Bcc, duplicates kept (M-13).
[[nodiscard]] inline std::vector<MailAddress> envelope_recipients(const MailMessage& message) {
    std::vector<MailAddress> recipients;
    recipients.reserve(message.To().size() + message.CC().size() + message.Bcc().size());
    recipients.insert(recipients.end(), message.To().begin(), message.To().end());
    recipients.insert(recipients.end(), message.CC().begin(), message.CC().end());
    recipients.insert(recipients.end(), message.Bcc().begin(), message.Bcc().end());
    return recipients;
}

}  // namespace faultline::model
