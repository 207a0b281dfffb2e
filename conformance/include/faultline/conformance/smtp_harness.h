// SmtpHarness<T>: the SMTP part of a scenario run. It starts the scriptable SmtpServer on the
// transport, creates the scenario's SmtpClients pointed at it, runs the SMTP steps (mail_new,
// send_async, send, send_async_cancel, wait_send_completed, client_set, client_dispose,
// wait_server, and for SendMailAsync send_mail_async, token_source_new, token_cancel, wait_task)
// and, at the end, checks the SMTP oracle:
//   - SendCompleted fired exactly once per SendAsync that returned (M-5), Cancelled never with an
//     Error (M-5, M-9), and never for a SendMailAsync (M-10); every SendMailAsync task completed;
//   - the client never put a bare CR or LF on the wire (W-1, M-29);
//   - the delivery classification agrees with the server: every "delivered" send had its 250
//     after the dot, and every 250 after the dot belongs to a send reported delivered, unknown
//     or cancelled (W-10, M-9, M-26);
//   - every message the server accepted is byte for byte one the clients sent (the MIME writer's
//     output for it, dot-stuffing undone), so partial sends and faults never corrupt a message.
// The Harness owns the threads and calls in here; the same code runs on sim and real.
#pragma once

#include <algorithm>
#include <any>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "faultline/conformance/condition.h"
#include "faultline/conformance/harness_options.h"
#include "faultline/conformance/oracle.h"
#include "faultline/conformance/scenario.h"
#include "faultline/model/async_result.h"
#include "faultline/model/cancellation.h"
#include "faultline/model/mime.h"
#include "faultline/model/smtp_client.h"
#include "faultline/model/smtp_server.h"

namespace faultline::conformance {

/// "delivered", "not_delivered" or "unknown".
inline std::string delivery_name(model::DeliveryOutcome outcome) {
    switch (outcome) {
        case model::DeliveryOutcome::delivered: return "delivered";
        case model::DeliveryOutcome::not_delivered: return "not_delivered";
        case model::DeliveryOutcome::unknown: return "unknown";
    }
    return "unknown";
}

/// "ran_to_completion", "canceled", "faulted" or "running".
inline std::string task_status_name(model::TaskStatus status) {
    switch (status) {
        case model::TaskStatus::RanToCompletion: return "ran_to_completion";
        case model::TaskStatus::Canceled: return "canceled";
        case model::TaskStatus::Faulted: return "faulted";
        case model::TaskStatus::Running: return "running";
    }
    return "running";
}

/// Fills `observation` with what an exception says: its .NET type (into `type`), the inner
/// exception's type, StatusCode, Message and failed recipients.
inline void describe_exception(const std::exception_ptr& error, Observation& observation,
                               std::optional<std::string>& type) {
    if (!error) {
        type = "none";
        return;
    }
    try {
        std::rethrow_exception(error);
    } catch (const model::SmtpFailedRecipientsException& failure) {
        type = std::string(failure.type_name());
        observation.status_code = static_cast<int>(failure.StatusCode());
        observation.message = failure.what();
        std::vector<std::string> recipients;
        for (const auto& inner : failure.InnerExceptions()) {
            recipients.push_back(inner.FailedRecipient());
        }
        observation.failed_recipients = recipients;
        observation.inner = "SmtpFailedRecipientException";
    } catch (const model::SmtpFailedRecipientException& failure) {
        type = std::string(failure.type_name());
        observation.status_code = static_cast<int>(failure.StatusCode());
        observation.message = failure.what();
        observation.failed_recipients = std::vector<std::string>{failure.FailedRecipient()};
        std::optional<std::string> inner;
        Observation ignored;
        describe_exception(failure.InnerException(), ignored, inner);
        observation.inner = inner;
    } catch (const model::SmtpException& failure) {
        type = std::string(failure.type_name());
        observation.status_code = static_cast<int>(failure.StatusCode());
        observation.message = failure.what();
        std::optional<std::string> inner;
        Observation ignored;
        describe_exception(failure.InnerException(), ignored, inner);
        observation.inner = inner;
    } catch (const model::ArgumentException& failure) {
        type = std::string(failure.type_name());
        observation.param = failure.param_name();
        observation.message = failure.what();
    } catch (const model::DotnetException& failure) {
        type = std::string(failure.type_name());
        observation.message = failure.what();
    } catch (const model::LivenessFailure&) {
        type = "LivenessFailure";
    } catch (const std::exception& failure) {
        type = "std::exception";
        observation.message = failure.what();
    }
}

template <model::Transport T>
class SmtpHarness {
public:
    using FailFn = std::function<void(const std::string& pointer, const std::string& message)>;
    using RecordFn = std::function<void(std::string_view name, const std::string& detail)>;

