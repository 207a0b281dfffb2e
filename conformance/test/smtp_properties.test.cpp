// Goal: the SmtpClient/SmtpServer pair keeps clause list C and D under generated messages, server
// scripts and fault schedules (issue #4): SendCompleted fires exactly once per accepted SendAsync
// (M-5) and the Timeout, SendAsyncCancel or Dispose always ends a send (M-8, M-9, M-11); a
// delivered message reached the server exactly as the MIME writer wrote it, once, and the
// delivery classification agrees with the server's reply after the dot (M-16, M-26, W-10);
// Cancelled implies a null Error (M-9); a second SendAsync in flight throws
// InvalidOperationException and leaves the first alone (M-3); any body survives the round trip
// byte for byte and the client never emits a bare CR or LF (M-28, M-29, W-1); dot_stuff and the
// server's DataReader agree for any content (W-6, W-7). Also: commands go one at a time in
// session order (W-2, M-22), a follow-up send on the cached or a new connection keeps the same
// accounting (M-12), and on sim the same seed gives the same outcome (style 3.7).
// Method: RapidCheck generates the plan (message, server script, network faults, the end of the
// send). The body runs on a logical thread of the transport and only records what it observed;
// the checks run afterwards on the test thread, so a failure shrinks cleanly. Sim properties use
// virtual time (every wait has a budget); the Real subset uses only faults a real peer can
// script honestly (replies, closes, resets, drops mid-DATA, stalls ended by cancel) with short
// waits, so the whole Real set stays within seconds at 60 cases.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <any>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "faultline/conformance/run.h"
#include "faultline/model/mail_message.h"
#include "faultline/model/mime.h"
#include "faultline/model/smtp_client.h"
#include "faultline/model/smtp_codec.h"
#include "faultline/model/smtp_server.h"
#include "faultline/real/transport.h"
#include "faultline/sim/world.h"
#include "rc_support.h"

