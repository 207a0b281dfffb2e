#include "faultline/conformance/record.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "faultline/model/socket_error.h"

namespace faultline::conformance {

using json = nlohmann::ordered_json;

namespace {

/// The most faults a scenario file holds (the loader's limit).
constexpr std::size_t kFaultsMax = 256;

/// The largest sim buffer the loader takes.
constexpr std::uint64_t kBufferMax = 64ULL * 1024 * 1024;
/// The longest message_contains the loader takes.
constexpr std::size_t kMessageMax = 1024;

/// At most `bytes` bytes of `text`, not splitting a UTF-8 sequence.
std::string utf8_prefix(const std::string& text, std::size_t bytes) {
    if (text.size() <= bytes) {
        return text;
    }
    while (bytes > 0 && (static_cast<unsigned char>(text[bytes]) & 0xC0U) == 0x80U) {
        --bytes;
    }
    return text.substr(0, bytes);
}

std::string side_name(sim::Side side) { return side == sim::Side::client ? "client" : "server"; }

}  // namespace

const char* faultline_version() { return FAULTLINE_VERSION_STRING; }

json expectation_json(const Observation& observation) {
    json out = json::object();
    out["throws"] = observation.threw.value_or("none");
    const auto put = [&out](const char* key, const auto& field) {
        if (field) {
            out[key] = *field;
        }
    };
    const auto put_error = [&out](const char* key, const std::optional<model::SocketError>& error) {
        if (error) {
            out[key] = std::string(model::to_string(*error));
        }
    };
    put("param", observation.param);
    put_error("socket_error", observation.socket_error);
    put("error_code", observation.error_code);
    put("returns", observation.returned);
    put("returns_null", observation.returned_null);
    put_error("error", observation.out_error);
    put("completed_synchronously", observation.completed_synchronously);
    put("callback_before_return", observation.callback_before_return);
    put("is_completed", observation.is_completed);
    put("connected", observation.connected);
    put("pending", observation.pending);
    put_error("args_error", observation.args_error);
    put("bytes_transferred", observation.bytes_transferred);
    put("accept_socket", observation.accept_socket);
    put("completions", observation.completions);
    put("clients_connected", observation.clients_connected);
    put("inner", observation.inner);
    put("status_code", observation.status_code);
    put("cancelled", observation.cancelled);
    put("send_error", observation.send_error);
    put("delivery", observation.delivery);
    put("user_state", observation.user_state);
    put("failed_recipients", observation.failed_recipients);
    if (observation.message) {
        out["message_contains"] = utf8_prefix(*observation.message, kMessageMax);
    }
    if (observation.task_status && *observation.task_status != "running") {
        out["task_status"] = *observation.task_status;
    }
    return out;
}

json recorded_scenario(const json& source,
                       const Scenario& scenario,
                       const std::string& name,
                       const std::string& profile,
                       const RealRecording& recording) {
    if (recording.seam.unpaired_cuts != 0) {
        throw std::runtime_error(
            "the real run cut or held back " +
            std::to_string(recording.seam.unpaired_cuts) +
            " send(s) on a connection the recording cannot name (no client end in this run)");
    }
    json out = source;
    out["name"] = name;
    out["profiles"] = json::array({profile});
    out["transports"] = {{"real", "a recording of a real run: its observations replay on sim"}};

    // The seam's partial sends replace the scenario's: they include the scripted cuts as the
    // kernel saw them, and the kernel's own.
    json faults = json::array();
    if (source.contains("faults")) {
        for (const json& fault : source["faults"]) {
            const std::string kind = fault.value("kind", "");
            if (kind != "partial_send" && kind != "would_block") {
                faults.push_back(fault);
            }
        }
    }
    for (const RealFaults::PartialSend& cut : recording.seam.partial_sends) {
        faults.push_back({{"kind", "partial_send"},
                          {"side", side_name(cut.side)},
                          {"connection", cut.pair},
                          {"on_send", cut.call},
                          {"bytes", cut.took}});
    }
    for (const RealFaults::WouldBlock& held : recording.seam.would_blocks) {
        faults.push_back({{"kind", "would_block"},
                          {"side", side_name(held.side)},
                          {"connection", held.pair},
                          {"on_send", held.call}});
    }
    if (faults.size() > kFaultsMax) {
        throw std::runtime_error(
            "the real run made " + std::to_string(recording.seam.partial_sends.size()) +
            " partial sends and " + std::to_string(recording.seam.would_blocks.size()) +
            " sends that found no room; a scenario holds at most " + std::to_string(kFaultsMax) +
            " faults");
    }
    if (faults.empty()) {
        out.erase("faults");
    } else {
        out["faults"] = std::move(faults);
    }

    // Sim's buffers must never be what limits a send: the seam's partial sends say where
    // loopback cut one. Room for everything one end sent (up to the loader's limit) does that.
    const std::size_t room = static_cast<std::size_t>(std::clamp<std::uint64_t>(
        recording.seam.largest_total, sim::NetworkConfig{}.send_buffer_bytes, kBufferMax));
    json network = source.contains("network") ? source["network"] : json::object();
    network["send_buffer_bytes"] = std::max(room, scenario.network.send_buffer_bytes);
    network["receive_buffer_bytes"] = std::max(room, scenario.network.receive_buffer_bytes);
    // Loopback delivers within the sending call: no latency, so that bytes a peer wrote are
    // there for a receive that followed on real.
    network["latency_ns"] = 0;
    out["network"] = std::move(network);

    json steps = json::object();
    for (const auto& [pointer, observation] : recording.steps) {
        steps[pointer] = expectation_json(observation);
    }
    const std::size_t partial = recording.seam.partial_sends.size();
    out["description"] =
        "Recorded on real loopback from " + scenario.path + " (profile " + profile +
        ", faultline " + faultline_version() + "): " + std::to_string(recording.seam.send_calls) +
        " send calls took bytes, " + std::to_string(partial) +
        " of them fewer than given (now partial_send faults); " +
        std::to_string(recording.seam.would_blocks.size()) +
        " immediate sends found no room (now would_block faults). Replay: ./faultline replay " +
        name + ".json --profile " + profile +
        (scenario.description.empty() ? std::string() : ". Source: " + scenario.description);
    out["description"] = utf8_prefix(out["description"].get<std::string>(), 4096);
    out["recorded"] = {{"transport", "real"},
                       {"profile", profile},
                       {"faultline", faultline_version()},
                       {"source", scenario.path},
                       {"steps", std::move(steps)},
                       {"completion_order", recording.completion_order}};
    if (scenario.threads.size() > 1) {
        out["recorded"]["schedule"] = recording.schedule;  // one thread is in order by itself
    }
    return out;
}

RecordedRun record_and_replay(const Scenario& scenario,
                              const std::string& profile,
                              const std::string& out_path) {
    RecordedRun run;
    json source;
    {
        std::ifstream in(scenario.path, std::ios::binary);
        std::ostringstream text;
        text << in.rdbuf();
        source = json::parse(text.str(), nullptr, false);
        if (!in || source.is_discarded()) {
            run.error = "cannot read " + scenario.path + " again";
            return run;
        }
    }
    if (scenario.sim_not_applicable) {
        run.real.scenario = scenario.name;
        run.real.status = RunStatus::not_applicable;
        run.real.reason = "no replay on sim: " + *scenario.sim_not_applicable;
        return run;
    }
    RealRecording recording;
    run.real = record_on_real(scenario, profile, recording);
    if (run.real.status == RunStatus::not_applicable) {
        return run;
    }
    const std::string name = std::filesystem::path(out_path).stem().string();
    json recorded;
    try {
        recorded = recorded_scenario(source, scenario, name, profile, recording);
    } catch (const std::exception& error) {
        run.error = error.what();
        return run;
    }
    const std::filesystem::path parent = std::filesystem::path(out_path).parent_path();
    if (!parent.empty()) {
        std::filesystem::create_directories(parent);
    }
    {
        std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
        out << recorded.dump(2) << "\n";
        if (!out) {
            run.error = "cannot write " + out_path;
            return run;
        }
    }
    run.written = out_path;
    LoadResult loaded = load_scenario_file(out_path);
    if (const auto* error = std::get_if<std::string>(&loaded)) {
        run.error = "the recorded file does not load: " + *error;
        return run;
    }
    run.replay =
        run_on_sim(std::get<Scenario>(loaded), profile, std::nullopt, sim::Trace::Mode::hash_only);
    return run;
}

}  // namespace faultline::conformance
