// SocketAsyncEventArgs<T>: the reusable argument object of the .NET *Async socket methods (here:
// AcceptAsync). Invariant: at most one operation uses it at a time; it is Free, InProgress
// or Disposed, and Dispose during an operation is deferred until that operation completes. It does
// not run operations itself: Socket<T> starts and completes them.
#pragma once

#include <any>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "faultline/model/exceptions.h"
#include "faultline/model/socket_error.h"
#include "faultline/model/transport.h"
#include "faultline/model/types.h"

namespace faultline::model {

template <Transport T>
class Socket;

using Buffer = std::shared_ptr<std::vector<std::byte>>;

/// ArraySegment<byte>. Unlike .NET's it can be built invalid; the Socket validates it (S-2).
struct ArraySegment {
    Buffer array;
    int offset = 0;
    int count = 0;
};
using BufferList = std::shared_ptr<const std::vector<ArraySegment>>;

enum class SocketAsyncOperation : std::uint8_t { None, Accept };

template <Transport T>
class SocketAsyncEventArgs : public std::enable_shared_from_this<SocketAsyncEventArgs<T>> {
    struct Token {};

public:
    using Ptr = std::shared_ptr<SocketAsyncEventArgs>;
    /// The Completed event: `sender` is the socket the operation ran on (for accept, the
    /// listener, A-13), raised on a pool thread, never when the starting call returned false.
    using CompletedHandler =
        std::function<void(const std::shared_ptr<Socket<T>>& sender, const Ptr& args)>;

    [[nodiscard]] static Ptr Create() { return std::make_shared<SocketAsyncEventArgs>(Token{}); }
    explicit SocketAsyncEventArgs(Token /*unused*/) {}
    SocketAsyncEventArgs(const SocketAsyncEventArgs&) = delete;
    SocketAsyncEventArgs& operator=(const SocketAsyncEventArgs&) = delete;
    ~SocketAsyncEventArgs() = default;

    /// Adds a Completed handler (several are allowed); returns a key for RemoveCompleted.
    std::uint64_t AddCompleted(CompletedHandler handler) {
        std::unique_lock lock(mutex_);
        handlers_.emplace(++handler_key_last_, std::move(handler));
        return handler_key_last_;
    }
    void RemoveCompleted(std::uint64_t key) {
        std::unique_lock lock(mutex_);
        handlers_.erase(key);
    }

    [[nodiscard]] std::any UserToken() const {
        std::unique_lock lock(mutex_);
        return user_token_;
    }
    void UserToken(std::any token) {
        std::unique_lock lock(mutex_);
        user_token_ = std::move(token);
    }

    [[nodiscard]] std::shared_ptr<Socket<T>> AcceptSocket() const {
        std::unique_lock lock(mutex_);
        return accept_socket_;
    }
    void AcceptSocket(std::shared_ptr<Socket<T>> socket) {
        std::unique_lock lock(mutex_);
        accept_socket_ = std::move(socket);
    }

    /// SetBuffer(buffer, offset, count). A-14: InvalidOperationException while an operation
    /// runs; ArgumentException if a BufferList is set; ArgumentOutOfRangeException for a range
    /// outside the buffer. A null buffer clears it.
    void SetBuffer(const Buffer& buffer, int offset, int count) {
        std::unique_lock lock(mutex_);
        throw_if_configuring_forbidden();
        if (buffer && buffer_list_) {
            throw ArgumentException(
                "Buffer and BufferList properties cannot both be set to non-null values.",
                "buffer");
        }
        if (!buffer) {
            buffer_ = nullptr;
            offset_ = 0;
            count_ = 0;
            return;
        }
        const auto length = static_cast<long long>(buffer->size());
        if (offset < 0 || offset > length) {
            throw ArgumentOutOfRangeException("offset");
        }
        if (count < 0 || count > length - offset) {
            throw ArgumentOutOfRangeException("count");
        }
        buffer_ = buffer;
        offset_ = offset;
        count_ = count;
    }
    [[nodiscard]] Buffer GetBuffer() const {
        std::unique_lock lock(mutex_);
        return buffer_;
    }
    [[nodiscard]] int Offset() const {
        std::unique_lock lock(mutex_);
        return offset_;
    }
    [[nodiscard]] int Count() const {
        std::unique_lock lock(mutex_);
        return count_;
    }