    SmtpHarness(T& transport, const Scenario& scenario, const model::Profile& profile,
                const HarnessOptions& options, FailFn fail, RecordFn record)
        : transport_(transport),
          spec_(*scenario.smtp),
          recorded_(scenario.recorded && scenario.recorded->profile == profile.name
                        ? &*scenario.recorded
                        : nullptr),
          profile_(profile),
          options_(options),
          fail_(std::move(fail)),
          record_(std::move(record)),
          server_(transport, spec_.server) {
        shared_->record = options.record;
    }

    SmtpHarness(const SmtpHarness&) = delete;
    SmtpHarness& operator=(const SmtpHarness&) = delete;
    ~SmtpHarness() = default;

    /// Starts the server on loopback and creates every client, pointed at it.
    bool start() {
        const auto bound = server_.start(model::Endpoint::loopback(0));
        if (!bound) {
            fail_("/smtp/server", "the SMTP server could not listen: " + bound.error().message());
            return false;
        }
        endpoint_ = bound.value();
        for (const auto& [name, client_spec] : spec_.clients) {
            auto record = std::make_shared<ClientRecord>();
            record->name = name;
            record->client = std::make_unique<model::SmtpClient<T>>(transport_, profile_);
            model::Endpoint target = endpoint_;
            if (client_spec.to == "refused") {
                target = options_.refused_endpoint;
            } else if (client_spec.to == "unreachable") {
                target = options_.unreachable_endpoint;
            } else if (client_spec.to == "silent") {
                target = options_.silent_endpoint;
            }
            const std::string address = target.to_string().substr(0, target.to_string().rfind(':'));
            try {
                if (!client_spec.host_null) {
                    record->client->Host(client_spec.host.value_or(address));
                }
                record->client->Port(client_spec.port.value_or(target.port));
                if (client_spec.timeout_ms) {
                    record->client->Timeout(*client_spec.timeout_ms);
                }
            } catch (const std::exception& error) {
                // M-4 setter checks are steps (client_set); here a bad value is a file error.
                fail_("/smtp/clients/" + name, std::string("setting up the client: ") + error.what());
                return false;
            }
            if (client_spec.date) {
                record->client->DateHeader(*client_spec.date);
            }
            if (client_spec.credentials) {
                record->client->Credentials(model::NetworkCredential{
                    client_spec.credentials->first, client_spec.credentials->second});
            }
            record->client->EnableSsl(client_spec.enable_ssl);
            if (client_spec.international) {
                record->client->DeliveryFormat(model::SmtpDeliveryFormat::International);
            }
            // A send can outlive its client (and this harness): the handler holds only the
            // shared wait state and a weak reference to the record.
            std::weak_ptr<ClientRecord> weak = record;
            record->client->add_SendCompleted(
                [shared = shared_, weak](model::SmtpClient<T>* /*sender*/,
                                         const model::AsyncCompletedEventArgs& args) {
                    completed(*shared, weak, args);
                });
            clients_[name] = std::move(record);
        }
        return true;
    }

    /// Runs `step` if it is an SMTP step; false otherwise.
    bool execute(const Step& step, Observation& observation) {
        switch (step.op) {
            case StepOp::mail_new: mail_new(step); return true;
            case StepOp::send_async: send_async(step, observation); return true;
            case StepOp::send: send(step, observation); return true;
            case StepOp::send_async_cancel:
                record_("send_async_cancel", step.client);
                client(step).client->SendAsyncCancel();
                return true;
            case StepOp::wait_send_completed: wait_send_completed(step, observation); return true;
            case StepOp::client_dispose:
                record_("client_dispose", step.client);
                client(step).client->Dispose();
                return true;
            case StepOp::client_set: client_set(step); return true;
            case StepOp::wait_server: wait_server(step); return true;
            case StepOp::send_mail_async: send_mail_async(step, observation); return true;
            case StepOp::token_source_new: token_source_new(step); return true;
            case StepOp::token_cancel: {
                record_("token_cancel", step.source);
                std::shared_ptr<model::CancellationTokenSource<T>> source;
                {
                    std::unique_lock lock(shared_->mutex);
                    source = sources_.at(step.source);
                }
                source->Cancel();  // without the lock: the callbacks take the client's
                return true;
            }
            case StepOp::wait_task: wait_task(step, observation); return true;
            default: return false;
        }
    }

