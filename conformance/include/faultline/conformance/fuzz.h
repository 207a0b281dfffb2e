// Scenario fuzzing: generated scenario files, run on sim and judged by the oracle's invariants,
// and a shrinker that cuts a failing scenario down to a small file that fails the same way.
//
// A generated scenario is ordinary scenario JSON (it goes through the loader, so it is valid by
// construction) with no expectations of its own: what fails it is what the oracle checks on
// every run (one completion per operation, exactly-once SendCompleted, byte accounting, message
// integrity, delivery classification, liveness, internal assertions). Generation is a pure
// function of (family, seed): the same seed gives the same file on every machine and build.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "faultline/conformance/run.h"

namespace faultline::conformance {

/// What a generator produces: "send" (BeginSend/EndSend workloads: send_all loops, pending
/// sends, callbacks, shutdown, threads that exit, under resets, closes, partial sends, stalls,
/// latency, would-block sends and small buffers), "accept" (AcceptAsync with reused and
/// re-armed args and BeginAccept/EndAccept on one listener, clients arriving before and after,
/// half-open scans, small backlogs) or "smtp" (SmtpClient sends against a scripted server: any reply
/// code at any command, closes, resets, drops mid-DATA and after the dot, delays, cancels,
/// second sends, synchronous sends, recipients refused, any body, network faults).
inline const std::vector<std::string>& fuzz_families() {
    static const std::vector<std::string> families = {"send", "accept", "smtp"};
    return families;
}

/// The families as one line for messages: "send, accept, smtp".
inline std::string fuzz_family_list() {
    std::string list;
    for (const std::string& family : fuzz_families()) {
        list += (list.empty() ? "" : ", ") + family;
    }
    return list;
}

/// The scenario for (family, seed). Throws std::invalid_argument for an unknown family.
[[nodiscard]] nlohmann::json generate_scenario(const std::string& family, std::uint64_t seed);

/// The completion paths (names from fuzz_completion_paths()) a run's steps took.
using CompletionPaths = std::set<std::string>;

/// Loads `scenario` (as the file fuzz/<name>.json) and runs it on sim under `profile` without a
/// trace: the run is the same traced or not, so a failure's trace comes from replaying its file
/// (the outcome's trace_hash is empty). With `paths`, adds the completion paths the steps took.
/// A scenario the loader refuses comes back failed, its failure starting "scenario refused by
/// the loader: ".
[[nodiscard]] RunOutcome run_scenario_json(const nlohmann::json& scenario,
                                           const std::string& profile,
                                           CompletionPaths* paths = nullptr);

/// The completion paths one step's observation shows: synchronous (completed synchronously),
/// pending (not, or no completion yet), error (a Socket or SMTP exception, or SendCompleted's
/// error), cancel, unknown (delivery unknown).
void add_completion_paths(const Observation& observation, CompletionPaths& paths);

/// An observe hook (SimRunOptions, HarnessOptions) adding the paths of every step's observation
/// to `paths` (callbacks repeat their operation's path and are skipped). `paths` must outlive
/// the run.
[[nodiscard]] std::function<void(const std::string&, const Observation&)> completion_path_observer(
    CompletionPaths& paths);

/// Whether the run failed because the loader refused the scenario (a shrink that dropped a step
/// another step names, say): such a scenario is broken, not a smaller counterexample.
[[nodiscard]] bool refused_by_loader(const RunOutcome& outcome);

/// The property a failure broke: the failure text with numbers, quoted names and anything after
/// the first ':' that follows them dropped, so the same bug found with other sizes or ids has
/// the same signature and the shrinker keeps to it.
[[nodiscard]] std::string failure_signature(const RunOutcome& outcome);

/// What the shrinker did.
struct ShrinkResult {
    nlohmann::json scenario;
    RunOutcome outcome;    // the last failing run of `scenario`
    std::size_t runs = 0;  // candidate runs tried
    std::size_t steps_before = 0;
    std::size_t steps_after = 0;
};

/// Greedy shrinking on the file itself: removes threads, steps, faults, script entries,
/// recipients and headers, drops optional settings, and halves sizes, byte counts, repeat
/// counts and strings, keeping each change only if `still_fails(outcome)` holds for the changed
/// scenario; stops at a fixed point or after `max_runs` candidate runs.
[[nodiscard]] ShrinkResult shrink_scenario(
    const nlohmann::json& failing,
    const std::string& profile,
    const std::function<bool(const RunOutcome&)>& still_fails,
    std::size_t max_runs = 2000);

/// The one-change-smaller variants of `scenario` that shrink_scenario tries, most promising
/// first, each strictly lighter than `scenario` (so following them always ends): a thread, step,
/// fault, script entry, recipient, header or optional key dropped, or a number or string halved.
/// Some may be refused by the loader (a step whose target was dropped).
[[nodiscard]] std::vector<nlohmann::json> shrink_candidates(const nlohmann::json& scenario);

/// Total number of steps over all threads of a scenario.
[[nodiscard]] std::size_t scenario_step_count(const nlohmann::json& scenario);

/// The fault kinds and completion paths a campaign met ("sometimes" checks).
struct FuzzCoverage {
    std::map<std::string, std::uint64_t> faults;  // kind → scenarios that scheduled it
    std::map<std::string, std::uint64_t> paths;   // completion path → runs that took it
};

/// Every fault kind the generators can schedule and every completion path they aim at; a
/// campaign reports which of them never fired.
[[nodiscard]] const std::vector<std::string>& fuzz_fault_kinds();
[[nodiscard]] const std::vector<std::string>& fuzz_completion_paths();

/// Adds what one run met: the faults the scenario scheduled and the completion paths its steps
/// took (from run_scenario_json).
void record_coverage(const nlohmann::json& scenario,
                     const CompletionPaths& paths,
                     FuzzCoverage& coverage);

/// One failure, shrunk and written out.
struct FuzzFinding {
    std::string family;
    std::uint64_t seed = 0;
    std::string profile;
    std::string signature;
    std::string path;  // the regression file
    std::size_t steps_before = 0;
    std::size_t steps_after = 0;
    std::string found_by = "faultline fuzz";  // for the file's description
};

/// Writes the shrunk scenario as `dir`/<name>.json with its seed, profile, the faultline
/// version and the failed property in the file (name, seed, profiles, description). Returns
/// the path.
[[nodiscard]] std::string write_regression(const std::string& dir,
                                           const std::string& name,
                                           nlohmann::json scenario,
                                           const FuzzFinding& finding,
                                           const RunOutcome& outcome);

}  // namespace faultline::conformance
