// SmtpClient<T>: System.Net.Mail.SmtpClient (SendAsync, SendMailAsync, SendAsyncCancel, Send,
// Dispose) over any Transport, with the exception types it throws. Invariant: every SendAsync that
// passes the synchronous checks (M-1) raises SendCompleted exactly once, on a pool thread, after
// the in-progress flag was cleared (M-5, M-7); every SendMailAsync task completes exactly once and
// raises no SendCompleted (M-10). Commands go one at a time (M-22). AUTH LOGIN (and
// PLAIN per profile) with Credentials (M-21), SMTPUTF8/DSN parameters (M-23) and IDNA domains
// (M-13) are supported; TLS is not (EnableSsl fails fast, M-20 is a later issue), nor the pickup
// directory; Host must be an IPv4 literal or "localhost" (the transports have no resolver).
#pragma once

#include <any>
#include <array>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faultline/model/assert.h"
#include "faultline/model/cancellation.h"
#include "faultline/model/exceptions.h"
#include "faultline/model/flow.h"
#include "faultline/model/mail_message.h"
#include "faultline/model/mime.h"
#include "faultline/model/mutants.h"
#include "faultline/model/profile.h"
#include "faultline/model/smtp_codec.h"
#include "faultline/model/smtp_error.h"
#include "faultline/model/transport.h"

namespace faultline::model {

/// System.Net.Mail.SmtpStatusCode (M-18). Codes outside the list are carried as raw values.
enum class SmtpStatusCode : int {
    GeneralFailure = -1,
    SystemStatus = 211,
    HelpMessage = 214,
    ServiceReady = 220,
    ServiceClosingTransmissionChannel = 221,
    Ok = 250,
    UserNotLocalWillForward = 251,
    CannotVerifyUserWillAttemptDelivery = 252,
    StartMailInput = 354,
    ServiceNotAvailable = 421,
    MailboxBusy = 450,
    LocalErrorInProcessing = 451,
    InsufficientStorage = 452,
    ClientNotPermitted = 454,
    CommandUnrecognized = 500,
    SyntaxError = 501,
    CommandNotImplemented = 502,
    BadCommandSequence = 503,
    CommandParameterNotImplemented = 504,
    MustIssueStartTlsFirst = 530,
    MailboxUnavailable = 550,
    UserNotLocalTryAlternatePath = 551,
    ExceededStorageAllocation = 552,
    MailboxNameNotAllowed = 553,
    TransactionFailed = 554,
};

/// System.IO.IOException: the transport failed or the server closed the connection (M-25).
class IOException : public DotnetException {
public:
    using DotnetException::DotnetException;
    [[nodiscard]] std::string_view type_name() const noexcept override { return "IOException"; }
};

/// System.Net.Mail.SmtpException. InnerException is null or the wrapped original (M-2, M-6).
class SmtpException : public DotnetException {
public:
    SmtpException(SmtpStatusCode status_code,
                  const std::string& message,
                  std::exception_ptr inner = nullptr)
        : DotnetException(message), status_code_(status_code), inner_(std::move(inner)) {}
    [[nodiscard]] std::string_view type_name() const noexcept override { return "SmtpException"; }
    [[nodiscard]] SmtpStatusCode StatusCode() const noexcept { return status_code_; }
    [[nodiscard]] const std::exception_ptr& InnerException() const noexcept { return inner_; }

private:
    SmtpStatusCode status_code_;
    std::exception_ptr inner_;
};

/// One recipient refused with 450, 452, 550, 551, 552 or 553 (M-15). FailedRecipient is the
/// envelope form "<user@host>".
class SmtpFailedRecipientException : public SmtpException {
public:
    SmtpFailedRecipientException(SmtpStatusCode status_code,
                                 std::string failed_recipient,
                                 const std::string& message,
                                 std::exception_ptr inner = nullptr)
        : SmtpException(status_code, message, std::move(inner)),
          failed_recipient_(std::move(failed_recipient)) {}
    [[nodiscard]] std::string_view type_name() const noexcept override {
        return "SmtpFailedRecipientException";
    }
    [[nodiscard]] const std::string& FailedRecipient() const noexcept { return failed_recipient_; }

private:
    std::string failed_recipient_;
};

/// Two or more recipients refused (M-16, M-17): InnerExceptions in RCPT order; FailedRecipient
/// and InnerException are the first one's; StatusCode GeneralFailure.
class SmtpFailedRecipientsException : public SmtpFailedRecipientException {
public:
    SmtpFailedRecipientsException(std::vector<SmtpFailedRecipientException> inner_exceptions,
                                  const std::string& message)
        : SmtpFailedRecipientException(SmtpStatusCode::GeneralFailure,
                                       inner_exceptions.at(0).FailedRecipient(),
                                       message,
                                       std::make_exception_ptr(inner_exceptions.at(0))),
          inner_exceptions_(std::move(inner_exceptions)) {}
    [[nodiscard]] std::string_view type_name() const noexcept override {
        return "SmtpFailedRecipientsException";
    }
    [[nodiscard]] const std::vector<SmtpFailedRecipientException>& InnerExceptions()
        const noexcept {
        return inner_exceptions_;
    }

private:
    std::vector<SmtpFailedRecipientException> inner_exceptions_;
};

/// Harness classification of one send for the oracle (W-10, M-26): only the 250 after the final
/// dot proves delivery; a connection lost after the whole terminator went out leaves it unknown.
enum class DeliveryOutcome : std::uint8_t { delivered, not_delivered, unknown };

/// System.ComponentModel.AsyncCompletedEventArgs, plus the harness's `delivery` (not .NET).
struct AsyncCompletedEventArgs {
    bool Cancelled = false;
    std::exception_ptr Error;
    std::any UserState;
    DeliveryOutcome delivery = DeliveryOutcome::not_delivered;
};

/// System.Threading.Tasks.TaskStatus, reduced to the states a SendMailAsync task passes through.
enum class TaskStatus : std::uint8_t { Running, RanToCompletion, Canceled, Faulted };

/// The Task SendMailAsync returns (M-10). It completes exactly once. Exception() is what awaiting
/// the task would throw: TaskCanceledException when Canceled, the send's SmtpException (or
/// subclass) when Faulted, null otherwise; .NET's Task.Exception would wrap the failure in an
/// AggregateException and be null for a Canceled task. `delivery` is the harness classification
/// (W-10), not .NET API.
template <Transport T>
class SmtpTask {
public:
    explicit SmtpTask(T& transport) : transport_(transport) {}
    SmtpTask(const SmtpTask&) = delete;
    SmtpTask& operator=(const SmtpTask&) = delete;
    ~SmtpTask() = default;

