// Shared helpers of the benchmark programs: wall-clock timing, medians, CPU pinning and the one
// result line per figure that tools/bench/run_all turns into a table. Benchmarks are programs,
// not tests: they print figures and a PASS/MISS against their target and never fail a build.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace faultline::bench {

using Clock = std::chrono::steady_clock;

/// Every benchmark's main(): runs `run` and turns an exception escaping it into a message and
/// exit status 1.
template <typename Run>
int bench_main(Run run) noexcept {
    try {
        return run();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "benchmark failed: %s\n", error.what());
        return 1;
    }
}

/// CPU time of `clock` (CLOCK_THREAD_CPUTIME_ID, CLOCK_PROCESS_CPUTIME_ID) in seconds: unlike
/// wall time it does not count the time other processes on a busy machine take from this one.
[[nodiscard]] inline double cpu_seconds(clockid_t clock) {
    timespec now{};
    clock_gettime(clock, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

/// CPU time of the calling thread, in seconds.
[[nodiscard]] inline double thread_cpu_seconds() { return cpu_seconds(CLOCK_THREAD_CPUTIME_ID); }

/// Seconds between two points of the steady clock.
[[nodiscard]] inline double seconds_between(Clock::time_point start, Clock::time_point end) {
    return std::chrono::duration<double>(end - start).count();
}

/// The median of `samples` (the mean of the two middle ones for an even count); 0 when empty.
[[nodiscard]] inline double median(std::vector<double> samples) {
    if (samples.empty()) {
        return 0;
    }
    std::sort(samples.begin(), samples.end());
    const std::size_t middle = samples.size() / 2;
    if (samples.size() % 2 == 1) {
        return samples[middle];
    }
    return (samples[middle - 1] + samples[middle]) / 2;
}

/// "min .. max" of `samples`, each formatted with `format` after dividing by `scale`.
[[nodiscard]] inline std::string spread(const std::vector<double>& samples,
                                        double scale,
                                        const char* format) {
    if (samples.empty()) {
        return "-";
    }
    const auto [low, high] = std::minmax_element(samples.begin(), samples.end());
    char text[96];
    const std::string both = std::string(format) + " .. " + format;
    std::snprintf(text, sizeof text, both.c_str(), *low / scale, *high / scale);
    return text;
}

/// Pins the calling thread to `cpus`. Threads it creates afterwards inherit the mask. False if
/// the kernel refused (e.g. a CPU that does not exist).
inline bool pin_this_thread(std::initializer_list<int> cpus) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (const int cpu : cpus) {
        const auto index = static_cast<std::size_t>(cpu);
        CPU_SET(index, &set);
    }
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

/// The CPUs the calling thread may run on, e.g. "0" or "0,1".
[[nodiscard]] inline std::string this_thread_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) != 0) {
        return "?";
    }
    std::string cpus;
    for (std::size_t cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) {
            if (!cpus.empty()) {
                cpus += ',';
            }
            cpus += std::to_string(cpu);
        }
    }
    return cpus;
}

/// A number with `digits` decimals, for result lines.
[[nodiscard]] inline std::string fixed(double value, int digits) {
    char text[64];
    std::snprintf(text, sizeof text, "%.*f", digits, value);
    return text;
}

/// Prints the machine-readable line run_all collects:
/// `RESULT | figure | measured | target | PASS, MISS or -`. `status` is "-" for a figure
/// without a target.
inline void print_result(std::string_view figure,
                         std::string_view measured,
                         std::string_view target,
                         std::string_view status) {
    std::printf("RESULT | %.*s | %.*s | %.*s | %.*s\n",
                static_cast<int>(figure.size()),
                figure.data(),
                static_cast<int>(measured.size()),
                measured.data(),
                static_cast<int>(target.size()),
                target.data(),
                static_cast<int>(status.size()),
                status.data());
    std::fflush(stdout);
}

[[nodiscard]] inline const char* pass_or_miss(bool pass) { return pass ? "PASS" : "MISS"; }

}  // namespace faultline::bench
