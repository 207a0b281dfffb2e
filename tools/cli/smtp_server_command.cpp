// `faultline smtp-server`: the scriptable SMTP server (model::SmtpServer) on real loopback sockets,
// so other mail clients can be tested against scripted faults. Bounded by --max-sessions and
// --max-seconds; records every session to --record DIR.
#include "smtp_server_command.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "faultline/conformance/smtp_script.h"
#include "faultline/model/smtp_server.h"
#include "faultline/real/transport.h"

namespace faultline::cli {
namespace {

using nlohmann::json;
using model::SmtpScript;

/// Raw octets as readable JSON text: printable ASCII as is, anything else as \xNN.
std::string printable(const std::string& bytes) {
    std::string text;
    for (const char character : bytes) {
        const auto byte = static_cast<unsigned char>(character);
        if (byte >= 0x20 && byte < 0x7f && byte != '\\') {
            text += character;
        } else {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
            text += escaped;
        }
    }
    return text;
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
}

/// session-N.json (commands, envelopes, reply codes), session-N.received (raw bytes) and
/// session-N-message-M.eml (each message's content, dot-stuffing undone).
void record_sessions(const std::string& directory,
                     const std::vector<model::SmtpSessionRecord>& sessions) {
    std::filesystem::create_directories(directory);
    for (std::size_t s = 0; s < sessions.size(); ++s) {
        const auto& session = sessions[s];
        const std::string base = directory + "/session-" + std::to_string(s + 1);
        json summary;
        summary["commands"] = json::array();
        for (const std::string& command : session.commands) {
            summary["commands"].push_back(printable(command));
        }
        summary["transactions"] = json::array();
        for (std::size_t t = 0; t < session.transactions.size(); ++t) {
            const auto& transaction = session.transactions[t];
            json entry;
            entry["mail_from"] = printable(transaction.mail_from);
            entry["recipients"] = json::array();
            for (const auto& recipient : transaction.recipients) {
                entry["recipients"].push_back(
                    {{"address", printable(recipient.address)}, {"reply_code", recipient.reply_code}});
            }
            entry["data_complete"] = transaction.data_complete;
            entry["final_reply_code"] = transaction.final_reply_code;
            entry["content_bytes"] = transaction.content.size();
            summary["transactions"].push_back(entry);
            write_file(base + "-message-" + std::to_string(t + 1) + ".eml", transaction.content);
        }
        write_file(base + ".json", summary.dump(2) + "\n");
        write_file(base + ".received", session.received);
    }
}

}  // namespace

int smtp_server_command(const SmtpServerOptions& options) {
    SmtpScript script;
    if (options.script_file) {
        std::ifstream file(*options.script_file, std::ios::binary);
        if (!file) {
            std::cerr << *options.script_file << ": cannot open\n";
            return 2;
        }
        std::ostringstream text;
        text << file.rdbuf();
        auto loaded = conformance::load_smtp_script_text(text.str());
        if (const auto* error = std::get_if<std::string>(&loaded)) {
            std::cerr << *options.script_file << ": " << *error << "\n";
            return 2;
        }
        script = std::get<SmtpScript>(std::move(loaded));
    }
    script.sessions_max = options.max_sessions;
    real::RealTransport transport;
    model::SmtpServer<real::RealTransport> server(transport, script);
    const auto bound = server.start(options.listen);
    if (!bound) {
        std::cerr << "smtp-server: cannot listen on " << options.listen.to_string() << ": "
                  << bound.error().message() << "\n";
        return 2;
    }
    std::printf("listening on %s\n", bound.value().to_string().c_str());
    std::fflush(stdout);
    // Run until max-sessions sessions have come and gone, or max-seconds passed.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.max_seconds);
    std::mutex mutex;
    while (std::chrono::steady_clock::now() < deadline) {
        const auto sessions = server.sessions();
        const bool all_closed = std::all_of(sessions.begin(), sessions.end(),
                                            [](const auto& s) { return s.closed; });
        if (sessions.size() >= options.max_sessions && all_closed) {
            break;
        }
        real::RealTransport::Event tick;
        std::unique_lock lock(mutex);
        static_cast<void>(transport.wait(tick, lock, std::chrono::milliseconds(20)));
    }
    server.stop();
    const auto sessions = server.sessions();
    for (std::size_t s = 0; s < sessions.size(); ++s) {
        std::size_t messages = 0;
        for (const auto& transaction : sessions[s].transactions) {
            messages += transaction.data_complete ? 1U : 0U;
        }
        std::printf("session %zu: %zu commands, %zu messages, %zu bytes received\n", s + 1,
                    sessions[s].commands.size(), messages, sessions[s].received.size());
    }
    if (options.record_dir) {
        record_sessions(*options.record_dir, sessions);
        std::printf("recorded %zu sessions in %s\n", sessions.size(), options.record_dir->c_str());
    }
    return 0;
}

}  // namespace faultline::cli
