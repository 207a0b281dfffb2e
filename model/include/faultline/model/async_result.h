// IAsyncResult and the model's APM result, AsyncResult<T>. One AsyncResult per Begin* call; it
// completes exactly once, and its callback runs exactly once after completion (inline in Begin*
// when CompletedSynchronously, otherwise on a pool thread). It does not know socket semantics:
// Socket<T> fills it in.
#pragma once

#include <any>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "faultline/model/assert.h"
#include "faultline/model/transport.h"

namespace faultline::model {

/// The .NET IAsyncResult shape. Users may implement it themselves (a "foreign" result).
class IAsyncResult {
public:
    IAsyncResult() = default;
    IAsyncResult(const IAsyncResult&) = delete;
    IAsyncResult& operator=(const IAsyncResult&) = delete;
    virtual ~IAsyncResult() = default;
    [[nodiscard]] virtual const std::any& AsyncState() const = 0;
    [[nodiscard]] virtual bool IsCompleted() const = 0;
    [[nodiscard]] virtual bool CompletedSynchronously() const = 0;
};

using AsyncResultPtr = std::shared_ptr<IAsyncResult>;
using AsyncCallback = std::function<void(const AsyncResultPtr&)>;

enum class OperationKind : std::uint8_t { send, receive, accept, connect };

/// Thrown when a blocking call (EndSend before completion, Accept, ...) waited longer than its
/// budget: a liveness failure of the scenario, not .NET behaviour.
class LivenessFailure : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

template <Transport T>
class Socket;

template <Transport T>
class AsyncResult final : public IAsyncResult {
public:
    AsyncResult(T& transport, typename T::Mutex& mutex, OperationKind kind, const void* owner,
                AsyncCallback callback, std::any state)
        : transport_(transport),
          mutex_(mutex),
          kind_(kind),
          owner_(owner),
          callback_(std::move(callback)),
          state_(std::move(state)) {}

    [[nodiscard]] const std::any& AsyncState() const override { return state_; }
    [[nodiscard]] bool IsCompleted() const override {
        std::unique_lock lock(mutex_);
        return completed_;
    }
    [[nodiscard]] bool CompletedSynchronously() const override {
        std::unique_lock lock(mutex_);
        return completed_synchronously_;
    }
    /// AsyncWaitHandle.WaitOne: blocks until completed (true) or `budget` ran out (false).
    [[nodiscard]] bool Wait(Duration budget) {
        std::unique_lock lock(mutex_);
        return completed_ || transport_.wait(event_, lock, budget);
    }

    /// Harness inspection (not .NET API): the outcome without ending the operation.
    struct Outcome {
        bool completed = false;
        std::error_code error;
        std::size_t bytes = 0;
    };
    [[nodiscard]] Outcome outcome() const {
        std::unique_lock lock(mutex_);
        return {completed_, error_, bytes_};
    }

    [[nodiscard]] OperationKind kind() const noexcept { return kind_; }
    /// The socket that started the operation (identity only).
    [[nodiscard]] const void* owner() const noexcept { return owner_; }

private:
    friend class Socket<T>;

    T& transport_;
    typename T::Mutex& mutex_;  // the owning socket's lock guards everything below
    const OperationKind kind_;
    const void* const owner_;
    AsyncCallback callback_;
    std::any state_;
    typename T::Event event_;
    bool completed_ = false;
    bool completed_synchronously_ = false;
    bool ended_ = false;
    std::error_code error_;
    std::size_t bytes_ = 0;
    ThreadId initiator_{};
    std::optional<ExitWatchId> exit_watch_;
    bool in_flight_ = false;       // the transport holds an async operation for it
    bool cancel_requested_ = false;
    // send / receive: the validated buffer pieces (the caller's arrays are kept alive here).
    std::vector<std::shared_ptr<std::vector<std::byte>>> arrays_;
    std::vector<std::span<std::byte>> pieces_;
    std::size_t total_ = 0;
    std::size_t done_ = 0;
    // accept: the accepted socket.
    std::shared_ptr<Socket<T>> accepted_;
};

}  // namespace faultline::model
