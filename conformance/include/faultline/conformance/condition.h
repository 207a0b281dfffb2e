// Condition<T>: "wait until a predicate holds" over any Transport's sticky one-shot events, with a
// budget on every wait. notify() wakes all waiters; each re-checks its predicate.
#pragma once

#include <algorithm>
#include <memory>
#include <mutex>
#include <vector>

#include "faultline/model/transport.h"

namespace faultline::conformance {

template <model::Transport T>
class Condition {
public:
    explicit Condition(T& transport) : transport_(transport) {}

    /// With `lock` held: blocks until `ready()` or the budget runs out; returns ready().
    template <typename Ready>
    bool wait_until(std::unique_lock<typename T::Mutex>& lock, Ready&& ready,
                    model::Duration budget) {
        const model::TimePoint deadline = transport_.now() + budget;
        while (!ready()) {
            const model::Duration left = deadline - transport_.now();
            if (left <= model::Duration::zero()) {
                return false;
            }
            auto event = std::make_shared<typename T::Event>();
            waiters_.push_back(event);
            const bool woken = transport_.wait(*event, lock, left);
            waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), event), waiters_.end());
            if (!woken) {
                return ready();
            }
        }
        return true;
    }

    /// With the same lock held: wakes every waiter.
    void notify() {
        for (auto& event : waiters_) {
            transport_.signal(*event);
        }
        waiters_.clear();
    }

private:
    T& transport_;
    std::vector<std::shared_ptr<typename T::Event>> waiters_;
};

}  // namespace faultline::conformance
