// Exception types named and arranged as in .NET, thrown only by the .NET-shaped public API
// (Socket, AsyncResult, ...). Beneath that surface errors are values. type_name() is the .NET name
// scenarios use; param_name() is the offending parameter as .NET reports it.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "faultline/model/socket_error.h"

namespace faultline::model {

class DotnetException : public std::runtime_error {
public:
    explicit DotnetException(const std::string& message) : std::runtime_error(message) {}
    /// The .NET type name, e.g. "ArgumentNullException".
    [[nodiscard]] virtual std::string_view type_name() const noexcept = 0;
};

class ArgumentException : public DotnetException {
public:
    ArgumentException(const std::string& message, std::string param_name)
        : DotnetException(message), param_name_(std::move(param_name)) {}
    [[nodiscard]] std::string_view type_name() const noexcept override {
        return "ArgumentException";
    }
    [[nodiscard]] const std::string& param_name() const noexcept { return param_name_; }

private:
    std::string param_name_;
};

class ArgumentNullException : public ArgumentException {
public:
    explicit ArgumentNullException(std::string param_name)
        : ArgumentException("Value cannot be null.", std::move(param_name)) {}
    [[nodiscard]] std::string_view type_name() const noexcept override {
        return "ArgumentNullException";
    }
};

class ArgumentOutOfRangeException : public ArgumentException {
public:
    explicit ArgumentOutOfRangeException(std::string param_name)
        : ArgumentException("Specified argument was out of the range of valid values.",
                            std::move(param_name)) {}
    [[nodiscard]] std::string_view type_name() const noexcept override {
        return "ArgumentOutOfRangeException";
    }
};

class InvalidOperationException : public DotnetException {
public:
    using DotnetException::DotnetException;
    [[nodiscard]] std::string_view type_name() const noexcept override {
        return "InvalidOperationException";
    }
};

class ObjectDisposedException : public InvalidOperationException {
public:
    explicit ObjectDisposedException(const std::string& object_name)
        : InvalidOperationException("Cannot access a disposed object. Object name: '" +
                                    object_name + "'.") {}
    [[nodiscard]] std::string_view type_name() const noexcept override {
        return "ObjectDisposedException";
    }
};

class NotSupportedException : public DotnetException {
public:
    using DotnetException::DotnetException;
    [[nodiscard]] std::string_view type_name() const noexcept override {
        return "NotSupportedException";
    }
};

class PlatformNotSupportedException : public NotSupportedException {
public:
    using NotSupportedException::NotSupportedException;
    [[nodiscard]] std::string_view type_name() const noexcept override {
        return "PlatformNotSupportedException";
    }
};

/// System.OperationCanceledException: an operation ended because its cancellation was requested.
class OperationCanceledException : public DotnetException {
public:
    OperationCanceledException() : DotnetException("The operation was canceled.") {}
    [[nodiscard]] std::string_view type_name() const noexcept override {
        return "OperationCanceledException";
    }

protected:
    explicit OperationCanceledException(const std::string& message) : DotnetException(message) {}
};

/// System.Threading.Tasks.TaskCanceledException: what awaiting a Canceled task throws (M-10).
class TaskCanceledException : public OperationCanceledException {
public:
    TaskCanceledException() : OperationCanceledException("A task was canceled.") {}
    [[nodiscard]] std::string_view type_name() const noexcept override {
        return "TaskCanceledException";
    }
};

/// SocketErrorCode is the .NET enum; ErrorCode is what the profile's platform reports (the enum
/// value under `documented`, the Linux errno under `dotnet-unix`).
class SocketException : public DotnetException {
public:
    SocketException(SocketError error, int error_code)
        : DotnetException(std::string("socket error ") + std::string(to_string(error))),
          error_(error),
          error_code_(error_code) {}
    [[nodiscard]] std::string_view type_name() const noexcept override {
        return "SocketException";
    }
    [[nodiscard]] SocketError SocketErrorCode() const noexcept { return error_; }
    [[nodiscard]] int ErrorCode() const noexcept { return error_code_; }

private:
    SocketError error_;
    int error_code_;
};

}  // namespace faultline::model
