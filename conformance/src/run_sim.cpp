#include <chrono>

#include "faultline/conformance/harness.h"
#include "faultline/conformance/run.h"
#include "faultline/sim/world.h"

namespace faultline::conformance {
namespace {

void throwing_handler(const char* expression, const char* file, int line) {
    throw AssertionFailure(std::string(file) + ":" + std::to_string(line) +
                           ": FAULTLINE_ASSERT(" + expression + ") failed");
}

}  // namespace

void install_throwing_assert_handler() { faultline::set_assert_handler(&throwing_handler); }

std::string replay_command(const RunOutcome& outcome) {
    return "./faultline replay " + outcome.path + " --profile " + outcome.profile + " --seed " +
           std::to_string(outcome.seed);
}

RunOutcome run_on_sim(const Scenario& scenario, const std::string& profile_name,
                      std::optional<std::uint64_t> seed, sim::Trace::Mode trace_mode,
                      std::uint64_t events_max) {
    SimRunOptions options;
    options.seed = seed;
    options.trace_mode = trace_mode;
    options.events_max = events_max;
    return run_on_sim(scenario, profile_name, options);
}

RunOutcome run_on_sim(const Scenario& scenario, const std::string& profile_name,
                      const SimRunOptions& run_options) {
    const sim::Trace::Mode trace_mode = run_options.trace_mode;
    const std::uint64_t events_max = run_options.events_max;
    const std::optional<std::uint64_t> seed = run_options.seed;
    RunOutcome outcome;
    outcome.scenario = scenario.name;
    outcome.path = scenario.path;
    outcome.transport = "sim";
    outcome.profile = profile_name;
    outcome.seed = seed.value_or(scenario.seed);
    if (scenario.sim_not_applicable) {
        outcome.status = RunStatus::not_applicable;
        outcome.reason = *scenario.sim_not_applicable;
        return outcome;
    }
    const auto profile = model::profile_by_name(profile_name);
    if (!profile) {
        outcome.status = RunStatus::failed;
        outcome.failures.push_back("unknown profile " + profile_name);
        return outcome;
    }
    const auto started = std::chrono::steady_clock::now();
    sim::World::Options options;
    options.seed = outcome.seed;
    options.network = scenario.network;
    HarnessOptions harness_options;
    options.network.unreachable_addresses.push_back(harness_options.unreachable_endpoint.address);
    options.network.silent_addresses.push_back(harness_options.silent_endpoint.address);
    options.faults = scenario.faults;
    options.swarm.enabled = scenario.swarm;
    options.trace_mode = trace_mode;
    options.packet_tap = run_options.packet_tap;
    sim::World world(options);
    world.trace_event("scenario", {{"name", std::string_view(scenario.name)},
                                   {"profile", std::string_view(profile_name)}});
    harness_options.wait_budget = std::chrono::minutes(10);
    harness_options.settle_budget = std::chrono::minutes(30);
    if (trace_mode != sim::Trace::Mode::off) {
        harness_options.record = [&world](std::string_view name, std::string_view detail) {
            world.trace_event("api", {{"call", name}, {"detail", detail}});
        };
    }
    harness_options.observe = run_options.observe;
    harness_options.schedule_thread_exit = [&world](model::ThreadId thread, model::Duration at) {
        world.scheduler().post_at(model::TimePoint{std::max(at, world.now().time_since_epoch())},
                                  [&world, thread] { world.request_thread_exit(thread); });
    };
    Harness<sim::World> harness(world, scenario, *profile, harness_options);
    world.spawn("harness", [&harness] { harness.run(); });
    try {
        if (!world.run_until_idle(events_max)) {
            outcome.failures.emplace_back("event budget exhausted: the run never went idle (liveness)");
        }
    } catch (const std::exception& error) {
        outcome.failures.push_back(std::string("exception escaped a logical thread: ") + error.what());
    }
    for (const std::string& failure : harness.failures()) {
        outcome.failures.push_back(failure);
    }
    outcome.status = outcome.failures.empty() ? RunStatus::passed : RunStatus::failed;
    if (trace_mode != sim::Trace::Mode::off) {
        outcome.trace_hash = world.trace().hash_hex();
        outcome.events = world.trace().events();
    }
    outcome.virtual_ns = world.now().time_since_epoch().count();
    if (trace_mode == sim::Trace::Mode::full) {
        std::string end = world.trace().end_line();
        outcome.trace = world.trace().take_lines();
        outcome.trace.push_back(std::move(end));
    }
    outcome.wall_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    return outcome;
}

}  // namespace faultline::conformance