namespace faultline {
namespace {

using model::AsyncCompletedEventArgs;
using model::DeliveryOutcome;
using model::Duration;
using model::Endpoint;
using model::MailAddress;
using model::MailMessage;
using model::SmtpAction;
using model::SmtpClient;
using model::SmtpScript;
using model::SmtpServer;
using model::SmtpSessionRecord;
using model::SmtpStep;
using model::SmtpTransactionRecord;
using model::TransferEncoding;
using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kDate = "Sat, 21 Nov 2026 10:00:00 +0000";
/// Liveness budget for one sim case (style 3.7): a send that never ends (a client waiting in
/// hour-long steps) runs out of events instead of spinning; a passing case needs far fewer.
constexpr std::uint64_t kSimEventsMax = 2'000'000;
const std::string kSender = "jane@x.test";

// ---- body generator ---------------------------------------------------------------------------

/// One piece of a body. Pieces are the hostile shapes of M-28/M-29/W-12: dots at line starts,
/// every kind of line end, the end-of-data sequence itself, NUL, non-ASCII and invalid UTF-8,
/// trailing whitespace, and (rarely) a line longer than the 1000-byte limit (W-8).
rc::Gen<std::string> body_piece() {
    return rc::gen::weightedOneOf<std::string>({
        {6, rc::gen::container<std::string>(rc::gen::inRange('a', static_cast<char>('z' + 1)))},
        {3, rc::gen::element<std::string>(".", "..", "\r\n", "\n", "\r", " ", "\t", "=")},
        {2,
         rc::gen::element<std::string>(
             "\r\n.\r\n", "\n.\n", "\n.\r\n", "\r\n.", "\r.\r", "\r\n..\r\n", ".\r\n")},
        {1,
         rc::gen::element<std::string>(std::string(1, '\0'),
                                       "\xC3\xA9",
                                       "\xE2\x82\xAC",
                                       "\xF0\x9F\x98\x80",
                                       "\xFF",
                                       "\x7F",
                                       "\x01")},
        // Lines around the W-8 limit of 1000 bytes with CRLF: 998 fits, 999 does not.
        {1,
         rc::gen::map(rc::gen::element<std::size_t>(998, 999, 1000, 1300),
                      [](std::size_t length) { return std::string(length, 'L'); })},
    });
}

/// A body of up to `pieces_max` pieces; shrinks towards the empty body and short pieces.
rc::Gen<std::string> body(double scale) {
    return rc::gen::map(
        rc::gen::scale(scale, rc::gen::container<std::vector<std::string>>(body_piece())),
        [](const std::vector<std::string>& pieces) {
            std::string joined;
            for (const std::string& piece : pieces) {
                joined += piece;
            }
            return joined;
        });
}

// ---- the message --------------------------------------------------------------------------------

enum class RecipientList : std::uint8_t { to, cc, bcc };

struct MessagePlan {
    std::string body;
    std::string subject;
    std::vector<RecipientList> recipients;  // recipient i is "r<i>@x.test"
    std::optional<model::TextEncoding> body_encoding;
    TransferEncoding transfer = TransferEncoding::unknown;
};

std::string recipient_address(std::size_t index) { return "r" + std::to_string(index) + "@x.test"; }

MessagePlan generate_message(double body_scale, bool any_transfer_encoding) {
    MessagePlan plan;
    plan.body = *body(body_scale);
    plan.subject = *rc::gen::element<std::string>("", "hi", "caf\xC3\xA9 \xE2\x86\x90");
    const auto count = *rc::gen::inRange<std::size_t>(1, 4);
    for (std::size_t i = 0; i < count; ++i) {
        // The first recipient shrinks to To; Bcc is envelope-only (M-13).
        plan.recipients.push_back(
            *rc::gen::element(RecipientList::to, RecipientList::cc, RecipientList::bcc));
    }
    plan.body_encoding = *rc::gen::element<std::optional<model::TextEncoding>>(
        std::nullopt, model::TextEncoding::utf8);
    if (any_transfer_encoding) {
        plan.transfer = *rc::gen::element(TransferEncoding::unknown,
                                          TransferEncoding::quoted_printable,
                                          TransferEncoding::base64,
                                          TransferEncoding::seven_bit,
                                          TransferEncoding::eight_bit);
    }
    return plan;
}

std::shared_ptr<const MailMessage> build_message(const MessagePlan& plan) {
    auto message = std::make_shared<MailMessage>();
    message->From(MailAddress(kSender));
    for (std::size_t i = 0; i < plan.recipients.size(); ++i) {
        switch (plan.recipients[i]) {
            case RecipientList::to:
                message->To().emplace_back(recipient_address(i));
                break;
            case RecipientList::cc:
                message->CC().emplace_back(recipient_address(i));
                break;
            case RecipientList::bcc:
                message->Bcc().emplace_back(recipient_address(i));
                break;
        }
    }
    message->Subject(plan.subject);
    message->Body(plan.body);
    message->BodyEncoding(plan.body_encoding);
    message->BodyTransferEncoding(plan.transfer);
    return message;
}

// ---- the server script ----------------------------------------------------------------------

/// Reply codes drawn for a scripted step: the accepted ones (M-14, M-15), 4xx and 5xx, 421 (W-5).
const std::vector<int> kCodes = {
    220, 250, 251, 252, 354, 421, 450, 451, 452, 500, 502, 530, 550, 551, 553, 554};

/// One scripted intervention: a step key of SmtpScript, or RCPT for recipient `recipient`.
struct StepPlan {
    std::string key;
    std::optional<std::size_t> recipient;
    SmtpStep step;
};

/// `real`: delays stay short (real time), and a stall is only drawn when `stall_allowed`.
StepPlan generate_step(std::size_t recipients, bool real) {
    StepPlan plan;
    const auto where = *rc::gen::inRange<std::size_t>(0, 7 + recipients);
    static const std::vector<std::string> kKeys = {
        ".", "DATA", "RCPT", "MAIL", "EHLO", "HELO", "CONNECT"};
    if (where < kKeys.size()) {
        plan.key = kKeys[where];
    } else {
        plan.key = "RCPT";
        plan.recipient = where - kKeys.size();
    }
    plan.step.action = *rc::gen::weightedElement<SmtpAction>({
        {6, SmtpAction::reply},
        {1, SmtpAction::reply_then_close},
        {2, SmtpAction::close_without_reply},
        {1, SmtpAction::abort_without_reply},
        {1, SmtpAction::stall},
    });
    const bool scripted_reply = *rc::gen::weightedElement<bool>({{1, false}, {3, true}});
    if (scripted_reply) {
        const int code = *rc::gen::elementOf(kCodes);
        const std::string text = std::to_string(code);
        if (*rc::gen::weightedElement<bool>({{4, false}, {1, true}})) {
            plan.step.reply = {text + "-scripted", text + " last"};  // multi-line (W-4)
        } else {
            plan.step.reply = {text + " scripted"};
        }
    }
    if (*rc::gen::weightedElement<bool>({{3, false}, {1, true}})) {
        plan.step.delay = real ? Duration(*rc::gen::inRange<std::int64_t>(0, 3'000'000))
                               : Duration(*rc::gen::inRange<std::int64_t>(0, 3'000'000'000));
    }
    if (plan.key == "DATA" && *rc::gen::arbitrary<bool>()) {
        plan.step.drop_after_data_bytes = *rc::gen::inRange<std::size_t>(0, 3000);  // mid-DATA
    }
    return plan;
}

SmtpScript build_script(const std::vector<StepPlan>& steps) {
    SmtpScript script;
    for (const StepPlan& plan : steps) {
        if (plan.recipient) {
            script.recipient_steps[recipient_address(*plan.recipient)] = plan.step;
        } else {
            script.steps[plan.key] = plan.step;
        }
    }
    return script;
}

bool script_stalls(const std::vector<StepPlan>& steps) {
    return std::any_of(steps.begin(), steps.end(), [](const StepPlan& plan) {
        return plan.step.action == SmtpAction::stall;
    });
}

// ---- network faults (sim only) ------------------------------------------------------------

std::vector<sim::Fault> generate_faults() {
    std::vector<sim::Fault> faults;
    const auto count = *rc::gen::inRange<int>(0, 4);
    for (int i = 0; i < count; ++i) {
        sim::Fault fault;
        fault.kind = *rc::gen::element(sim::FaultKind::partial_send,
                                       sim::FaultKind::reset,
                                       sim::FaultKind::latency,
                                       sim::FaultKind::stall,
                                       sim::FaultKind::bandwidth);
        fault.side = *rc::gen::element(sim::Side::client, sim::Side::server);
        switch (fault.kind) {
            case sim::FaultKind::partial_send:
                fault.on_send = *rc::gen::inRange<std::uint64_t>(1, 30);
                fault.bytes = *rc::gen::inRange<std::uint64_t>(1, 64);
                break;
            case sim::FaultKind::reset:
                fault.after_bytes = *rc::gen::inRange<std::uint64_t>(0, 4000);
                break;
            case sim::FaultKind::latency:
                fault.at = Duration(*rc::gen::inRange<std::int64_t>(0, 2'000'000'000));
                fault.latency = Duration(*rc::gen::inRange<std::int64_t>(0, 50'000'000));
                fault.jitter = Duration(*rc::gen::inRange<std::int64_t>(0, 5'000'000));
                break;
            case sim::FaultKind::stall:
                // The application stops reading for a while; a forever-stall is the script's.
                fault.at = Duration(*rc::gen::inRange<std::int64_t>(0, 2'000'000'000));
                fault.duration =
                    Duration(*rc::gen::inRange<std::int64_t>(1'000'000, 3'000'000'000));
                break;
            default:
                fault.kind = sim::FaultKind::bandwidth;
                fault.at = Duration(*rc::gen::inRange<std::int64_t>(0, 2'000'000'000));
                fault.bytes_per_second = *rc::gen::inRange<std::uint64_t>(2000, 1'000'000);
                break;
        }
        faults.push_back(fault);
    }
    return faults;
}

// ---- the whole plan -----------------------------------------------------------------------

enum class Ending : std::uint8_t { wait, cancel, dispose };

struct SendPlan {
    bool dotnet_unix = false;
    int timeout_ms = model::kSmtpDefaultTimeoutMs;
    MessagePlan message;
    std::vector<StepPlan> steps;
    sim::World::Options world;               // sim only
    std::optional<Duration> second_send_at;  // M-3
    Ending ending = Ending::wait;
    Duration end_at{};       // cancel, dispose: after SendAsync
    bool follow_up = false;  // M-12: a next send on the cached (or a new) connection
};

/// The follow-up message: one recipient, a dot line to stuff.
MessagePlan follow_up_message() {
    MessagePlan message;
    message.body = "follow-up\r\n.dot\r\n";
    message.recipients = {RecipientList::to};
    return message;
}

SendPlan generate_send(bool real) {
    SendPlan plan;
    plan.dotnet_unix = *rc::gen::arbitrary<bool>();
    plan.message = generate_message(0.1, false);
    const auto steps = *rc::gen::inRange<std::size_t>(0, 4);
    for (std::size_t i = 0; i < steps; ++i) {
        plan.steps.push_back(generate_step(plan.message.recipients.size(), real));
    }
    if (real) {
        // Short real waits: the M-8 timer ends stalls quickly under dotnet-unix.
        plan.timeout_ms = *rc::gen::inRange(150, 400);
        if (*rc::gen::weightedElement<bool>({{3, false}, {1, true}})) {
            plan.second_send_at = Duration{};
        }
        plan.ending = *rc::gen::element(Ending::wait, Ending::cancel, Ending::dispose);
        plan.end_at = Duration(*rc::gen::inRange<std::int64_t>(0, 20'000'000));
    } else {
        plan.timeout_ms = *rc::gen::inRange(100, 30'000);
        plan.world.seed = *rc::gen::inRange<std::uint64_t>(1, 1'000'000);
        plan.world.trace_mode = sim::Trace::Mode::off;
        plan.world.network.latency = Duration(*rc::gen::inRange<std::int64_t>(1'000, 5'000'000));
        plan.world.faults = generate_faults();
        // Most sends take a few virtual milliseconds: aim the second SendAsync (M-3) and the
        // cancel (M-9) there, and sometimes much later (into delays, stalls and the timer).
        const auto when = [] {
            return Duration(*rc::gen::weightedOneOf<std::int64_t>(
                {{3, rc::gen::inRange<std::int64_t>(0, 30'000'000)},
                 {1, rc::gen::inRange<std::int64_t>(0, 5'000'000'000)}}));
        };
        if (*rc::gen::weightedElement<bool>({{3, false}, {1, true}})) {
            plan.second_send_at = when();
        }
        plan.ending = *rc::gen::weightedElement<Ending>(
            {{2, Ending::wait}, {1, Ending::cancel}, {1, Ending::dispose}});
        plan.end_at = when();
    }
    plan.follow_up = plan.ending != Ending::dispose && *rc::gen::arbitrary<bool>();
    RC_TAG(plan.dotnet_unix ? "dotnet-unix" : "documented",
           plan.ending == Ending::wait ? "wait" : "cancel/dispose");
    return plan;
}

/// The plan in words, logged with a counterexample.
std::string describe(const SendPlan& plan, bool real) {
    std::ostringstream text;
    text << (plan.dotnet_unix ? "dotnet-unix" : "documented") << " timeout_ms=" << plan.timeout_ms
         << " recipients=" << plan.message.recipients.size()
         << " body_bytes=" << plan.message.body.size();
    for (const StepPlan& step : plan.steps) {
        text << "\nstep " << step.key;
        if (step.recipient) {
            text << " recipient=" << *step.recipient;
        }
        text << " action=" << static_cast<int>(step.step.action)
             << " reply=" << (step.step.reply.empty() ? "default" : step.step.reply.back())
             << " delay_ns=" << step.step.delay.count()
             << " drop_after=" << step.step.drop_after_data_bytes.value_or(0);
    }
    if (!real) {
        text << "\nseed=" << plan.world.seed
             << " latency_ns=" << plan.world.network.latency.count();
        for (const sim::Fault& fault : plan.world.faults) {
            text << "\nfault kind=" << static_cast<int>(fault.kind)
                 << " side=" << static_cast<int>(fault.side)
                 << " on_send=" << fault.on_send.value_or(0) << " bytes=" << fault.bytes
                 << " after_bytes=" << fault.after_bytes.value_or(0)
                 << " at_ns=" << fault.at.value_or(Duration{}).count()
                 << " duration_ns=" << fault.duration.value_or(Duration{}).count()
                 << " latency_ns=" << fault.latency.count()
                 << " bytes_per_second=" << fault.bytes_per_second;
        }
    }
    text << "\nsecond_send_at_ns="
         << (plan.second_send_at ? std::to_string(plan.second_send_at->count()) : "none")
         << " ending=" << static_cast<int>(plan.ending) << " end_at_ns=" << plan.end_at.count();
    return text.str();
}

// ---- running one send ---------------------------------------------------------------------------

/// Every SendCompleted with its transport time.
template <typename T>
struct Recorder {
    typename T::Mutex mutex;
    typename T::Event first;
    typename T::Event second;
    std::vector<AsyncCompletedEventArgs> seen;
    std::vector<model::TimePoint> at;
};

enum class SecondSend : std::uint8_t { not_tried, invalid_operation, other_exception, accepted };

/// What the body saw; checked afterwards on the test thread.
struct Observed {
    bool started = false;
    std::size_t accepted_sends = 0;
    model::TimePoint sent_at{};
    SecondSend second = SecondSend::not_tried;
    std::string second_exception;
    bool ended_by_user = false;      // SendAsyncCancel or Dispose issued while in progress
    bool hung = false;               // no completion within the liveness budget
    bool late_after_cancel = false;  // no completion within the budget after cancel
    std::optional<model::TimePoint> first_completion_at;
    std::string written;
    std::vector<SmtpSessionRecord> sessions;
    std::vector<AsyncCompletedEventArgs> completions;  // after the transport went idle
    // The follow-up send (M-12), after the first completed.
    bool follow_sent = false;
    model::TimePoint follow_sent_at{};
    bool follow_hung = false;
    bool follow_cancelled = false;
    std::optional<model::TimePoint> follow_completion_at;
    std::string follow_written;
    std::vector<SmtpSessionRecord> sessions_after;
};

template <typename T>
bool wait_first(T& transport, Recorder<T>& recorder, Duration budget) {
    std::unique_lock lock(recorder.mutex);
    return transport.wait(recorder.first, lock, budget);
}

template <typename T>
void pause(T& transport, Duration duration) {
    typename T::Mutex mutex;
    typename T::Event never;
    std::unique_lock lock(mutex);
    static_cast<void>(transport.wait(never, lock, duration));
}

/// The liveness budget for a send with no user ending: Timeout under dotnet-unix (M-8, plus a
/// little for the abort to surface); documented has no timer, so only a script that never
/// stalls must finish (within any delay, bandwidth and stall the plan can add up to).
template <typename T>
Duration liveness_budget(const SendPlan& plan, bool real) {
    if (plan.dotnet_unix) {
        return milliseconds(plan.timeout_ms) + (real ? seconds(5) : milliseconds(1));
    }
    if (script_stalls(plan.steps)) {
        return real ? milliseconds(300) : seconds(600);
    }
    return real ? seconds(5) : seconds(600);
}

/// M-12: the next SendAsync reuses the cached connection after a success or reconnects after a
/// failure; the same script answers it. Ended like the first: budget, then SendAsyncCancel.
template <typename T>
void run_follow_up(T& transport,
                   const SendPlan& plan,
                   bool real,
                   SmtpClient<T>& client,
                   Observed& observed,
                   Recorder<T>& recorder) {
    const auto message = build_message(follow_up_message());
    observed.follow_written = model::write_message(*message, model::MimeOptions{.date = kDate});
    observed.follow_sent_at = transport.now();
    client.SendAsync(message, std::any(std::string("follow-up")));
    ++observed.accepted_sends;
    observed.follow_sent = true;
    bool done = false;
    {
        std::unique_lock lock(recorder.mutex);
        done = transport.wait(recorder.second, lock, liveness_budget<T>(plan, real));
    }
    observed.follow_hung = !done;
    if (!done) {
        observed.follow_cancelled = client.send_in_progress();
        client.SendAsyncCancel();
        std::unique_lock lock(recorder.mutex);
        observed.late_after_cancel =
            !transport.wait(recorder.second, lock, real ? seconds(5) : seconds(1));
    }
    {
        std::unique_lock lock(recorder.mutex);
        if (recorder.at.size() >= 2) {
            observed.follow_completion_at = recorder.at[1];
        }
    }
    pause(transport, real ? milliseconds(2) : seconds(5));
}

template <typename T>
void run_send(T& transport,
              const SendPlan& plan,
              bool real,
              Observed& observed,
              const std::shared_ptr<Recorder<T>>& recorder) {
    const model::Profile profile = plan.dotnet_unix ? model::kDotnetUnix : model::kDocumented;
    SmtpServer<T> server(transport, build_script(plan.steps));
    auto endpoint = server.start(Endpoint::loopback(0));
    if (!endpoint) {
        return;
    }
    const auto message = build_message(plan.message);
    observed.written = model::write_message(*message, model::MimeOptions{.date = kDate});
    {
        SmtpClient<T> client(transport, profile, "127.0.0.1", endpoint.value().port);
        client.DateHeader(kDate);
        client.Timeout(plan.timeout_ms);
        client.add_SendCompleted(
            [&transport, recorder](SmtpClient<T>* /*sender*/, const AsyncCompletedEventArgs& args) {
                std::unique_lock lock(recorder->mutex);
                recorder->seen.push_back(args);
                recorder->at.push_back(transport.now());
                if (recorder->seen.size() == 1) {
                    transport.signal(recorder->first);
                } else if (recorder->seen.size() == 2) {
                    transport.signal(recorder->second);
                }
            });
        observed.sent_at = transport.now();
        client.SendAsync(message, std::any(std::string("first")));
        ++observed.accepted_sends;
        observed.started = true;
        if (plan.second_send_at) {
            // M-3: only while the first is in flight. On sim nothing runs between the check and
            // the call; on real a race is detected afterwards from the timestamps.
            const bool done = wait_first(transport, *recorder, *plan.second_send_at);
            if (!done && client.send_in_progress()) {
                try {
                    MessagePlan second;
                    second.body = "second";
                    second.recipients = {RecipientList::to};
                    client.SendAsync(build_message(second), std::any(std::string("second")));
                    ++observed.accepted_sends;
                    observed.second = SecondSend::accepted;
                } catch (const model::SmtpException& e) {
                    observed.second = SecondSend::other_exception;
                    observed.second_exception = e.type_name();
                } catch (const model::InvalidOperationException&) {
                    observed.second = SecondSend::invalid_operation;
                } catch (const model::DotnetException& e) {
                    observed.second = SecondSend::other_exception;
                    observed.second_exception = e.type_name();
                }
            }
        }
        bool completed = false;
        if (plan.ending != Ending::wait) {
            const Duration elapsed = transport.now() - observed.sent_at;
            completed = wait_first(
                transport, *recorder, plan.end_at > elapsed ? plan.end_at - elapsed : Duration{});
        } else {
            completed = wait_first(transport, *recorder, liveness_budget<T>(plan, real));
            observed.hung = !completed;
        }
        if (!completed) {
            observed.ended_by_user = client.send_in_progress();
            if (plan.ending == Ending::dispose) {
                client.Dispose();  // M-11
            } else {
                client.SendAsyncCancel();  // M-9 (also ends a documented stall, M-8)
            }
            observed.late_after_cancel =
                !wait_first(transport, *recorder, real ? seconds(5) : seconds(1));
        }
        {
            std::unique_lock lock(recorder->mutex);
            if (!recorder->at.empty()) {
                observed.first_completion_at = recorder->at.front();
            }
        }
        // Time for a wrong second completion to show before the client goes away.
        pause(transport, real ? milliseconds(2) : seconds(5));
        observed.sessions = server.sessions();
        if (plan.follow_up && observed.first_completion_at) {
            run_follow_up(transport, plan, real, client, observed, *recorder);
            observed.sessions_after = server.sessions();
        }
    }
    server.stop();
}

// ---- checks -------------------------------------------------------------------------------------

template <typename E>
bool holds(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const E&) {
        return true;
    } catch (...) {
        return false;
    }
}

/// The message of the exception in `error` ("" for a non-.NET exception).
std::string error_text(const std::exception_ptr& error) {
    if (error == nullptr) {
        return "";
    }
    try {
        std::rethrow_exception(error);
    } catch (const model::DotnetException& e) {
        return e.what();
    } catch (...) {
        return "";
    }
}

/// W-1: no bare CR or LF in what the client sent. A connection cut between CR and LF leaves a
/// final CR, which is not the client's.
bool has_bare_line_end(const SmtpSessionRecord& session) {
    std::string_view received = session.received;
    if (!received.empty() && received.back() == '\r') {
        received.remove_suffix(1);
    }
    return model::contains_bare_line_feed(received) ||
           model::contains_bare_carriage_return(received);
}

/// W-2, M-19, M-22: the commands of the one session the client opens are, in order, a prefix
/// of EHLO [HELO after a 500/502] MAIL RCPT… DATA, optionally followed by Dispose's QUIT. Each
/// is sent only after the previous reply, so a failure cuts the list short.
bool commands_in_session_order(const SendPlan& plan, const SmtpSessionRecord& session) {
    std::vector<std::string> expected = {"EHLO " + std::string(model::kSmtpClientDomain)};
    // The script in effect: a later step for the same key replaces an earlier one.
    const SmtpScript script = build_script(plan.steps);
    const auto ehlo = script.steps.find("EHLO");
    if (ehlo != script.steps.end() && ehlo->second.action == SmtpAction::reply &&
        !ehlo->second.reply.empty() &&
        (ehlo->second.reply.front().rfind("500", 0) == 0 ||
         ehlo->second.reply.front().rfind("502", 0) == 0)) {
        expected.push_back("HELO " + std::string(model::kSmtpClientDomain));
    }
    expected.push_back("MAIL FROM:<" + kSender + ">");
    for (const MailAddress& recipient : model::envelope_recipients(*build_message(plan.message))) {
        expected.push_back("RCPT TO:<" + recipient.Address() + ">");
    }
    expected.push_back("DATA");
    std::vector<std::string> commands = session.commands;
    if (!commands.empty() && commands.back() == "QUIT") {
        commands.pop_back();
    }
    return commands.size() <= expected.size() &&
           std::equal(commands.begin(), commands.end(), expected.begin());
}

/// M-14, M-18: a reply code the client reports was sent by the server at a line start.
bool server_sent_code(const std::vector<SmtpSessionRecord>& sessions, int code) {
    const std::string text = std::to_string(code);
    for (const SmtpSessionRecord& session : sessions) {
        const std::string sent = "\r\n" + session.sent;
        if (sent.find("\r\n" + text + " ") != std::string::npos ||
            sent.find("\r\n" + text + "-") != std::string::npos) {
            return true;
        }
    }
    return false;
}

std::size_t count_mail_commands(const std::vector<SmtpSessionRecord>& sessions) {
    std::size_t count = 0;
    for (const auto& session : sessions) {
        for (const auto& command : session.commands) {
            count += command.rfind("MAIL FROM:", 0) == 0 ? 1U : 0U;
        }
    }
    return count;
}

/// The per-recipient failures the client must report (M-15, M-16), from the server's record.
std::vector<std::string> refused_recipients(const SmtpTransactionRecord& transaction) {
    std::vector<std::string> refused;
    for (const auto& recipient : transaction.recipients) {
        if (model::detail::is_recipient_failure(recipient.reply_code)) {
            refused.push_back("<" + recipient.address + ">");
        }
    }
    return refused;
}

/// M-16: Error null, one SmtpFailedRecipientException or the aggregate, in RCPT order.
void check_recipient_error(const std::exception_ptr& error,
                           const std::vector<std::string>& refused) {
    if (refused.empty()) {
        RC_ASSERT(error == nullptr);
        return;
    }
    if (refused.size() == 1) {
        RC_ASSERT(!holds<model::SmtpFailedRecipientsException>(error));
        try {
            std::rethrow_exception(error);
        } catch (const model::SmtpFailedRecipientException& e) {
            RC_ASSERT(e.FailedRecipient() == refused.front());
            return;
        } catch (...) {
        }
        RC_FAIL("expected SmtpFailedRecipientException");
    }
    try {
        std::rethrow_exception(error);
    } catch (const model::SmtpFailedRecipientsException& e) {
        std::vector<std::string> reported;
        for (const auto& inner : e.InnerExceptions()) {
            reported.push_back(inner.FailedRecipient());
        }
        RC_ASSERT(reported == refused);
        return;
    } catch (...) {
    }
    RC_FAIL("expected SmtpFailedRecipientsException");
}

void check_send(const SendPlan& plan, bool real, const Observed& observed) {
    RC_ASSERT(observed.started);
    // M-3: a second SendAsync in flight is a bare InvalidOperationException, never accepted.
    if (real && observed.second == SecondSend::accepted) {
        // The first finished between our in-progress check and the call: not an M-3 case. The
        // client clears "in progress" before it raises SendCompleted (M-7), and the handler may
        // run later still, so its timestamp cannot order the two; any completion of the first
        // makes the case ambiguous on real (sim checks M-3 without this race). A second send
        // accepted while the first never completed stays a failure.
        RC_PRE(!observed.first_completion_at.has_value());
    }
    RC_LOG() << "second send: " << static_cast<int>(observed.second) << " "
             << observed.second_exception << "\n";
    RC_ASSERT(observed.second != SecondSend::accepted);
    RC_ASSERT(observed.second != SecondSend::other_exception);
    RC_ASSERT(count_mail_commands(observed.sessions) <= 1U);  // nothing of a second send

    // M-5: exactly one SendCompleted per accepted SendAsync, and it came within the budgets.
    RC_ASSERT(observed.completions.size() == observed.accepted_sends);
    RC_ASSERT(!observed.late_after_cancel);
    if (observed.hung) {
        // Only documented SendAsync may wait forever, and only on a server that stalls (M-8).
        RC_ASSERT(!plan.dotnet_unix);
        RC_ASSERT(script_stalls(plan.steps));
    }
    const AsyncCompletedEventArgs& args = observed.completions.front();
    RC_TAG(args.Cancelled                                ? "cancelled"
           : args.delivery == DeliveryOutcome::delivered ? "delivered"
           : args.delivery == DeliveryOutcome::unknown   ? "unknown"
                                                         : "not delivered",
           observed.hung ? "hung until cancel" : "",
           observed.second == SecondSend::not_tried ? "" : "second send");
    RC_ASSERT(std::any_cast<std::string>(args.UserState) == std::string("first"));
    if (!real && plan.dotnet_unix) {
        // M-8: the one whole-transaction timer bounds the send in virtual time.
        RC_ASSERT(observed.first_completion_at.has_value());
        RC_ASSERT(*observed.first_completion_at - observed.sent_at <=
                  milliseconds(plan.timeout_ms) + milliseconds(1));
    }

    // M-8: only dotnet-unix SendAsync has a timer, and it fires at Timeout after SendAsync.
    if (args.Error != nullptr && error_text(args.Error) == "The operation has timed out.") {
        RC_ASSERT(plan.dotnet_unix);
        if (!real) {
            RC_ASSERT(*observed.first_completion_at - observed.sent_at >=
                      milliseconds(plan.timeout_ms));
        }
    }

    // M-9, M-5: Cancelled means Error null, only after a user cancel, never "delivered".
    if (args.Cancelled) {
        RC_ASSERT(args.Error == nullptr);
        RC_ASSERT(observed.ended_by_user);
        RC_ASSERT(args.delivery != DeliveryOutcome::delivered);
    }
    if (!args.Cancelled && args.Error == nullptr) {
        RC_ASSERT(args.delivery == DeliveryOutcome::delivered);
    }

    // W-1, M-29: the default encodings never put a bare CR or LF on the wire.
    for (const auto& session : observed.sessions) {
        RC_ASSERT(!has_bare_line_end(session));
    }
    // One connection (no retry), commands one at a time in session order.
    RC_ASSERT(observed.sessions.size() <= 1U);
    if (!observed.sessions.empty()) {
        RC_ASSERT(commands_in_session_order(plan, observed.sessions.front()));
    }
    // A reply code in the error came from the server.
    if (args.Error != nullptr) {
        try {
            std::rethrow_exception(args.Error);
        } catch (const model::SmtpFailedRecipientsException&) {
        } catch (const model::SmtpException& e) {
            const int code = static_cast<int>(e.StatusCode());
            if (code > 0) {
                RC_ASSERT(server_sent_code(observed.sessions, code));
            }
        } catch (...) {
            RC_FAIL("SendCompleted.Error is not an SmtpException (M-6)");
        }
    }

    // W-10, M-26: the classification agrees with the server's reply after the dot.
    std::vector<const SmtpTransactionRecord*> with_data;
    std::vector<const SmtpTransactionRecord*> with_250;
    for (const auto& session : observed.sessions) {
        for (const auto& transaction : session.transactions) {
            if (transaction.data_started) {
                with_data.push_back(&transaction);
            }
            if (transaction.final_reply_code == 250) {
                with_250.push_back(&transaction);
            }
        }
    }
    RC_ASSERT(with_250.size() <= 1U);
    if (!with_250.empty()) {
        RC_ASSERT(args.delivery != DeliveryOutcome::not_delivered);
    }
    if (args.delivery == DeliveryOutcome::unknown) {
        RC_ASSERT(!with_data.empty());  // the whole content went out after a 354
    }
    if (args.delivery == DeliveryOutcome::delivered) {
        RC_ASSERT(!args.Cancelled);
        RC_ASSERT(with_250.size() == 1U);
        const SmtpTransactionRecord& transaction = *with_250.front();
        // The exact message, once, for every recipient in RCPT order (M-13, M-27, M-28).
        RC_ASSERT(transaction.data_complete);
        RC_ASSERT(transaction.data_raw ==
                  model::dot_stuff(observed.written) + std::string(model::data_terminator()));
        RC_ASSERT(transaction.content == observed.written + "\r\n");
        RC_ASSERT(transaction.mail_from == kSender);
        std::vector<std::string> addresses;
        for (const auto& recipient : transaction.recipients) {
            addresses.push_back(recipient.address);
        }
        std::vector<std::string> expected;  // To, then CC, then Bcc (M-13)
        for (const MailAddress& recipient :
             model::envelope_recipients(*build_message(plan.message))) {
            expected.push_back(recipient.Address());
        }
        RC_ASSERT(addresses == expected);
        check_recipient_error(args.Error, refused_recipients(transaction));
    }
}

/// Transactions the server answered 250 after the dot.
std::size_t count_delivered(const std::vector<SmtpSessionRecord>& sessions) {
    std::size_t count = 0;
    for (const auto& session : sessions) {
        for (const auto& transaction : session.transactions) {
            count += transaction.final_reply_code == 250 ? 1U : 0U;
        }
    }
    return count;
}

/// M-12 with M-5, M-8, M-9, W-10 for the follow-up send.
void check_follow_up(const SendPlan& plan, bool real, const Observed& observed) {
    if (!observed.follow_sent) {
        return;
    }
    RC_ASSERT(observed.completions.size() == 2U);
    const AsyncCompletedEventArgs& args = observed.completions[1];
    RC_ASSERT(std::any_cast<std::string>(args.UserState) == std::string("follow-up"));
    RC_TAG(args.Cancelled                                ? "follow-up cancelled"
           : args.delivery == DeliveryOutcome::delivered ? "follow-up delivered"
                                                         : "follow-up failed");
    if (observed.follow_hung) {
        RC_ASSERT(!plan.dotnet_unix);
        RC_ASSERT(script_stalls(plan.steps));
    }
    if (!real && plan.dotnet_unix) {
        RC_ASSERT(observed.follow_completion_at.has_value());
        RC_ASSERT(*observed.follow_completion_at - observed.follow_sent_at <=
                  milliseconds(plan.timeout_ms) + milliseconds(1));
    }
    if (args.Cancelled) {
        RC_ASSERT(args.Error == nullptr);
        RC_ASSERT(observed.follow_cancelled);
        RC_ASSERT(args.delivery != DeliveryOutcome::delivered);
    }
    if (!args.Cancelled && args.Error == nullptr) {
        RC_ASSERT(args.delivery == DeliveryOutcome::delivered);
    }
    for (const auto& session : observed.sessions_after) {
        RC_ASSERT(!has_bare_line_end(session));
    }
    // Exactly one more 250 after the dot when delivered, none when not delivered (W-10).
    const std::size_t before = count_delivered(observed.sessions);
    const std::size_t after = count_delivered(observed.sessions_after);
    RC_ASSERT(after >= before);
    if (args.delivery == DeliveryOutcome::delivered) {
        RC_ASSERT(after == before + 1);
        bool found = false;
        for (const auto& session : observed.sessions_after) {
            for (const auto& transaction : session.transactions) {
                found = found || (transaction.final_reply_code == 250 &&
                                  transaction.content == observed.follow_written + "\r\n");
            }
        }
        RC_ASSERT(found);
    } else if (args.delivery == DeliveryOutcome::not_delivered) {
        RC_ASSERT(after == before);
    } else {
        RC_ASSERT(after <= before + 1);
    }
}

template <typename T>
void collect(Observed& observed, const std::shared_ptr<Recorder<T>>& recorder) {
    std::unique_lock lock(recorder->mutex);
    observed.completions = recorder->seen;
}

void check_send_completed(bool real) {
    conformance::install_throwing_assert_handler();
    const SendPlan plan = generate_send(real);
    const std::string description = describe(plan, real);
    RC_LOG() << description << "\n";
    test::report_failure_as_it_happens(description, [&] {
        Observed observed;
        if (real) {
            auto recorder = std::make_shared<Recorder<real::RealTransport>>();
            {
                real::RealTransport transport;
                transport.spawn("test", [&] { run_send(transport, plan, real, observed, recorder); });
                RC_ASSERT(transport.join_threads(seconds(20)));
                RC_ASSERT(transport.take_exception() == nullptr);
            }
            collect(observed, recorder);
        } else {
            auto recorder = std::make_shared<Recorder<sim::World>>();
            sim::World world(plan.world);
            world.spawn("test", [&] { run_send(world, plan, real, observed, recorder); });
            RC_ASSERT(world.run_until_idle(kSimEventsMax));
            collect(observed, recorder);
        }
        check_send(plan, real, observed);
        check_follow_up(plan, real, observed);
    });
}

RC_GTEST_PROP(SmtpPropSim, SendCompletedOnceAndDeliveryAgreesWithServer_M5_M9_M26, ()) {
    check_send_completed(false);
}

RC_GTEST_PROP(SmtpPropReal, SendCompletedOnceAndDeliveryAgreesWithServer_M5_M9_M26, ()) {
    check_send_completed(true);
}

/// Everything observable about one sim run, for the determinism property.
std::string fingerprint(const Observed& observed) {
    std::ostringstream text;
    text << "hung=" << observed.hung << " second=" << static_cast<int>(observed.second)
         << " first_at="
         << observed.first_completion_at.value_or(model::TimePoint{}).time_since_epoch().count();
    for (const AsyncCompletedEventArgs& args : observed.completions) {
        text << "\ncompletion cancelled=" << args.Cancelled
             << " delivery=" << static_cast<int>(args.delivery)
             << " error=" << error_text(args.Error);
    }
    for (const SmtpSessionRecord& session : observed.sessions) {
        text << "\nsession closed=" << session.closed << " received=" << session.received
             << " sent=" << session.sent;
        for (const SmtpTransactionRecord& transaction : session.transactions) {
            text << "\ntransaction final=" << transaction.final_reply_code
                 << " raw=" << transaction.data_raw;
        }
    }
    return text.str();
}

// Style 3.7: same seed, same plan ⇒ the same completions, transcripts and virtual times.
RC_GTEST_PROP(SmtpPropSim, SameSeedSameOutcome, ()) {
    conformance::install_throwing_assert_handler();
    const SendPlan plan = generate_send(false);
    RC_LOG() << describe(plan, false) << "\n";
    std::vector<std::string> prints;
    for (int run = 0; run < 2; ++run) {
        Observed observed;
        auto recorder = std::make_shared<Recorder<sim::World>>();
        sim::World world(plan.world);
        world.spawn("test", [&] { run_send(world, plan, false, observed, recorder); });
        RC_ASSERT(world.run_until_idle(kSimEventsMax));
        collect(observed, recorder);
        prints.push_back(fingerprint(observed));
    }
    RC_ASSERT(prints[0] == prints[1]);
}

// ---- any body survives the round trip (M-28, M-29, W-1) ---------------------------------------

/// Reference for the writer's 7bit/8bit rule (W-16): every CRLF, lone CR and lone LF → CRLF.
std::string crlf_normalised(std::string_view bytes) {
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (bytes[i] == '\r' || bytes[i] == '\n') {
            if (bytes[i] == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n') {
                ++i;
            }
            out += "\r\n";
        } else {
            out += bytes[i];
        }
    }
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/// RFC 2045 §6.7 decoding: "=" CRLF is a soft break, "=XX" a byte, everything else literal.
std::optional<std::string> decode_quoted_printable(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '=') {
            out += text[i];
            continue;
        }
        if (text.substr(i + 1, 2) == "\r\n") {
            i += 2;
            continue;
        }
        if (i + 2 >= text.size() || hex_value(text[i + 1]) < 0 || hex_value(text[i + 2]) < 0) {
            return std::nullopt;
        }
        out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
        i += 2;
    }
    return out;
}

/// RFC 4648 decoding, ignoring the CRLF line breaks of RFC 2045 §6.8.
std::optional<std::string> decode_base64(std::string_view text) {
    static constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    unsigned group = 0;
    int bits = 0;
    for (const char c : text) {
        if (c == '\r' || c == '\n' || c == '=') {
            continue;
        }
        const std::size_t value = kAlphabet.find(c);
        if (value == std::string_view::npos) {
            return std::nullopt;
        }
        group = (group << 6U) | static_cast<unsigned>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((group >> static_cast<unsigned>(bits)) & 0xFFU);
        }
    }
    return out;
}

/// The value of header `name` in the header block of `content` ("" if absent).
std::string header_value(std::string_view headers, std::string_view name) {
    const std::string prefix = "\r\n" + std::string(name) + ": ";
    const std::string block = "\r\n" + std::string(headers);
    const std::size_t at = block.find(prefix);
    if (at == std::string::npos) {
        return "";
    }
    const std::size_t from = at + prefix.size();
    return block.substr(from, block.find("\r\n", from) - from);
}

struct RoundTripPlan {
    MessagePlan message;
    sim::World::Options world;  // sim only
};

RoundTripPlan generate_round_trip(bool real) {
    RoundTripPlan plan;
    plan.message = generate_message(real ? 0.2 : 0.3, true);
    if (!real) {
        plan.world.seed = *rc::gen::inRange<std::uint64_t>(1, 1'000'000);
        plan.world.trace_mode = sim::Trace::Mode::off;
        plan.world.network.latency = Duration(*rc::gen::inRange<std::int64_t>(1'000, 2'000'000));
        // Short writes on both sides split CRLF pairs and dot lines across sends (M-28).
        const auto partials = *rc::gen::inRange<int>(0, 5);
        for (int i = 0; i < partials; ++i) {
            sim::Fault fault;
            fault.kind = sim::FaultKind::partial_send;
            fault.side = *rc::gen::element(sim::Side::client, sim::Side::server);
            fault.on_send = *rc::gen::inRange<std::uint64_t>(1, 12);
            fault.bytes = *rc::gen::inRange<std::uint64_t>(1, 40);
            plan.world.faults.push_back(fault);
        }
    }
    RC_TAG(static_cast<int>(plan.message.transfer));
    return plan;
}

std::string_view transfer_name(TransferEncoding transfer, bool utf8) {
    switch (transfer) {
        case TransferEncoding::quoted_printable:
            return "quoted-printable";
        case TransferEncoding::base64:
            return "base64";
        case TransferEncoding::seven_bit:
            return "7bit";
        case TransferEncoding::eight_bit:
            return "8bit";
        case TransferEncoding::unknown:
            break;
    }
    return utf8 ? "base64" : "quoted-printable";  // M-29
}

template <typename T>
void run_round_trip(T& transport,
                    const RoundTripPlan& plan,
                    Observed& observed,
                    const std::shared_ptr<Recorder<T>>& recorder) {
    SendPlan send;
    send.dotnet_unix = true;
    send.timeout_ms = 60'000;
    send.message = plan.message;
    run_send(transport, send, !std::is_same_v<T, sim::World>, observed, recorder);
}

void check_round_trip(const RoundTripPlan& plan, const Observed& observed) {
    RC_ASSERT(observed.started);
    RC_ASSERT(observed.completions.size() == 1U);  // M-5
    const AsyncCompletedEventArgs& args = observed.completions.front();
    RC_ASSERT(!args.Cancelled);
    RC_ASSERT(observed.sessions.size() == 1U);
    const SmtpSessionRecord& session = observed.sessions.front();
    RC_ASSERT(!has_bare_line_end(session));  // W-1, M-29
    RC_ASSERT(session.transactions.size() == 1U);
    const SmtpTransactionRecord& transaction = session.transactions.front();
    RC_ASSERT(transaction.data_complete);
    RC_ASSERT(transaction.content == observed.written + "\r\n");  // M-27, M-28

    const std::string& body_bytes = plan.message.body;
    const bool utf8 = plan.message.body_encoding.has_value() || !model::is_ascii(body_bytes, true);
    const std::string_view transfer = transfer_name(plan.message.transfer, utf8);
    const bool passes_lines = transfer == "7bit" || transfer == "8bit";
    const std::string expected = passes_lines ? crlf_normalised(body_bytes) : body_bytes;
    // W-8: a 7bit/8bit line over 1000 bytes (CRLF included) is refused after the dot.
    bool long_line = false;
    if (passes_lines) {
        std::size_t from = 0;
        const std::string lines = expected + "\r\n";
        while (from < lines.size()) {
            const std::size_t end = lines.find("\r\n", from);
            long_line = long_line || end - from + 2 > model::smtp_text_line_bytes_max;
            from = end + 2;
        }
    }
    RC_TAG(long_line ? "refused: long line" : "delivered",
           body_bytes.size() < 100    ? "body<100"
           : body_bytes.size() < 1000 ? "body<1000"
                                      : "body>=1000");
    if (long_line) {
        RC_ASSERT(transaction.final_reply_code == 500);
        RC_ASSERT(args.delivery == DeliveryOutcome::not_delivered);
        RC_ASSERT(holds<model::SmtpException>(args.Error));
        return;
    }
    RC_ASSERT(args.Error == nullptr);
    RC_ASSERT(args.delivery == DeliveryOutcome::delivered);
    RC_ASSERT(transaction.final_reply_code == 250);

    // Decode what the server recorded and compare with the body, byte for byte.
    const std::size_t blank = transaction.content.find("\r\n\r\n");
    RC_ASSERT(blank != std::string::npos);
    const std::string headers = transaction.content.substr(0, blank + 2);
    RC_ASSERT(header_value(headers, "Content-Transfer-Encoding") == std::string(transfer));
    std::string encoded = transaction.content.substr(blank + 4);
    // The writer's closing CRLF (M-27) and the empty line before the terminator.
    RC_ASSERT(encoded.size() >= 4U);
    RC_ASSERT(encoded.substr(encoded.size() - 4) == "\r\n\r\n");
    encoded.resize(encoded.size() - 4);
    std::optional<std::string> decoded;
    if (transfer == "quoted-printable") {
        decoded = decode_quoted_printable(encoded);
    } else if (transfer == "base64") {
        decoded = decode_base64(encoded);
    } else {
        decoded = encoded;
    }
    if (!passes_lines) {
        // RFC 2045 §6.7, §6.8: encoded lines stay within 76 characters.
        std::size_t from = 0;
        while (from <= encoded.size()) {
            std::size_t end = encoded.find("\r\n", from);
            end = end == std::string::npos ? encoded.size() : end;
            RC_ASSERT(end - from <= model::kBodyLineLengthMax);
            from = end + 2;
        }
    }
    RC_ASSERT(decoded.has_value());
    RC_ASSERT(*decoded == expected);
}

void check_any_body(bool real) {
    conformance::install_throwing_assert_handler();
    const RoundTripPlan plan = generate_round_trip(real);
    std::ostringstream description;
    description << "transfer=" << static_cast<int>(plan.message.transfer)
                << " body_encoding=" << (plan.message.body_encoding ? "utf8" : "null")
                << " body_bytes=" << plan.message.body.size();
    RC_LOG() << description.str() << "\n";
    test::report_failure_as_it_happens(description.str(), [&] {
        Observed observed;
        if (real) {
            auto recorder = std::make_shared<Recorder<real::RealTransport>>();
            {
                real::RealTransport transport;
                transport.spawn("test",
                                [&] { run_round_trip(transport, plan, observed, recorder); });
                RC_ASSERT(transport.join_threads(seconds(20)));
                RC_ASSERT(transport.take_exception() == nullptr);
            }
            collect(observed, recorder);
        } else {
            auto recorder = std::make_shared<Recorder<sim::World>>();
            sim::World world(plan.world);
            world.spawn("test", [&] { run_round_trip(world, plan, observed, recorder); });
            RC_ASSERT(world.run_until_idle(kSimEventsMax));
            collect(observed, recorder);
        }
        check_round_trip(plan, observed);
    });
}

RC_GTEST_PROP(SmtpPropSim, AnyBodySurvivesTheRoundTrip_M28_M29_W1, ()) { check_any_body(false); }

RC_GTEST_PROP(SmtpPropReal, AnyBodySurvivesTheRoundTrip_M28_M29_W1, ()) { check_any_body(true); }

// ---- dot_stuff against the server's DataReader (W-6, W-7) -------------------------------------

/// Content for the codec property: body pieces, or raw bytes from the characters that matter.
rc::Gen<std::string> codec_content() {
    return rc::gen::oneOf(body(0.5),
                          rc::gen::container<std::string>(rc::gen::element(
                              '.', '\r', '\n', 'a', '\0', static_cast<char>(0xE2))));
}

/// Reference for what a receiver reads back from dot_stuff(content) + CRLF "." CRLF, for any
/// content: lines end at CRLF or at a bare LF; the sender doubled a leading '.' only on lines
/// that follow CRLF (M-28); the receiver removes one leading '.' from every line except a lone
/// "." (W-6), and keeps a bare LF as it came unless it normalises (W-16). So with a bare LF
/// before a '.', one dot is lost: that is the M-28 exposure, which `reject` refuses with 550.
std::string read_back_reference(std::string_view content, model::BareLineFeedPolicy policy) {
    const std::string lines = std::string(content) + "\r\n";  // the terminator's first CRLF
    std::string out;
    bool after_crlf = true;
    std::size_t from = 0;
    while (from < lines.size()) {
        const std::size_t lf = lines.find('\n', from);
        const bool crlf = lf > from && lines[lf - 1] == '\r';
        std::string line = lines.substr(from, (crlf ? lf - 1 : lf) - from);
        if (after_crlf && !line.empty() && line.front() == '.') {
            line.insert(0, 1, '.');  // dot_stuff
        }
        if (line != "." && !line.empty() && line.front() == '.') {
            line.erase(0, 1);  // the receiver
        }
        out += line;
        out += crlf || policy == model::BareLineFeedPolicy::normalize ? "\r\n" : "\n";
        after_crlf = crlf;
        from = lf + 1;
    }
    return out;
}

RC_GTEST_PROP(SmtpPropSim, DotStuffingAndDataReaderAgree_W6_W7_M28, ()) {
    const std::string content = *codec_content();
    const auto policy =
        *rc::gen::element(model::BareLineFeedPolicy::reject, model::BareLineFeedPolicy::normalize);
    const std::string stuffed = model::dot_stuff(content) + std::string(model::data_terminator());
    // What follows the data on the wire belongs to the command stream.
    const std::string wire = stuffed + "QUIT\r\n";
    const auto cuts = *rc::gen::container<std::vector<std::size_t>>(
        rc::gen::inRange<std::size_t>(0, wire.size() + 1));
    std::vector<std::size_t> bounds = cuts;
    bounds.push_back(0);
    bounds.push_back(wire.size());
    std::sort(bounds.begin(), bounds.end());

    model::DataReader reader(model::DataOptions{.bare_line_feed = policy});
    std::size_t consumed_total = 0;
    for (std::size_t i = 0; i + 1 < bounds.size(); ++i) {
        const std::size_t from = bounds[i];
        const std::size_t to = bounds[i + 1];
        // W-7: the end is never found before the terminator's last byte.
        RC_ASSERT(reader.finished() == (consumed_total == stuffed.size()));
        const std::size_t consumed = reader.feed(std::string_view(wire).substr(from, to - from));
        consumed_total += consumed;
        RC_ASSERT(consumed <= to - from);
        if (consumed < to - from) {
            RC_ASSERT(reader.finished());
        }
    }
    // The end is found exactly at the terminator, however the bytes were split.
    RC_ASSERT(reader.finished());
    RC_ASSERT(consumed_total == stuffed.size());
    RC_ASSERT(reader.raw() == stuffed);
    RC_ASSERT(reader.content() == read_back_reference(content, policy));
    if (!model::contains_bare_line_feed(content)) {
        // W-6: un-stuffing gives the content back, plus the empty line of M-27's CRLF.
        RC_ASSERT(reader.content() == content + "\r\n");
        RC_ASSERT(!reader.saw_bare_line_feed());
    } else if (policy == model::BareLineFeedPolicy::reject) {
        // M-28: a '.' after a bare LF is not stuffed, so such content cannot round-trip; the
        // reject policy refuses the whole message instead (W-16).
        RC_ASSERT(reader.reply_code() == 550);
    }
    RC_TAG(model::contains_bare_line_feed(content) ? "bare LF" : "CRLF only");
}

}  // namespace
}  // namespace faultline
