// HarnessOptions: what a driver (sim or real) gives the scenario harness: budgets for every
// blocking wait, the endpoints that stand for "refused", "unreachable" and "silent", and hooks
// into the run's trace and thread-exit faults.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "faultline/model/transport.h"
#include "faultline/model/types.h"

namespace faultline::conformance {
struct Observation;
}

namespace faultline::conformance {

/// Everything a driver needs to give the harness.
struct HarnessOptions {
    model::Duration wait_budget = std::chrono::seconds(60);   // per blocking call
    model::Duration settle_budget = std::chrono::seconds(120);  // for the end of the run
    model::Endpoint refused_endpoint = model::Endpoint::loopback(1);
    model::Endpoint unreachable_endpoint{0x0afffff1U, 80};
    model::Endpoint silent_endpoint{0x0afffff2U, 80};
    /// Records an API-level event in the run's trace (optional).
    std::function<void(std::string_view name, std::string_view detail)> record;
    /// Receives every step's observation by JSON pointer (a callback's at
    /// "<step>/callback_expect"), from the thread that made it (optional; must be thread-safe).
    std::function<void(const std::string& pointer, const Observation& observation)> observe;
    /// Receives each completion as it runs: a callback's operation id, a Completed event's args
    /// name (optional; must be thread-safe). Recording keeps their order.
    std::function<void(const std::string& what)> completion;
    /// Receives "+<pointer>" as a step starts and "-<pointer>" as it ends (optional; must be
    /// thread-safe). Recording keeps their order to replay how real threads interleaved.
    std::function<void(const std::string& event)> schedule;
    /// Makes logical thread `thread` exit at virtual time `at` (sim only).
    std::function<void(model::ThreadId thread, model::Duration at)> schedule_thread_exit;
};

}  // namespace faultline::conformance
