// AcceptLoop<T>: a re-arming accept loop over Socket<T>::AcceptAsync, the server pattern the
// AcceptAsync page describes. Invariants: one SocketAsyncEventArgs, reused, never armed twice;
// synchronous completions are handled in a loop, so the stack never grows with the number of
// queued connections; the handler is never called concurrently with itself. It does not own the
// accepted sockets (the handler does) and makes no calls of its own to the OS or the clock.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "faultline/model/assert.h"
#include "faultline/model/exceptions.h"
#include "faultline/model/socket.h"
#include "faultline/model/socket_async_event_args.h"
#include "faultline/model/socket_error.h"
#include "faultline/model/transport.h"

namespace faultline::model {

/// What the loop does after an accept failed.
enum class AcceptErrorAction : std::uint8_t { rearm, stop };

/// Chooses the action for a failed accept's SocketError. Called on the loop's thread of control.
using AcceptErrorPolicy = std::function<AcceptErrorAction(SocketError error)>;

/// The default policy. ConnectionReset re-arms: the AcceptAsync page says a half-open scan (SYN,
/// SYN-ACK, RST) can complete an accept with it and servers must be prepared for that.
/// OperationAborted re-arms too: if the listener was disposed, re-arming throws
/// ObjectDisposedException and the loop ends; otherwise the thread that started the accept exited
/// (documented profile: I/O dies with its initiating thread) and the loop carries on from the pool.
/// Anything else stops the loop, so a listener that fails at once cannot make it spin.
[[nodiscard]] inline AcceptErrorAction default_accept_error_policy(SocketError error) noexcept {
    return error == SocketError::ConnectionReset || error == SocketError::OperationAborted
               ? AcceptErrorAction::rearm
               : AcceptErrorAction::stop;
}

/// A snapshot of what the loop has seen; for tests and logs.
struct AcceptLoopCounters {
    std::uint64_t accepted = 0;     // sockets handed to the handler
    std::uint64_t resets = 0;       // ConnectionReset completions (half-open scans)
    std::uint64_t aborted = 0;      // OperationAborted completions
    std::uint64_t errors = 0;       // any other failure
    std::uint64_t synchronous = 0;  // AcceptAsync returned false (finished inside the call)
    std::uint64_t pending = 0;      // AcceptAsync returned true
    std::uint64_t completed = 0;    // Completed events raised on the loop's args
};

template <Transport T>
class AcceptLoop : public std::enable_shared_from_this<AcceptLoop<T>> {
    struct Token {};

public:
    using SocketPtr = std::shared_ptr<Socket<T>>;
    /// Receives each accepted, connected socket and owns it from then on. Runs on the thread that
    /// called Start() (for accepts that finish inside it) or on a pool thread; never concurrently
    /// with itself. It must not throw. It may block; the loop re-arms only after it returns.
    using AcceptedHandler = std::function<void(SocketPtr accepted)>;
    /// Runs once when the loop has ended, with the error that ended it (OperationAborted after
    /// Stop() or a disposed listener). No accept is outstanding by then.
    using FinishedHandler = std::function<void(SocketError reason)>;

    /// A loop over `listener`, which must be listening. Nothing happens until Start().
    [[nodiscard]] static std::shared_ptr<AcceptLoop> Create(
        SocketPtr listener,
        AcceptedHandler on_accepted,
        AcceptErrorPolicy on_error = default_accept_error_policy,
        FinishedHandler on_finished = nullptr) {
        return std::make_shared<AcceptLoop>(Token{},
                                            std::move(listener),
                                            std::move(on_accepted),
                                            std::move(on_error),
                                            std::move(on_finished));
    }

    AcceptLoop(Token /*unused*/,
               SocketPtr listener,
               AcceptedHandler on_accepted,
               AcceptErrorPolicy on_error,
               FinishedHandler on_finished)
        : listener_(std::move(listener)),
          on_accepted_(std::move(on_accepted)),
          on_error_(std::move(on_error)),
          on_finished_(std::move(on_finished)),
          args_(SocketAsyncEventArgs<T>::Create()) {
        FAULTLINE_ASSERT(listener_ != nullptr);
        FAULTLINE_ASSERT(static_cast<bool>(on_accepted_));
        FAULTLINE_ASSERT(static_cast<bool>(on_error_));
    }
    AcceptLoop(const AcceptLoop&) = delete;
    AcceptLoop& operator=(const AcceptLoop&) = delete;
    ~AcceptLoop() = default;

    /// Arms the first accept; call once. Connections already queued are accepted inside this call
    /// (the handler runs here), the rest from pool threads. Under the documented profile I/O dies
    /// with the thread that started it, so call this from a thread that outlives the loop or from
    /// the pool (a handler, or a task posted to the transport). The loop keeps itself alive until
    /// it ends; end it with Stop() or by disposing the listener.
    void Start() {
        const bool started_before = started_.exchange(true);
        FAULTLINE_ASSERT(!started_before);
        self_ = this->shared_from_this();
        args_->AddCompleted([weak = this->weak_from_this()](const SocketPtr& /*sender*/,
                                                            const typename Args::Ptr& /*e*/) {
            if (auto self = weak.lock()) {
                self->accept_completed();
            }
        });
        arm_until_pending();
    }