    [[nodiscard]] BufferList GetBufferList() const {
        std::unique_lock lock(mutex_);
        return buffer_list_;
    }
    /// mutually exclusive with a buffer; not while an operation runs.
    void SetBufferList(BufferList list) {
        std::unique_lock lock(mutex_);
        throw_if_configuring_forbidden();
        if (list && buffer_) {
            throw ArgumentException(
                "Buffer and BufferList properties cannot both be set to non-null values.",
                "value");
        }
        buffer_list_ = std::move(list);
    }

    [[nodiscard]] model::SocketError SocketError() const {
        std::unique_lock lock(mutex_);
        return socket_error_;
    }
    void SocketError(model::SocketError error) {
        std::unique_lock lock(mutex_);
        socket_error_ = error;
    }
    [[nodiscard]] int BytesTransferred() const {
        std::unique_lock lock(mutex_);
        return bytes_transferred_;
    }
    [[nodiscard]] SocketAsyncOperation LastOperation() const {
        std::unique_lock lock(mutex_);
        return last_operation_;
    }
    [[nodiscard]] std::optional<Endpoint> RemoteEndPoint() const {
        std::unique_lock lock(mutex_);
        return remote_end_point_;
    }

    /// deferred until a running operation completes; later starts throw
    /// ObjectDisposedException.
    void Dispose() {
        std::unique_lock lock(mutex_);
        if (state_ == State::in_progress) {
            dispose_pending_ = true;
        } else {
            state_ = State::disposed;
        }
    }

    /// Harness inspection (not .NET API): an operation is running.
    [[nodiscard]] bool busy() const {
        std::unique_lock lock(mutex_);
        return state_ == State::in_progress;
    }

private:
    friend class Socket<T>;
    enum class State : std::uint8_t { free, in_progress, disposed };

    /// A-14, as StartConfiguring: disposed → ObjectDisposedException, busy → InvalidOperation.
    void throw_if_configuring_forbidden() const {
        if (state_ == State::disposed) {
            throw ObjectDisposedException("System.Net.Sockets.SocketAsyncEventArgs");
        }
        if (state_ == State::in_progress) {
            throw InvalidOperationException(
                "An asynchronous socket operation is already in progress using this "
                "SocketAsyncEventArgs instance.");
        }
    }

    /// busy, then disposed. Marks the args in progress for `operation`.
    void start(SocketAsyncOperation operation) {
        std::unique_lock lock(mutex_);
        throw_if_configuring_forbidden();
        if (state_ == State::disposed || dispose_pending_) {
            throw ObjectDisposedException("System.Net.Sockets.SocketAsyncEventArgs");
        }
        state_ = State::in_progress;
        last_operation_ = operation;
        bytes_transferred_ = 0;
        socket_error_ = model::SocketError::Success;
    }

    /// Ends the operation with its results; returns the handlers to raise (if any).
    std::vector<CompletedHandler> finish(model::SocketError error, int bytes,
                                         std::optional<Endpoint> remote,
                                         std::shared_ptr<Socket<T>> accepted, bool set_socket) {
        std::unique_lock lock(mutex_);
        socket_error_ = error;
        bytes_transferred_ = bytes;
        remote_end_point_ = remote;
        if (set_socket) {
            accept_socket_ = std::move(accepted);
        }
        state_ = dispose_pending_ ? State::disposed : State::free;
        dispose_pending_ = false;
        std::vector<CompletedHandler> handlers;
        for (const auto& [key, handler] : handlers_) {
            handlers.push_back(handler);
        }
        return handlers;
    }

    /// Releases the args without results (a start that threw after marking it busy).
    void release() {
        std::unique_lock lock(mutex_);
        state_ = dispose_pending_ ? State::disposed : State::free;
        dispose_pending_ = false;
    }

    mutable std::mutex mutex_;
    State state_ = State::free;
    bool dispose_pending_ = false;
    std::map<std::uint64_t, CompletedHandler> handlers_;
    std::uint64_t handler_key_last_ = 0;
    std::any user_token_;
    std::shared_ptr<Socket<T>> accept_socket_;
    Buffer buffer_;
    int offset_ = 0;
    int count_ = 0;
    BufferList buffer_list_;
    model::SocketError socket_error_ = model::SocketError::Success;
    int bytes_transferred_ = 0;
    SocketAsyncOperation last_operation_ = SocketAsyncOperation::None;
    std::optional<Endpoint> remote_end_point_;
};

}  // namespace faultline::model
