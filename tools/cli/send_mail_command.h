// `faultline send-mail`: one real send with SmtpClient<RealTransport>, its SendCompleted outcome
// printed as one JSON object.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace faultline::cli {

struct SendMailOptions {
    std::string host = "127.0.0.1";
    int port = 25;
    std::string from;
    std::vector<std::string> to;
    std::vector<std::string> cc;
    std::vector<std::string> bcc;
    std::string subject;
    std::optional<std::string> body_file;
    std::string profile = "documented";
    int timeout_ms = 100000;
};

/// Exit 0 when the message was delivered, 1 when the send completed with an error or was
/// cancelled, 2 for bad arguments (including addresses the MailAddress parser refuses).
int send_mail_command(const SendMailOptions& options);

}  // namespace faultline::cli
