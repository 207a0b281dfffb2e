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

// On x86-64 System V a fiber switch is a hand-written stack switch: it saves the callee-saved
// registers and the SSE/x87 control words, as the ABI requires across a call, and nothing else.
// swapcontext also saves and restores the signal mask with a system call on every switch, which
// was a fifth of the simulator's time on SMTP-sized exchanges. Elsewhere ucontext remains.
#if defined(__x86_64__) && defined(__linux__)
#define FAULTLINE_FIBER_ASM_SWITCH 1
#endif

#ifdef FAULTLINE_FIBER_ASM_SWITCH
extern "C" {
/// Pushes the callee-saved state on the current stack, stores the stack pointer in *save, then
/// loads `load` (a stack pointer stored the same way, or a fresh frame) and pops its state.
void faultline_fiber_switch(void** save, void* load);
/// The first return address of a fresh fiber: calls r13(r12) and never returns.
void faultline_fiber_start();
}

asm(R"(
    .text
    .globl faultline_fiber_switch
    .hidden faultline_fiber_switch
    .type faultline_fiber_switch, @function
    .p2align 4
faultline_fiber_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size faultline_fiber_switch, .-faultline_fiber_switch

    .globl faultline_fiber_start
    .hidden faultline_fiber_start
    .type faultline_fiber_start, @function
    .p2align 4
faultline_fiber_start:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    .size faultline_fiber_start, .-faultline_fiber_start
)");
#endif

namespace faultline::sim {

struct Fiber::Impl {
    std::function<void()> body;
    std::unique_ptr<std::byte[]> stack;
    std::size_t stack_bytes = 0;
#ifdef FAULTLINE_FIBER_ASM_SWITCH
    void* fiber_stack_pointer = nullptr;
    void* caller_stack_pointer = nullptr;
#else
    ucontext_t fiber_context{};
    ucontext_t caller_context{};
#endif
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

#ifdef FAULTLINE_FIBER_ASM_SWITCH
    /// faultline_fiber_start calls this with the Impl in the first argument register.
    static void entry(Impl* self) { run(self); }
#else
    static void entry(unsigned int high, unsigned int low) {
        const auto address = (static_cast<std::uintptr_t>(high) << 32U) | low;
        run(reinterpret_cast<Impl*>(address));  // NOLINT: makecontext passes ints
    }
#endif

    /// The fiber's whole life: the body, then back to the caller for good.
    static void run(Impl* self) {
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
#ifdef FAULTLINE_FIBER_ASM_SWITCH
        faultline_fiber_switch(&self->fiber_stack_pointer, self->caller_stack_pointer);
#else
        setcontext(&self->caller_context);
#endif
    }

#ifdef FAULTLINE_FIBER_ASM_SWITCH
    /// A fresh frame at the top of the stack, laid out as faultline_fiber_switch pops it: control
    /// words, r15, r14, r13 (entry), r12 (this), rbx, rbp, then the return address
    /// faultline_fiber_start in the top slot, so the stack is 16-byte aligned at its call.
    void prepare_first_frame() {
        auto top = reinterpret_cast<std::uintptr_t>(stack.get() + stack_bytes);  // NOLINT
        top &= ~std::uintptr_t{15};
        auto* slot = reinterpret_cast<std::uint64_t*>(top);                 // NOLINT
        *--slot = reinterpret_cast<std::uint64_t>(&faultline_fiber_start);  // NOLINT
        *--slot = 0;                                                        // rbp
        *--slot = 0;                                                        // rbx
        *--slot = reinterpret_cast<std::uint64_t>(this);                    // NOLINT r12
        *--slot = reinterpret_cast<std::uint64_t>(&Impl::entry);            // NOLINT r13
        *--slot = 0;                                                        // r14
        *--slot = 0;                                                        // r15
        // MXCSR 0x1f80 (all exceptions masked, round to nearest) and x87 control word 0x037f,
        // the ABI's initial values.
        *--slot = std::uint64_t{0x1f80} | (std::uint64_t{0x037f} << 32U);
        fiber_stack_pointer = slot;
    }
#endif
};

Fiber::Fiber(std::function<void()> body, std::size_t stack_bytes) : impl_(std::make_unique<Impl>()) {
    impl_->body = std::move(body);
    impl_->stack_bytes = stack_bytes;
    // Uninitialised on purpose: zeroing 256 KiB per logical thread touched every page of a stack
    // that a thread mostly never reaches (a third of a generated accept run's time).
    impl_->stack.reset(new std::byte[stack_bytes]);
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
#ifdef FAULTLINE_FIBER_ASM_SWITCH
        impl.prepare_first_frame();
#else
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
#endif
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
#ifdef FAULTLINE_FIBER_ASM_SWITCH
    faultline_fiber_switch(&impl.caller_stack_pointer, impl.fiber_stack_pointer);
#else
    FAULTLINE_ASSERT(swapcontext(&impl.caller_context, &impl.fiber_context) == 0);
#endif
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
#ifdef FAULTLINE_FIBER_ASM_SWITCH
    faultline_fiber_switch(&impl.fiber_stack_pointer, impl.caller_stack_pointer);
#else
    FAULTLINE_ASSERT(swapcontext(&impl.fiber_context, &impl.caller_context) == 0);
#endif
#ifdef FAULTLINE_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(impl.fake_stack, &impl.caller_stack_bottom,
                                    &impl.caller_stack_size);
#endif
}

}  // namespace faultline::sim