    /// After the threads: every accepted SendAsync must complete (bounded), then the clients are
    /// disposed (QUIT on idle connections, M-11), the sessions allowed to end, and the oracle and
    /// the scenario's global SMTP expectations checked.
    void settle(const GlobalExpectation* global) {
        std::vector<std::shared_ptr<model::SmtpTask<T>>> tasks;
        {
            std::unique_lock lock(shared_->mutex);
            for (const auto& [id, task] : tasks_) {
                tasks.push_back(task);
            }
        }
        for (const auto& task : tasks) {
            static_cast<void>(task->Wait(options_.settle_budget));  // checked by the oracle
        }
        {
            std::unique_lock lock(shared_->mutex);
            static_cast<void>(shared_->changed.wait_until(
                lock,
                [&] {
                    return std::all_of(clients_.begin(), clients_.end(), [](const auto& item) {
                        return item.second->completions.size() >= item.second->accepted;
                    });
                },
                options_.settle_budget));
        }
        for (auto& [name, record] : clients_) {
            record->client->Dispose();
        }
        // Let the server see each client's QUIT or close before the records are read.
        poll_until([&] { return server_.progress().all_closed; }, options_.wait_budget);
        const auto sessions = server_.sessions();
        check_oracle(sessions);
        if (global != nullptr) {
            check_global(*global, sessions);
        }
        server_.stop();
    }

private:
    struct Completion {
        bool cancelled = false;
        std::exception_ptr error;
        std::string user_state;
        bool has_user_state = false;
        model::DeliveryOutcome delivery = model::DeliveryOutcome::not_delivered;
    };

    struct ClientRecord {
        std::string name;
        std::unique_ptr<model::SmtpClient<T>> client;
        std::size_t accepted = 0;  // SendAsync calls that returned normally; guarded by mutex_
        std::vector<Completion> completions;  // guarded by mutex_
        std::size_t waited = 0;               // completions a wait_send_completed consumed
    };

    /// What SendCompleted handlers touch; shared so that a late handler finds it alive.
    struct Shared {
        explicit Shared(T& transport) : changed(transport) {}
        typename T::Mutex mutex;
        Condition<T> changed;
        /// The run's trace hook (HarnessOptions::record): a copy, so a SendCompleted that
        /// outlives the harness still finds it; it refers only to the transport.
        std::function<void(std::string_view name, const std::string& detail)> record;
    };

    ClientRecord& client(const Step& step) { return *clients_.at(step.client); }

    static void completed(Shared& shared, const std::weak_ptr<ClientRecord>& weak,
                          const model::AsyncCompletedEventArgs& args) {
        Completion completion;
        completion.cancelled = args.Cancelled;
        completion.error = args.Error;
        completion.delivery = args.delivery;
        if (const auto* token = std::any_cast<std::string>(&args.UserState)) {
            completion.user_state = *token;
            completion.has_user_state = true;
        }
        std::unique_lock lock(shared.mutex);
        const auto record = weak.lock();
        if (!record) {
            return;
        }
        if (shared.record) {
            // The end of the SendAsync span in a timeline, with how it ended.
            Observation ignored;
            std::optional<std::string> error_type;
            describe_exception(completion.error, ignored, error_type);
            shared.record("send_completed",
                          record->name + (completion.cancelled ? " cancelled" : "") + " error=" +
                              error_type.value_or("none"));
        }
        record->completions.push_back(std::move(completion));
        shared.changed.notify();
    }

    /// Blocks until `ready()` or the budget runs out, re-checking every millisecond of
    /// transport time (virtual on sim, so deterministic). Returns ready().
    bool poll_until(const std::function<bool()>& ready, model::Duration budget) {
        typename T::Event never;
        typename T::Mutex mutex;
        const model::Duration tick = std::chrono::milliseconds(1);
        for (model::Duration waited{}; waited < budget; waited += tick) {
            if (ready()) {
                return true;
            }
            std::unique_lock lock(mutex);
            static_cast<void>(transport_.wait(never, lock, tick));
        }
        return ready();
    }