    [[nodiscard]] TaskStatus Status() const {
        std::unique_lock lock(mutex_);
        return status_;
    }
    [[nodiscard]] bool IsCompleted() const { return Status() != TaskStatus::Running; }
    [[nodiscard]] std::exception_ptr Exception() const {
        std::unique_lock lock(mutex_);
        return exception_;
    }
    [[nodiscard]] DeliveryOutcome delivery() const {
        std::unique_lock lock(mutex_);
        return delivery_;
    }
    /// Blocks until the task completed (true) or `budget` ran out (false). Unlike .NET's
    /// Task.Wait it never throws: read Status() and Exception() afterwards.
    [[nodiscard]] bool Wait(Duration budget) {
        std::unique_lock lock(mutex_);
        return status_ != TaskStatus::Running || transport_.wait(done_, lock, budget);
    }

    /// Completes the task; called once, by SmtpClient, without the client's lock held.
    void complete(TaskStatus status, std::exception_ptr exception, DeliveryOutcome delivery) {
        FAULTLINE_ASSERT(status != TaskStatus::Running);
        std::unique_lock lock(mutex_);
        FAULTLINE_ASSERT(status_ == TaskStatus::Running);  // exactly once
        status_ = status;
        exception_ = std::move(exception);
        delivery_ = delivery;
        transport_.signal(done_);
    }

private:
    T& transport_;
    mutable typename T::Mutex mutex_;
    typename T::Event done_;
    TaskStatus status_ = TaskStatus::Running;
    std::exception_ptr exception_;
    DeliveryOutcome delivery_ = DeliveryOutcome::not_delivered;
};

/// System.Net.NetworkCredential, reduced to what SMTP AUTH uses (no Domain).
struct NetworkCredential {
    std::string UserName;
    std::string Password;

    friend bool operator==(const NetworkCredential&, const NetworkCredential&) = default;
};

/// System.Net.Mail.SmtpDeliveryFormat (M-23): International asks for SMTPUTF8 when the server
/// advertises it.
enum class SmtpDeliveryFormat : std::uint8_t { SevenBit = 0, International = 1 };

/// The message of the NotSupportedException Send and SendAsync throw while EnableSsl is true.
inline constexpr std::string_view kEnableSslNotSupported =
    "faultline: EnableSsl (STARTTLS, M-20) is not supported yet";

/// The EHLO/HELO argument: fixed, so transcripts are reproducible (.NET uses the host name).
inline constexpr std::string_view kSmtpClientDomain = "client.faultline.test";
/// SmtpClient's defaults (M-4).
inline constexpr int kSmtpDefaultPort = 25;
inline constexpr int kSmtpDefaultTimeoutMs = 100000;

namespace detail {

/// The fixed text .NET puts before the server's reply text (SmtpException.GetMessageForStatus).
[[nodiscard]] inline std::string smtp_status_text(int code) {
    // .NET's SmtpException message for a server rejection: a fixed text per status code, a
    // space, then "The server response was: " and the reply text (SmtpException.cs,
    // GetMessageForStatus; texts from System.Net.Mail's string resources).
    std::string text;
    switch (code) {
        case 421: text = "Service not available, closing transmission channel."; break;
        case 450: text = "Mailbox unavailable."; break;
        case 451: text = "Error in processing."; break;
        case 452: text = "Insufficient system storage."; break;
        case 454: text = "Client does not have permission to submit mail to this server."; break;
        case 500: text = "Syntax error, command unrecognized."; break;
        case 501: text = "Syntax error in parameters or arguments."; break;
        case 502: text = "Command not implemented."; break;
        case 503: text = "Bad sequence of commands."; break;
        case 504: text = "Command parameter not implemented."; break;
        case 530:
            text = "The SMTP server requires a secure connection or the client was not "
                   "authenticated.";
            break;
        case 550: text = "Mailbox unavailable."; break;
        case 551: text = "User not local; please try a different path."; break;
        case 552: text = "Exceeded storage allocation."; break;
        case 553: text = "Mailbox name not allowed."; break;
        case 554: text = "Transaction failed."; break;
        default: text = "Syntax error, command unrecognized."; break;  // .NET's fallback
    }
    return text + " The server response was: ";
}

[[nodiscard]] inline std::string reply_text(const Reply& reply) {
    return reply.lines.empty() ? std::string() : reply.lines.front();
}

/// M-14, M-18: a reply ≥ 400 → SmtpException(code); anything else unexpected → protocol
/// violation with GeneralFailure.
[[nodiscard]] inline std::exception_ptr reply_error(const Reply& reply) {
    if (reply.code >= 400) {
        return std::make_exception_ptr(
            SmtpException(static_cast<SmtpStatusCode>(reply.code),
                          smtp_status_text(reply.code) + reply_text(reply)));
    }
    return std::make_exception_ptr(
        SmtpException(SmtpStatusCode::GeneralFailure,
                      "The server committed a protocol violation. The server response was: " +
                          reply_text(reply)));
}

/// M-6, M-25: a transport or parse error, wrapped as "Failure sending mail.".
[[nodiscard]] inline std::exception_ptr wrapped_error(std::error_code error) {
    std::exception_ptr inner;
    if (error == SmtpErrc::malformed_reply || error == SmtpErrc::line_too_long) {
        inner =
            std::make_exception_ptr(FormatException("Smtp server returned an invalid response."));
    } else if (error == SmtpErrc::connection_closed) {
        inner = std::make_exception_ptr(
            IOException("Unable to read data from the transport connection: "
                        "net_io_connectionclosed."));
    } else {
        inner = std::make_exception_ptr(
            IOException("Unable to write data to the transport connection: " + error.message()));
    }
    return std::make_exception_ptr(
        SmtpException(SmtpStatusCode::GeneralFailure, "Failure sending mail.", inner));
}

/// What one EHLO reply advertised, read as SmtpConnection.ParseExtensions does: keywords compared
/// case-insensitively by prefix ("AUTH", "DSN", "SMTPUTF8"), AUTH mechanisms split at ' ' and
/// '='. After a HELO fallback only LOGIN is assumed (M-19).
struct ServerExtensions {
    bool auth_login = false;
    bool auth_plain = false;
    bool dsn = false;
    bool smtputf8 = false;
};

[[nodiscard]] inline bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) {
        return false;
    }
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        char c = text[i];
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
        if (c != prefix[i]) {
            return false;
        }
    }
    return true;
}

