// Record and replay from the real network. A scenario run on real loopback with a recording
// captures what the harness observed (every step's and callback's observation, the order the
// completions ran) and what the transport seam saw (each send call that took fewer bytes than it
// was given: the kernel's or a scripted cut). recorded_scenario() turns that into a scenario for
// sim: the seam's partial sends become partial_send faults, the observations its "recorded"
// section, so a replay on sim checks that it observes the same, step by step.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "faultline/conformance/oracle.h"
#include "faultline/conformance/real_faults.h"
#include "faultline/conformance/run.h"
#include "faultline/conformance/scenario.h"

namespace faultline::conformance {

/// What one real run observed.
struct RealRecording {
    std::map<std::string, Observation> steps;  // by step pointer (callbacks: "/callback_expect")
    std::vector<std::string> completion_order;
    std::vector<std::string> schedule;  // "+pointer" / "-pointer" as steps started and ended
    RealFaults::Seam seam;
};

/// run_on_real with a recording.
[[nodiscard]] RunOutcome record_on_real(const Scenario& scenario,
                                        const std::string& profile,
                                        RealRecording& recording);

/// The expectation that matches exactly `observation` ("throws": "none" when nothing threw).
[[nodiscard]] nlohmann::ordered_json expectation_json(const Observation& observation);

/// The recorded scenario named `name`: `source` (the scenario file's JSON) for `profile` only, its
/// partial sends replaced by the seam's, sim buffers large enough for the largest real send, and
/// the observations as its "recorded" section. Throws std::runtime_error when the recording
/// cannot be expressed as a scenario (more partial sends than a scenario holds faults, a send on
/// a connection the recording cannot name).
[[nodiscard]] nlohmann::ordered_json recorded_scenario(const nlohmann::ordered_json& source,
                                                       const Scenario& scenario,
                                                       const std::string& name,
                                                       const std::string& profile,
                                                       const RealRecording& recording);

/// One scenario recorded on real, written out, and replayed on sim from the written file.
struct RecordedRun {
    RunOutcome real;      // the real run (not_applicable: nothing recorded)
    std::string written;  // the recorded scenario's path, "" when nothing was written
    std::string error;    // why nothing was written (a real run that could not be expressed)
    RunOutcome replay;    // the written file, loaded and run on sim under the same profile
};

/// Runs `scenario` (loaded from scenario.path) on real under `profile`, writes the recorded
/// scenario to `out_path` (its name is the file's stem), loads it back and replays it on sim.
/// The replay passes when sim observed what real did and the scenario's own expectations agree.
[[nodiscard]] RecordedRun record_and_replay(const Scenario& scenario,
                                            const std::string& profile,
                                            const std::string& out_path);

/// The faultline version that writes regression and recorded files.
[[nodiscard]] const char* faultline_version();

}  // namespace faultline::conformance
