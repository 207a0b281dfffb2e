#include "faultline/conformance/oracle.h"

#include <algorithm>

namespace faultline::conformance {
namespace {

std::string name_of(model::SocketError error) { return std::string(model::to_string(error)); }

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
    if (threw != expected_throw) {
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
    // The stream: per socket, successful sends in Begin order contribute their reported prefix;
    // the first failed send may have put any prefix of its bytes on the wire (S-11) and ends the
    // stream the oracle can vouch for.
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
        std::vector<std::byte> reported;
        std::vector<std::byte> tolerated;  // bytes of the first failed send
        bool failed = false;
        for (const OpView* op : sends) {
            if (op->failed) {
                if (!failed) {
                    tolerated = op->data;
                }
                failed = true;
                continue;
            }
            if (failed) {
                continue;  // after a failure the oracle vouches for nothing more
            }
            reported.insert(reported.end(), op->data.begin(),
                            op->data.begin() + static_cast<std::ptrdiff_t>(
                                                   std::min<std::uint64_t>(op->bytes, op->data.size())));
        }
        const std::vector<std::byte>& received = peer.received;
        const std::size_t common = std::min(received.size(), reported.size());
        if (!std::equal(received.begin(), received.begin() + static_cast<std::ptrdiff_t>(common),
                        reported.begin())) {
            const auto where = std::mismatch(received.begin(), received.begin() + static_cast<std::ptrdiff_t>(common),
                                             reported.begin());
            failures.push_back(socket + ": the peer's bytes differ from the reported sends at offset " +
                               std::to_string(where.first - received.begin()) +
                               " (interleaved, reordered or corrupted)");
            continue;
        }
        if (received.size() > reported.size()) {
            const std::size_t extra = received.size() - reported.size();
            const bool within_failed = extra <= tolerated.size() &&
                                       std::equal(received.begin() + static_cast<std::ptrdiff_t>(reported.size()),
                                                  received.end(), tolerated.begin());
            if (!within_failed) {
                failures.push_back(socket + ": the peer received " + std::to_string(extra) +
                                   " bytes beyond what EndSend reported that are not a prefix of "
                                   "the failed send");
            }
        }
        if (!failed && peer.read_all && peer.saw == "eof" && received.size() != reported.size()) {
            failures.push_back(socket + ": the stream ended cleanly after " +
                               std::to_string(received.size()) + " bytes but sends reported " +
                               std::to_string(reported.size()));
        }
    }
    return failures;
}

}  // namespace faultline::conformance