    void mail_new(const Step& step) {
        const MailSpec& mail = *step.mail;
        auto encoding = [](const std::string& name) {
            return name == "ascii" ? model::TextEncoding::ascii : model::TextEncoding::utf8;
        };
        auto message = std::make_shared<model::MailMessage>();
        if (mail.from) {
            message->From(mail.from_display_name.empty()
                              ? model::MailAddress(*mail.from)
                              : model::MailAddress(*mail.from, mail.from_display_name,
                                                   model::TextEncoding::utf8));
        }
        if (mail.sender) {
            message->Sender(model::MailAddress(*mail.sender));
        }
        for (const std::string& address : mail.to) {
            message->To().emplace_back(address);
        }
        for (const std::string& address : mail.cc) {
            message->CC().emplace_back(address);
        }
        for (const std::string& address : mail.bcc) {
            message->Bcc().emplace_back(address);
        }
        for (const auto& [name, value] : mail.headers) {
            message->Headers().Add(name, value);
        }
        message->Subject(mail.subject);
        std::string body;
        body.reserve(mail.body.size() * mail.body_repeat);
        for (std::uint64_t i = 0; i < mail.body_repeat; ++i) {
            body += mail.body;
        }
        message->Body(std::move(body));
        if (mail.subject_encoding) {
            message->SubjectEncoding(encoding(*mail.subject_encoding));
        }
        if (mail.body_encoding) {
            message->BodyEncoding(encoding(*mail.body_encoding));
        }
        static const std::map<std::string, model::TransferEncoding> kTransfer = {
            {"unknown", model::TransferEncoding::unknown},
            {"seven_bit", model::TransferEncoding::seven_bit},
            {"eight_bit", model::TransferEncoding::eight_bit},
            {"quoted_printable", model::TransferEncoding::quoted_printable},
            {"base64", model::TransferEncoding::base64}};
        message->BodyTransferEncoding(kTransfer.at(mail.body_transfer_encoding));
        message->IsBodyHtml(mail.is_body_html);
        if (!mail.delivery_notification.empty()) {
            static const std::map<std::string, model::DeliveryNotificationOptions> kNotify = {
                {"on_success", model::DeliveryNotificationOptions::OnSuccess},
                {"on_failure", model::DeliveryNotificationOptions::OnFailure},
                {"delay", model::DeliveryNotificationOptions::Delay},
                {"never", model::DeliveryNotificationOptions::Never}};
            auto options = model::DeliveryNotificationOptions::None;
            for (const std::string& name : mail.delivery_notification) {
                options = options | kNotify.at(name);
            }
            message->DeliveryNotificationOptions(options);  // Never with others throws (M-23)
        }
        std::unique_lock lock(shared_->mutex);
        messages_[step.message] = std::move(message);
    }

    std::shared_ptr<const model::MailMessage> message_of(const Step& step) {
        if (step.message == "null") {
            return nullptr;
        }
        std::unique_lock lock(shared_->mutex);
        const auto found = messages_.find(step.message);
        if (found == messages_.end()) {
            // The loader checked a mail_new exists; it failed or has not run yet.
            throw model::InvalidOperationException("faultline: message \"" + step.message +
                                                   "\" was not created (its mail_new failed?)");
        }
        return found->second;
    }

    /// What the client will write for `message`: the expected content of its transaction.
    std::string expected_content(ClientRecord& record, const model::MailMessage& message) {
        if (!message.From()) {
            return {};
        }
        // The writer's output ends in CRLF and the data-stop sequence adds CRLF "." CRLF, so
        // the server's content holds one empty line more (M-27).
        // SMTPUTF8 with DeliveryFormat International sends raw UTF-8 headers (M-23, M-30).
        const auto& capabilities = spec_.server.capabilities;
        const bool unicode =
            record.client->DeliveryFormat() == model::SmtpDeliveryFormat::International &&
            std::find(capabilities.begin(), capabilities.end(), "SMTPUTF8") != capabilities.end();
        return model::write_message(message,
                                    model::MimeOptions{.date = record.client->DateHeader(),
                                                       .allow_unicode = unicode}) +
               "\r\n";
    }

    void send_async(const Step& step, Observation& observation) {
        ClientRecord& record = client(step);
        const auto message = message_of(step);
        std::any token;
        if (step.token) {
            token = *step.token;
        }
        record_("send_async", step.client + " " + step.message);
        std::string content = message ? expected_content(record, *message) : std::string();
        try {
            record.client->SendAsync(message, std::move(token));
        } catch (...) {
            describe_exception(std::current_exception(), observation, observation.threw);
            if (observation.threw == "none") {
                observation.threw.reset();
            }
            std::unique_lock lock(shared_->mutex);
            observation.completions = static_cast<int>(record.completions.size());
            return;
        }
        std::unique_lock lock(shared_->mutex);
        ++record.accepted;
        sent_contents_.push_back(std::move(content));
        follow_recorded_completions(step, record, lock);
        observation.completions = static_cast<int>(record.completions.size());
    }

