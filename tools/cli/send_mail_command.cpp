// `faultline send-mail`: builds a MailMessage from the options, sends it once with
// SmtpClient<RealTransport>::SendAsync and prints the SendCompleted outcome as JSON: cancelled,
// error type and message, status code, failed recipients, and the delivery classification.
#include "send_mail_command.h"

#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "faultline/model/profile.h"
#include "faultline/model/smtp_client.h"
#include "faultline/real/transport.h"

namespace faultline::cli {
namespace {

using nlohmann::json;

std::string delivery_name(model::DeliveryOutcome outcome) {
    switch (outcome) {
        case model::DeliveryOutcome::delivered: return "delivered";
        case model::DeliveryOutcome::not_delivered: return "not_delivered";
        case model::DeliveryOutcome::unknown: return "unknown";
    }
    return "unknown";
}

/// The SendCompleted arguments as one JSON object.
json describe(const model::AsyncCompletedEventArgs& args) {
    json out;
    out["cancelled"] = args.Cancelled;
    out["delivery"] = delivery_name(args.delivery);
    out["error"] = nullptr;
    if (!args.Error) {
        return out;
    }
    try {
        std::rethrow_exception(args.Error);
    } catch (const model::SmtpFailedRecipientsException& error) {
        out["error"] = {{"type", std::string(error.type_name())}, {"message", error.what()},
                        {"status_code", static_cast<int>(error.StatusCode())}};
        out["failed_recipients"] = json::array();
        for (const auto& inner : error.InnerExceptions()) {
            out["failed_recipients"].push_back(
                {{"recipient", inner.FailedRecipient()},
                 {"status_code", static_cast<int>(inner.StatusCode())}});
        }
    } catch (const model::SmtpFailedRecipientException& error) {
        out["error"] = {{"type", std::string(error.type_name())}, {"message", error.what()},
                        {"status_code", static_cast<int>(error.StatusCode())}};
        out["failed_recipients"] = json::array(
            {{{"recipient", error.FailedRecipient()},
              {"status_code", static_cast<int>(error.StatusCode())}}});
    } catch (const model::SmtpException& error) {
        out["error"] = {{"type", std::string(error.type_name())}, {"message", error.what()},
                        {"status_code", static_cast<int>(error.StatusCode())}};
    } catch (const model::DotnetException& error) {
        out["error"] = {{"type", std::string(error.type_name())}, {"message", error.what()}};
    } catch (const std::exception& error) {
        out["error"] = {{"type", "exception"}, {"message", error.what()}};
    }
    return out;
}

}  // namespace

int send_mail_command(const SendMailOptions& options) {
    const auto profile = model::profile_by_name(options.profile);
    if (!profile) {
        std::cerr << "send-mail: unknown profile \"" << options.profile << "\"\n";
        return 2;
    }
    auto message = std::make_shared<model::MailMessage>();
    try {
        message->From(model::MailAddress(options.from));
        for (const auto& address : options.to) {
            message->To().emplace_back(address);
        }
        for (const auto& address : options.cc) {
            message->CC().emplace_back(address);
        }
        for (const auto& address : options.bcc) {
            message->Bcc().emplace_back(address);
        }
        message->Subject(options.subject);
    } catch (const model::DotnetException& error) {
        std::cerr << "send-mail: " << error.type_name() << ": " << error.what() << "\n";
        return 2;
    }
    if (options.body_file) {
        std::ifstream file(*options.body_file, std::ios::binary);
        if (!file) {
            std::cerr << "send-mail: cannot read " << *options.body_file << "\n";
            return 2;
        }
        std::ostringstream body;
        body << file.rdbuf();
        message->Body(body.str());
    }

    real::RealTransport transport;
    std::mutex mutex;
    real::RealTransport::Event completed;
    json outcome;
    bool delivered = false;
    {
        model::SmtpClient<real::RealTransport> client(transport, *profile);
        try {
            client.Host(options.host);
            client.Port(options.port);
            client.Timeout(options.timeout_ms);
        } catch (const model::DotnetException& error) {
            std::cerr << "send-mail: " << error.type_name() << ": " << error.what() << "\n";
            return 2;
        }
        client.add_SendCompleted([&](auto* /*sender*/, const model::AsyncCompletedEventArgs& args) {
            std::unique_lock lock(mutex);
            outcome = describe(args);
            delivered = args.delivery == model::DeliveryOutcome::delivered && !args.Error &&
                        !args.Cancelled;
            transport.signal(completed);
        });
        try {
            client.SendAsync(message, std::string("send-mail"));
        } catch (const model::DotnetException& error) {
            // A synchronous failure: no SendCompleted (M-2).
            json out;
            out["synchronous_error"] = {{"type", std::string(error.type_name())},
                                        {"message", error.what()}};
            std::cout << out.dump() << "\n";
            return 1;
        }
        std::unique_lock lock(mutex);
        // Every wait has a bound: the client's Timeout plus a margin, for the profile without one.
        const auto budget = std::chrono::milliseconds(options.timeout_ms) + std::chrono::seconds(5);
        if (!transport.wait(completed, lock, budget)) {
            lock.unlock();
            client.SendAsyncCancel();
            lock.lock();
            static_cast<void>(transport.wait(completed, lock, std::chrono::seconds(5)));
        }
        lock.unlock();
        client.Dispose();
    }
    std::cout << outcome.dump() << "\n";
    return delivered ? 0 : 1;
}

}  // namespace faultline::cli
