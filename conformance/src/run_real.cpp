#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "faultline/conformance/harness.h"
#include "faultline/conformance/real_faults.h"
#include "faultline/conformance/record.h"
#include "faultline/conformance/run.h"

namespace faultline::conformance {
namespace {

/// Why `scenario` cannot run honestly on loopback, or nullopt.
std::optional<std::string> real_limit(const Scenario& scenario) {
    if (scenario.real_not_applicable) {
        return scenario.real_not_applicable;
    }
    if (scenario.swarm) {
        return "swarm faults are drawn by the simulator's seeded PRNG";
    }
    if (auto reason = RealFaults::unsupported_reason(scenario.faults)) {
        return reason;
    }
    for (const ThreadSpec& thread : scenario.threads) {
        if (thread.exit_at_ns) {
            return "an OS thread cannot be made to exit at a chosen instant while it is blocked";
        }
        for (const Step& step : thread.steps) {
            if (step.op == StepOp::connect && (step.to == "unreachable" || step.to == "silent")) {
                return "unreachable and silent hosts exist only on the simulated network";
            }
        }
    }
    if (scenario.network_given &&
        (scenario.network.latency != sim::NetworkConfig{}.latency ||
         scenario.network.jitter.count() != 0 || scenario.network.bytes_per_second != 0)) {
        return "the scenario sets latency, jitter or bandwidth, which loopback cannot honour";
    }
    return std::nullopt;
}

RunOutcome run_real(const Scenario& scenario, const std::string& profile_name,
                    RealRecording* recording, bool trace) {
    RunOutcome outcome;
    outcome.scenario = scenario.name;
    outcome.path = scenario.path;
    outcome.transport = "real";
    outcome.profile = profile_name;
    outcome.seed = scenario.seed;
    if (auto reason = real_limit(scenario)) {
        outcome.status = RunStatus::not_applicable;
        outcome.reason = *reason;
        return outcome;
    }
    const auto profile = model::profile_by_name(profile_name);
    if (!profile) {
        outcome.status = RunStatus::failed;
        outcome.failures.push_back("unknown profile " + profile_name);
        return outcome;
    }
    const auto started = std::chrono::steady_clock::now();
    auto transport = std::make_unique<real::RealTransport>();
    RealFaults faults(*transport, scenario.faults);

    HarnessOptions options;
    options.wait_budget = std::chrono::seconds(10);
    options.settle_budget = std::chrono::seconds(20);
    // A port nobody listens on: bind one, note it, close it.
    if (auto probe = transport->listen(model::Endpoint::loopback(0), 1)) {
        options.refused_endpoint = transport->local_endpoint(probe.value());
        transport->close(probe.value());
    }
    std::mutex recording_mutex;
    if (recording != nullptr) {
        options.observe = [&](const std::string& pointer, const Observation& observation) {
            std::unique_lock lock(recording_mutex);
            recording->steps[pointer] = observation;
        };
        options.completion = [&](const std::string& what) {
            std::unique_lock lock(recording_mutex);
            recording->completion_order.push_back(what);
        };
        options.schedule = [&](const std::string& event) {
            std::unique_lock lock(recording_mutex);
            recording->schedule.push_back(event);
        };
    }
    // The API-level trace: the same "api" events a sim trace has, stamped with wall-clock
    // nanoseconds since the start, so `faultline diff --only api --ignore t,seq,thread` can put a
    // real run beside its sim run.
    std::mutex trace_mutex;
    if (trace) {
        outcome.trace.push_back(nlohmann::json{{"t", 0},
                                               {"seq", 0},
                                               {"thread", "real"},
                                               {"ev", "scenario"},
                                               {"name", scenario.name},
                                               {"profile", profile_name},
                                               {"transport", "real"}}
                                    .dump());
        options.record = [&](std::string_view name, std::string_view detail) {
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::steady_clock::now() - started)
                                .count();
            std::unique_lock lock(trace_mutex);
            outcome.trace.push_back(nlohmann::json{{"t", ns},
                                                   {"seq", outcome.trace.size()},
                                                   {"thread", "real"},
                                                   {"ev", "api"},
                                                   {"call", name},
                                                   {"detail", detail}}
                                        .dump());
        };
    }
    Harness<RealFaults> harness(faults, scenario, *profile, options);

    std::mutex mutex;
    RealFaults::Event done;
    faults.spawn("harness", [&] {
        harness.run();
        std::unique_lock lock(mutex);
        faults.signal(done);
    });
    {
        std::unique_lock lock(mutex);
        if (!faults.wait(done, lock, std::chrono::seconds(90))) {
            outcome.failures.emplace_back("the run did not finish within 90 s (liveness)");
        }
    }
    if (!transport->join_threads(std::chrono::seconds(30))) {
        outcome.failures.emplace_back("logical threads did not exit within 30 s (liveness)");
        // Their bodies still reference this frame: the transport must not be destroyed.
        static_cast<void>(transport.release());
    }
    if (transport) {
        if (std::exception_ptr escaped = transport->take_exception()) {
            try {
                std::rethrow_exception(escaped);
            } catch (const std::exception& error) {
                outcome.failures.push_back(std::string("exception escaped a thread: ") + error.what());
            } catch (...) {
                outcome.failures.emplace_back("a non-standard exception escaped a thread");
            }
        }
    }
    for (const std::string& failure : harness.failures()) {
        outcome.failures.push_back(failure);
    }
    if (recording != nullptr) {
        recording->seam = faults.seam();
    }
    transport.reset();
    if (trace) {
        std::unique_lock lock(trace_mutex);
        outcome.events = outcome.trace.size();
        outcome.trace.push_back(
            nlohmann::json{{"ev", "end"}, {"events", outcome.events}, {"transport", "real"}}.dump());
    }
    outcome.status = outcome.failures.empty() ? RunStatus::passed : RunStatus::failed;
    outcome.wall_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    return outcome;
}

}  // namespace

RunOutcome run_on_real(const Scenario& scenario, const std::string& profile, bool trace) {
    return run_real(scenario, profile, nullptr, trace);
}

RunOutcome record_on_real(const Scenario& scenario, const std::string& profile,
                          RealRecording& recording) {
    recording = RealRecording{};
    return run_real(scenario, profile, &recording, false);
}

}  // namespace faultline::conformance
