// Operating errors beneath the .NET-shaped surface: values in one category, never exceptions.
// real/ maps errno here; sim/ produces them directly; the model maps them to SocketError.
#pragma once

#include <system_error>

namespace faultline::model {

enum class NetErrc {
    would_block = 1,       // the immediate attempt cannot make progress now
    operation_aborted,     // our side closed, cancelled or the initiating thread exited
    connection_reset,      // the peer (or the network) sent RST
    broken_pipe,           // writing after shutdown(send), or after a reset was reported (EPIPE)
    not_connected,         // no connection
    connection_refused,    // RST in answer to SYN
    timed_out,             // SYN retries (or another transport timer) ran out
    host_unreachable,      // no route to the address
    address_in_use,        // listen on an endpoint already in use
    address_not_available, // bind to an address this host does not own
    end_of_stream,         // orderly close by the peer, zero bytes
    invalid_argument,      // a request the transport cannot represent
    too_many_open,         // the transport ran out of descriptors or slots
};

const std::error_category& net_category() noexcept;

inline std::error_code make_error_code(NetErrc error) noexcept {
    return {static_cast<int>(error), net_category()};
}

}  // namespace faultline::model

template <>
struct std::is_error_code_enum<faultline::model::NetErrc> : std::true_type {};
