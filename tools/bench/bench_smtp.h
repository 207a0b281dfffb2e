// The message both SMTP benchmarks send, so the sim and real figures measure the same work.
#pragma once

#include <memory>

#include "faultline/model/mail_message.h"

namespace faultline::bench {

/// Two recipients, a short ASCII body (quoted-printable on the wire).
[[nodiscard]] inline std::shared_ptr<const model::MailMessage> small_message() {
    auto message = std::make_shared<model::MailMessage>();
    message->From(model::MailAddress("jane@x.test"));
    message->To().emplace_back("ben@x.test");
    message->To().emplace_back("ann@x.test");
    message->Subject("status report");
    message->Body("Hello Ben, hello Ann,\r\nthe build is green again.\r\nJane");
    return message;
}

}  // namespace faultline::bench
