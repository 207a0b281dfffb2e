// CancellationTokenSource<T> and CancellationToken<T>: System.Threading's cooperative cancellation,
// reduced to what SmtpClient.SendMailAsync needs (M-10). Invariant: a source is cancelled at most
// once, and each registered callback runs at most once, never with the source's lock held. Not
// modelled: timed cancellation (CancelAfter), linked sources, ThrowIfCancellationRequested, and a
// Dispose of the registration that waits for a callback already running.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "faultline/model/transport.h"

namespace faultline::model {

namespace detail {

/// What a source and all its tokens share. `T::Mutex` guards it (a no-op in sim, whose fibers
/// switch only inside waits; std::mutex in real).
template <Transport T>
struct CancellationState {
    typename T::Mutex mutex;
    bool cancelled = false;
    std::uint64_t registration_next = 0;
    std::map<std::uint64_t, std::function<void()>> callbacks;  // by registration order
};

}  // namespace detail

/// CancellationTokenRegistration: Dispose() unregisters the callback if it has not run yet. It
/// does not wait for a callback that is running (.NET's Dispose does).
template <Transport T>
class CancellationTokenRegistration {
public:
    CancellationTokenRegistration() = default;
    CancellationTokenRegistration(std::weak_ptr<detail::CancellationState<T>> state,
                                  std::uint64_t id)
        : state_(std::move(state)), id_(id) {}

    void Dispose() {
        const auto state = state_.lock();
        state_.reset();
        if (!state) {
            return;
        }
        std::unique_lock lock(state->mutex);
        state->callbacks.erase(id_);
    }

private:
    std::weak_ptr<detail::CancellationState<T>> state_;
    std::uint64_t id_ = 0;
};

/// CancellationToken. Default constructed it is CancellationToken.None: never cancelled,
/// CanBeCanceled false, and Register does nothing. Cheap to copy; copies share the source.
template <Transport T>
class CancellationToken {
public:
    CancellationToken() = default;

    [[nodiscard]] bool IsCancellationRequested() const {
        if (!state_) {
            return false;
        }
        std::unique_lock lock(state_->mutex);
        return state_->cancelled;
    }
    [[nodiscard]] bool CanBeCanceled() const { return state_ != nullptr; }

    /// Runs `callback` once when the source is cancelled, on the thread that calls Cancel(); if
    /// it already is, runs it now, inline, before returning (as .NET does). Callbacks must not
    /// throw.
    CancellationTokenRegistration<T> Register(std::function<void()> callback) const {
        if (!state_) {
            return {};
        }
        {
            std::unique_lock lock(state_->mutex);
            if (!state_->cancelled) {
                const std::uint64_t id = state_->registration_next++;
                state_->callbacks.emplace(id, std::move(callback));
                return CancellationTokenRegistration<T>(state_, id);
            }
        }
        callback();
        return {};
    }

private:
    template <Transport>
    friend class CancellationTokenSource;
    explicit CancellationToken(std::shared_ptr<detail::CancellationState<T>> state)
        : state_(std::move(state)) {}

    std::shared_ptr<detail::CancellationState<T>> state_;
};

/// CancellationTokenSource: Cancel() marks every token of this source cancelled and runs the
/// registered callbacks once, newest first (as .NET does), on the calling thread. Later calls do
/// nothing.
template <Transport T>
class CancellationTokenSource {
public:
    CancellationTokenSource() : state_(std::make_shared<detail::CancellationState<T>>()) {}

    [[nodiscard]] CancellationToken<T> Token() const { return CancellationToken<T>(state_); }
    [[nodiscard]] bool IsCancellationRequested() const { return Token().IsCancellationRequested(); }

    void Cancel() {
        std::vector<std::function<void()>> to_run;
        {
            std::unique_lock lock(state_->mutex);
            if (state_->cancelled) {
                return;
            }
            state_->cancelled = true;
            for (auto it = state_->callbacks.rbegin(); it != state_->callbacks.rend(); ++it) {
                to_run.push_back(std::move(it->second));
            }
            state_->callbacks.clear();
        }
        // Without the lock: a callback may take other locks (SmtpClient's) or register again.
        for (auto& callback : to_run) {
            callback();
        }
    }

private:
    std::shared_ptr<detail::CancellationState<T>> state_;
};

}  // namespace faultline::model
