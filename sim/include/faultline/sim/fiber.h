// Fiber: a stackful coroutine (a hand-written stack switch on x86-64 Linux, ucontext elsewhere),
// for logical threads that block (EndSend before completion) without an OS thread. Only the
// scheduler context resumes fibers; a fiber suspends back to it. Not thread-safe: one OS thread
// drives all fibers of a world.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

namespace faultline::sim {

class Fiber {
public:
    /// `body` runs on the fiber's own stack at the first resume(). It must not let exceptions
    /// escape (the owner catches them inside the body).
    Fiber(std::function<void()> body, std::size_t stack_bytes);
    Fiber(const Fiber&) = delete;
    Fiber& operator=(const Fiber&) = delete;
    ~Fiber();

    /// Switches from the scheduler context into the fiber until it suspends or finishes.
    void resume();
    /// Called on the fiber: switches back to the scheduler context.
    void suspend();
    [[nodiscard]] bool finished() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace faultline::sim
