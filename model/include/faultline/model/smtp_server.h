// SmtpServer<T>: a fault-scriptable SMTP server over any Transport, the peer the SmtpClient is
// tested against. Each connection runs the RFC 5321 session order (W-2) and answers in order
// (W-11); a Script can delay, replace or withhold any reply, close, stall or drop mid-DATA, and
// everything received is recorded. Handlers run on pool threads under T::Mutex and never block.
// It relays nothing and does no TLS (STARTTLS gets 454). AUTH LOGIN and PLAIN (RFC 4954, 4616)
// check credentials against SmtpScript::auth_users, or accept any when that is empty.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faultline/model/assert.h"
#include "faultline/model/result.h"
#include "faultline/model/smtp_codec.h"
#include "faultline/model/transport.h"

namespace faultline::model {

/// What the server does where a reply is due.
enum class SmtpAction : std::uint8_t {
    reply,                // send the reply (after `delay`)
    reply_then_close,     // send the reply (default 421, W-5) and close the connection
    close_without_reply,  // close (FIN) instead of replying; on "." = drop after the final dot
    abort_without_reply,  // reset (RST) instead of replying
    stall,                // never answer this or anything later; keep reading and recording
};

/// One scripted reply point.
struct SmtpStep {
    SmtpAction action = SmtpAction::reply;
    /// Reply lines without CRLF, e.g. {"250-first", "250 last"}; empty: the server's default.
    std::vector<std::string> reply{};
    /// Sent byte for byte instead of `reply` when set (e.g. "250\r\n" or "250 ok\n" for M-24).
    std::optional<std::string> raw_reply{};
    /// The reply (or close) goes out this long after the command was read (transport time);
    /// later commands wait, so answers stay in order.
    Duration delay{};
    /// DATA only: once the 354 is given, reset the connection after this many content bytes.
    std::optional<std::size_t> drop_after_data_bytes{};
};

/// Everything a test can set. Step keys: "CONNECT" (the greeting), "EHLO", "HELO", "AUTH" (the
/// final 235 for accepted credentials; wrong ones get 535 unscripted), "MAIL", "RCPT", "DATA", "." (the reply after the end of data), "RSET", "NOOP",
/// "QUIT". Protocol-order errors (503, 554, 452, 500, 501) are not scriptable: they come first.
struct SmtpScript {
    std::string domain = "mx.faultline.test";
    std::map<std::string, SmtpStep, std::less<>> steps{};
    /// RCPT replies by address (without brackets); they take precedence over steps["RCPT"].
    std::map<std::string, SmtpStep, std::less<>> recipient_steps{};
    /// Advertised after the EHLO greeting line, in order.
    std::vector<std::string> capabilities = {"PIPELINING", "8BITMIME", "SIZE 10485760"};
    /// W-11: answer 554 and close when a command arrives together with more input while
    /// PIPELINING is not advertised (Postfix smtpd_forbid_unauth_pipelining).
    bool reject_unauthorised_pipelining = false;
    BareLineFeedPolicy bare_line_feed = BareLineFeedPolicy::reject;
    std::size_t message_bytes_max = std::size_t{10} << 20U;
    /// W-8: RCPT beyond this many accepted recipients gets 452.
    std::size_t recipients_max = 100;
    /// Further connections are reset at once and counted in refused_sessions().
    std::size_t sessions_max = 64;
    /// A session that sends more than this gets 421 and is closed; recording stops there.
    std::size_t session_bytes_max = std::size_t{16} << 20U;
    int backlog = 16;
    /// AUTH credentials, user name → password. Empty: any credentials are accepted.
    std::map<std::string, std::string, std::less<>> auth_users{};
    /// Advertise "AUTH LOGIN PLAIN" after `capabilities` in the EHLO reply. AUTH is accepted
    /// either way (.NET assumes LOGIN after a HELO fallback, M-19).
    bool advertise_auth = false;
    /// MAIL before a successful AUTH gets "530 5.7.0 Authentication required" (RFC 4954 §6).
    bool require_auth = false;
};

struct SmtpRecipientRecord {
    std::string address{};
    int reply_code = 0;  // 0: no reply was sent (close, stall)

