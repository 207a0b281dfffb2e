// `faultline smtp-server`: the scriptable SMTP server on real loopback sockets, bounded in sessions
// and time, recording what every session sent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "faultline/model/types.h"

namespace faultline::cli {

struct SmtpServerOptions {
    model::Endpoint listen = model::Endpoint::loopback(2525);
    std::optional<std::string> script_file;
    std::optional<std::string> record_dir;
    std::size_t max_sessions = 64;
    std::int64_t max_seconds = 60;
};

/// Runs the server until `max_sessions` sessions have ended or `max_seconds` passed. Returns the
/// process exit status: 0, or 2 for a bad script or an endpoint that cannot be bound.
int smtp_server_command(const SmtpServerOptions& options);

}  // namespace faultline::cli