[[nodiscard]] inline ServerExtensions parse_extensions(const Reply& ehlo_reply) {
    ServerExtensions extensions;
    for (std::size_t i = 1; i < ehlo_reply.lines.size(); ++i) {
        const std::string_view line = ehlo_reply.lines[i];
        if (starts_with_ignoring_case(line, "AUTH")) {
            std::string_view rest = line.substr(4);
            while (!rest.empty()) {
                const std::size_t end = rest.find_first_of(" =");
                const std::string_view mechanism = rest.substr(0, end);
                if (mechanism.size() == 5 && starts_with_ignoring_case(mechanism, "LOGIN")) {
                    extensions.auth_login = true;
                } else if (mechanism.size() == 5 && starts_with_ignoring_case(mechanism, "PLAIN")) {
                    extensions.auth_plain = true;
                }
                rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
            }
        } else if (starts_with_ignoring_case(line, "DSN")) {
            extensions.dsn = true;
        } else if (starts_with_ignoring_case(line, "SMTPUTF8")) {
            extensions.smtputf8 = true;
        }
    }
    return extensions;
}

/// M-13: what MailAddress.GetSmtpAddress throws when an address cannot be sent as it is.
[[nodiscard]] inline std::exception_ptr address_error(const MailAddress& address) {
    if (!is_ascii(address.User(), true)) {
        return std::make_exception_ptr(SmtpException(
            SmtpStatusCode::GeneralFailure,
            "The client or server is only configured for E-mail addresses with ASCII "
            "local-parts: " +
                address.Address() + "."));
    }
    return std::make_exception_ptr(
        SmtpException(SmtpStatusCode::GeneralFailure,
                      "The address has an invalid host name: " + address.Address() + ".",
                      std::make_exception_ptr(ArgumentException(
                          "Decoded string is not a valid IDN name.", "unicode"))));
}

[[nodiscard]] inline bool is_recipient_failure(int code) {
    return code == 450 || code == 452 || code == 550 || code == 551 || code == 552 || code == 553;
}

/// "a.b.c.d" or "localhost" (any case) → address; nullopt otherwise.
[[nodiscard]] inline std::optional<Endpoint> resolve_host(std::string_view host, int port) {
    std::string lower(host);
    for (char& c : lower) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    if (lower == "localhost") {
        lower = "127.0.0.1";
    }
    return Endpoint::parse(lower + ":" + std::to_string(port));
}

}  // namespace detail

template <Transport T>
class SmtpClient {
public:
    /// sender is the client, or nullptr once it has been destroyed.
    using SendCompletedHandler =
        std::function<void(SmtpClient* sender, const AsyncCompletedEventArgs& args)>;

    /// new SmtpClient(): Host null, Port 25, Timeout 100000 ms (M-4). `transport` must outlive
    /// every send this client starts.
    SmtpClient(T& transport, const Profile& profile)
        : state_(std::make_shared<State>(transport, profile)) {
        state_->owner = this;
    }
    /// new SmtpClient(host, port): port 0 means 25; a negative port throws
    /// ArgumentOutOfRangeException (M-4).
    SmtpClient(T& transport, const Profile& profile, std::string_view host, int port = 0)
        : SmtpClient(transport, profile) {
        if (port < 0) {
            throw ArgumentOutOfRangeException("port");
        }
        Host(host);
        state_->port = port == 0 ? kSmtpDefaultPort : port;
    }
    SmtpClient(const SmtpClient&) = delete;
    SmtpClient& operator=(const SmtpClient&) = delete;
    /// Dispose(); a send still running completes later with sender == nullptr.
    ~SmtpClient() {
        Dispose();
        std::unique_lock lock(state_->mutex);
        state_->owner = nullptr;
    }

    [[nodiscard]] std::optional<std::string> Host() const {
        std::unique_lock lock(state_->mutex);
        return state_->host;
    }
    /// Trims; "" before trimming → ArgumentException; during a send → InvalidOperationException.
    /// A change drops the cached connection (M-12).
    void Host(std::string_view value) {
        std::unique_lock lock(state_->mutex);
        if (value.empty()) {
            throw ArgumentException("The parameter 'value' cannot be an empty string.", "value");
        }
        state_->check_not_in_send();
        const auto first = value.find_first_not_of(" \t\r\n");
        const auto last = value.find_last_not_of(" \t\r\n");
        std::string trimmed = first == std::string_view::npos
                                  ? std::string()
                                  : std::string(value.substr(first, last - first + 1));
        if (state_->host != trimmed) {
            state_->drop_connection(/*abortive=*/false);
        }
        state_->host = std::move(trimmed);
    }

    [[nodiscard]] int Port() const {
        std::unique_lock lock(state_->mutex);
        return state_->port;
    }
    /// ≤ 0 → ArgumentOutOfRangeException; > 65535 is accepted and fails at send time (M-4).
    void Port(int value) {
        std::unique_lock lock(state_->mutex);
        if (value <= 0) {
            throw ArgumentOutOfRangeException("value");
        }
        state_->check_not_in_send();
        if (state_->port != value) {
            state_->drop_connection(/*abortive=*/false);
        }
        state_->port = value;
    }

    /// Milliseconds; < 0 → ArgumentOutOfRangeException; during a send → InvalidOperation (M-4).
    [[nodiscard]] int Timeout() const {
        std::unique_lock lock(state_->mutex);
        return state_->timeout_ms;
    }
    void Timeout(int value) {
        std::unique_lock lock(state_->mutex);
        if (value < 0) {
            throw ArgumentOutOfRangeException("value");
        }
        state_->check_not_in_send();
        state_->timeout_ms = value;
    }

    /// Credentials for AUTH (M-21); nullopt (the default, .NET null) sends no AUTH. During a send
    /// → InvalidOperationException (M-4); a change drops the cached connection (M-12).
    [[nodiscard]] std::optional<NetworkCredential> Credentials() const {
        std::unique_lock lock(state_->mutex);
        return state_->credentials;
    }
    void Credentials(std::optional<NetworkCredential> value) {
        std::unique_lock lock(state_->mutex);
        state_->check_not_in_send();
        if (state_->credentials != value) {
            state_->drop_connection(/*abortive=*/false);
        }
        state_->credentials = std::move(value);
    }

    /// EnableSsl (default false). During a send → InvalidOperationException; a change drops the
    /// cached connection (M-12). While true, Send and SendAsync throw NotSupportedException
    /// (kEnableSslNotSupported) without touching the network: TLS (M-20) is a later issue.
    [[nodiscard]] bool EnableSsl() const {
        std::unique_lock lock(state_->mutex);
        return state_->enable_ssl;
    }
    void EnableSsl(bool value) {
        std::unique_lock lock(state_->mutex);
        state_->check_not_in_send();
        if (state_->enable_ssl != value) {
            state_->drop_connection(/*abortive=*/false);
        }
        state_->enable_ssl = value;
    }

    /// DeliveryFormat (default SevenBit, M-23). During a send → InvalidOperationException.
    /// International takes effect only where the server advertises SMTPUTF8.
    [[nodiscard]] SmtpDeliveryFormat DeliveryFormat() const {
        std::unique_lock lock(state_->mutex);
        return state_->delivery_format;
    }
    void DeliveryFormat(SmtpDeliveryFormat value) {
        std::unique_lock lock(state_->mutex);
        state_->check_not_in_send();
        state_->delivery_format = value;
    }