    friend bool operator==(const SmtpRecipientRecord&, const SmtpRecipientRecord&) = default;
};

/// One mail transaction, opened by an accepted MAIL FROM.
struct SmtpTransactionRecord {
    std::string mail_from{};
    std::vector<SmtpRecipientRecord> recipients{};
    bool data_started = false;   // the 354 was given
    bool data_complete = false;  // the end-of-data line arrived
    std::string data_raw{};      // content bytes as received: dot-stuffed, terminator included
    std::string content{};       // dot-stuffing undone, terminator removed
    int final_reply_code = 0;    // the reply to the end of data; 0 if none was sent
};

/// What one connection saw. Strings hold raw octets.
struct SmtpSessionRecord {
    ConnectionId connection{};
    std::vector<std::string> commands;  // every command line, without its line end
    std::string received;               // every byte received, up to session_bytes_max
    std::string sent;                   // every byte the server queued for sending
    std::vector<SmtpTransactionRecord> transactions;
    std::string authenticated_user;  // the user of the successful AUTH; empty if none
    bool closed = false;
};

template <Transport T>
class SmtpServer {
public:
    /// A stopped server; `transport` must outlive every handler the server starts.
    SmtpServer(T& transport, SmtpScript script)
        : state_(std::make_shared<State>(transport, std::move(script))) {
        state_->self_weak = state_;
    }
    SmtpServer(const SmtpServer&) = delete;
    SmtpServer& operator=(const SmtpServer&) = delete;
    /// Stops the server; handlers still pending keep the shared state alive until they run.
    ~SmtpServer() { stop(); }

    /// Listens on `endpoint` (port 0: ephemeral) and starts accepting; returns the bound
    /// endpoint or the transport's error. Call at most once.
    [[nodiscard]] Result<Endpoint> start(const Endpoint& endpoint) {
        std::unique_lock lock(state_->mutex);
        FAULTLINE_ASSERT(!state_->listener.has_value());
        auto listener = state_->transport.listen(endpoint, state_->script.backlog);
        if (!listener) {
            return listener.error();
        }
        state_->listener = listener.value();
        State::accept_next(state_);
        return state_->transport.local_endpoint(listener.value());
    }

    /// Stops accepting and resets every open session. Safe to call more than once.
    void stop() {
        std::unique_lock lock(state_->mutex);
        if (state_->stopped) {
            return;
        }
        state_->stopped = true;
        if (state_->listener) {
            state_->transport.close(*state_->listener);
        }
        for (auto& session : state_->sessions) {
            State::close_session(*session, /*abortive=*/true);
        }
    }

    /// A copy of every session's record, in accept order.
    [[nodiscard]] std::vector<SmtpSessionRecord> sessions() const {
        std::unique_lock lock(state_->mutex);
        std::vector<SmtpSessionRecord> out;
        out.reserve(state_->sessions.size());
        for (const auto& session : state_->sessions) {
            out.push_back(session->record);
        }
        return out;
    }

    /// Counters for waiting on the server (cheap: no record is copied).
    struct Progress {
        std::size_t sessions = 0;
        std::size_t commands = 0;               // command lines over all sessions
        std::size_t finished_transactions = 0;  // end of data received
        bool all_closed = true;
    };
    [[nodiscard]] Progress progress() const {
        std::unique_lock lock(state_->mutex);
        Progress progress;
        progress.sessions = state_->sessions.size();
        for (const auto& session : state_->sessions) {
            progress.commands += session->record.commands.size();
            for (const auto& transaction : session->record.transactions) {
                progress.finished_transactions += transaction.data_complete ? 1U : 0U;
            }
            progress.all_closed = progress.all_closed && session->record.closed;
        }
        return progress;
    }

    [[nodiscard]] std::size_t session_count() const {
        std::unique_lock lock(state_->mutex);
        return state_->sessions.size();
    }