    /// Replaying a recording: the real run counted this many SendCompleted events when the step
    /// looked (its pool thread can finish a whole loopback transaction before SendAsync's caller
    /// looks); wait, within the budget, until as many have come here, so the race replays the
    /// way it went there.
    void follow_recorded_completions(const Step& step, ClientRecord& record,
                                     std::unique_lock<typename T::Mutex>& lock) {
        if (recorded_ == nullptr) {
            return;
        }
        const auto found = recorded_->steps.find(step.pointer);
        if (found == recorded_->steps.end() || !found->second.completions) {
            return;
        }
        const auto wanted = static_cast<std::size_t>(std::max(0, *found->second.completions));
        static_cast<void>(shared_->changed.wait_until(
            lock, [&] { return record.completions.size() >= wanted; }, options_.wait_budget));
    }

    void send(const Step& step, Observation& observation) {
        ClientRecord& record = client(step);
        const auto message = message_of(step);
        record_("send", step.client + " " + step.message);
        if (!message) {
            throw model::ArgumentNullException("message");  // Send(null), M-1
        }
        {
            // Counted before the call: the outcome arrives as an exception as often as a value.
            std::unique_lock lock(shared_->mutex);
            sent_contents_.push_back(expected_content(record, *message));
        }
        try {
            const model::DeliveryOutcome outcome = record.client->Send(*message);
            observation.delivery = delivery_name(outcome);
            std::unique_lock lock(shared_->mutex);
            sync_outcomes_.push_back(outcome);
        } catch (...) {
            describe_exception(std::current_exception(), observation, observation.threw);
            std::unique_lock lock(shared_->mutex);
            ++sync_failures_;  // delivered or not is unknown from the outside (a validation
                               // failure counted here only loosens the oracle's upper bound)
        }
    }

    void wait_send_completed(const Step& step, Observation& observation) {
        ClientRecord& record = client(step);
        std::unique_lock lock(shared_->mutex);
        const std::size_t index = record.waited;
        const bool arrived = shared_->changed.wait_until(
            lock, [&] { return record.completions.size() > index; }, options_.wait_budget);
        if (!arrived) {
            observation.completions = static_cast<int>(record.completions.size());
            throw model::LivenessFailure("wait_send_completed ran out of budget");
        }
        ++record.waited;
        const Completion completion = record.completions[index];
        follow_recorded_completions(step, record, lock);
        observation.completions = static_cast<int>(record.completions.size());
        lock.unlock();
        observation.cancelled = completion.cancelled;
        observation.delivery = delivery_name(completion.delivery);
        if (completion.has_user_state) {
            observation.user_state = completion.user_state;
        }
        describe_exception(completion.error, observation, observation.send_error);
    }

    /// SendMailAsync (M-10): a synchronous failure is the step's exception; otherwise the task is
    /// kept under the step's id. task_status reports the status right after the call, which is
    /// only deterministic for a token cancelled beforehand (canceled at once).
    void send_mail_async(const Step& step, Observation& observation) {
        ClientRecord& record = client(step);
        const auto message = message_of(step);
        model::CancellationToken<T> token;
        if (!step.cancel.empty()) {
            std::unique_lock lock(shared_->mutex);
            token = sources_.at(step.cancel)->Token();
        }
        record_("send_mail_async", step.client + " " + step.message + " " + step.id);
        std::string content = message ? expected_content(record, *message) : std::string();
        std::shared_ptr<model::SmtpTask<T>> task;
        try {
            task = record.client->SendMailAsync(message, token);
        } catch (...) {
            describe_exception(std::current_exception(), observation, observation.threw);
            if (observation.threw == "none") {
                observation.threw.reset();
            }
            return;
        }
        if (task->IsCompleted()) {
            describe_exception(task->Exception(), observation, observation.send_error);
        }
        observation.task_status = task_status_name(task->Status());
        std::unique_lock lock(shared_->mutex);
        tasks_[step.id] = std::move(task);
        sent_contents_.push_back(std::move(content));
    }

    void token_source_new(const Step& step) {
        record_("token_source_new", step.source + (step.cancelled ? " cancelled" : ""));
        auto source = std::make_shared<model::CancellationTokenSource<T>>();
        if (step.cancelled) {
            source->Cancel();
        }
        std::unique_lock lock(shared_->mutex);
        sources_[step.source] = std::move(source);
    }

