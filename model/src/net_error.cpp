#include "faultline/model/net_error.h"

#include <string>

namespace faultline::model {
namespace {

class NetCategory final : public std::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "faultline.net"; }
    [[nodiscard]] std::string message(int value) const override {
        switch (static_cast<NetErrc>(value)) {
            case NetErrc::would_block: return "would block";
            case NetErrc::operation_aborted: return "operation aborted";
            case NetErrc::connection_reset: return "connection reset by peer";
            case NetErrc::broken_pipe: return "broken pipe";
            case NetErrc::not_connected: return "not connected";
            case NetErrc::connection_refused: return "connection refused";
            case NetErrc::timed_out: return "timed out";
            case NetErrc::host_unreachable: return "host unreachable";
            case NetErrc::address_in_use: return "address in use";
            case NetErrc::address_not_available: return "address not available";
            case NetErrc::end_of_stream: return "end of stream";
            case NetErrc::invalid_argument: return "invalid argument";
            case NetErrc::too_many_open: return "too many open connections";
        }
        return "unknown net error " + std::to_string(value);
    }
};

}  // namespace

const std::error_category& net_category() noexcept {
    static const NetCategory category;
    return category;
}

}  // namespace faultline::model
