// faultline_bench_events: events per second of sim::Scheduler against a bare event loop (a
// std::priority_queue of std::function callbacks keyed by (time, sequence)), both running the same
// self-rescheduling workload with about 1,024 events pending, in the same process and run,
// interleaved and pinned to one CPU. Targets: sim/bare >= 0.5 and sim >= 5 million events/s.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <queue>
#include <vector>

#include "bench_support.h"
#include "faultline/sim/scheduler.h"

namespace faultline::bench {
namespace {

constexpr std::size_t kPending = 1024;
constexpr std::uint64_t kEventsPerRun = 2'000'000;
constexpr int kRuns = 7;
constexpr double kRatioMin = 0.5;
constexpr double kSimEventsPerSecondMin = 5e6;

/// The reference: what any discrete-event loop needs and nothing more.
class BareLoop {
public:
    void post_after(model::Duration delay, std::function<void()> task) {
        queue_.push(Entry{now_ + delay, sequence_next_++, std::move(task)});
    }
    bool run_one() {
        if (queue_.empty()) {
            return false;
        }
        // top() is const; the task is moved out before pop, as the Scheduler does.
        Entry& top = const_cast<Entry&>(queue_.top());  // NOLINT: see above
        now_ = top.when;
        std::function<void()> task = std::move(top.task);
        queue_.pop();
        task();
        return true;
    }

private:
    struct Entry {
        model::TimePoint when;
        std::uint64_t sequence;
        std::function<void()> task;
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
    std::priority_queue<Entry, std::vector<Entry>, Later> queue_;
};

/// Each event counts itself and, until the budget is spent, posts one more after a pseudo-random
/// delay of 1..1024 ns, so the queue holds ~kPending events throughout. The callback captures one
/// pointer: a plain small lambda that std::function stores without allocating.
template <typename Loop>
class Workload {
public:
    Workload(Loop& loop, std::uint64_t events) : loop_(loop), posts_left_(events) {}

    /// Runs the workload to completion; returns the events that ran.
    std::uint64_t run() {
        for (std::size_t i = 0; i < kPending; ++i) {
            post_next();
        }
        while (loop_.run_one()) {
        }
        return fired_;
    }

private:
    void post_next() {
        if (posts_left_ == 0) {
            return;
        }
        --posts_left_;
        // xorshift64: the same delays, in the same order, for both loops.
        state_ ^= state_ << 13U;
        state_ ^= state_ >> 7U;
        state_ ^= state_ << 17U;
        const auto delay = model::Duration(static_cast<std::int64_t>(1 + (state_ & 1023U)));
        loop_.post_after(delay, [this] { fire(); });
    }
    void fire() {
        ++fired_;
        post_next();
    }

    Loop& loop_;
    std::uint64_t posts_left_;
    std::uint64_t fired_ = 0;
    std::uint64_t state_ = 0x9e3779b97f4a7c15ULL;
};

/// Events per second of one fresh loop running the workload.
template <typename Loop>
double measure() {
    Loop loop;
    Workload<Loop> workload(loop, kEventsPerRun);
    const Clock::time_point start = Clock::now();
    const std::uint64_t events = workload.run();
    const double seconds = seconds_between(start, Clock::now());
    if (events != kEventsPerRun) {
        std::fprintf(stderr,
                     "workload ran %llu events, expected %llu\n",
                     static_cast<unsigned long long>(events),
                     static_cast<unsigned long long>(kEventsPerRun));
    }
    return static_cast<double>(events) / seconds;
}

int run() {
    const bool pinned = pin_this_thread({0});
    std::printf("faultline_bench_events: sim::Scheduler vs bare priority_queue<std::function>\n");
    std::printf("placement: single thread pinned to CPU %s%s\n",
                this_thread_cpus().c_str(),
                pinned ? "" : " (pinning refused)");
    std::printf("workload: %zu pending, %llu events per run, %d interleaved runs each, medians\n",
                kPending,
                static_cast<unsigned long long>(kEventsPerRun),
                kRuns);
    // Warm-up: page in the allocator and the code of both loops.
    static_cast<void>(measure<sim::Scheduler>());
    static_cast<void>(measure<BareLoop>());
    std::vector<double> sim_rates;
    std::vector<double> bare_rates;
    std::vector<double> ratios;
    for (int i = 0; i < kRuns; ++i) {
        const double sim_rate = measure<sim::Scheduler>();
        const double bare_rate = measure<BareLoop>();
        sim_rates.push_back(sim_rate);
        bare_rates.push_back(bare_rate);
        ratios.push_back(sim_rate / bare_rate);
    }
    const double sim_rate = median(sim_rates);
    const double bare_rate = median(bare_rates);
    const double ratio = median(ratios);
    std::printf("sim::Scheduler  %7.2f M events/s (runs %s)\n",
                sim_rate / 1e6,
                spread(sim_rates, 1e6, "%.2f").c_str());
    std::printf("bare loop       %7.2f M events/s (runs %s)\n",
                bare_rate / 1e6,
                spread(bare_rates, 1e6, "%.2f").c_str());
    std::printf("ratio sim/bare  %7.2f (median of per-pair ratios, runs %s)\n",
                ratio,
                spread(ratios, 1, "%.2f").c_str());
    const bool ratio_pass = ratio >= kRatioMin;
    const bool rate_pass = sim_rate >= kSimEventsPerSecondMin;
    std::printf("target: ratio >= %.1f: %s; sim >= %.0f M events/s: %s\n",
                kRatioMin,
                pass_or_miss(ratio_pass),
                kSimEventsPerSecondMin / 1e6,
                pass_or_miss(rate_pass));
    print_result("sim events/s (Scheduler, 1024 pending, CPU 0)",
                 fixed(sim_rate / 1e6, 2) + " M/s",
                 ">= 5 M/s",
                 pass_or_miss(rate_pass));
    print_result("bare loop events/s (same run)", fixed(bare_rate / 1e6, 2) + " M/s", "-", "-");
    print_result("ratio sim/bare events/s",
                 fixed(ratio, 2) + " (pairs " + spread(ratios, 1, "%.2f") + ")",
                 ">= 0.5",
                 pass_or_miss(ratio_pass));
    return 0;
}

}  // namespace
}  // namespace faultline::bench

int main() { return faultline::bench::bench_main(faultline::bench::run); }
