// SocketError with .NET's numeric values, and the Linux errno values that .NET on Unix reports as
// SocketException.ErrorCode. Names are .NET's, so scenario files and reports read like the docs.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace faultline::model {

enum class SocketError : std::int32_t {
    Success = 0,
    SocketError = -1,
    OperationAborted = 995,
    IOPending = 997,
    Interrupted = 10004,
    AccessDenied = 10013,
    Fault = 10014,
    InvalidArgument = 10022,
    TooManyOpenSockets = 10024,
    WouldBlock = 10035,
    InProgress = 10036,
    AlreadyInProgress = 10037,
    NotSocket = 10038,
    DestinationAddressRequired = 10039,
    MessageSize = 10040,
    ProtocolType = 10041,
    ProtocolOption = 10042,
    ProtocolNotSupported = 10043,
    SocketNotSupported = 10044,
    OperationNotSupported = 10045,
    ProtocolFamilyNotSupported = 10046,
    AddressFamilyNotSupported = 10047,
    AddressAlreadyInUse = 10048,
    AddressNotAvailable = 10049,
    NetworkDown = 10050,
    NetworkUnreachable = 10051,
    NetworkReset = 10052,
    ConnectionAborted = 10053,
    ConnectionReset = 10054,
    NoBufferSpaceAvailable = 10055,
    IsConnected = 10056,
    NotConnected = 10057,
    Shutdown = 10058,
    TimedOut = 10060,
    ConnectionRefused = 10061,
    HostDown = 10064,
    HostUnreachable = 10065,
    ProcessLimit = 10067,
    SystemNotReady = 10091,
    VersionNotSupported = 10092,
    NotInitialized = 10093,
    Disconnecting = 10101,
    TypeNotFound = 10109,
    HostNotFound = 11001,
    TryAgain = 11002,
    NoRecovery = 11003,
    NoData = 11004,
};

/// The enumerator's .NET name ("ConnectionReset"); "Unknown" for values outside the enum.
[[nodiscard]] std::string_view to_string(SocketError error) noexcept;
/// Inverse of to_string.
[[nodiscard]] std::optional<SocketError> socket_error_from_string(std::string_view name) noexcept;
/// The errno .NET on Linux reports as the native code for `error` (SocketErrorPal); -1 if none.
[[nodiscard]] int linux_errno_for(SocketError error) noexcept;

}  // namespace faultline::model
