// Running one scenario on one transport under one profile, and what came of it. The sim driver
// builds a World from the scenario (seed, network, faults, swarm) and traces the run; the real
// driver runs the same Harness on loopback sockets and reports what it cannot realise honestly
// as not applicable, with the reason.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "faultline/conformance/oracle.h"
#include "faultline/conformance/scenario.h"
#include "faultline/sim/trace.h"
#include "faultline/sim/world.h"

namespace faultline::conformance {

enum class RunStatus : std::uint8_t { passed, failed, not_applicable };

struct RunOutcome {
    std::string scenario;
    std::string path;
    std::string transport;  // "sim" or "real"
    std::string profile;
    std::uint64_t seed = 0;
    RunStatus status = RunStatus::passed;
    std::vector<std::string> failures;
    std::string reason;                // why not applicable
    std::string trace_hash;            // sim only
    std::vector<std::string> trace;    // sim with full tracing: JSON Lines, end line last
    std::uint64_t events = 0;
    std::int64_t virtual_ns = 0;
    double wall_ms = 0;
};

/// Thrown by the assertion handler conformance installs: a broken internal contract becomes a
/// reported failure (and lets RapidCheck shrink) instead of an abort.
struct AssertionFailure : std::logic_error {
    using std::logic_error::logic_error;
};
/// Installs the throwing assertion handler (idempotent).
void install_throwing_assert_handler();

/// How to run a scenario on sim.
struct SimRunOptions {
    std::optional<std::uint64_t> seed;  // else the scenario's
    /// Mode::off leaves trace_hash empty and events 0; the run itself is the same.
    sim::Trace::Mode trace_mode = sim::Trace::Mode::full;
    /// A run that is not idle after this many events is a liveness failure (the fuzzer uses a
    /// small bound so that a hung candidate costs little).
    std::uint64_t events_max = 200'000'000;
    /// Receives every step's observation by JSON pointer (optional; see HarnessOptions).
    std::function<void(const std::string& pointer, const Observation& observation)> observe;
    /// Sees every packet on the simulated wire (optional; see sim::World::Options).
    std::function<void(const sim::WirePacket& packet)> packet_tap;
};

[[nodiscard]] RunOutcome run_on_sim(const Scenario& scenario, const std::string& profile,
                                    const SimRunOptions& options);

[[nodiscard]] RunOutcome run_on_sim(const Scenario& scenario, const std::string& profile,
                                    std::optional<std::uint64_t> seed = std::nullopt,
                                    sim::Trace::Mode trace_mode = sim::Trace::Mode::full,
                                    std::uint64_t events_max = 200'000'000);

/// With `trace`, the outcome carries the run's API events as JSON Lines (wall-clock "t").
[[nodiscard]] RunOutcome run_on_real(const Scenario& scenario, const std::string& profile,
                                     bool trace = false);

/// The one-line command that replays a run on sim.
[[nodiscard]] std::string replay_command(const RunOutcome& outcome);

}  // namespace faultline::conformance