    /// The Date header value written into every message (model/ has no clock).
    [[nodiscard]] std::string DateHeader() const {
        std::unique_lock lock(state_->mutex);
        return state_->date_header;
    }
    void DateHeader(std::string value) {
        std::unique_lock lock(state_->mutex);
        state_->date_header = std::move(value);
    }

    /// SendCompleted += handler. Handlers run in subscription order on the pool thread that
    /// finished the send, without the client's lock held, so they may call SendAsync (M-7).
    void add_SendCompleted(SendCompletedHandler handler) {
        std::unique_lock lock(state_->mutex);
        state_->handlers.push_back(std::move(handler));
    }

    /// SendAsync(message, userToken). Throws synchronously per M-1 in that order, shaped per
    /// profile (M-2); otherwise returns at once and raises SendCompleted exactly once (M-5).
    /// A null `message` is the .NET null. The client keeps `message` alive until completion.
    void SendAsync(std::shared_ptr<const MailMessage> message, std::any user_token) {
        std::unique_lock lock(state_->mutex);
        state_->begin_async(state_, message.get());
        auto self = state_;
        state_->transport.post(
            [self, message = std::move(message), user_token = std::move(user_token)]() mutable {
                State::run_async(std::move(self), std::move(message), std::move(user_token));
            });
    }
    void SendAsync(const MailMessage& message, std::any user_token) {
        SendAsync(std::make_shared<const MailMessage>(message), std::move(user_token));
    }

    /// SendMailAsync(message, cancellationToken) (M-10). An already-cancelled token returns a
    /// Canceled task at once, before any other check and without touching the network (both
    /// .NET versions test the token first, so even a disposed or busy client yields Canceled).
    /// Otherwise the synchronous checks and their M-2 wrapping are SendAsync's, thrown from this
    /// call (M-1, M-3), and the send runs as SendAsync's does, with the same timer rule (M-8).
    /// Cancelling the token mid-flight aborts the connection as SendAsyncCancel does (and
    /// SendAsyncCancel or Dispose cancel this send too); the task then ends Canceled with
    /// TaskCanceledException, unless the final 250 won the race (RanToCompletion, M-9). A
    /// failure ends it Faulted with the exception SendCompleted would carry (M-6). The client
    /// stays usable: the next send reconnects (M-12). The task completes on a pool thread after
    /// the in-progress flag was cleared.
    ///
    /// No SendCompleted is raised, under either profile. The rewrite (dotnet/runtime main,
    /// src/libraries/System.Net.Mail/src/System/Net/Mail/SmtpClient.cs) calls
    /// SendAsyncInternal(message, invokeSendCompleted: false, ...). The APM-era version (same
    /// file at 08f415226dfc) built SendMailAsync on SendAsync(message, tcs) with a temporary
    /// SendCompleted handler, so other subscribers did see an event with UserState = the
    /// internal TaskCompletionSource; that is an implementation artefact no documentation
    /// promises, and a C++ caller could not recognise that UserState, so it is not mirrored.
    std::shared_ptr<SmtpTask<T>> SendMailAsync(std::shared_ptr<const MailMessage> message,
                                               CancellationToken<T> cancellation_token = {}) {
        auto task = std::make_shared<SmtpTask<T>>(state_->transport);
        if (cancellation_token.IsCancellationRequested()) {
            task->complete(TaskStatus::Canceled,
                           std::make_exception_ptr(TaskCanceledException()),
                           DeliveryOutcome::not_delivered);
            return task;
        }
        std::uint64_t generation = 0;
        {
            std::unique_lock lock(state_->mutex);
            generation = state_->begin_async(state_, message.get());
        }
        // Outside the client's lock: Register runs the callback inline if the token was
        // cancelled in between, and the callback takes that lock.
        std::weak_ptr<State> weak = state_;
        auto registration = cancellation_token.Register([weak, generation] {
            const auto state = weak.lock();
            if (!state) {
                return;
            }
            std::unique_lock lock(state->mutex);
            if (state->generation == generation) {
                state->cancel_locked();  // a no-op once this send has finished
            }
        });
        auto self = state_;
        state_->transport.post([self, message = std::move(message), task,
                                registration = std::move(registration)]() mutable {
            State::run_task(std::move(self), std::move(message), std::move(task),
                            std::move(registration));
        });
        return task;
    }
    std::shared_ptr<SmtpTask<T>> SendMailAsync(const MailMessage& message,
                                               CancellationToken<T> cancellation_token = {}) {
        return SendMailAsync(std::make_shared<const MailMessage>(message),
                             std::move(cancellation_token));
    }

    /// SendAsyncCancel (M-9): disposed → ObjectDisposedException; idle → no-op; otherwise aborts
    /// the connection (RST) and the completion reports Cancelled unless the final 250 won.
    void SendAsyncCancel() {
        std::unique_lock lock(state_->mutex);
        state_->check_disposed();
        state_->cancel_locked();
    }

    /// Synchronous Send on the calling logical thread: M-1 exceptions unwrapped (M-2); Timeout
    /// always bounds it (DOC-Timeout, M-8); failures are thrown as SendCompleted would report
    /// them. Returns the delivery classification.
    DeliveryOutcome Send(const MailMessage& message) {
        std::uint64_t generation = 0;
        {
            std::unique_lock lock(state_->mutex);
            State& state = *state_;
            state.check_disposed();
            if (state.in_progress) {
                throw InvalidOperationException(
                    "An asynchronous call is already in progress. It must be completed or "
                    "canceled before you can call this method.");
            }
            state.validate(&message);
            state.check_enable_ssl();
            state.in_progress = true;
            state.cancel_requested = false;
            state.timed_out = false;
            generation = ++state.generation;
            state.arm_timer(state_, generation);
        }
        typename State::SyncWaiter waiter;
        State::run_sync(state_, message, waiter);
        Outcome outcome;
        {
            std::unique_lock lock(state_->mutex);
            while (!waiter.finished) {
                // No deadline of its own: the Timeout timer armed above ends the send (M-8).
                (void)state_->transport.wait(waiter.done, lock, std::chrono::hours(1));
            }
            outcome = std::move(waiter.outcome);
        }
        if (outcome.error) {
            std::rethrow_exception(outcome.error);
        }
        return outcome.delivery;
    }