    /// Waits (bounded) for the task of a send_mail_async and observes its outcome: task_status,
    /// delivery, and its Exception as send_error, inner, status_code, ... (M-10).
    void wait_task(const Step& step, Observation& observation) {
        std::shared_ptr<model::SmtpTask<T>> task;
        {
            std::unique_lock lock(shared_->mutex);
            const auto found = tasks_.find(step.target);
            if (found == tasks_.end()) {
                throw model::InvalidOperationException("faultline: task \"" + step.target +
                                                       "\" was not started (SendMailAsync threw?)");
            }
            task = found->second;
        }
        if (!task->Wait(options_.wait_budget)) {
            observation.task_status = "running";
            throw model::LivenessFailure("wait_task ran out of budget");
        }
        observation.task_status = task_status_name(task->Status());
        observation.delivery = delivery_name(task->delivery());
        describe_exception(task->Exception(), observation, observation.send_error);
    }

    void client_set(const Step& step) {
        ClientRecord& record = client(step);
        record_("client_set", step.client + " " + step.property);
        if (step.property == "host") {
            if (!step.value.is_string()) {
                throw model::InvalidOperationException("faultline: host takes a string value");
            }
            record.client->Host(step.value.get<std::string>());
        } else if (!step.value.is_number_integer()) {
            throw model::InvalidOperationException("faultline: " + step.property +
                                                   " takes an integer value");
        } else if (step.property == "port") {
            record.client->Port(step.value.get<int>());
        } else {
            record.client->Timeout(step.value.get<int>());
        }
    }

    void wait_server(const Step& step) {
        const bool reached = poll_until(
            [&] {
                const auto progress = server_.progress();
                return (!step.commands || progress.commands >= *step.commands) &&
                       (!step.transactions ||
                        progress.finished_transactions >= *step.transactions);
            },
            options_.wait_budget);
        if (!reached) {
            throw model::LivenessFailure("wait_server ran out of budget");
        }
    }