    /// Stops re-arming and disposes the listener, so a pending accept completes with
    /// OperationAborted and the loop ends (FinishedHandler). Safe from any thread, any number of
    /// times, inside the handler too. A connection accepted in the race with Stop() still goes to
    /// the handler.
    void Stop() {
        stop_requested_.store(true);
        listener_->Dispose();
    }

    /// True once the loop has ended; no accept is outstanding then.
    [[nodiscard]] bool finished() const noexcept { return finished_.load(); }

    [[nodiscard]] AcceptLoopCounters counters() const noexcept {
        return AcceptLoopCounters{
            .accepted = accepted_.load(),
            .resets = resets_.load(),
            .aborted = aborted_.load(),
            .errors = errors_.load(),
            .synchronous = synchronous_.load(),
            .pending = pending_.load(),
            .completed = completed_.load(),
        };
    }

    /// Harness inspection (not part of the pattern): the one SocketAsyncEventArgs the loop reuses,
    /// e.g. to add a Completed handler that counts events.
    [[nodiscard]] const std::shared_ptr<SocketAsyncEventArgs<T>>& args() const noexcept {
        return args_;
    }

private:
    using Args = SocketAsyncEventArgs<T>;

    /// while AcceptAsync finishes inside the call (false), handle the result here and go
    /// round again; when it returns true, return: Completed continues on a pool thread by
    /// calling accept_completed(), which re-enters this loop. No path recurses.
    void arm_until_pending() {
        const std::shared_ptr<AcceptLoop> keep = this->shared_from_this();
        for (;;) {
            if (stop_requested_.load()) {
                finish(SocketError::OperationAborted);
                return;
            }
            // after a success AcceptSocket holds the accepted socket (and, under the
            // documented profile, a pre-created one after a failure, A-7); either would be taken
            // as a caller-supplied target, so it is cleared before every reuse.
            args_->AcceptSocket(nullptr);
            // the args are ours alone, and Completed has run before we get here again.
            FAULTLINE_ASSERT(!args_->busy());
            FAULTLINE_ASSERT(!outstanding_.load());
            // Set before the call: on a real transport Completed can run on another thread
            // before AcceptAsync has even returned true.
            outstanding_.store(true);
            bool pending = false;
            try {
                pending = listener_->AcceptAsync(args_);
            } catch (const ObjectDisposedException&) {
                // The listener was disposed (Stop(), or its owner) before this re-arm.
                outstanding_.store(false);
                finish(SocketError::OperationAborted);
                return;
            }
            if (pending) {
                pending_.fetch_add(1);
                return;  // nothing of ours may be touched now: Completed owns the next step
            }
            outstanding_.store(false);
            synchronous_.fetch_add(1);
            if (!handle_result()) {
                return;
            }
        }
    }

    /// The Completed event of an accept that returned true (A-2: exactly once per true return).
    void accept_completed() {
        // Completed never follows a false return, and never comes twice for one true return.
        FAULTLINE_ASSERT(outstanding_.load());
        outstanding_.store(false);
        completed_.fetch_add(1);
        if (handle_result()) {
            arm_until_pending();
        }
    }

    /// Consumes the finished accept's results in args_; returns true to re-arm.
    bool handle_result() {
        const SocketError error = args_->SocketError();
        if (error == SocketError::Success) {
            SocketPtr accepted = args_->AcceptSocket();
            FAULTLINE_ASSERT(accepted != nullptr);
            args_->AcceptSocket(nullptr);  // the handler owns it now
            accepted_.fetch_add(1);
            on_accepted_(std::move(accepted));
            return true;
        }
        if (error == SocketError::ConnectionReset) {
            resets_.fetch_add(1);
        } else if (error == SocketError::OperationAborted) {
            aborted_.fetch_add(1);
        } else {
            errors_.fetch_add(1);
        }
        if (on_error_(error) == AcceptErrorAction::stop) {
            finish(error);
            return false;
        }
        return true;
    }

    void finish(SocketError reason) {
        FAULTLINE_ASSERT(!finished_.load());
        args_->AcceptSocket(nullptr);
        args_->Dispose();  // no operation is running, so this takes effect now
        finished_.store(true);
        if (on_finished_) {
            on_finished_(reason);
        }
        // The caller holds its own reference until it returns.
        self_.reset();
    }

    const SocketPtr listener_;
    const AcceptedHandler on_accepted_;
    const AcceptErrorPolicy on_error_;
    const FinishedHandler on_finished_;
    const std::shared_ptr<Args> args_;
    std::shared_ptr<AcceptLoop> self_;  // set by Start(), dropped by finish()
    std::atomic<bool> started_{false};
    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> outstanding_{false};
    std::atomic<bool> finished_{false};
    std::atomic<std::uint64_t> accepted_{0};
    std::atomic<std::uint64_t> resets_{0};
    std::atomic<std::uint64_t> aborted_{0};
    std::atomic<std::uint64_t> errors_{0};
    std::atomic<std::uint64_t> synchronous_{0};
    std::atomic<std::uint64_t> pending_{0};
    std::atomic<std::uint64_t> completed_{0};
};

}  // namespace faultline::model
