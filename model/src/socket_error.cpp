#include "faultline/model/socket_error.h"

#include <array>
#include <utility>

namespace faultline::model {
namespace {

struct Row {
    SocketError error;
    std::string_view name;
    int linux_errno;  // from dotnet/runtime SocketErrorPal.Unix (facts, not code)
};

constexpr std::array kRows = {
    Row{SocketError::Success, "Success", 0},
    Row{SocketError::SocketError, "SocketError", -1},
    Row{SocketError::OperationAborted, "OperationAborted", 125},   // ECANCELED
    Row{SocketError::IOPending, "IOPending", 115},                 // EINPROGRESS
    Row{SocketError::Interrupted, "Interrupted", 4},               // EINTR
    Row{SocketError::AccessDenied, "AccessDenied", 13},            // EACCES
    Row{SocketError::Fault, "Fault", 14},                          // EFAULT
    Row{SocketError::InvalidArgument, "InvalidArgument", 22},      // EINVAL
    Row{SocketError::TooManyOpenSockets, "TooManyOpenSockets", 24},  // EMFILE
    Row{SocketError::WouldBlock, "WouldBlock", 11},                // EAGAIN
    Row{SocketError::InProgress, "InProgress", 115},               // EINPROGRESS
    Row{SocketError::AlreadyInProgress, "AlreadyInProgress", 114},  // EALREADY
    Row{SocketError::NotSocket, "NotSocket", 88},                  // ENOTSOCK
    Row{SocketError::DestinationAddressRequired, "DestinationAddressRequired", 89},
    Row{SocketError::MessageSize, "MessageSize", 90},
    Row{SocketError::ProtocolType, "ProtocolType", 91},
    Row{SocketError::ProtocolOption, "ProtocolOption", 92},
    Row{SocketError::ProtocolNotSupported, "ProtocolNotSupported", 93},
    Row{SocketError::SocketNotSupported, "SocketNotSupported", 94},
    Row{SocketError::OperationNotSupported, "OperationNotSupported", 95},
    Row{SocketError::ProtocolFamilyNotSupported, "ProtocolFamilyNotSupported", 96},
    Row{SocketError::AddressFamilyNotSupported, "AddressFamilyNotSupported", 97},
    Row{SocketError::AddressAlreadyInUse, "AddressAlreadyInUse", 98},
    Row{SocketError::AddressNotAvailable, "AddressNotAvailable", 99},
    Row{SocketError::NetworkDown, "NetworkDown", 100},
    Row{SocketError::NetworkUnreachable, "NetworkUnreachable", 101},
    Row{SocketError::NetworkReset, "NetworkReset", 102},
    Row{SocketError::ConnectionAborted, "ConnectionAborted", 103},
    Row{SocketError::ConnectionReset, "ConnectionReset", 104},
    Row{SocketError::NoBufferSpaceAvailable, "NoBufferSpaceAvailable", 105},
    Row{SocketError::IsConnected, "IsConnected", 106},
    Row{SocketError::NotConnected, "NotConnected", 107},
    Row{SocketError::Shutdown, "Shutdown", 32},                    // EPIPE
    Row{SocketError::TimedOut, "TimedOut", 110},
    Row{SocketError::ConnectionRefused, "ConnectionRefused", 111},
    Row{SocketError::HostDown, "HostDown", 112},
    Row{SocketError::HostUnreachable, "HostUnreachable", 113},
    Row{SocketError::ProcessLimit, "ProcessLimit", -1},
    Row{SocketError::SystemNotReady, "SystemNotReady", -1},
    Row{SocketError::VersionNotSupported, "VersionNotSupported", -1},
    Row{SocketError::NotInitialized, "NotInitialized", -1},
    Row{SocketError::Disconnecting, "Disconnecting", -1},
    Row{SocketError::TypeNotFound, "TypeNotFound", -1},
    Row{SocketError::HostNotFound, "HostNotFound", -1},
    Row{SocketError::TryAgain, "TryAgain", -1},
    Row{SocketError::NoRecovery, "NoRecovery", -1},
    Row{SocketError::NoData, "NoData", 61},                        // ENODATA
};

}  // namespace

std::string_view to_string(SocketError error) noexcept {
    for (const Row& row : kRows) {
        if (row.error == error) {
            return row.name;
        }
    }
    return "Unknown";
}

std::optional<SocketError> socket_error_from_string(std::string_view name) noexcept {
    for (const Row& row : kRows) {
        if (row.name == name) {
            return row.error;
        }
    }
    return std::nullopt;
}

int linux_errno_for(SocketError error) noexcept {
    for (const Row& row : kRows) {
        if (row.error == error) {
            return row.linux_errno;
        }
    }
    return -1;
}

}  // namespace faultline::model
