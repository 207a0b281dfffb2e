// Scenario: one JSON scenario file (schema v1, scenarios/schema/scenario.schema.json) as a
// validated value. The loader rejects unknown keys, wrong types, dangling references and absurd
// sizes with "file:line:col: /json/pointer: message"; it never throws for bad input.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "faultline/model/smtp_server.h"
#include "faultline/model/socket_error.h"
#include "faultline/sim/world.h"

namespace faultline::conformance {

/// What one step is expected to observe. Every field is optional; an empty one is not checked.
struct Expectation {
    std::optional<std::string> throws;          // .NET type name, or "none"
    std::optional<std::string> param;           // ArgumentException.ParamName
    std::optional<model::SocketError> socket_error;  // SocketException.SocketErrorCode
    std::optional<int> error_code;              // SocketException.ErrorCode
    std::optional<std::int64_t> returns;        // End*/send_all result
    std::optional<bool> returns_null;           // Begin* out overload returned null
    std::optional<model::SocketError> error;    // the out SocketError argument
    std::optional<bool> completed_synchronously;
    std::optional<bool> callback_before_return;
    std::optional<bool> is_completed;           // IsCompleted right after Begin* returned
    std::optional<bool> connected;              // Socket.Connected after the step
    // SocketAsyncEventArgs steps (accept):
    std::optional<bool> pending;                // AcceptAsync returned true
    std::optional<model::SocketError> args_error;  // e.SocketError
    std::optional<int> bytes_transferred;       // e.BytesTransferred
    std::optional<std::string> accept_socket;   // e.AcceptSocket: connected/unconnected/null/supplied
    std::optional<int> completions;             // Completed events e has raised so far
    std::optional<int> clients_connected;       // client_connect: how many connected
    // SmtpClient steps:
    std::optional<std::string> inner;           // the exception's InnerException type, or "none"
    std::optional<int> status_code;             // SmtpException.StatusCode
    std::optional<bool> cancelled;              // SendCompleted: e.Cancelled
    std::optional<std::string> send_error;      // SendCompleted: e.Error type, or "none"
    std::optional<std::string> delivery;        // delivered, not_delivered, unknown
    std::optional<std::string> user_state;      // SendCompleted: e.UserState
    std::optional<std::vector<std::string>> failed_recipients;  // FailedRecipient(s), in order
    std::optional<std::string> message_contains;  // the exception's Message holds this text
    std::optional<std::string> task_status;     // wait_task: ran_to_completion, canceled, faulted
};

/// Alternatives for one profile: the step passes if any alternative matches.
using ExpectationSet = std::vector<Expectation>;
/// Keyed by profile name; "*" applies to every profile without its own entry.
using ProfileExpectations = std::map<std::string, ExpectationSet>;

struct Segment {
    int array_length = 0;
    int offset = 0;
    int count = 0;
    bool null_array = false;
};

enum class StepOp : std::uint8_t {
    begin_send,
    end_send,
    begin_receive,
    end_receive,
    send_all,
    wait_completed,
    wait_peer,
    sleep,
    shutdown,
    dispose,
    check,
    connect,
    bind,
    listen,
    args_new,
    args_set_buffer,
    args_set_buffer_list,
    args_set_accept_socket,
    args_dispose,
    accept_async,
    wait_args,
    client_connect,
    begin_accept,
    end_accept,
    mail_new,
    send_async,
    send,
    send_async_cancel,
    wait_send_completed,
    client_dispose,
    client_set,
    wait_server,
    send_mail_async,
    token_source_new,
    token_cancel,
    wait_task,
};

/// One MailMessage a mail_new step builds; every field as the .NET property of that name.
struct MailSpec {
    std::optional<std::string> from;
    std::string from_display_name;
    std::optional<std::string> sender;
    std::vector<std::string> to;
    std::vector<std::string> cc;
    std::vector<std::string> bcc;
    std::string subject;
    std::string body;
    std::uint64_t body_repeat = 1;                  // the body is `body` this many times
    std::optional<std::string> subject_encoding;    // "ascii" or "utf-8"
    std::optional<std::string> body_encoding;
    std::string body_transfer_encoding = "unknown";  // seven_bit, eight_bit, quoted_printable, base64
    bool is_body_html = false;
    std::vector<std::pair<std::string, std::string>> headers;
    std::vector<std::string> delivery_notification;  // on_success, on_failure, delay, never
};

/// One SmtpClient of the scenario, created before the threads start.
struct SmtpClientSpec {
    std::string to = "server";           // server, refused, unreachable, silent
    std::optional<std::string> host;     // overrides the host text ("" and null per M-1, M-4)
    bool host_null = false;              // leave Host null
    std::optional<int> port;             // overrides the port
    std::optional<int> timeout_ms;
    std::optional<std::string> date;     // the Date header value
    std::optional<std::pair<std::string, std::string>> credentials;  // user, password (M-21)
    bool enable_ssl = false;             // M-20: fails fast until TLS exists
    bool international = false;          // DeliveryFormat International (M-23)
};

/// The "smtp" section: the scriptable server every client talks to, and the clients.
struct SmtpSpec {
    model::SmtpScript server;
    std::map<std::string, SmtpClientSpec> clients;
};

struct Step {
    StepOp op = StepOp::check;
    std::string pointer;       // JSON pointer of the step, for reports
    std::string id;            // begin_*: names the operation
    std::string socket;  // default: the scenario's first socket
    std::string target;        // end_*/wait_completed: an id, "null" or "foreign"
    std::string overload = "plain";  // "plain", "out", "list"
    int size = 0;
    int offset = 0;
    std::optional<int> buffer_length;
    bool null_buffer = false;
    bool null_list = false;
    std::vector<Segment> segments;
    std::string callback = "record";  // "none", "record", "end", "end_out"
    std::uint64_t bytes = 0;          // wait_peer; send_all total
    int chunk = 0;                    // send_all: bytes per BeginSend (0: all that is left)
    std::uint64_t ns = 0;             // sleep
    std::string how = "both";         // shutdown
    std::string to = "peer";          // connect
    std::string args;                 // args_*, accept_async, wait_args: the SocketAsyncEventArgs
    std::string address = "127.0.0.1";  // bind
    int backlog = 128;                // listen
    int count = 1;                    // client_connect: how many clients
    bool wait = true;                 // client_connect: wait until each connect finished
    std::string client;               // SmtpClient steps: the client (default: the first)
    std::string message;              // mail_new creates it; send/send_async use it ("null")
    std::shared_ptr<MailSpec> mail;   // mail_new
    std::optional<std::string> token;  // send_async: the userToken (default: none)
    std::string source;               // token_source_new, token_cancel: the source's name
    bool cancelled = false;           // token_source_new: create it already cancelled
    std::string cancel;               // send_mail_async: the token's source (default: None)
    std::string property;             // client_set: host, port, timeout
    nlohmann::json value;             // client_set: the value (null allowed)
    std::optional<std::uint64_t> transactions;  // wait_server: finished transactions
    std::optional<std::uint64_t> commands;      // wait_server: commands received
    ProfileExpectations expect;
    ProfileExpectations callback_expect;
};

struct ThreadSpec {
    std::string name;
    std::vector<Step> steps;
    std::optional<std::string> exit_after_step;   // thread_exit fault: stop after this step id
    std::optional<std::uint64_t> exit_at_ns;      // thread_exit fault: exit at this time (sim)
};

struct PeerSpec {
    bool read = true;
    std::uint64_t read_after_ns = 0;
    std::uint64_t read_chunk_bytes = 65536;
    std::optional<std::uint64_t> close_after_bytes;
    std::optional<std::uint64_t> reset_after_bytes;
    std::uint64_t send_bytes = 0;  // written to each accepted connection after accept
};

struct GlobalExpectation {
    std::optional<std::uint64_t> peer_received_bytes;
    std::optional<std::string> peer_saw;  // "eof", "reset", "open"
    std::optional<std::uint64_t> accepted;     // connections accepted (all shapes)
    std::optional<std::uint64_t> completions;  // Completed events over all args
    // SMTP (what the scriptable server recorded):
    std::optional<std::uint64_t> smtp_sessions;
    std::optional<std::uint64_t> smtp_delivered;   // transactions answered 250 after the dot
    std::optional<std::vector<std::vector<std::string>>> smtp_commands;  // per session, exact
    std::optional<std::vector<std::string>> smtp_messages;  // contents of finished data, in order
    std::optional<std::vector<std::string>> smtp_recipients;  // every RCPT address, in order
    std::optional<std::uint64_t> send_completed;   // SendCompleted events over all clients
};

/// What a real run observed, written by `run --transport real --record`: the same scenario on sim
/// must observe the same (step results by JSON pointer, completions in order); the harness reports
/// any difference as a divergence from the recording. The kernel's partial sends are in `faults`.
struct Recording {
    std::string transport = "real";
    std::string profile;
    std::string faultline;  // the version that recorded it
    std::string source;     // the scenario file it was recorded from
    std::map<std::string, Expectation> steps;  // "/threads/0/steps/2", ".../callback_expect"
    std::optional<std::vector<std::string>> completion_order;  // callbacks and Completed events
    /// "+<step pointer>" as a step started, "-<step pointer>" as it ended, in real order: a
    /// replay holds each step until the steps that ended before it there have ended.
    std::optional<std::vector<std::string>> schedule;
};

struct Scenario {
    std::string path;
    std::string name;
    std::string description;
    std::vector<std::string> clauses;
    std::vector<std::string> profiles;  // names, in file order
    std::optional<std::string> sim_not_applicable;
    std::optional<std::string> real_not_applicable;
    std::uint64_t seed = 1;
    sim::NetworkConfig network;
    bool network_given = false;
    std::vector<std::string> sockets;   // client sockets, connected to the peer before threads
    std::string connect = "peer";       // "peer" or "none"
    PeerSpec peer;
    std::vector<sim::Fault> faults;
    bool swarm = false;
    std::vector<ThreadSpec> threads;
    std::map<std::string, GlobalExpectation> expect;  // by profile, "*" for all
    std::optional<SmtpSpec> smtp;
    std::optional<Recording> recorded;
};

/// A loaded scenario, or the first error found ("file:line:col: /pointer: message").
using LoadResult = std::variant<Scenario, std::string>;

/// Parses and validates `text` as the scenario file `path`.
[[nodiscard]] LoadResult load_scenario_text(const std::string& path, const std::string& text);
/// Validates an already parsed scenario as the file `path` (what generators use: no text round
/// trip). Errors name the pointer but no line ("path: /pointer: message").
[[nodiscard]] LoadResult load_scenario_json(const std::string& path, const nlohmann::json& root);
/// Reads and loads one file.
[[nodiscard]] LoadResult load_scenario_file(const std::string& path);
/// Every *.json under `root` (a file or a folder), sorted, skipping `schema/` folders.
[[nodiscard]] std::vector<std::string> list_scenario_files(const std::string& root);

/// The keys the loader accepts per object kind, for the schema-consistency test.
[[nodiscard]] const std::map<std::string, std::vector<std::string>>& accepted_keys();

}  // namespace faultline::conformance
