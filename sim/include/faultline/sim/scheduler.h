// Scheduler: runs tasks in virtual time. Events are ordered by (time, sequence), so equal
// deadlines run in posting order on every machine. Cancelled timers are skipped without moving
// the clock. It knows nothing of threads or the network.
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <set>
#include <vector>

#include "faultline/model/assert.h"
#include "faultline/model/types.h"

namespace faultline::sim {

class Scheduler {
public:
    using Task = model::Task;
    /// Identifies a cancellable timer; 0 is "not cancellable".
    using TimerKey = std::uint64_t;

    [[nodiscard]] model::TimePoint now() const noexcept { return now_; }
    [[nodiscard]] std::uint64_t events_run() const noexcept { return events_run_; }
    [[nodiscard]] bool empty() const noexcept { return queue_.size() == cancelled_.size(); }

    void post_at(model::TimePoint when, Task task, TimerKey key = 0) {
        FAULTLINE_ASSERT(when >= now_);
        if (key != 0) {
            pending_keys_.insert(key);
        }
        queue_.push(Entry{when, sequence_next_++, key, std::move(task)});
    }
    void post_after(model::Duration delay, Task task, TimerKey key = 0) {
        FAULTLINE_ASSERT(delay >= model::Duration::zero());
        post_at(now_ + delay, std::move(task), key);
    }
    [[nodiscard]] TimerKey make_timer_key() noexcept { return ++timer_key_last_; }
    /// The task posted with `key` will not run. Keys already run or cancelled are ignored.
    void cancel(TimerKey key) {
        if (key != 0 && pending_keys_.contains(key)) {
            cancelled_.insert(key);
        }
    }

    /// Runs one task; false if there was none. Time never runs backwards.
    bool run_one() {
        while (!queue_.empty()) {
            // priority_queue::top is const; the task is moved out before pop.
            Entry& top = const_cast<Entry&>(queue_.top());  // NOLINT: see above
            if (top.key != 0) {
                pending_keys_.erase(top.key);
                if (cancelled_.erase(top.key) != 0) {
                    queue_.pop();
                    continue;
                }
            }
            FAULTLINE_ASSERT(top.when >= now_);
            now_ = top.when;
            Task task = std::move(top.task);
            queue_.pop();
            ++events_run_;
            task();
            return true;
        }
        return false;
    }

    /// Runs until no task is left or `steps_max` tasks ran. False if the budget ran out.
    [[nodiscard]] bool run_until_idle(std::uint64_t steps_max) {
        for (std::uint64_t step = 0; step < steps_max; ++step) {
            if (!run_one()) {
                return true;
            }
        }
        return empty();
    }

private:
    struct Entry {
        model::TimePoint when;
        std::uint64_t sequence;
        TimerKey key;
        Task task;
    };
    struct Later {
        bool operator()(const Entry& left, const Entry& right) const noexcept {
            if (left.when != right.when) {
                return left.when > right.when;
            }
            return left.sequence > right.sequence;
        }
    };

    model::TimePoint now_{};
    std::uint64_t sequence_next_ = 0;
    std::uint64_t events_run_ = 0;
    TimerKey timer_key_last_ = 0;
    std::priority_queue<Entry, std::vector<Entry>, Later> queue_;
    std::set<TimerKey> pending_keys_;
    std::set<TimerKey> cancelled_;
};

}  // namespace faultline::sim
