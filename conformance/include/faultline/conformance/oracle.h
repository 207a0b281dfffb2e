// The oracle: pure reference checks over what a run observed. It never includes model/'s
// implementation headers, so a bug there cannot hide itself here. Invariants (S-4, S-11, S-20):
// every Begin* that returned a result ran its callback exactly once; the callback ran before
// Begin* returned exactly when CompletedSynchronously; the bytes the peer received are the
// reported bytes of each send in order, never interleaved.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "faultline/conformance/scenario.h"

namespace faultline::conformance {

/// What one step (or one End* inside a callback) observed.
struct Observation {
    std::optional<std::string> threw;
    std::optional<std::string> param;
    std::optional<model::SocketError> socket_error;
    std::optional<int> error_code;
    std::optional<std::int64_t> returned;
    std::optional<bool> returned_null;
    std::optional<model::SocketError> out_error;
    std::optional<bool> completed_synchronously;
    std::optional<bool> callback_before_return;
    std::optional<bool> is_completed;
    std::optional<bool> connected;
    std::optional<bool> pending;
    std::optional<model::SocketError> args_error;
    std::optional<int> bytes_transferred;
    std::optional<std::string> accept_socket;
    std::optional<int> completions;
    std::optional<int> clients_connected;
    // SmtpClient steps: the thrown exception's details, or SendCompleted's.
    std::optional<std::string> inner;          // InnerException type ("none" if null)
    std::optional<int> status_code;            // SmtpException.StatusCode
    std::optional<std::string> message;        // the exception's Message
    std::optional<bool> cancelled;
    std::optional<std::string> send_error;     // e.Error type ("none" if null)
    std::optional<std::string> delivery;
    std::optional<std::string> user_state;
    std::optional<std::vector<std::string>> failed_recipients;
    std::optional<std::string> task_status;    // ran_to_completion, canceled, faulted, running

    /// One line, e.g. `threw=SocketException socket_error=ConnectionReset connected=false`.
    [[nodiscard]] std::string describe() const;
};

/// Empty if `observation` satisfies `expectation`, else what differs. An expectation without
/// "throws" means no exception.
[[nodiscard]] std::string mismatch(const Expectation& expectation, const Observation& observation);
/// Empty if any alternative matches, else every alternative's mismatch.
[[nodiscard]] std::string match_any(const ExpectationSet& alternatives,
                                    const Observation& observation);

/// One operation as the oracle sees it.
struct OpView {
    std::string id;
    std::string pointer;
    std::string socket;
    bool send = true;
    bool began = false;          // Begin* returned a result
    bool has_callback = true;
    int callbacks = 0;
    bool callback_before_return = false;
    bool completed = false;
    bool completed_synchronously = false;
    bool failed = false;
    std::uint64_t bytes = 0;     // reported bytes on success
    std::uint64_t begin_order = 0;
    std::vector<std::byte> data; // the bytes a full send would transmit
};

/// One peer connection as the oracle sees it.
struct PeerView {
    std::vector<std::byte> received;
    std::string saw;       // "eof", "reset", "aborted", "closed", "open"
    bool read_all = true;  // the peer read until the end of the stream
};

/// Every invariant violation, as readable sentences.
[[nodiscard]] std::vector<std::string> check_oracle(const std::vector<OpView>& operations,
                                                    const std::map<std::string, PeerView>& peers);

}  // namespace faultline::conformance
