#include "faultline/model/profile.h"

namespace faultline::model {

SocketError to_socket_error(std::error_code error) noexcept {
    if (!error) {
        return SocketError::Success;
    }
    if (error.category() != net_category()) {
        return SocketError::SocketError;
    }
    switch (static_cast<NetErrc>(error.value())) {
        case NetErrc::would_block: return SocketError::WouldBlock;
        case NetErrc::operation_aborted: return SocketError::OperationAborted;
        case NetErrc::connection_reset: return SocketError::ConnectionReset;
        case NetErrc::broken_pipe: return SocketError::Shutdown;
        case NetErrc::not_connected: return SocketError::NotConnected;
        case NetErrc::connection_refused: return SocketError::ConnectionRefused;
        case NetErrc::timed_out: return SocketError::TimedOut;
        case NetErrc::host_unreachable: return SocketError::HostUnreachable;
        case NetErrc::address_in_use: return SocketError::AddressAlreadyInUse;
        case NetErrc::address_not_available: return SocketError::AddressNotAvailable;
        case NetErrc::end_of_stream: return SocketError::Success;
        case NetErrc::invalid_argument: return SocketError::InvalidArgument;
        case NetErrc::too_many_open: return SocketError::TooManyOpenSockets;
    }
    return SocketError::SocketError;
}

}  // namespace faultline::model