    /// Dispose (M-11): idle → QUIT on the cached connection without reading the reply, then
    /// close; during a send → as SendAsyncCancel. Later calls do nothing.
    void Dispose() {
        std::unique_lock lock(state_->mutex);
        State& state = *state_;
        if (state.disposed) {
            return;
        }
        state.disposed = true;
        if (state.in_progress) {
            state.cancel_locked();
            return;
        }
        if (state.connection) {
            // Best effort, and the reply is never read; but a QUIT cut short by a partial send
            // would leave a bare CR on the wire (W-1), so a line that went out in part is
            // finished before the close. Nothing sent (would_block, an error): close at once.
            auto quit = std::make_shared<const std::string>(CommandWriter::quit());
            const ConnectionId connection = *state.connection;
            const auto sent = state.transport.try_send(
                connection, std::as_bytes(std::span(quit->data(), quit->size())));
            state.connection.reset();
            state.parser.reset();
            state.extensions = {};
            if (sent && sent.value() > 0 && sent.value() < quit->size()) {
                finish_then_close(state.transport, connection, std::move(quit), sent.value());
            } else {
                state.transport.close(connection);
            }
        }
    }

    /// True while a SendAsync or Send is running.
    [[nodiscard]] bool send_in_progress() const {
        std::unique_lock lock(state_->mutex);
        return state_->in_progress;
    }

private:
    /// Writes `line` from `offset` on, then closes `connection`; on a send error closes at once.
    static void finish_then_close(T& transport, ConnectionId connection,
                                  std::shared_ptr<const std::string> line, std::size_t offset) {
        if (offset >= line->size()) {
            transport.close(connection);
            return;
        }
        const std::string_view rest = std::string_view(*line).substr(offset);
        transport.async_send(connection, std::as_bytes(std::span(rest.data(), rest.size())),
                             [&transport, connection, line, offset](std::error_code error,
                                                                    std::size_t n) mutable {
                                 if (error) {
                                     transport.close(connection);
                                     return;
                                 }
                                 finish_then_close(transport, connection, std::move(line),
                                                   offset + n);
                             });
    }

    struct Outcome {
        std::exception_ptr error;
        bool cancelled = false;
        DeliveryOutcome delivery = DeliveryOutcome::not_delivered;
        bool cancel_met_final_reply = false;  // only the planted cancel-race bug reads it
    };

    /// What an awaited transport operation reported.
    struct IoResult {
        std::error_code error;
        std::size_t bytes = 0;
        ConnectionId connection{};
    };

    struct State : std::enable_shared_from_this<State> {
        State(T& t, const Profile& p) : transport(t), profile(p) {}

        T& transport;
        const Profile profile;
        mutable typename T::Mutex mutex;
        SmtpClient* owner = nullptr;
        std::optional<std::string> host;
        int port = kSmtpDefaultPort;
        int timeout_ms = kSmtpDefaultTimeoutMs;
        std::string date_header = "Sat, 21 Nov 2026 10:00:00 +0000";
        std::optional<NetworkCredential> credentials;
        bool enable_ssl = false;
        SmtpDeliveryFormat delivery_format = SmtpDeliveryFormat::SevenBit;
        std::vector<SendCompletedHandler> handlers;
        bool disposed = false;
        bool in_progress = false;
        bool cancel_requested = false;
        bool timed_out = false;
        std::uint64_t generation = 0;
        std::optional<ConnectionId> connection;  // cached between sends (M-12)
        std::optional<ReplyParser> parser;       // the cached connection's reply reader
        detail::ServerExtensions extensions;     // what the cached connection's EHLO advertised
        // Replies land here. Only the running send receives, and it awaits every receive it
        // starts, so one buffer suffices; never zero-filled, only the bytes received are read.
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-member-init)
        std::array<std::byte, 4096> receive_buffer;

        // ---- with the lock held ------------------------------------------------------------

        void check_disposed() const {
            if (disposed) {
                throw ObjectDisposedException("System.Net.Mail.SmtpClient");
            }
        }
        void check_not_in_send() const {
            if (in_progress) {
                throw InvalidOperationException(
                    "This operation cannot be performed while a message is being sent.");
            }
        }

        /// M-1 from the null message on, unwrapped; the exception types follow the profile (M-2).
        void validate(const MailMessage* message) const {
            const bool documented = !profile.smtp_send_async_wraps_validation_errors;
            if (message == nullptr) {
                throw ArgumentNullException("message");
            }
            if (!host || host->empty()) {
                throw InvalidOperationException("The SMTP host was not specified.");
            }
            if (port < 1 || port > 65535) {
                throw InvalidOperationException("The specified port is invalid.");
            }
            if (!message->From()) {
                if (documented) {
                    throw ArgumentNullException("From");
                }
                throw InvalidOperationException("The From property must be set.");
            }
            if (message->To().empty() && message->CC().empty() && message->Bcc().empty()) {
                if (documented) {
                    throw ArgumentOutOfRangeException("recipients");
                }
                throw InvalidOperationException("A recipient must be specified.");
            }
        }

        /// After the M-1 checks, so they keep their order. Not wrapped under any profile: this is
        /// a harness limitation, not .NET behaviour (real .NET would try STARTTLS, M-20), and a
        /// bare NotSupportedException cannot be mistaken for one of the M-2 shapes. No
        /// SendCompleted, no connection.
        void check_enable_ssl() const {
            if (enable_ssl) {
                throw NotSupportedException(std::string(kEnableSslNotSupported));
            }
        }

        /// SendAsync's and SendMailAsync's synchronous part: M-1 in order, M-3, the M-2 shape per
        /// profile; then marks the send running and arms the timer where the profile has one
        /// (M-8). Returns the send's generation.
        std::uint64_t begin_async(const std::shared_ptr<State>& self, const MailMessage* message) {
            check_disposed();
            if (in_progress) {
                // M-3 (rewrite, and the documented exception): bare, the running send untouched.
                throw InvalidOperationException(
                    "An asynchronous call is already in progress. It must be completed or "
                    "canceled before you can call this method.");
            }
            try {
                validate(message);
            } catch (const DotnetException&) {
                if (!profile.smtp_send_async_wraps_validation_errors) {
                    throw;
                }
                throw SmtpException(SmtpStatusCode::GeneralFailure,
                                    "Failure sending mail.",
                                    std::current_exception());
            }
            check_enable_ssl();
            in_progress = true;
            cancel_requested = false;
            timed_out = false;
            const std::uint64_t started = ++generation;
            if (profile.smtp_send_async_timeout) {
                arm_timer(self, started);  // M-8, rewrite: one whole-transaction timer
            }
            return started;
        }

        void drop_connection(bool abortive) {
            if (!connection) {
                return;
            }
            if (abortive) {
                transport.abort(*connection);
            } else {
                transport.close(*connection);
            }
            connection.reset();
            parser.reset();
            extensions = {};
        }

        void cancel_locked() {
            if (!in_progress) {
                return;  // M-9: idle → no-op
            }
            cancel_requested = true;
            drop_connection(/*abortive=*/true);
        }

