#include "faultline/sim/fiber.h"

#include <ucontext.h>

#include <cstdint>

#include "faultline/model/assert.h"

#if defined(__SANITIZE_ADDRESS__)
#define FAULTLINE_ASAN_FIBERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAULTLINE_ASAN_FIBERS 1
#endif
#endif

#ifdef FAULTLINE_ASAN_FIBERS
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define FAULTLINE_TSAN_FIBERS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FAULTLINE_TSAN_FIBERS 1
#endif
#endif

#ifdef FAULTLINE_TSAN_FIBERS
#include <sanitizer/tsan_interface.h>
#endif

namespace faultline::sim {

struct Fiber::Impl {
    std::function<void()> body;
    std::unique_ptr<std::byte[]> stack;
    std::size_t stack_bytes = 0;
    ucontext_t fiber_context{};
    ucontext_t caller_context{};
    bool started = false;
    bool running = false;
    bool done = false;
    // ThreadSanitizer: each fiber is its own "thread"; the caller's is remembered per switch.
    void* tsan_fiber = nullptr;
    void* tsan_caller = nullptr;
    // AddressSanitizer bookkeeping for stack switches.
    void* fake_stack = nullptr;
    const void* caller_stack_bottom = nullptr;
    std::size_t caller_stack_size = 0;

    static void entry(unsigned int high, unsigned int low) {
        const auto address = (static_cast<std::uintptr_t>(high) << 32U) | low;
        auto* self = reinterpret_cast<Impl*>(address);  // NOLINT: makecontext passes ints
#ifdef FAULTLINE_ASAN_FIBERS
        __sanitizer_finish_switch_fiber(nullptr, &self->caller_stack_bottom,
                                        &self->caller_stack_size);
#endif
        self->body();
        self->done = true;
        self->running = false;
#ifdef FAULTLINE_TSAN_FIBERS
        __tsan_switch_to_fiber(self->tsan_caller, 0);
#endif
#ifdef FAULTLINE_ASAN_FIBERS
        // This stack is never resumed again: let ASan drop its fake frames.
        __sanitizer_start_switch_fiber(nullptr, self->caller_stack_bottom,
                                       self->caller_stack_size);
#endif
        setcontext(&self->caller_context);
    }
};

Fiber::Fiber(std::function<void()> body, std::size_t stack_bytes) : impl_(std::make_unique<Impl>()) {
    impl_->body = std::move(body);
    impl_->stack_bytes = stack_bytes;
    impl_->stack = std::make_unique<std::byte[]>(stack_bytes);
}

Fiber::~Fiber() {
#ifdef FAULTLINE_TSAN_FIBERS
    if (impl_->tsan_fiber != nullptr) {
        __tsan_destroy_fiber(impl_->tsan_fiber);
    }
#endif
}

bool Fiber::finished() const noexcept { return impl_->done; }

void Fiber::resume() {
    Impl& impl = *impl_;
    FAULTLINE_ASSERT(!impl.done);
    FAULTLINE_ASSERT(!impl.running);
    impl.running = true;
    if (!impl.started) {
        impl.started = true;
        FAULTLINE_ASSERT(getcontext(&impl.fiber_context) == 0);
        impl.fiber_context.uc_stack.ss_sp = impl.stack.get();
        impl.fiber_context.uc_stack.ss_size = impl.stack_bytes;
        impl.fiber_context.uc_link = nullptr;
        const auto address = reinterpret_cast<std::uintptr_t>(&impl);  // NOLINT
        // makecontext takes a C-style variadic function of ints.
        makecontext(&impl.fiber_context,
                    reinterpret_cast<void (*)()>(&Impl::entry),  // NOLINT
                    2, static_cast<unsigned int>(address >> 32U),
                    static_cast<unsigned int>(address & 0xffffffffU));
    }
#ifdef FAULTLINE_TSAN_FIBERS
    if (impl.tsan_fiber == nullptr) {
        impl.tsan_fiber = __tsan_create_fiber(0);
    }
    impl.tsan_caller = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(impl.tsan_fiber, 0);
#endif
#ifdef FAULTLINE_ASAN_FIBERS
    void* fake_stack = nullptr;
    __sanitizer_start_switch_fiber(&fake_stack, impl.stack.get(), impl.stack_bytes);
#endif
    FAULTLINE_ASSERT(swapcontext(&impl.caller_context, &impl.fiber_context) == 0);
#ifdef FAULTLINE_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
}

void Fiber::suspend() {
    Impl& impl = *impl_;
    FAULTLINE_ASSERT(impl.running);
    impl.running = false;
#ifdef FAULTLINE_TSAN_FIBERS
    __tsan_switch_to_fiber(impl.tsan_caller, 0);
#endif
#ifdef FAULTLINE_ASAN_FIBERS
    __sanitizer_start_switch_fiber(&impl.fake_stack, impl.caller_stack_bottom,
                                   impl.caller_stack_size);
#endif
    FAULTLINE_ASSERT(swapcontext(&impl.fiber_context, &impl.caller_context) == 0);
#ifdef FAULTLINE_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(impl.fake_stack, &impl.caller_stack_bottom,
                                    &impl.caller_stack_size);
#endif
}

}  // namespace faultline::sim
