#include "faultline/conformance/oracle.h"

#include <algorithm>

namespace faultline::conformance {
namespace {

std::string name_of(model::SocketError error) { return std::string(model::to_string(error)); }

/// Whether `received` is explained by `sends` (in order) from send `index` and byte `position`
/// on: successful sends match exactly, a failed send matches any prefix of its bytes, and the
/// peer may have stopped reading anywhere. Only failed sends branch, so the work stays small.
bool explains(const std::vector<const OpView*>& sends, std::size_t index, std::size_t position,
              const std::vector<std::byte>& received) {
    for (; index < sends.size(); ++index) {
        if (position == received.size()) {
            return true;  // the rest was never read
        }
        const OpView& op = *sends[index];
        if (op.failed) {
            for (std::size_t prefix = 0; prefix <= op.data.size(); ++prefix) {
                if (prefix > 0 && (position + prefix > received.size() ||
                                   received[position + prefix - 1] != op.data[prefix - 1])) {
                    return false;
                }
                if (explains(sends, index + 1, position + prefix, received)) {
                    return true;
                }
            }
            return false;
        }
        const std::size_t bytes =
            static_cast<std::size_t>(std::min<std::uint64_t>(op.bytes, op.data.size()));
        const std::size_t available = std::min(bytes, received.size() - position);
        if (!std::equal(op.data.begin(), op.data.begin() + static_cast<std::ptrdiff_t>(available),
                        received.begin() + static_cast<std::ptrdiff_t>(position))) {
            return false;
        }
        position += available;
        if (available < bytes) {
            return true;  // the peer stopped reading inside this send
        }
    }
    return position == received.size();
}

bool stream_explained(const std::vector<const OpView*>& sends,
                      const std::vector<std::byte>& received) {
    return explains(sends, 0, 0, received);
}

}  // namespace

std::string Observation::describe() const {
    std::string text;
    auto add = [&text](const std::string& key, const std::string& value) {
        text += (text.empty() ? "" : " ") + key + "=" + value;
    };
    auto flag = [](bool value) { return std::string(value ? "true" : "false"); };
    add("threw", threw.value_or("none"));
    if (param) {
        add("param", *param);
    }
    if (socket_error) {
        add("socket_error", name_of(*socket_error));
    }
    if (error_code) {
        add("error_code", std::to_string(*error_code));
    }
    if (returned) {
        add("returns", std::to_string(*returned));
    }
    if (returned_null) {
        add("returns_null", flag(*returned_null));
    }
    if (out_error) {
        add("error", name_of(*out_error));
    }
    if (completed_synchronously) {
        add("completed_synchronously", flag(*completed_synchronously));
    }
    if (callback_before_return) {
        add("callback_before_return", flag(*callback_before_return));
    }
    if (is_completed) {
        add("is_completed", flag(*is_completed));
    }
    if (connected) {
        add("connected", flag(*connected));
    }
    if (pending) {
        add("pending", flag(*pending));
    }
    if (args_error) {
        add("args_error", name_of(*args_error));
    }
    if (bytes_transferred) {
        add("bytes_transferred", std::to_string(*bytes_transferred));
    }
    if (accept_socket) {
        add("accept_socket", *accept_socket);
    }
    if (completions) {
        add("completions", std::to_string(*completions));
    }
    if (clients_connected) {
        add("clients_connected", std::to_string(*clients_connected));
    }
    if (inner) {
        add("inner", *inner);
    }
    if (status_code) {
        add("status_code", std::to_string(*status_code));
    }
    if (cancelled) {
        add("cancelled", flag(*cancelled));
    }
    if (send_error) {
        add("send_error", *send_error);
    }
    if (delivery) {
        add("delivery", *delivery);
    }
    if (user_state) {
        add("user_state", *user_state);
    }
    if (task_status) {
        add("task_status", *task_status);
    }
    if (failed_recipients) {
        std::string joined;
        for (const std::string& recipient : *failed_recipients) {
            joined += (joined.empty() ? "" : ",") + recipient;
        }
        add("failed_recipients", "[" + joined + "]");
    }
    if (message) {
        add("message", "\"" + *message + "\"");
    }
    return text;
}

std::string mismatch(const Expectation& expectation, const Observation& observation) {
    std::string differences;
    auto differ = [&differences](const std::string& key, const std::string& expected,
                                 const std::string& observed) {
        differences += (differences.empty() ? "" : ", ") + key + " expected " + expected +
                       " but was " + observed;
    };
    auto flag = [](std::optional<bool> value) {
        return value ? std::string(*value ? "true" : "false") : std::string("unset");
    };
    const std::string threw = observation.threw.value_or("none");
    const std::string expected_throw = expectation.throws.value_or("none");
    // "any": whatever the step threw, except a hang (what generated scenarios check).
    const bool any_allowed = expected_throw == "any" && threw != "LivenessFailure";
    if (threw != expected_throw && !any_allowed) {
        differ("throws", expected_throw, threw);
    }
    if (expectation.param && observation.param != expectation.param) {
        differ("param", *expectation.param, observation.param.value_or("unset"));
    }
    if (expectation.socket_error && observation.socket_error != expectation.socket_error) {
        differ("socket_error", name_of(*expectation.socket_error),
               observation.socket_error ? name_of(*observation.socket_error) : "unset");
    }
    if (expectation.error_code && observation.error_code != expectation.error_code) {
        differ("error_code", std::to_string(*expectation.error_code),
               observation.error_code ? std::to_string(*observation.error_code) : "unset");
    }
    if (expectation.returns && observation.returned != expectation.returns) {
        differ("returns", std::to_string(*expectation.returns),
               observation.returned ? std::to_string(*observation.returned) : "unset");
    }
    if (expectation.returns_null && observation.returned_null != expectation.returns_null) {
        differ("returns_null", flag(expectation.returns_null), flag(observation.returned_null));
    }
    if (expectation.error && observation.out_error != expectation.error) {
        differ("error", name_of(*expectation.error),
               observation.out_error ? name_of(*observation.out_error) : "unset");
    }
    if (expectation.completed_synchronously &&
        observation.completed_synchronously != expectation.completed_synchronously) {
        differ("completed_synchronously", flag(expectation.completed_synchronously),
               flag(observation.completed_synchronously));
    }
    if (expectation.callback_before_return &&
        observation.callback_before_return != expectation.callback_before_return) {
        differ("callback_before_return", flag(expectation.callback_before_return),
               flag(observation.callback_before_return));
    }
    if (expectation.is_completed && observation.is_completed != expectation.is_completed) {
        differ("is_completed", flag(expectation.is_completed), flag(observation.is_completed));
    }
    if (expectation.connected && observation.connected != expectation.connected) {
        differ("connected", flag(expectation.connected), flag(observation.connected));
    }
    if (expectation.pending && observation.pending != expectation.pending) {
        differ("pending", flag(expectation.pending), flag(observation.pending));
    }
    if (expectation.args_error && observation.args_error != expectation.args_error) {
        differ("args_error", name_of(*expectation.args_error),
               observation.args_error ? name_of(*observation.args_error) : "unset");
    }
    auto number = [](std::optional<int> value) {
        return value ? std::to_string(*value) : std::string("unset");
    };
    if (expectation.bytes_transferred &&
        observation.bytes_transferred != expectation.bytes_transferred) {
        differ("bytes_transferred", number(expectation.bytes_transferred),
               number(observation.bytes_transferred));
    }
    if (expectation.accept_socket && observation.accept_socket != expectation.accept_socket) {
        differ("accept_socket", *expectation.accept_socket,
               observation.accept_socket.value_or("unset"));
    }
    if (expectation.completions && observation.completions != expectation.completions) {
        differ("completions", number(expectation.completions), number(observation.completions));
    }
    if (expectation.clients_connected &&
        observation.clients_connected != expectation.clients_connected) {
        differ("clients_connected", number(expectation.clients_connected),
               number(observation.clients_connected));
    }
    auto text = [](const std::optional<std::string>& value) { return value.value_or("unset"); };
    if (expectation.inner && observation.inner != expectation.inner) {
        differ("inner", *expectation.inner, text(observation.inner));
    }
    if (expectation.status_code && observation.status_code != expectation.status_code) {
        differ("status_code", number(expectation.status_code), number(observation.status_code));
    }
    if (expectation.cancelled && observation.cancelled != expectation.cancelled) {
        differ("cancelled", flag(expectation.cancelled), flag(observation.cancelled));
    }
    if (expectation.send_error && observation.send_error != expectation.send_error) {
        differ("send_error", *expectation.send_error, text(observation.send_error));
    }
    if (expectation.delivery && observation.delivery != expectation.delivery) {
        differ("delivery", *expectation.delivery, text(observation.delivery));
    }
    if (expectation.user_state && observation.user_state != expectation.user_state) {
        differ("user_state", *expectation.user_state, text(observation.user_state));
    }
    if (expectation.task_status && observation.task_status != expectation.task_status) {
        differ("task_status", *expectation.task_status, text(observation.task_status));
    }
    if (expectation.failed_recipients &&
        observation.failed_recipients != expectation.failed_recipients) {
        auto list = [](const std::optional<std::vector<std::string>>& value) {
            if (!value) {
                return std::string("unset");
            }
            std::string joined;
            for (const std::string& item : *value) {
                joined += (joined.empty() ? "" : ",") + item;
            }
            return "[" + joined + "]";
        };
        differ("failed_recipients", list(expectation.failed_recipients),
               list(observation.failed_recipients));
    }
    if (expectation.message_contains &&
        (!observation.message ||
         observation.message->find(*expectation.message_contains) == std::string::npos)) {
        differ("message_contains", "\"" + *expectation.message_contains + "\"",
               observation.message ? "\"" + *observation.message + "\"" : "unset");
    }
    return differences;
}

std::string match_any(const ExpectationSet& alternatives, const Observation& observation) {
    std::string all;
    for (const Expectation& alternative : alternatives) {
        const std::string differences = mismatch(alternative, observation);
        if (differences.empty()) {
            return {};
        }
        all += (all.empty() ? "" : " | ") + differences;
    }
    return all;
}

std::vector<std::string> check_oracle(const std::vector<OpView>& operations,
                                      const std::map<std::string, PeerView>& peers) {
    std::vector<std::string> failures;
    for (const OpView& op : operations) {
        if (!op.began) {
            continue;
        }
        if (!op.completed) {
            failures.push_back(op.id + " never completed");
            continue;
        }
        if (op.has_callback && op.callbacks != 1) {
            failures.push_back(op.id + ": callback ran " + std::to_string(op.callbacks) +
                               " times, expected exactly once");
        }
        if (op.has_callback && op.callback_before_return != op.completed_synchronously) {
            failures.push_back(op.id + ": callback before Begin returned is " +
                               (op.callback_before_return ? "true" : "false") +
                               " but CompletedSynchronously is " +
                               (op.completed_synchronously ? "true" : "false"));
        }
        if (!op.failed && op.send && op.bytes > op.data.size()) {
            failures.push_back(op.id + ": reported " + std::to_string(op.bytes) +
                               " bytes of a " + std::to_string(op.data.size()) + "-byte send");
        }
    }
    // The stream: per socket, sends in Begin order. A successful send contributes exactly its
    // reported bytes; a failed one any prefix of its bytes (S-11: written bytes are reported
    // nowhere); the peer may not have read to the end. Anything else is interleaving, reordering,
    // loss or corruption (S-20).
    for (const auto& [socket, peer] : peers) {
        std::vector<const OpView*> sends;
        for (const OpView& op : operations) {
            if (op.socket == socket && op.send && op.began && op.completed) {
                sends.push_back(&op);
            }
        }
        std::sort(sends.begin(), sends.end(),
                  [](const OpView* left, const OpView* right) {
                      return left->begin_order < right->begin_order;
                  });
        std::uint64_t reported = 0;
        bool any_failed = false;
        for (const OpView* op : sends) {
            reported += op->failed ? 0 : std::min<std::uint64_t>(op->bytes, op->data.size());
            any_failed = any_failed || op->failed;
        }
        if (!stream_explained(sends, peer.received)) {
            failures.push_back(socket + ": the peer's " + std::to_string(peer.received.size()) +
                               " bytes are not the reported sends in order (" +
                               std::to_string(reported) +
                               " bytes reported): interleaved, reordered, lost or corrupted");
            continue;
        }
        if (!any_failed && peer.read_all && peer.saw == "eof" && peer.received.size() != reported) {
            failures.push_back(socket + ": the stream ended cleanly after " +
                               std::to_string(peer.received.size()) + " bytes but sends reported " +
                               std::to_string(reported));
        }
    }
    return failures;
}

}  // namespace faultline::conformance
