// faultline_bench_fuzz_rate: how many generated scenarios the fuzzer checks per CPU second on
// sim, per family (issue #5 targets: at least 2,000 per core for socket scenarios, 500 for
// SMTP scenarios). One thread, the same work as `faultline fuzz`: generate the scenario for a
// seed, load it, run it on sim (untraced, as the fuzzer checks), note its coverage. Seeds 1..N per
// family, both profiles alternating, three runs, medians of the per-run rates.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_support.h"
#include "faultline/conformance/fuzz.h"

namespace faultline::bench {
namespace {

constexpr std::uint64_t kScenarios = 2000;
constexpr int kRuns = 3;

struct Rates {
    double cpu_rate = 0;
    std::string spread;
    std::uint64_t failures = 0;
};

Rates measure(const std::string& family) {
    std::vector<double> rates;
    Rates result;
    for (int run = 0; run < kRuns; ++run) {
        conformance::FuzzCoverage coverage;
        const double start = thread_cpu_seconds();
        for (std::uint64_t seed = 1; seed <= kScenarios; ++seed) {
            const auto scenario = conformance::generate_scenario(family, seed);
            conformance::CompletionPaths paths;
            const auto outcome = conformance::run_scenario_json(
                scenario, seed % 2 == 0 ? "documented" : "dotnet-unix", &paths);
            conformance::record_coverage(scenario, paths, coverage);
            result.failures += outcome.status == conformance::RunStatus::failed ? 1U : 0U;
        }
        rates.push_back(static_cast<double>(kScenarios) / (thread_cpu_seconds() - start));
    }
    result.cpu_rate = median(rates);
    result.spread = spread(rates, 1, "%.0f");
    return result;
}

int run() {
    std::printf("faultline_bench_fuzz_rate: generated scenarios checked per CPU second on sim, "
                "%llu seeds per family, %d runs, one thread (CPUs allowed: %s)\n",
                static_cast<unsigned long long>(kScenarios), kRuns, this_thread_cpus().c_str());
    const Rates send = measure("send");
    const Rates accept = measure("accept");
    const Rates smtp = measure("smtp");
    print_result("fuzz: socket (send) scenarios checked per CPU second",
                 fixed(send.cpu_rate, 0) + " (runs " + send.spread + ")",
                 ">= 2000",
                 pass_or_miss(send.failures == 0 && send.cpu_rate >= 2000));
    print_result("fuzz: socket (accept) scenarios checked per CPU second",
                 fixed(accept.cpu_rate, 0) + " (runs " + accept.spread + ")",
                 ">= 2000",
                 pass_or_miss(accept.failures == 0 && accept.cpu_rate >= 2000));
    print_result("fuzz: SMTP scenarios checked per CPU second",
                 fixed(smtp.cpu_rate, 0) + " (runs " + smtp.spread + ")",
                 ">= 500",
                 pass_or_miss(smtp.failures == 0 && smtp.cpu_rate >= 500));
    return 0;
}

}  // namespace
}  // namespace faultline::bench

int main() { return faultline::bench::bench_main(faultline::bench::run); }