    [[nodiscard]] std::size_t refused_sessions() const {
        std::unique_lock lock(state_->mutex);
        return state_->refused;
    }

private:
    struct State;

    struct Session {
        State* state = nullptr;
        ConnectionId connection{};
        SmtpSessionRecord record;
        CommandParser commands;
        std::optional<DataReader> data;
        std::optional<std::size_t> drop_after_data_bytes;
        std::array<std::byte, 4096> buffer{};
        std::string queued;     // replies waiting for the send in flight
        std::string in_flight;  // the bytes of the one outstanding async_send
        bool receiving = false;
        bool sending = false;
        bool closed = false;
        bool close_after_send = false;
        bool busy = false;     // a delayed reply is pending; later commands wait
        bool stalled = false;  // scripted stall: read and record, never answer
        bool greeted = false;  // EHLO or HELO accepted
        bool in_transaction = false;
        bool pipelining_advertised = false;
        int auth_step = 0;  // 1, 2: AUTH LOGIN user, password; 3: AUTH PLAIN response
        std::string auth_user;  // AUTH LOGIN: the user name, decoded, until the password comes
        bool authenticated = false;
        std::size_t accepted_recipients = 0;

        Session(State* owner, ConnectionId id, BareLineFeedPolicy policy)
            : state(owner), connection(id), commands(policy) {
            record.connection = id;
        }
    };

    struct State {
        State(T& t, SmtpScript s) : transport(t), script(std::move(s)) {}

        T& transport;
        const SmtpScript script;
        mutable typename T::Mutex mutex;
        std::optional<ListenerId> listener;
        bool stopped = false;
        std::size_t refused = 0;
        std::vector<std::unique_ptr<Session>> sessions;

        // ---- accepting (all with the lock held) ------------------------------------------

        static void accept_next(const std::shared_ptr<State>& self) {
            self->transport.async_accept(*self->listener,
                                         [self](std::error_code error, ConnectionId connection) {
                                             std::unique_lock lock(self->mutex);
                                             self->accepted(self, error, connection);
                                         });
        }

        void accepted(const std::shared_ptr<State>& self,
                      std::error_code error,
                      ConnectionId connection) {
            if (error) {
                // A half-open scan resets a connection before it is accepted: go on.
                // Anything else (stop() closed the listener) ends the loop.
                if (error == NetErrc::connection_reset && !stopped) {
                    accept_next(self);
                }
                return;
            }
            if (stopped) {
                transport.abort(connection);
                return;
            }
            if (sessions.size() >= script.sessions_max) {
                ++refused;
                transport.abort(connection);
                accept_next(self);
                return;
            }
            sessions.push_back(std::make_unique<Session>(this, connection, script.bare_line_feed));
            Session& session = *sessions.back();
            respond(self, session, step("CONNECT"), {"220 " + script.domain + " ESMTP faultline"});
            start_receive(self, session);
            accept_next(self);
        }

        // ---- reading -----------------------------------------------------------------------

        static void start_receive(const std::shared_ptr<State>& self, Session& session) {
            if (session.closed || session.receiving) {
                return;
            }
            session.receiving = true;
            Session* target = &session;
            self->transport.async_receive(session.connection,
                                          session.buffer,
                                          [self, target](std::error_code error, std::size_t bytes) {
                                              std::unique_lock lock(self->mutex);
                                              self->received(self, *target, error, bytes);
                                          });
        }

        void received(const std::shared_ptr<State>& self,
                      Session& session,
                      std::error_code error,
                      std::size_t bytes) {
            session.receiving = false;
            if (session.closed) {
                return;
            }
            if (error) {
                // End of stream, reset or abort: W-10, the open transaction is lost.
                close_session(session, /*abortive=*/false);
                return;
            }
            FAULTLINE_ASSERT(bytes > 0);
            FAULTLINE_ASSERT(bytes <= session.buffer.size());
            const std::string_view chunk(
                reinterpret_cast<const char*>(session.buffer.data()),  // NOLINT: octets
                bytes);
            if (session.record.received.size() + chunk.size() > script.session_bytes_max) {
                emit(session,
                     "421 4.7.0 " + script.domain + " Error: too much input\r\n",
                     After::close);
                return;
            }
            session.record.received += chunk;
            if (session.data) {
                const std::size_t consumed = session.data->feed(chunk);
                session.commands.feed(chunk.substr(consumed));
            } else {
                session.commands.feed(chunk);
            }
            process_input(self, session);
            start_receive(self, session);
        }

