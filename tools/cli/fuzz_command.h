// faultline fuzz: generated scenarios on sim, checked by the oracle, failures shrunk to files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace faultline::cli {

struct FuzzOptions {
    std::optional<double> seconds;       // wall-clock budget (default 60 when no --runs)
    std::optional<std::uint64_t> runs;   // total generated scenarios over all jobs
    std::uint64_t seed = 1;              // the seed space starts here
    std::optional<std::string> profile;  // default: each case draws one
    std::vector<std::string> families;   // default: all
    std::string out = "scenarios/regressions";
    std::uint64_t shard_index = 0;  // --shard I/N: this machine's part of the seed space
    std::uint64_t shard_count = 1;
    unsigned jobs = 1;  // worker processes on this machine
    std::optional<std::string> mutant;  // a planted bug to switch on (mutants builds only)
    std::optional<std::size_t> max_failures;  // each job stops after this many new failures
    std::optional<std::string> junit;  // JUnit file: a testcase per family x profile and finding
};

/// Runs the campaign; 0 when every run passed, 1 when something failed, 2 on bad input.
int fuzz_command(const FuzzOptions& options);

}  // namespace faultline::cli