    void check_oracle(const std::vector<model::SmtpSessionRecord>& sessions) {
        std::unique_lock lock(shared_->mutex);
        std::size_t delivered = 0;
        std::size_t maybe = 0;  // unknown, cancelled, or a failed synchronous Send
        std::size_t reported_refused = 0;  // failed recipients reported by delivered sends
        for (const auto& [name, record] : clients_) {
            if (record->completions.size() != record->accepted) {
                fail_("oracle", "client " + name + ": SendCompleted fired " +
                                    std::to_string(record->completions.size()) + " times for " +
                                    std::to_string(record->accepted) +
                                    " accepted SendAsync calls (M-5)");
            }
            for (const Completion& completion : record->completions) {
                if (completion.cancelled && completion.error) {
                    fail_("oracle", "client " + name +
                                        ": a SendCompleted had Cancelled with an Error (M-5, M-9)");
                }
                if (completion.delivery == model::DeliveryOutcome::delivered) {
                    ++delivered;
                    reported_refused += recipient_failures(completion.error);
                    // Delivered with an error only when some recipients were refused (M-16).
                    if (completion.cancelled ||
                        (completion.error && !is_recipient_failure(completion.error))) {
                        fail_("oracle", "client " + name +
                                            ": a send classified delivered reported a failure");
                    }
                } else if (completion.delivery == model::DeliveryOutcome::unknown ||
                           completion.cancelled) {
                    ++maybe;
                }
            }
        }
        for (const auto& [id, task] : tasks_) {
            const model::TaskStatus status = task->Status();
            if (status == model::TaskStatus::Running) {
                fail_("oracle", "the SendMailAsync task \"" + id + "\" never completed (M-10)");
                continue;
            }
            const model::DeliveryOutcome outcome = task->delivery();
            const bool canceled = status == model::TaskStatus::Canceled;
            if (canceled != (type_of(task->Exception()) == "TaskCanceledException")) {
                fail_("oracle", "the SendMailAsync task \"" + id +
                                    "\" is Canceled without TaskCanceledException or the reverse");
            }
            if (outcome == model::DeliveryOutcome::delivered) {
                ++delivered;
                reported_refused += recipient_failures(task->Exception());
                if (canceled || (task->Exception() && !is_recipient_failure(task->Exception()))) {
                    fail_("oracle", "the SendMailAsync task \"" + id +
                                        "\" was classified delivered but reported a failure");
                }
            } else if (outcome == model::DeliveryOutcome::unknown || canceled) {
                ++maybe;
            }
        }
        for (const model::DeliveryOutcome outcome : sync_outcomes_) {
            delivered += outcome == model::DeliveryOutcome::delivered ? 1U : 0U;
            maybe += outcome == model::DeliveryOutcome::unknown ? 1U : 0U;
        }
        maybe += sync_failures_;
        std::size_t accepted_by_server = 0;
        std::size_t refused_in_accepted = 0;  // RCPTs refused in transactions that got 250
        std::vector<std::string> expected = sent_contents_;
        for (std::size_t s = 0; s < sessions.size(); ++s) {
            const auto& session = sessions[s];
            // A connection cut between CR and LF leaves a final CR that is not the client's
            // (found by the fuzzer: a server dropping mid-DATA made this check fire).
            std::string_view received = session.received;
            if (!received.empty() && received.back() == '\r') {
                received.remove_suffix(1);
            }
            if (model::contains_bare_line_feed(received) ||
                model::contains_bare_carriage_return(received)) {
                fail_("oracle", "session " + std::to_string(s + 1) +
                                    ": the client sent a bare CR or LF (W-1, M-29)");
            }
            for (const auto& transaction : session.transactions) {
                if (transaction.final_reply_code != 250) {
                    continue;
                }
                ++accepted_by_server;
                for (const auto& recipient : transaction.recipients) {
                    refused_in_accepted +=
                        model::detail::is_recipient_failure(recipient.reply_code) ? 1U : 0U;
                }
                const auto match = std::find(expected.begin(), expected.end(), transaction.content);
                if (match == expected.end()) {
                    fail_("oracle", "session " + std::to_string(s + 1) +
                                        ": the server accepted a message that no send wrote (" +
                                        std::to_string(transaction.content.size()) +
                                        " bytes): corrupted or duplicated on the way" +
                                        closest_difference(sent_contents_, transaction.content));
                } else {
                    expected.erase(match);
                }
            }
        }
        if (delivered > accepted_by_server) {
            fail_("oracle", std::to_string(delivered) + " sends reported delivered but the server "
                            "answered 250 after the dot only " +
                            std::to_string(accepted_by_server) + " times (W-10, M-26)");
        }
        // M-15, M-16: a recipient the server refused in a message it then accepted is reported
        // (SmtpFailedRecipient(s)Exception). Checked when every send's outcome is known.
        if (maybe == 0 && refused_in_accepted > reported_refused) {
            fail_("oracle", "the server refused " + std::to_string(refused_in_accepted) +
                                " recipient(s) of messages it accepted, but the sends reported " +
                                std::to_string(reported_refused) +
                                " failed recipient(s) (M-15, M-16)");
        }
        if (accepted_by_server > delivered + maybe) {
            fail_("oracle", "the server answered 250 after the dot " +
                                std::to_string(accepted_by_server) + " times but only " +
                                std::to_string(delivered) + " sends reported delivered and " +
                                std::to_string(maybe) +
                                " unknown or cancelled: a delivery was reported as failed (M-26)");
        }
    }

    static std::string type_of(const std::exception_ptr& error) {
        Observation ignored;
        std::optional<std::string> type;
        describe_exception(error, ignored, type);
        return type.value_or("none");
    }

    /// How many failed recipients `error` reports: 1 for SmtpFailedRecipientException, the
    /// inner count for SmtpFailedRecipientsException, 0 otherwise.
    static std::size_t recipient_failures(const std::exception_ptr& error) {
        if (error == nullptr) {
            return 0;
        }
        try {
            std::rethrow_exception(error);
        } catch (const model::SmtpFailedRecipientsException& aggregate) {
            return aggregate.InnerExceptions().size();
        } catch (const model::SmtpFailedRecipientException&) {
            return 1;
        } catch (...) {
            return 0;
        }
    }

    static bool is_recipient_failure(const std::exception_ptr& error) {
        try {
            std::rethrow_exception(error);
        } catch (const model::SmtpFailedRecipientException&) {
            return true;
        } catch (...) {
            return false;
        }
    }