        /// Works through buffered input in order until it runs out, a reply is delayed, the
        /// session stalls or closes.
        void process_input(const std::shared_ptr<State>& self, Session& session) {
            while (!session.closed && !session.busy && !session.stalled) {
                if (session.data) {
                    if (session.drop_after_data_bytes &&
                        session.data->raw().size() >= *session.drop_after_data_bytes) {
                        close_session(session, /*abortive=*/true);
                        return;
                    }
                    if (!session.data->finished()) {
                        return;
                    }
                    finish_data(self, session);
                    continue;
                }
                auto next = session.commands.next();
                if (!next) {
                    if (next.error() == SmtpErrc::command_too_long) {
                        session.record.commands.emplace_back();
                        emit(session, "500 5.5.0 Error: line too long\r\n", After::none);
                    } else {
                        session.record.commands.emplace_back();
                        emit(session, "550 5.5.2 Error: bare <LF> received\r\n", After::none);
                    }
                    continue;
                }
                if (!next.value()) {
                    return;
                }
                command(self, session, *next.value());
            }
        }

        // ---- the session state machine (W-2) -----------------------------------------------

        void command(const std::shared_ptr<State>& self, Session& session, const Command& input) {
            session.record.commands.push_back(input.line);
            if (script.reject_unauthorised_pipelining && !session.pipelining_advertised &&
                session.commands.has_buffered()) {
                // W-11: input arrived before the reply to this command.
                emit(session, "554 5.5.0 Error: SMTP protocol synchronization\r\n", After::close);
                return;
            }
            if (session.auth_step != 0) {
                auth_continue(self, session, input.line);
                return;
            }
            const std::string& verb = input.verb;
            if (verb == "EHLO" || verb == "HELO") {
                const bool extended = verb == "EHLO";
                std::vector<std::string> lines;
                std::vector<std::string> capabilities = script.capabilities;
                if (script.advertise_auth) {
                    capabilities.emplace_back("AUTH LOGIN PLAIN");
                }
                if (extended && !capabilities.empty()) {
                    lines.push_back("250-" + script.domain);
                    for (std::size_t i = 0; i < capabilities.size(); ++i) {
                        const bool last = i + 1 == capabilities.size();
                        lines.push_back((last ? "250 " : "250-") + capabilities[i]);
                    }
                } else {
                    lines.push_back("250 " + script.domain);
                }
                // W-3: a refused EHLO leaves the state as it was.
                if (is_positive(respond(self, session, step(verb), lines))) {
                    session.greeted = true;
                    reset_transaction(session);
                    session.pipelining_advertised = extended && advertises_pipelining();
                }
            } else if (verb == "MAIL") {
                if (!session.greeted || session.in_transaction) {
                    bad_sequence(session);
                    return;
                }
                if (script.require_auth && !session.authenticated) {
                    emit(session, "530 5.7.0 Authentication required\r\n", After::none);
                    return;
                }
                auto address = path_argument(input.argument, "FROM:");
                if (!address) {
                    emit(session, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n", After::none);
                    return;
                }
                if (is_positive(respond(self, session, step("MAIL"), {"250 2.1.0 Ok"}))) {
                    session.in_transaction = true;
                    session.record.transactions.push_back(
                        SmtpTransactionRecord{.mail_from = std::move(*address)});
                }
            } else if (verb == "RCPT") {
                if (!session.in_transaction) {
                    bad_sequence(session);
                    return;
                }
                auto address = path_argument(input.argument, "TO:");
                if (!address) {
                    emit(session, "501 5.5.4 Syntax: RCPT TO:<address>\r\n", After::none);
                    return;
                }
                auto& transaction = session.record.transactions.back();
                if (session.accepted_recipients >= script.recipients_max) {
                    // W-8: too many recipients is transient.
                    emit(session, "452 4.5.3 Error: too many recipients\r\n", After::none);
                    transaction.recipients.push_back({std::move(*address), 452});
                    return;
                }
                const auto found = script.recipient_steps.find(*address);
                const SmtpStep* recipient_step =
                    found != script.recipient_steps.end() ? &found->second : step("RCPT");
                const int code = respond(self, session, recipient_step, {"250 2.1.5 Ok"});
                transaction.recipients.push_back({std::move(*address), code});
                if (is_positive(code)) {
                    ++session.accepted_recipients;
                }
            } else if (verb == "DATA") {
                if (!session.in_transaction) {
                    bad_sequence(session);
                    return;
                }
                if (session.accepted_recipients == 0) {
                    emit(session, "554 5.5.1 Error: no valid recipients\r\n", After::none);
                    return;
                }
                const SmtpStep* data_step = step("DATA");
                if (respond(self, session, data_step, {"354 End data with <CR><LF>.<CR><LF>"}) ==
                    354) {
                    session.record.transactions.back().data_started = true;
                    session.data.emplace(DataOptions{
                        .bare_line_feed = script.bare_line_feed,
                        .message_bytes_max = script.message_bytes_max,
                    });
                    session.drop_after_data_bytes =
                        data_step != nullptr ? data_step->drop_after_data_bytes : std::nullopt;
                    // Content that came with the DATA line (pipelined, W-11) is content.
                    const std::string early = session.commands.take_buffered();
                    const std::size_t consumed = session.data->feed(early);
                    session.commands.feed(std::string_view(early).substr(consumed));
                }
            } else if (verb == "RSET") {
                respond(self, session, step("RSET"), {"250 2.0.0 Ok"});
                reset_transaction(session);
            } else if (verb == "NOOP") {
                respond(self, session, step("NOOP"), {"250 2.0.0 Ok"});
            } else if (verb == "QUIT") {
                const SmtpStep* scripted = step("QUIT");
                SmtpStep quit = scripted != nullptr ? *scripted : SmtpStep{};
                if (quit.action == SmtpAction::reply) {
                    quit.action = SmtpAction::reply_then_close;  // RFC 5321 §4.1.1.10
                }
                respond(self, session, &quit, {"221 2.0.0 Bye"});
            } else if (verb == "AUTH") {
                auth_start(self, session, input.argument);
            } else if (verb == "STARTTLS") {
                emit(session, "454 4.7.0 TLS not available\r\n", After::none);
            } else if (verb.empty()) {
                emit(session, "500 5.5.2 Error: bad syntax\r\n", After::none);
            } else {
                emit(session, "502 5.5.2 Error: command not recognized\r\n", After::none);
            }
        }

        void auth_start(const std::shared_ptr<State>& self,
                        Session& session,
                        std::string_view argument) {
            // RFC 4954 §4: not inside a transaction, and only once per session.
            if (!session.greeted || session.in_transaction || session.authenticated) {
                bad_sequence(session);
                return;
            }
            const std::size_t space = argument.find(' ');
            std::string mechanism(argument.substr(0, space));
            for (char& c : mechanism) {
                if (c >= 'a' && c <= 'z') {
                    c = static_cast<char>(c - ('a' - 'A'));
                }
            }
            const std::string_view initial =
                space == std::string_view::npos ? std::string_view() : argument.substr(space + 1);
            if (mechanism == "LOGIN" && initial.empty()) {
                session.auth_step = 1;
                emit(session, "334 VXNlcm5hbWU6\r\n", After::none);  // "Username:"
            } else if (mechanism == "LOGIN") {
                session.auth_step = 1;  // RFC 4954 §4: the initial response is the user name
                auth_continue(self, session, initial);
            } else if (mechanism == "PLAIN" && initial.empty()) {
                session.auth_step = 3;
                emit(session, "334 \r\n", After::none);
            } else if (mechanism == "PLAIN") {
                session.auth_step = 3;
                auth_continue(self, session, initial);
            } else {
                emit(session, "504 5.5.4 Unrecognized authentication type\r\n", After::none);
            }
        }

        /// One client response line of an AUTH exchange (RFC 4954 §4): "*" cancels (501); an
        /// undecodable line is 501; LOGIN asks for the password after the user name; the last
        /// response is checked against auth_users.
        void auth_continue(const std::shared_ptr<State>& self,
                           Session& session,
                           std::string_view line) {
            const int step_now = session.auth_step;
            session.auth_step = 0;
            if (line == "*") {
                emit(session, "501 5.7.0 Authentication aborted\r\n", After::none);
                return;
            }
            const std::optional<std::string> decoded = base64_decode(line);
            if (!decoded) {
                emit(session, "501 5.5.2 Cannot decode response\r\n", After::none);
                return;
            }
            if (step_now == 1) {
                session.auth_user = *decoded;
                session.auth_step = 2;
                emit(session, "334 UGFzc3dvcmQ6\r\n", After::none);  // "Password:"
                return;
            }
            std::string user;
            std::string password;
            if (step_now == 2) {
                user = std::move(session.auth_user);
                password = *decoded;
            } else {
                // RFC 4616: authzid NUL authcid NUL passwd; the authorization identity is ignored.
                const std::size_t first = decoded->find('\0');
                const std::size_t second = first == std::string::npos
                                               ? std::string::npos
                                               : decoded->find('\0', first + 1);
                if (second == std::string::npos) {
                    emit(session, "501 5.5.2 Cannot decode response\r\n", After::none);
                    return;
                }
                user = decoded->substr(first + 1, second - first - 1);
                password = decoded->substr(second + 1);
            }
            session.auth_user.clear();
            if (!credentials_accepted(user, password)) {
                emit(session, "535 5.7.8 Error: authentication failed\r\n", After::none);
                return;
            }
            if (is_positive(respond(
                    self, session, step("AUTH"), {"235 2.7.0 Authentication successful"}))) {
                session.authenticated = true;
                session.record.authenticated_user = std::move(user);
            }
        }

        [[nodiscard]] bool credentials_accepted(std::string_view user,
                                                std::string_view password) const {
            if (script.auth_users.empty()) {
                return true;
            }
            const auto found = script.auth_users.find(user);
            return found != script.auth_users.end() && found->second == password;
        }

        /// RFC 4648 base64 with padding; nullopt for anything else. "" decodes to "".
        static std::optional<std::string> base64_decode(std::string_view text) {
            if (text.size() % 4 != 0) {
                return std::nullopt;
            }
            const auto value_of = [](char c) -> int {
                if (c >= 'A' && c <= 'Z') {
                    return c - 'A';
                }
                if (c >= 'a' && c <= 'z') {
                    return c - 'a' + 26;
                }
                if (c >= '0' && c <= '9') {
                    return c - '0' + 52;
                }
                if (c == '+') {
                    return 62;
                }
                if (c == '/') {
                    return 63;
                }
                return -1;
            };
            std::string out;
            for (std::size_t i = 0; i < text.size(); i += 4) {
                const bool last = i + 4 == text.size();
                std::uint32_t group = 0;
                std::size_t padding = 0;
                for (std::size_t k = 0; k < 4; ++k) {
                    const char c = text[i + k];
                    if (c == '=' && last && k >= 2 && (k == 3 || text[i + 3] == '=')) {
                        ++padding;
                        group <<= 6U;
                        continue;
                    }
                    const int value = value_of(c);
                    if (value < 0 || padding > 0) {
                        return std::nullopt;
                    }
                    group = (group << 6U) | static_cast<std::uint32_t>(value);
                }
                out += static_cast<char>((group >> 16U) & 0xFFU);
                if (padding < 2) {
                    out += static_cast<char>((group >> 8U) & 0xFFU);
                }
                if (padding < 1) {
                    out += static_cast<char>(group & 0xFFU);
                }
            }
            return out;
        }

        void finish_data(const std::shared_ptr<State>& self, Session& session) {
            FAULTLINE_ASSERT(session.data.has_value());
            FAULTLINE_ASSERT(session.data->finished());
            const SmtpStep* scripted = step(".");
            SmtpStep dot = scripted != nullptr ? *scripted : SmtpStep{};
            const int verdict = session.data->reply_code();
            if (verdict != 250) {
                // The content rules (W-8, W-13) outrank the script's reply text.
                dot.raw_reply.reset();
                dot.reply = {verdict == 550   ? "550 5.5.2 Error: bare <LF> received"
                             : verdict == 552 ? "552 5.3.4 Error: message too large"
                                              : "500 5.5.0 Error: line too long"};
            }
            auto& transaction = session.record.transactions.back();
            save_data(session);
            session.data.reset();
            session.drop_after_data_bytes.reset();
            transaction.final_reply_code = respond(self, session, &dot, {"250 2.0.0 Ok: queued"});
            reset_transaction(session);
        }

        // ---- replies -----------------------------------------------------------------------

        enum class After : std::uint8_t { none, close, abort };

        [[nodiscard]] const SmtpStep* step(std::string_view key) const {
            const auto found = script.steps.find(key);
            return found != script.steps.end() ? &found->second : nullptr;
        }

        /// Carries out `scripted` (or a plain reply of `default_lines`) and returns the code of
        /// the reply that will be sent, 0 if none will.
        int respond(const std::shared_ptr<State>& self,
                    Session& session,
                    const SmtpStep* scripted,
                    const std::vector<std::string>& default_lines) {
            const SmtpStep plain;
            const SmtpStep& step_ref = scripted != nullptr ? *scripted : plain;
            std::string text;
            if (step_ref.raw_reply) {
                text = *step_ref.raw_reply;
            } else if (!step_ref.reply.empty()) {
                text = join(step_ref.reply);
            } else if (step_ref.action == SmtpAction::reply_then_close &&
                       (scripted != nullptr && scripted->reply.empty()) &&
                       default_lines.front().compare(0, 3, "221") != 0) {
                text = "421 4.3.2 " + script.domain + " Service not available\r\n";
            } else {
                text = join(default_lines);
            }
            After after = After::none;
            switch (step_ref.action) {
                case SmtpAction::reply:
                    break;
                case SmtpAction::reply_then_close:
                    after = After::close;
                    break;
                case SmtpAction::close_without_reply:
                    text.clear();
                    after = After::close;
                    break;
                case SmtpAction::abort_without_reply:
                    text.clear();
                    after = After::abort;
                    break;
                case SmtpAction::stall:
                    session.stalled = true;
                    return 0;
            }
            const int code = reply_code_of(text);
            if (step_ref.delay <= Duration::zero()) {
                emit(session, text, after);
                return code;
            }
            session.busy = true;
            Session* target = &session;
            transport.post_after(step_ref.delay, [self, target, text, after] {
                std::unique_lock lock(self->mutex);
                target->busy = false;
                if (target->closed) {
                    return;
                }
                self->emit(*target, text, after);
                self->process_input(self, *target);
            });
            return code;
        }

        void emit(Session& session, std::string_view text, After after) {
            if (session.closed) {
                return;
            }
            session.record.sent += text;
            session.queued += text;
            if (after == After::abort) {
                close_session(session, /*abortive=*/true);
                return;
            }
            if (after == After::close) {
                session.close_after_send = true;
                session.stalled = true;  // read nothing more as commands
            }
            pump_send(session);
        }

        void pump_send(Session& session) {
            if (session.closed || session.sending) {
                return;
            }
            if (session.queued.empty()) {
                if (session.close_after_send) {
                    close_session(session, /*abortive=*/false);
                }
                return;
            }
            session.in_flight = std::move(session.queued);
            session.queued.clear();
            send_in_flight(session);
        }

        void send_in_flight(Session& session) {
            session.sending = true;
            Session* target = &session;
            std::shared_ptr<State> self = shared_self(session);
            transport.async_send(
                session.connection,
                std::as_bytes(std::span(session.in_flight.data(), session.in_flight.size())),
                [self, target](std::error_code error, std::size_t bytes) {
                    std::unique_lock lock(self->mutex);
                    self->sent(*target, error, bytes);
                });
        }

        void sent(Session& session, std::error_code error, std::size_t bytes) {
            session.sending = false;
            if (session.closed) {
                return;
            }
            if (error) {
                close_session(session, /*abortive=*/false);
                return;
            }
            FAULTLINE_ASSERT(bytes > 0);
            FAULTLINE_ASSERT(bytes <= session.in_flight.size());
            session.in_flight.erase(0, bytes);
            if (!session.in_flight.empty()) {
                send_in_flight(session);
                return;
            }
            pump_send(session);
        }

        static void close_session(Session& session, bool abortive) {
            if (session.closed) {
                return;
            }
            session.closed = true;
            session.record.closed = true;
            if (session.data) {
                save_data(session);
            }
            if (abortive) {
                session.state->transport.abort(session.connection);
            } else {
                session.state->transport.close(session.connection);
            }
        }

        // ---- helpers -----------------------------------------------------------------------

        /// Each send handler holds the state alive. A send starts only while the server or a
        /// handler owns the state, so the lock always succeeds.
        std::shared_ptr<State> shared_self(Session& /*session*/) { return self_weak.lock(); }
        std::weak_ptr<State> self_weak;  // set once by the SmtpServer constructor

        static void save_data(Session& session) {
            auto& transaction = session.record.transactions.back();
            transaction.data_raw = session.data->raw();
            transaction.content = session.data->content();
            transaction.data_complete = session.data->finished();
        }

        static void reset_transaction(Session& session) {
            session.in_transaction = false;
            session.accepted_recipients = 0;
        }

        void bad_sequence(Session& session) {
            emit(session, "503 5.5.1 Error: bad sequence of commands\r\n", After::none);
        }

        [[nodiscard]] bool advertises_pipelining() const {
            for (const auto& capability : script.capabilities) {
                if (capability == "PIPELINING") {
                    return true;
                }
            }
            return false;
        }

        static bool is_positive(int code) { return code >= 200 && code < 300; }

        static int reply_code_of(std::string_view text) {
            if (text.size() < 3) {
                return 0;
            }
            int code = 0;
            for (std::size_t i = 0; i < 3; ++i) {
                if (text[i] < '0' || text[i] > '9') {
                    return 0;
                }
                code = code * 10 + (text[i] - '0');
            }
            return code;
        }

        static std::string join(const std::vector<std::string>& lines) {
            std::string text;
            for (const auto& line : lines) {
                text += line;
                text += "\r\n";
            }
            return text;
        }

        /// "FROM:<a@b> SIZE=1" → "a@b" (the keyword case-insensitive, RFC 5321 §2.4); nullopt
        /// if the path is not in angle brackets.
        static std::optional<std::string> path_argument(std::string_view argument,
                                                        std::string_view keyword) {
            if (argument.size() < keyword.size()) {
                return std::nullopt;
            }
            for (std::size_t i = 0; i < keyword.size(); ++i) {
                char c = argument[i];
                if (c >= 'a' && c <= 'z') {
                    c = static_cast<char>(c - ('a' - 'A'));
                }
                if (c != keyword[i]) {
                    return std::nullopt;
                }
            }
            argument.remove_prefix(keyword.size());
            while (!argument.empty() && argument.front() == ' ') {
                argument.remove_prefix(1);
            }
            const std::size_t close = argument.find('>');
            if (argument.empty() || argument.front() != '<' || close == std::string_view::npos) {
                return std::nullopt;
            }
            return std::string(argument.substr(1, close - 1));
        }
    };

    std::shared_ptr<State> state_;
};

}  // namespace faultline::model
