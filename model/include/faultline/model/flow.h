// Flow<R>: a lazily started coroutine that produces one R. model/ writes a protocol exchange with
// it as straight-line code whose steps are transport completions: an awaited operation suspends
// the flow, and the operation's handler resumes it on whatever thread the transport ran the
// handler on. No thread waits between steps, so on real sockets a reply is read and the next
// command written by the thread that saw the reply arrive, with no hand-off to another thread.
//
// A Flow runs when awaited (`co_await child()`): the awaiting coroutine calls into it, and
// whichever of the two reaches the hand-off second continues the parent. A child that finished
// inside that call lets the parent go on in the same frame, so a loop over children that never
// suspend does not grow the stack (symmetric transfer alone would need the tail call GCC does
// not guarantee: at -O0 or under ASan a long loop of them overflows). A child that suspended is
// resumed later, by the transport, and resumes its parent when it returns: one nested call per
// level of flows, bounded by how deeply flows call flows, not by how many steps they take.
// Detached is the root: a coroutine that starts at once and frees itself when it returns.
// Exceptions escaping a Flow's body are rethrown from the parent's co_await.
#pragma once

#include <atomic>
#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace faultline::model {

template <typename R>
class [[nodiscard]] Flow {
public:
    struct promise_type;
    using Handle = std::coroutine_handle<promise_type>;

    struct promise_type {
        std::optional<R> value;
        std::exception_ptr error;
        std::coroutine_handle<> parent = std::noop_coroutine();
        // Set by the first of {the child finished, the parent's await_suspend returned}; the
        // second one continues the parent. Atomic: a child resumed by a transport handler may
        // finish on another thread while the parent's await_suspend is still returning.
        std::atomic<bool> handoff{false};

        Flow get_return_object() noexcept { return Flow(Handle::from_promise(*this)); }
        std::suspend_always initial_suspend() noexcept { return {}; }
        struct ReturnToParent {
            [[nodiscard]] bool await_ready() const noexcept { return false; }
            std::coroutine_handle<> await_suspend(Handle self) noexcept {
                promise_type& promise = self.promise();
                if (promise.handoff.exchange(true, std::memory_order_acq_rel)) {
                    return promise.parent;  // the parent is suspended: continue it
                }
                return std::noop_coroutine();  // still inside the parent's await_suspend
            }
            void await_resume() const noexcept {}
        };
        ReturnToParent final_suspend() noexcept { return {}; }
        // By value, so `co_return e;` converts as `return e;` would in a function returning R.
        void return_value(R result) { value.emplace(std::move(result)); }
        void unhandled_exception() noexcept { error = std::current_exception(); }
    };

    Flow(Flow&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
    Flow(const Flow&) = delete;
    Flow& operator=(const Flow&) = delete;
    Flow& operator=(Flow&&) = delete;
    ~Flow() {
        if (handle_) {
            handle_.destroy();
        }
    }

    // Awaiting a Flow starts it; the awaiting coroutine resumes with its result.
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> parent) {
        promise_type& promise = handle_.promise();
        promise.parent = parent;
        handle_.resume();  // until the child suspends or finishes
        // true: the child is still running and will continue us; false: it finished, go on.
        return !promise.handoff.exchange(true, std::memory_order_acq_rel);
    }
    R await_resume() {
        promise_type& promise = handle_.promise();
        if (promise.error) {
            std::rethrow_exception(promise.error);
        }
        return std::move(*promise.value);
    }

private:
    explicit Flow(Handle handle) noexcept : handle_(handle) {}

    Handle handle_;
};

/// A root coroutine: runs from its call until its first suspension, continues wherever it is
/// resumed, and destroys its own frame when it returns. Its body must not let exceptions escape.
struct Detached {
    struct promise_type {
        Detached get_return_object() const noexcept { return {}; }
        std::suspend_never initial_suspend() const noexcept { return {}; }
        std::suspend_never final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        [[noreturn]] void unhandled_exception() const noexcept { std::terminate(); }
    };
};

}  // namespace faultline::model