        static void arm_timer(const std::shared_ptr<State>& self, std::uint64_t generation) {
            const Duration budget = std::chrono::milliseconds(self->timeout_ms);
            std::weak_ptr<State> weak = self;
            self->transport.post_after(budget, [weak, generation] {
                auto state = weak.lock();
                if (!state) {
                    return;
                }
                std::unique_lock lock(state->mutex);
                if (state->in_progress && state->generation == generation &&
                    !state->cancel_requested) {
                    state->timed_out = true;
                    state->drop_connection(/*abortive=*/true);
                }
            });
        }

        // ---- the worker: a Flow whose steps are transport completions ----------------------
        //
        // The send runs as a coroutine: each transport operation suspends it and the
        // operation's handler resumes it, on the pool thread that saw the completion, so a
        // reply is read and the next command written with no thread hand-off (Send waits once,
        // for the whole transaction). Nothing waits on a deadline of its own: cancel, the timer
        // or the transport ends every operation (documented SendAsync has no timer, M-8, so a
        // silent server stalls it until SendAsyncCancel). No lock is held across a co_await.

        /// The error that ended the send early (cancel or timeout), if any.
        [[nodiscard]] bool interrupted() const { return cancel_requested || timed_out; }

        /// Awaits one transport operation on the client's connection (or a connect). Started
        /// under the client's lock; if the connection is gone (cancel, timer) it does not start
        /// and reports operation_aborted at once.
        struct TransportOp {
            enum class Kind : std::uint8_t { connect, send, receive };

            State& state;
            Kind kind;
            Endpoint endpoint{};
            std::span<const std::byte> outgoing{};
            std::span<std::byte> incoming{};
            IoResult result{};

            [[nodiscard]] bool await_ready() const noexcept { return false; }
            bool await_suspend(std::coroutine_handle<> flow) {
                // Once the operation is issued its handler may resume the flow on another
                // thread, which may finish the send and drop the last reference to the state
                // before the lock below is released; and `this` may be gone by then.
                const std::shared_ptr<State> keep = state.shared_from_this();
                std::unique_lock lock(state.mutex);
                IoResult* const reported = &result;
                auto on_io = [reported, flow](std::error_code error, std::size_t n) {
                    reported->error = error;
                    reported->bytes = n;
                    flow.resume();
                };
                switch (kind) {
                    case Kind::connect:
                        if (state.interrupted()) {
                            break;
                        }
                        state.transport.async_connect(
                            endpoint, [reported, flow](std::error_code error, ConnectionId id) {
                                reported->error = error;
                                reported->connection = id;
                                flow.resume();
                            });
                        return true;
                    case Kind::send:
                        if (!state.connection) {
                            break;
                        }
                        state.transport.async_send(*state.connection, outgoing, std::move(on_io));
                        return true;
                    case Kind::receive:
                        if (!state.connection || !state.parser) {
                            break;
                        }
                        state.transport.async_receive(*state.connection, incoming,
                                                      std::move(on_io));
                        return true;
                }
                result.error = NetErrc::operation_aborted;
                return false;  // resume now
            }
            [[nodiscard]] IoResult await_resume() const noexcept { return result; }
        };

        Flow<std::error_code> connect(Endpoint endpoint) {
            const IoResult connected =
                co_await TransportOp{.state = *this, .kind = TransportOp::Kind::connect,
                                     .endpoint = endpoint};
            std::unique_lock lock(mutex);
            if (connected.error) {
                co_return connected.error;
            }
            FAULTLINE_ASSERT(!connection.has_value());
            connection = connected.connection;
            parser.emplace(profile.smtp_reply_strict_dotnet ? ReplyMode::strict_dotnet
                                                            : ReplyMode::rfc5321);
            if (interrupted()) {
                drop_connection(/*abortive=*/true);  // the cancel or timer came first
                co_return NetErrc::operation_aborted;
            }
            co_return std::error_code{};
        }

        Flow<std::error_code> send_all(std::string bytes) {
            std::size_t offset = 0;
            {
                // One immediate attempt first: a command or a small message usually fits the
                // socket at once, which saves a completion; the rest (or all of it, on
                // would_block) goes through async_send.
                std::unique_lock lock(mutex);
                if (!connection) {
                    co_return NetErrc::operation_aborted;
                }
                auto sent = transport.try_send(
                    *connection, std::as_bytes(std::span(bytes.data(), bytes.size())));
                if (sent) {
                    FAULTLINE_ASSERT(sent.value() <= bytes.size());
                    offset = sent.value();
                    if (mutant(Mutant::send_all_ignores_partial)) {
                        offset = bytes.size();  // planted bug: a partial send taken as whole
                    }
                } else if (sent.error() != NetErrc::would_block) {
                    co_return sent.error();
                }
            }
            while (offset < bytes.size()) {
                // `bytes` lives in this frame, which outlives the handler: it resumes us.
                const std::string_view rest = std::string_view(bytes).substr(offset);
                const IoResult sent =
                    co_await TransportOp{.state = *this, .kind = TransportOp::Kind::send,
                                         .outgoing = std::as_bytes(
                                             std::span(rest.data(), rest.size()))};
                if (sent.error) {
                    co_return sent.error;
                }
                FAULTLINE_ASSERT(sent.bytes >= 1);
                FAULTLINE_ASSERT(sent.bytes <= rest.size());
                offset += sent.bytes;
                if (mutant(Mutant::send_all_ignores_partial)) {
                    offset = bytes.size();  // planted bug: a partial send taken as whole
                }
            }
            co_return std::error_code{};
        }

        Flow<Result<Reply>> read_reply() {
            while (true) {
                {
                    std::unique_lock lock(mutex);
                    if (!connection || !parser) {
                        co_return NetErrc::operation_aborted;
                    }
                    auto next = parser->next();
                    if (!next) {
                        co_return next.error();
                    }
                    if (next.value()) {
                        co_return std::move(*next.value());
                    }
                }
                const IoResult received =
                    co_await TransportOp{.state = *this, .kind = TransportOp::Kind::receive,
                                         .incoming = receive_buffer};
                if (received.error == NetErrc::end_of_stream) {
                    co_return SmtpErrc::connection_closed;  // M-25
                }
                if (received.error) {
                    co_return received.error;
                }
                std::unique_lock lock(mutex);
                if (parser) {
                    parser->feed(
                        std::span<const std::byte>(receive_buffer.data(), received.bytes));
                }
            }
        }

        /// Sends one command line and reads its reply.
        Flow<Result<Reply>> exchange(std::string command) {
            if (const std::error_code error = co_await send_all(std::move(command))) {
                co_return error;
            }
            co_return co_await read_reply();
        }