    void check_global(const GlobalExpectation& global,
                      const std::vector<model::SmtpSessionRecord>& sessions) {
        auto differ = [this](const std::string& key, const std::string& expected,
                             const std::string& observed) {
            fail_("/expect/" + key, "expected " + expected + " but was " + observed);
        };
        std::uint64_t delivered = 0;
        std::vector<std::string> contents;
        std::vector<std::string> recipients;
        for (const auto& session : sessions) {
            for (const auto& transaction : session.transactions) {
                delivered += transaction.final_reply_code == 250 ? 1U : 0U;
                if (transaction.data_complete) {
                    contents.push_back(transaction.content);
                }
                for (const auto& recipient : transaction.recipients) {
                    recipients.push_back(recipient.address);
                }
            }
        }
        auto joined = [](const std::vector<std::string>& items) {
            std::string text = "[";
            for (const std::string& item : items) {
                text += (text.size() > 1 ? ", " : "") + printable(item);
            }
            return text + "]";
        };
        if (global.smtp_sessions && sessions.size() != *global.smtp_sessions) {
            differ("smtp_sessions", std::to_string(*global.smtp_sessions),
                   std::to_string(sessions.size()));
        }
        if (global.smtp_delivered && delivered != *global.smtp_delivered) {
            differ("smtp_delivered", std::to_string(*global.smtp_delivered),
                   std::to_string(delivered));
        }
        std::size_t completions = 0;
        {
            std::unique_lock lock(shared_->mutex);
            for (const auto& [name, record] : clients_) {
                completions += record->completions.size();
            }
        }
        if (global.send_completed && completions != *global.send_completed) {
            differ("send_completed", std::to_string(*global.send_completed),
                   std::to_string(completions));
        }
        if (global.smtp_commands) {
            std::vector<std::vector<std::string>> observed;
            for (const auto& session : sessions) {
                observed.push_back(session.commands);
            }
            if (observed != *global.smtp_commands) {
                std::string expected_text;
                std::string observed_text;
                for (const auto& list : *global.smtp_commands) {
                    expected_text += joined(list);
                }
                for (const auto& list : observed) {
                    observed_text += joined(list);
                }
                differ("smtp_commands", expected_text, observed_text);
            }
        }
        if (global.smtp_messages && contents != *global.smtp_messages) {
            differ("smtp_messages", joined(*global.smtp_messages), joined(contents));
        }
        if (global.smtp_recipients && recipients != *global.smtp_recipients) {
            differ("smtp_recipients", joined(*global.smtp_recipients), joined(recipients));
        }
    }

    /// "; first difference from the closest sent message at byte N: expected "…", got "…"".
    static std::string closest_difference(const std::vector<std::string>& candidates,
                                          const std::string& received) {
        const std::string* best = nullptr;
        std::size_t best_prefix = 0;
        for (const std::string& candidate : candidates) {
            const auto mismatch =
                std::mismatch(candidate.begin(), candidate.end(), received.begin(), received.end());
            const auto prefix = static_cast<std::size_t>(mismatch.first - candidate.begin());
            if (best == nullptr || prefix > best_prefix) {
                best = &candidate;
                best_prefix = prefix;
            }
        }
        if (best == nullptr) {
            return "";
        }
        const std::size_t from = best_prefix > 16 ? best_prefix - 16 : 0;
        return "; first difference from the closest sent message at byte " +
               std::to_string(best_prefix) + ": expected " + printable(best->substr(from, 40)) +
               ", got " + printable(received.substr(std::min(from, received.size()), 40));
    }

    /// Raw octets as readable text for reports: CR, LF and non-printables escaped.
    static std::string printable(const std::string& bytes) {
        static const char* const kHex = "0123456789abcdef";
        std::string text = "\"";
        for (const char character : bytes) {
            const auto byte = static_cast<unsigned char>(character);
            if (character == '\r') {
                text += "\\r";
            } else if (character == '\n') {
                text += "\\n";
            } else if (byte >= 0x20 && byte < 0x7f && character != '\\' && character != '"') {
                text += character;
            } else {
                text += "\\x";
                text += kHex[byte >> 4U];
                text += kHex[byte & 0xfU];
            }
        }
        return text + "\"";
    }

    T& transport_;
    const SmtpSpec& spec_;
    const Recording* recorded_;  // when replaying a recording under its profile
    const model::Profile profile_;
    const HarnessOptions& options_;
    FailFn fail_;
    RecordFn record_;
    model::SmtpServer<T> server_;
    model::Endpoint endpoint_;
    std::shared_ptr<Shared> shared_ = std::make_shared<Shared>(transport_);
    std::map<std::string, std::shared_ptr<ClientRecord>> clients_;
    std::map<std::string, std::shared_ptr<const model::MailMessage>> messages_;
    std::map<std::string, std::shared_ptr<model::CancellationTokenSource<T>>> sources_;
    std::map<std::string, std::shared_ptr<model::SmtpTask<T>>> tasks_;  // by send_mail_async id
    std::vector<std::string> sent_contents_;  // expected content of every send that started
    std::vector<model::DeliveryOutcome> sync_outcomes_;
    std::size_t sync_failures_ = 0;
};

}  // namespace faultline::conformance
