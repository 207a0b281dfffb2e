// Scheduler: runs tasks in virtual time. Events are ordered by (time, sequence), so equal
// deadlines run in posting order on every machine. Cancelled timers are skipped without moving
// the clock. It knows nothing of threads or the network.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
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
    [[nodiscard]] bool empty() const noexcept {
        return near_.size() + far_.size() == cancelled_count_;
    }

    void post_at(model::TimePoint when, Task task, TimerKey key = 0) {
        FAULTLINE_ASSERT(when >= now_);
        if (key != 0) {
            Slot& slot = slot_of(key);
            FAULTLINE_ASSERT(slot.state == SlotState::made);
            slot.state = SlotState::pending;
        }
        // Timers far ahead (a send's whole-transaction timeout, a wait's budget) rarely run
        // before they are cancelled or the run ends; keeping them apart keeps the heap that
        // every event pops small. run_one takes the earlier of the two tops, so the order is
        // the same (time, sequence) order as with one heap.
        std::vector<Entry>& heap = when - now_ > kFarAhead ? far_ : near_;
        heap.push_back(Entry{when, sequence_next_++, key, std::move(task)});
        std::push_heap(heap.begin(), heap.end(), Later{});
    }
    void post_after(model::Duration delay, Task task, TimerKey key = 0) {
        FAULTLINE_ASSERT(delay >= model::Duration::zero());
        post_at(now_ + delay, std::move(task), key);
    }
    /// A key for one post_at; it stays valid until that task runs or is skipped.
    [[nodiscard]] TimerKey make_timer_key() {
        std::uint32_t index = 0;
        if (free_slots_.empty()) {
            index = static_cast<std::uint32_t>(slots_.size());
            slots_.push_back(Slot{});
        } else {
            index = free_slots_.back();
            free_slots_.pop_back();
        }
        Slot& slot = slots_[index];
        slot.state = SlotState::made;
        return (TimerKey{slot.generation} << 32U) | (TimerKey{index} + 1);
    }
    /// The task posted with `key` will not run. Keys already run or cancelled are ignored.
    void cancel(TimerKey key) {
        if (key == 0) {
            return;
        }
        const std::uint64_t index = (key & 0xffffffffU) - 1;
        if (index >= slots_.size()) {
            return;
        }
        Slot& slot = slots_[index];
        if (slot.generation != static_cast<std::uint32_t>(key >> 32U) ||
            slot.state != SlotState::pending) {
            return;
        }
        slot.state = SlotState::cancelled;
        ++cancelled_count_;
        // Waits usually end long before their budget: drop the dead entries once they are the
        // majority, so the heap holds live events. Order among the rest is unchanged: (time,
        // sequence) is a total order.
        if (cancelled_count_ >= kCompactCancelledMin &&
            cancelled_count_ * 2 > near_.size() + far_.size()) {
            compact(near_);
            compact(far_);
            FAULTLINE_ASSERT(cancelled_count_ == 0);
        }
    }

    /// Runs one task; false if there was none. Time never runs backwards.
    bool run_one() {
        while (!near_.empty() || !far_.empty()) {
            std::vector<Entry>& heap =
                far_.empty() || (!near_.empty() && Later{}(far_.front(), near_.front())) ? near_
                                                                                         : far_;
            std::pop_heap(heap.begin(), heap.end(), Later{});
            Entry& top = heap.back();
            if (top.key != 0 && release(top.key)) {
                heap.pop_back();
                continue;
            }
            FAULTLINE_ASSERT(top.when >= now_);
            now_ = top.when;
            Task task = std::move(top.task);
            heap.pop_back();
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
    static constexpr std::size_t kCompactCancelledMin = 1024;
    static constexpr model::Duration kFarAhead = std::chrono::seconds(1);

    struct Entry {
        model::TimePoint when;
        std::uint64_t sequence;
        TimerKey key;
        Task task;
    };
    /// std::push_heap keeps the greatest first, so "greater" means "runs earlier".
    struct Later {
        bool operator()(const Entry& left, const Entry& right) const noexcept {
            if (left.when != right.when) {
                return left.when > right.when;
            }
            return left.sequence > right.sequence;
        }
    };
    enum class SlotState : std::uint8_t { free, made, pending, cancelled };
    /// One cancellable timer. A key is (generation << 32) | (index + 1); the generation moves on
    /// when the slot is freed, so a stale key never matches a later timer.
    struct Slot {
        std::uint32_t generation = 0;
        SlotState state = SlotState::free;
    };

    Slot& slot_of(TimerKey key) {
        const std::uint64_t index = (key & 0xffffffffU) - 1;
        FAULTLINE_ASSERT(index < slots_.size());
        Slot& slot = slots_[index];
        FAULTLINE_ASSERT(slot.generation == static_cast<std::uint32_t>(key >> 32U));
        return slot;
    }

    /// Frees the slot of a task leaving the heap; true if that task was cancelled.
    bool release(TimerKey key) {
        Slot& slot = slot_of(key);
        const bool cancelled = slot.state == SlotState::cancelled;
        if (cancelled) {
            --cancelled_count_;
        }
        slot.state = SlotState::free;
        ++slot.generation;
        free_slots_.push_back(static_cast<std::uint32_t>((key & 0xffffffffU) - 1));
        return cancelled;
    }

    void compact(std::vector<Entry>& heap) {
        std::erase_if(heap, [this](const Entry& entry) {
            return entry.key != 0 && slot_of(entry.key).state == SlotState::cancelled &&
                   release(entry.key);
        });
        std::make_heap(heap.begin(), heap.end(), Later{});
    }

    model::TimePoint now_{};
    std::uint64_t sequence_next_ = 0;
    std::uint64_t events_run_ = 0;
    std::vector<Entry> near_;  // due within kFarAhead of the time they were posted
    std::vector<Entry> far_;
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_slots_;
    std::size_t cancelled_count_ = 0;
};

}  // namespace faultline::sim