        /// A failure that ends the send: aborts the connection (M-12) and shapes the error;
        /// cancel and timeout take precedence over whatever the abort surfaced as (M-8, M-9).
        Outcome fail(std::exception_ptr error,
                     DeliveryOutcome delivery = DeliveryOutcome::not_delivered) {
            std::unique_lock lock(mutex);
            drop_connection(/*abortive=*/true);
            Outcome outcome{.error = std::move(error), .cancelled = false, .delivery = delivery};
            if (cancel_requested) {
                outcome.error = nullptr;
                outcome.cancelled = true;
            } else if (timed_out) {
                outcome.error = std::make_exception_ptr(
                    SmtpException(SmtpStatusCode::GeneralFailure, "The operation has timed out."));
            }
            return outcome;
        }
        Outcome fail(std::error_code error,
                     DeliveryOutcome delivery = DeliveryOutcome::not_delivered) {
            return fail(detail::wrapped_error(error), delivery);
        }

        /// Connect, greeting, EHLO (HELO on 500/502, M-19) unless a connection is cached.
        Flow<std::optional<Outcome>> open_session() {
            std::optional<Endpoint> endpoint;
            {
                std::unique_lock lock(mutex);
                if (connection) {
                    co_return std::nullopt;  // M-12: reuse
                }
                endpoint = detail::resolve_host(*host, port);
            }
            if (!endpoint) {
                co_return fail(std::make_exception_ptr(
                    SmtpException(SmtpStatusCode::GeneralFailure,
                                  "Failure sending mail.",
                                  std::make_exception_ptr(IOException("No such host is known.")))));
            }
            if (auto error = co_await connect(*endpoint)) {
                co_return fail(error);
            }
            auto greeting = co_await read_reply();
            if (!greeting) {
                co_return fail(greeting.error());
            }
            if (greeting.value().code != 220) {
                co_return fail(detail::reply_error(greeting.value()));
            }
            auto ehlo = co_await exchange(CommandWriter::ehlo(kSmtpClientDomain).value());
            if (!ehlo) {
                co_return fail(ehlo.error());
            }
            bool helo = false;
            if (ehlo.value().code == 500 || ehlo.value().code == 502) {
                helo = true;
                ehlo = co_await exchange(CommandWriter::helo(kSmtpClientDomain).value());
                if (!ehlo) {
                    co_return fail(ehlo.error());
                }
            }
            if (ehlo.value().code != 250) {
                co_return fail(detail::reply_error(ehlo.value()));
            }
            std::optional<NetworkCredential> credential;
            {
                std::unique_lock lock(mutex);
                if (helo) {
                    extensions = detail::ServerExtensions{.auth_login = true};  // M-19
                } else {
                    extensions = detail::parse_extensions(ehlo.value());
                }
                credential = credentials;
            }
            if (credential) {
                co_return co_await authenticate(*credential);
            }
            co_return std::nullopt;
        }

        /// AUTH LOGIN: 334 → user → 334 → password; true on 235, false on any other reply
        /// (a 334 after the password included: we have nothing more to say).
        Flow<Result<bool>> auth_login(NetworkCredential credential) {
            auto reply = co_await exchange(CommandWriter::auth_login());
            for (int step = 0;; ++step) {
                if (!reply) {
                    co_return reply.error();
                }
                const int code = reply.value().code;
                if (code == 235) {
                    co_return true;
                }
                if (code != 334 || step == 2) {
                    co_return false;
                }
                reply = co_await exchange(CommandWriter::auth_response(
                    step == 0 ? credential.UserName : credential.Password));
            }
        }

        /// M-21: the mechanisms in .NET's order (Negotiate and NTLM do not exist here), LOGIN,
        /// then PLAIN where the profile allows it; a refusal moves to the next; if none
        /// succeeds the send carries on unauthenticated and the server's later refusal (e.g.
        /// 530 on MAIL) is the error. Only transport failures end the send here.
        Flow<std::optional<Outcome>> authenticate(NetworkCredential credential) {
            detail::ServerExtensions advertised;
            {
                std::unique_lock lock(mutex);
                advertised = extensions;
            }
            if (advertised.auth_login) {
                auto succeeded = co_await auth_login(credential);
                if (!succeeded) {
                    co_return fail(succeeded.error());
                }
                if (succeeded.value()) {
                    co_return std::nullopt;
                }
            }
            if (profile.smtp_auth_plain && advertised.auth_plain) {
                // A line the writer refuses (CR/LF or over 512 bytes) is a mechanism that failed.
                auto command = CommandWriter::auth_plain(credential.UserName, credential.Password);
                if (command) {
                    auto reply = co_await exchange(std::move(command.value()));
                    if (!reply) {
                        co_return fail(reply.error());
                    }
                }
            }
            co_return std::nullopt;
        }

        static std::exception_ptr recipients_error(std::vector<SmtpFailedRecipientException> failed,
                                                   bool all) {
            if (failed.size() == 1) {
                return std::make_exception_ptr(failed.front());
            }
            return std::make_exception_ptr(SmtpFailedRecipientsException(
                std::move(failed),
                all ? "Unable to send to all recipients." : "Unable to send to a recipient."));
        }

        /// "<a@b>" → "a@b" (the command writer adds the brackets).
        static std::string bare(const std::string& smtp_address) {
            FAULTLINE_ASSERT(smtp_address.size() >= 2);
            return smtp_address.substr(1, smtp_address.size() - 2);
        }

