// run_echo_workload: starts an EchoServer on a transport, runs one run_echo_client per plan on its
// own thread, waits for them, stops the server and reports what each client saw. One template
// serves both transports: on sim call it from a logical thread and drive the world; on real call
// it from any thread. Every wait has a budget. It judges nothing: the tests compare the outcomes
// with the payloads.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "echo_server/echo_client.h"
#include "echo_server/echo_server.h"
#include "faultline/model/profile.h"
#include "faultline/model/transport.h"

namespace faultline::examples {

/// One client of a workload.
struct EchoClientPlan {
    std::size_t bytes = 1;          // payload size, at least 1
    int chunk_bytes = 1024;         // largest single send, at least 1
    model::Duration start_after{};  // wait before connecting (0 on real: no sleeps there)
};

struct EchoWorkloadResult {
    std::vector<std::vector<std::byte>> payloads;  // what client i sent
    std::vector<EchoClientOutcome> outcomes;       // what client i saw
    EchoServerCounters counters;                   // the server's, after it stopped
    bool server_stopped = false;                   // WaitStopped returned true
    std::string failure;                           // a client that did not finish in time
};

/// The bytes client `client` sends: distinct per client and position, so an echo that mixed
/// connections up or shifted a stream cannot compare equal.
[[nodiscard]] inline std::vector<std::byte> echo_payload(std::size_t client, std::size_t bytes) {
    std::vector<std::byte> payload(bytes);
    for (std::size_t i = 0; i < bytes; ++i) {
        payload[i] = static_cast<std::byte>((i * 131 + client * 71 + i / 251 + 1) % 256);
    }
    return payload;
}

/// Runs `plans` against a fresh EchoServer on `transport` under `profile`. Blocks the calling
/// thread for at most about `budget` per client plus `budget` for the stop.
template <model::Transport T>
[[nodiscard]] EchoWorkloadResult run_echo_workload(T& transport,
                                                   const model::Profile& profile,
                                                   const std::vector<EchoClientPlan>& plans,
                                                   model::Duration budget) {
    struct Slot {
        typename T::Event done;
        bool finished = false;
        EchoClientOutcome outcome;
    };
    // Shared with the client threads, which may outlive this call if a wait runs out.
    struct Shared {
        typename T::Mutex mutex;
        std::vector<std::unique_ptr<Slot>> slots;
    };
    auto shared = std::make_shared<Shared>();
    EchoWorkloadResult result;

    auto server = EchoServer<T>::Create(transport, profile);
    const model::Endpoint endpoint = server->Start(model::Endpoint::loopback(0));
    for (std::size_t i = 0; i < plans.size(); ++i) {
        shared->slots.push_back(std::make_unique<Slot>());  // all before any thread starts
    }
    for (std::size_t i = 0; i < plans.size(); ++i) {
        result.payloads.push_back(echo_payload(i, plans[i].bytes));
        auto payload = std::make_shared<std::vector<std::byte>>(result.payloads.back());
        const EchoClientPlan plan = plans[i];
        transport.spawn("client-" + std::to_string(i),
                        [&transport, profile, endpoint, payload, plan, budget, shared, i] {
                            if (plan.start_after > model::Duration::zero()) {
                                typename T::Event never;
                                std::unique_lock lock(shared->mutex);
                                static_cast<void>(transport.wait(never, lock, plan.start_after));
                            }
                            EchoClientOutcome outcome = run_echo_client(
                                transport, profile, endpoint, payload, plan.chunk_bytes, budget);
                            std::unique_lock lock(shared->mutex);
                            Slot& slot = *shared->slots[i];
                            slot.outcome = std::move(outcome);
                            slot.finished = true;
                            transport.signal(slot.done);
                        });
    }
    for (std::size_t i = 0; i < plans.size(); ++i) {
        std::unique_lock lock(shared->mutex);
        Slot& slot = *shared->slots[i];
        if (!slot.finished && !transport.wait(slot.done, lock, budget + plans[i].start_after)) {
            result.failure += "client " + std::to_string(i) + " did not finish in time; ";
            result.outcomes.emplace_back().failure = "did not finish in time";
            continue;
        }
        result.outcomes.push_back(slot.outcome);
    }
    server->Stop();
    result.server_stopped = server->WaitStopped(budget);
    result.counters = server->counters();
    return result;
}

}  // namespace faultline::examples
