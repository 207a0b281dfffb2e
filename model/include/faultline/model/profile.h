// Behaviour profiles: where the seed documents and the shipped .NET runtime disagree (Δ in the
// clause list), each switch picks one side. `documented` is the default. Transports know nothing
// of profiles; only model/ reads them.
#pragma once

#include <optional>
#include <string_view>

#include "faultline/model/net_error.h"
#include "faultline/model/socket_error.h"
#include "faultline/model/types.h"

namespace faultline::model {

struct Profile {
    std::string_view name;
    /// S-9: a stream send may complete with fewer bytes than asked (documented) or the socket
    /// keeps writing until all bytes are taken or an error occurs (dotnet-unix).
    bool stream_send_may_be_partial;
    /// S-3: an error found while starting BeginSend is thrown as SocketException (documented)
    /// or completes the operation as failed, surfacing at EndSend (dotnet-unix).
    bool begin_throws_socket_errors;
    /// S-15: a second End* call throws InvalidOperationException (documented) or returns the
    /// same result again (dotnet-unix).
    bool end_twice_throws;
    /// S-14: EndSend(ar, out error) with a null ar throws ArgumentNullException (documented) or a
    /// plain ArgumentException (dotnet-unix).
    bool end_out_null_is_argument_null;
    /// S-7: EndSend accepts only this socket's BeginSend results (documented) or any int-valued
    /// APM result, e.g. another socket's or a BeginReceive's (dotnet-unix).
    bool end_requires_own_send_result;
    /// S-16: End* on a closed socket throws SocketException(OperationAborted) (documented, ".NET
    /// 7+") or ObjectDisposedException (dotnet-unix, as its tests assert). Either way the closed
    /// check comes before the argument checks (S-6, S-14: not a divergence).
    bool end_on_closed_throws_socket_exception;
    /// Seed note: I/O initiated by a thread is cancelled when that thread exits (documented);
    /// the Unix engine does not tie I/O to threads (dotnet-unix).
    bool thread_exit_cancels_io;
    /// S-12: sending on a never-connected stream socket reports NotConnected (documented,
    /// Windows) or Shutdown, from EPIPE (dotnet-unix).
    SocketError send_not_connected_error;
    /// SocketException.ErrorCode: the SocketError value (documented) or the Linux errno.
    bool error_code_is_errno;
    /// AcceptAsync doc: a half-open scan (SYN, SYN-ACK, RST) completes a pending accept with
    /// ConnectionReset (documented, AcceptEx) or never reaches the application (dotnet-unix).
    bool accept_reports_half_open_reset;
    /// a receive buffer larger than the address space makes the accept wait for that much
    /// data, which lands after the address space (documented, AcceptEx), or is
    /// PlatformNotSupportedException (dotnet-unix).
    bool accept_receive_buffer_supported;
    /// A-9 (documented): how long an accept waits for its data before it resets the connection.
    Duration accept_receive_timeout;
    /// a too-small buffer's ArgumentException leaves the SocketAsyncEventArgs marked busy
    /// (dotnet-unix, as the shipped code does) or releases it (documented).
    bool accept_small_buffer_leaves_args_busy;
    /// after a failed accept, AcceptSocket holds a pre-created unconnected Socket
    /// (documented, Windows) or whatever the caller set, null by default (dotnet-unix).
    bool accept_socket_precreated;
    /// M-2: SmtpClient.SendAsync throws the M-1 validation failures as the seed page lists them,
    /// unwrapped (ArgumentNullException for a null message or From, InvalidOperationException for
    /// Host/Port, ArgumentOutOfRangeException for no recipients; documented) or as SmtpException
    /// "Failure sending mail." wrapping the original, InvalidOperationException for From and
    /// recipients (dotnet-unix). Send always throws them unwrapped.
    bool smtp_send_async_wraps_validation_errors;
    /// M-8: SendAsync ignores Timeout (documented: "no effect on a SendAsync call") or arms one
    /// whole-transaction timer ending in SmtpException "The operation has timed out." (dotnet-unix).
    bool smtp_send_async_timeout;
    /// M-24: replies are read as RFC 5321 §4.2 allows, code-only lines included (documented) or
    /// as SmtpReplyReaderFactory does, a code-only line being malformed (dotnet-unix).
    bool smtp_reply_strict_dotnet;
    /// M-21: with Credentials set, SmtpClient tries AUTH LOGIN and then, if LOGIN was not
    /// advertised or failed, AUTH PLAIN (RFC 4616) when advertised (documented: the harness's
    /// fuller client), or never uses PLAIN because .NET has no PLAIN module (dotnet-unix).
    bool smtp_auth_plain;
};

inline constexpr Profile kDocumented{
    .name = "documented",
    .stream_send_may_be_partial = true,
    .begin_throws_socket_errors = true,
    .end_twice_throws = true,
    .end_out_null_is_argument_null = true,
    .end_requires_own_send_result = true,
    .end_on_closed_throws_socket_exception = true,
    .thread_exit_cancels_io = true,
    .send_not_connected_error = SocketError::NotConnected,
    .error_code_is_errno = false,
    .accept_reports_half_open_reset = true,
    .accept_receive_buffer_supported = true,
    .accept_receive_timeout = std::chrono::seconds(30),
    .accept_small_buffer_leaves_args_busy = false,
    .accept_socket_precreated = true,
    .smtp_send_async_wraps_validation_errors = false,
    .smtp_send_async_timeout = false,
    .smtp_reply_strict_dotnet = false,
    .smtp_auth_plain = true,
};

inline constexpr Profile kDotnetUnix{
    .name = "dotnet-unix",
    .stream_send_may_be_partial = false,
    .begin_throws_socket_errors = false,
    .end_twice_throws = false,
    .end_out_null_is_argument_null = false,
    .end_requires_own_send_result = false,
    .end_on_closed_throws_socket_exception = false,
    .thread_exit_cancels_io = false,
    .send_not_connected_error = SocketError::Shutdown,
    .error_code_is_errno = true,
    .accept_reports_half_open_reset = false,
    .accept_receive_buffer_supported = false,
    .accept_receive_timeout = std::chrono::seconds(30),
    .accept_small_buffer_leaves_args_busy = true,
    .accept_socket_precreated = false,
    .smtp_send_async_wraps_validation_errors = true,
    .smtp_send_async_timeout = true,
    .smtp_reply_strict_dotnet = true,
    .smtp_auth_plain = false,
};

/// "documented" or "dotnet-unix"; nullopt otherwise.
[[nodiscard]] inline std::optional<Profile> profile_by_name(std::string_view name) {
    if (name == kDocumented.name) {
        return kDocumented;
    }
    if (name == kDotnetUnix.name) {
        return kDotnetUnix;
    }
    return std::nullopt;
}

/// S-12: the SocketError an operating error surfaces as (the ErrPal table). Profile-specific
/// choices (such as send_not_connected_error) are made before the error is recorded.
[[nodiscard]] SocketError to_socket_error(std::error_code error) noexcept;

/// The ErrorCode a SocketException carries under `profile`.
[[nodiscard]] inline int error_code_for(SocketError error, const Profile& profile) noexcept {
    return profile.error_code_is_errno ? linux_errno_for(error) : static_cast<int>(error);
}

}  // namespace faultline::model
