// Flow<R> and Detached: the coroutine plumbing SmtpClient's transaction runs on.
#include "faultline/model/flow.h"

#include <gtest/gtest.h>

#include <coroutine>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace faultline::model {
namespace {

/// A hand-driven "operation": awaiting it parks the coroutine until the test resumes it, as a
/// transport handler would.
struct Parked {
    std::vector<std::coroutine_handle<>>* queue;
    int value = 0;
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> flow) { queue->push_back(flow); }
    [[nodiscard]] int await_resume() const noexcept { return value; }
};

Flow<int> immediate(int value) { co_return value; }

Flow<int> parked(std::vector<std::coroutine_handle<>>* queue, int value) {
    const int got = co_await Parked{.queue = queue, .value = value};
    co_return got + 1;
}

Flow<std::string> thrower() {
    throw std::runtime_error("inside the flow");
    co_return std::string();  // NOLINT: unreachable, makes this a coroutine
}

Flow<long> sum_of_immediates(int count) {
    long total = 0;
    for (int index = 0; index < count; ++index) {
        total += co_await immediate(index);
    }
    co_return total;
}

Detached drive(Flow<long> flow, long* out) { *out = co_await std::move(flow); }

Detached drive_int(Flow<int> flow, int* out, bool* done) {
    *out = co_await std::move(flow);
    *done = true;
}

Detached drive_string(Flow<std::string> flow, std::string* error) {
    try {
        static_cast<void>(co_await std::move(flow));
    } catch (const std::runtime_error& caught) {
        *error = caught.what();
    }
}

TEST(Flow, IsLazyAndReturnsItsValueToTheAwaiter) {
    long out = -1;
    drive(sum_of_immediates(4), &out);
    EXPECT_EQ(out, 0 + 1 + 2 + 3);
}

TEST(Flow, ManyChildrenThatFinishWithoutSuspendingDoNotGrowTheStack) {
    // A million co_awaits of children that finish inside the call would overflow the stack if
    // each child continued its parent by a nested call (GCC does not guarantee the tail call of
    // symmetric transfer at -O0 or under ASan).
    long out = -1;
    drive(sum_of_immediates(1'000'000), &out);
    EXPECT_EQ(out, 499'999'500'000L);
}

TEST(Flow, SuspendsAtAnOperationAndContinuesWhereItIsResumed) {
    std::vector<std::coroutine_handle<>> queue;
    int out = -1;
    bool done = false;
    drive_int(parked(&queue, 41), &out, &done);
    ASSERT_EQ(queue.size(), 1U);  // parked, not finished inside the call that started it
    EXPECT_FALSE(done);
    queue.front().resume();
    EXPECT_TRUE(done);
    EXPECT_EQ(out, 42);
}

Flow<long> sum_of_parked(std::vector<std::coroutine_handle<>>* queue, int count) {
    long total = 0;
    for (int index = 0; index < count; ++index) {
        total += co_await parked(queue, index);  // two levels: this flow, then Parked
    }
    co_return total;
}

TEST(Flow, ManyStepsResumedFromOutsideDoNotGrowTheStackEither) {
    // As a transport drives a send: every step suspends and a handler resumes it.
    std::vector<std::coroutine_handle<>> queue;
    long out = -1;
    constexpr int kSteps = 200'000;
    drive(sum_of_parked(&queue, kSteps), &out);
    for (int step = 0; step < kSteps; ++step) {
        ASSERT_EQ(queue.size(), 1U) << step;
        const std::coroutine_handle<> next = queue.back();
        queue.pop_back();
        next.resume();
    }
    EXPECT_TRUE(queue.empty());
    EXPECT_EQ(out, static_cast<long>(kSteps) * (kSteps - 1) / 2 + kSteps);
}

TEST(Flow, AnExceptionInsideIsRethrownFromTheAwait) {
    std::string error;
    drive_string(thrower(), &error);
    EXPECT_EQ(error, "inside the flow");
}

TEST(Flow, AnUnstartedFlowIsDestroyedWithoutRunning) {
    bool ran = false;
    {
        auto flow = [](bool* flag) -> Flow<int> {
            *flag = true;
            co_return 1;
        }(&ran);
        static_cast<void>(flow);
    }
    EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace faultline::model