        /// The whole transaction (M-13 … M-17, M-26).
        Flow<Outcome> transact(const MailMessage& message) {
            if (auto failed = co_await open_session()) {
                co_return std::move(*failed);
            }
            bool allow_unicode = false;
            bool dsn = false;
            {
                std::unique_lock lock(mutex);
                // SmtpClient.IsUnicodeSupported (M-23): both sides must agree.
                allow_unicode =
                    delivery_format == SmtpDeliveryFormat::International && extensions.smtputf8;
                dsn = extensions.dsn;
            }
            // M-13: the address is built when the command is, so a bad sender fails after EHLO
            // (and AUTH), before anything of the transaction is sent.
            const auto sender = envelope_sender(message);
            const auto sender_address = sender->smtp_address(allow_unicode);
            if (!sender_address) {
                co_return fail(detail::address_error(*sender));
            }
            auto mail = CommandWriter::mail_from(bare(*sender_address),
                                                 allow_unicode ? "BODY=8BITMIME SMTPUTF8" : "");
            if (!mail) {
                co_return fail(mail.error());
            }
            auto reply = co_await exchange(std::move(mail.value()));
            if (!reply) {
                co_return fail(reply.error());
            }
            if (reply.value().code != 250) {
                co_return fail(detail::reply_error(reply.value()));
            }
            std::vector<SmtpFailedRecipientException> failed;
            std::size_t accepted = 0;
            // M-23: NOTIFY only where DSN was advertised (SmtpConnection.DSNEnabled).
            const std::string notify =
                dsn ? delivery_notify_parameter(message.DeliveryNotificationOptions()) : "";
            for (const MailAddress& recipient : envelope_recipients(message)) {
                // M-13: each RCPT address is built just before its command (SmtpTransport), so
                // the earlier RCPTs have gone out when a later one fails.
                const auto recipient_address = recipient.smtp_address(allow_unicode);
                if (!recipient_address) {
                    co_return fail(detail::address_error(recipient));
                }
                auto rcpt = CommandWriter::rcpt_to(bare(*recipient_address), notify);
                if (!rcpt) {
                    co_return fail(rcpt.error());
                }
                reply = co_await exchange(std::move(rcpt.value()));
                if (!reply) {
                    co_return fail(reply.error());
                }
                const int code = reply.value().code;
                if (code == 250 || code == 251 ||
                    (mutant(Mutant::recipient_failure_reported_as_success) &&
                     detail::is_recipient_failure(code))) {
                    ++accepted;
                } else if (detail::is_recipient_failure(code)) {  // M-15
                    failed.emplace_back(
                        static_cast<SmtpStatusCode>(code),
                        *recipient_address,
                        detail::smtp_status_text(code) + detail::reply_text(reply.value()));
                } else {
                    co_return fail(detail::reply_error(reply.value()));
                }
            }
            if (accepted == 0) {  // M-17: no DATA; fatal
                co_return fail(recipients_error(std::move(failed), /*all=*/true));
            }
            reply = co_await exchange(CommandWriter::data());
            if (!reply) {
                co_return fail(reply.error());
            }
            if (reply.value().code != 354) {
                co_return fail(detail::reply_error(reply.value()));
            }
            std::string date;
            {
                std::unique_lock lock(mutex);
                date = date_header;
            }
            // M-30: raw UTF-8 headers only where SMTPUTF8 is in use.
            std::string content = dot_stuff(write_message(
                message, MimeOptions{.date = date, .allow_unicode = allow_unicode}));
            content += data_terminator();
            if (auto error = co_await send_all(std::move(content))) {
                co_return fail(error);
            }
            // From here on the server may have the whole message: only its reply decides (W-10).
            reply = co_await read_reply();
            if (!reply) {
                Outcome lost = fail(reply.error(), DeliveryOutcome::unknown);  // M-26
                lost.cancel_met_final_reply = lost.cancelled;
                co_return lost;
            }
            if (reply.value().code != 250) {
                co_return fail(detail::reply_error(reply.value()));
            }
            // A cancel that lost the race with the 250 is a success (M-9); M-16 keeps the
            // connection with some recipients refused.
            Outcome outcome{
                .error = nullptr, .cancelled = false, .delivery = DeliveryOutcome::delivered};
            if (!failed.empty()) {
                outcome.error = recipients_error(std::move(failed), /*all=*/false);
            }
            co_return outcome;
        }

        /// transact, with an exception from inside it (bad_alloc, say) ending the send as a
        /// failure instead of leaving it running forever.
        Flow<Outcome> transact_guarded(const MailMessage& message) {
            std::exception_ptr escaped;
            try {
                co_return co_await transact(message);
            } catch (...) {
                escaped = std::current_exception();
            }
            co_return fail(escaped);
        }

        /// Hands a SendCompleted handler's exception to the transport, which reports it as it
        /// reports any handler's (the flow's own frame must not unwind through the resumer).
        void report_handler_exception(std::exception_ptr error) {
            transport.post([error] { std::rethrow_exception(error); });
        }

        /// SendAsync's root flow: the transaction, then SendCompleted once (M-5, M-7), on the
        /// thread that finished it.
        static Detached run_async(std::shared_ptr<State> self,
                                  std::shared_ptr<const MailMessage> message,
                                  std::any user_token) {
            Outcome outcome = co_await self->transact_guarded(*message);
            std::vector<SendCompletedHandler> to_call;
            SmtpClient* sender = nullptr;
            {
                std::unique_lock lock(self->mutex);
                FAULTLINE_ASSERT(self->in_progress);
                self->in_progress = false;  // M-7: before the event
                to_call = self->handlers;
                sender = self->owner;
            }
            const AsyncCompletedEventArgs args{.Cancelled = outcome.cancelled,
                                               .Error = outcome.error,
                                               .UserState = std::move(user_token),
                                               .delivery = outcome.delivery};
            // The planted cancel-race bug raises the event once more.
            const int times = mutant(Mutant::send_completed_twice_on_cancel_race) &&
                                      outcome.cancel_met_final_reply
                                  ? 2
                                  : 1;
            try {
                for (int time = 0; time < times; ++time) {
                    for (const auto& handler : to_call) {
                        handler(sender, args);
                    }
                }
            } catch (...) {
                // As a multicast delegate: the handlers after the one that threw do not run.
                self->report_handler_exception(std::current_exception());
            }
        }

        /// SendMailAsync's root flow: as run_async, but the outcome completes `task` (M-10).
        static Detached run_task(std::shared_ptr<State> self,
                                 std::shared_ptr<const MailMessage> message,
                                 std::shared_ptr<SmtpTask<T>> task,
                                 CancellationTokenRegistration<T> registration) {
            Outcome outcome = co_await self->transact_guarded(*message);
            {
                std::unique_lock lock(self->mutex);
                FAULTLINE_ASSERT(self->in_progress);
                self->in_progress = false;  // before the task completes, as M-7 for the event
            }
            registration.Dispose();
            if (outcome.cancelled) {
                FAULTLINE_ASSERT(outcome.error == nullptr);
                task->complete(TaskStatus::Canceled,
                               std::make_exception_ptr(TaskCanceledException()),
                               outcome.delivery);
            } else if (outcome.error) {
                task->complete(TaskStatus::Faulted, outcome.error, outcome.delivery);
            } else {
                task->complete(TaskStatus::RanToCompletion, nullptr, outcome.delivery);
            }
        }

        /// Where Send's root flow leaves its outcome; lives on Send's stack.
        struct SyncWaiter {
            typename T::Event done;
            bool finished = false;  // guarded by the client's lock
            Outcome outcome;
        };

        /// Send's root flow: starts on the caller's thread, finishes on whichever thread saw the
        /// last completion, and wakes the caller once. `message` and `waiter` outlive it: Send
        /// returns only after `finished` is set, under the lock this flow releases last.
        static Detached run_sync(std::shared_ptr<State> self,
                                 const MailMessage& message,
                                 SyncWaiter& waiter) {
            Outcome outcome = co_await self->transact_guarded(message);
            std::unique_lock lock(self->mutex);
            self->in_progress = false;
            waiter.outcome = std::move(outcome);
            waiter.finished = true;
            self->transport.signal(waiter.done);
        }
    };

    std::shared_ptr<State> state_;
};

}  // namespace faultline::model
