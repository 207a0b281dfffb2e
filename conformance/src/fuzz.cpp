#include "faultline/conformance/fuzz.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "faultline/conformance/scenario.h"
#include "faultline/sim/prng.h"

namespace faultline::conformance {
namespace {

using json = nlohmann::json;

constexpr const char* kVersion = FAULTLINE_VERSION_STRING;
constexpr std::string_view kRefusedByLoader = "scenario refused by the loader: ";
constexpr std::uint64_t kFuzzEventsMax = 2'000'000;

/// Draws for the generators: a thin layer over the simulator's PRNG, so a seed means the same
/// scenario everywhere (no std distributions).
class Draw {
public:
    explicit Draw(std::uint64_t seed) : prng_(seed ^ 0x6a09e667f3bcc909ULL) {}

    std::uint64_t between(std::uint64_t low, std::uint64_t high) {
        return prng_.between(low, high);
    }
    int integer(int low, int high) {
        return static_cast<int>(
            prng_.between(static_cast<std::uint64_t>(low), static_cast<std::uint64_t>(high)));
    }
    bool chance(int percent) { return prng_.chance(static_cast<std::uint64_t>(percent), 100); }
    template <typename T>
    const T& pick(const std::vector<T>& items) {
        return items[static_cast<std::size_t>(prng_.below(items.size()))];
    }
    /// Sizes skewed small, with occasional big ones: what finds off-by-ones and buffer edges.
    std::uint64_t size(std::uint64_t max) {
        switch (prng_.below(4)) {
            case 0:
                return between(1, std::min<std::uint64_t>(max, 16));
            case 1:
                return between(1, std::min<std::uint64_t>(max, 2048));
            case 2:
                return std::min(
                    max,
                    pick(std::vector<std::uint64_t>{
                        1, 2, 1023, 1024, 1025, 4095, 4096, 4097, 65535, 65536, 65537}));
            default:
                return between(1, max);
        }
    }

private:
    sim::Prng prng_;
};

// Generated steps check no outcome of their own: any exception (or none) is a legal answer
// to a generated workload; what fails a run is what the oracle checks on every run, and a
// step that hangs (a liveness failure), which "any" does not cover.
void allow_any_outcome(json& scenario) {
    for (json& thread : scenario["threads"]) {
        for (json& step : thread["steps"]) {
            if (!step.contains("expect")) {
                step["expect"] = {{"throws", "any"}};
            }
            if (step.contains("callback") &&
                (step["callback"] == "end" || step["callback"] == "end_out") &&
                !step.contains("callback_expect")) {
                step["callback_expect"] = {{"throws", "any"}};
            }
        }
    }
}

// Swarm testing: a quarter of the scenarios of every family also turn on the simulator's swarm,
// which draws from the scenario's seed which fault kinds fire and how often (partial sends,
// resets, closes, stalls, jitter) on top of the scripted ones: a different mix per seed, so no
// one kind crowds out the states another reaches. Drawn last, so the rest of the scenario is
// the one the seed gave before.
void draw_swarm(Draw& draw, json& scenario) {
    if (draw.chance(25)) {
        scenario["swarm"] = true;
    }
}

// An immediate send attempt that finds the kernel buffer full (`would_block`, what a recording of
// a real run holds where loopback pushed back): the send goes pending instead of completing at
// once. Drawn after everything else, like the swarm.
void draw_would_block(Draw& draw, json& scenario) {
    if (!draw.chance(15)) {
        return;
    }
    json fault = {{"kind", "would_block"}, {"on_send", draw.between(1, 6)}};
    if (draw.chance(50)) {
        fault["side"] = draw.chance(70) ? "client" : "server";
    }
    if (!scenario.contains("faults")) {
        scenario["faults"] = json::array();
    }
    scenario["faults"].push_back(std::move(fault));
}

// ---- the send family ---------------------------------------------------------------------

/// `send_bytes`: all the bytes the scenario's sends ask for.
json send_fault(Draw& draw,
                const std::vector<std::string>& step_ids,
                const std::string& thread,
                std::uint64_t send_bytes) {
    const std::string kind = draw.pick(std::vector<std::string>{
        "partial_send", "reset", "close", "stall", "latency", "bandwidth", "thread_exit"});
    json fault = {{"kind", kind}};
    if (kind == "thread_exit") {
        fault["thread"] = thread;
        if (!step_ids.empty() && draw.chance(60)) {
            fault["after_step"] = draw.pick(step_ids);
        } else {
            fault["at_ns"] = draw.between(0, 20'000'000);
        }
        return fault;
    }
    if (draw.chance(50)) {
        fault["side"] = draw.chance(70) ? "client" : "server";
    }
    if (kind == "partial_send") {
        fault["bytes"] = draw.size(4096);
        if (draw.chance(50)) {
            fault["on_send"] = draw.between(1, 6);
        } else {
            // Cutting every send: at most ~1,024 sends for the whole scenario. Tiny cuts of a big
            // total (200 kB a byte at a time) reach no state that a small total does not, and
            // a few such runs took most of a campaign's time.
            fault["bytes"] = std::max(fault["bytes"].get<std::uint64_t>(), send_bytes / 1024 + 1);
        }
    } else if (kind == "reset") {
        switch (draw.integer(0, 2)) {
            case 0:
                fault["after_bytes"] = draw.size(100'000);
                break;
            case 1:
                fault["on_send"] = draw.between(1, 8);
                break;
            default:
                fault["at_ns"] = draw.between(0, 20'000'000);
                break;
        }
    } else if (kind == "close" || kind == "stall") {
        fault["at_ns"] = draw.between(0, 20'000'000);
        if (kind == "stall") {
            fault["duration_ns"] = draw.between(1, 50'000'000);  // bounded: no endless stall
        }
    } else if (kind == "latency") {
        fault["latency_ns"] = draw.between(0, 5'000'000);
        fault["jitter_ns"] = draw.between(0, 2'000'000);
    } else {  // bandwidth
        fault["bytes_per_second"] = draw.between(10'000, 100'000'000);
    }
    return fault;
}

json generate_send(std::uint64_t seed) {
    Draw draw(seed);
    json threads = json::array();
    std::vector<std::string> first_thread_ids;
    bool uses_two_sockets = false;
    std::uint64_t send_bytes = 0;
    const int thread_count = draw.integer(1, 2);
    int step_counter = 0;
    for (int index = 0; index < thread_count; ++index) {
        json steps = json::array();
        std::vector<std::string> pending;  // begun, not yet ended by end_send
        const int step_total = draw.integer(1, 6);
        for (int step = 0; step < step_total; ++step) {
            std::string id = std::to_string(++step_counter);
            id.insert(0, 1, 's');  // (not "s" + …: GCC 12 warns -Wrestrict on that)
            const int choice = draw.integer(0, 9);
            if (choice <= 2) {
                const std::uint64_t bytes = draw.size(200'000);
                send_bytes += bytes;
                json send_all = {{"op", "send_all"}, {"id", id}, {"bytes", bytes}};
                if (draw.chance(70)) {
                    // At most ~256 BeginSends per loop: tiny chunks of a big total only slow
                    // the campaign down, they reach no state small totals do not.
                    send_all["chunk"] = std::max(draw.size(20'000), bytes / 256 + 1);
                }
                steps.push_back(send_all);
            } else if (choice <= 6) {
                const std::uint64_t size = draw.size(100'000);
                send_bytes += size;
                json begin = {
                    {"op", "begin_send"},
                    {"id", id},
                    {"size", size},
                    {"callback",
                     draw.pick(std::vector<std::string>{"none", "record", "end", "end_out"})}};
                if (draw.chance(20)) {
                    begin["overload"] = "out";
                }
                const bool ended_by_callback =
                    begin["callback"] == "end" || begin["callback"] == "end_out";
                steps.push_back(begin);
                if (!ended_by_callback) {
                    pending.push_back(id);
                }
            } else if (choice == 7 && !pending.empty()) {
                const std::string target = pending.front();
                pending.erase(pending.begin());
                steps.push_back({{"op", "end_send"}, {"target", target}});
            } else if (choice == 8) {
                steps.push_back({{"op", "sleep"}, {"ns", draw.between(0, 5'000'000)}});
            } else {
                steps.push_back({{"op", "begin_send"}, {"id", id}, {"size", 0}});
            }
            if (index == 0 && steps.back().contains("id")) {
                first_thread_ids.push_back(id);
            }
        }
        for (const std::string& target : pending) {
            steps.push_back({{"op", "end_send"}, {"target", target}});
        }
        if (index == 0 && draw.chance(20)) {
            // S-7: EndSend given another socket's IAsyncResult. documented: ArgumentException
            // ("asyncResult") and the operation stays un-ended; dotnet-unix does not check. If a
            // fault made that BeginSend throw, there is no result: ArgumentNullException (S-6).
            std::string theirs = std::to_string(++step_counter);
            theirs.insert(0, 1, 'x');
            const std::uint64_t size = draw.size(4096);
            send_bytes += size;
            steps.push_back({{"op", "begin_send"},
                             {"id", theirs},
                             {"socket", "other"},
                             {"size", size}});
            steps.push_back(
                {{"op", "end_send"},
                 {"socket", "main"},
                 {"target", theirs},
                 {"expect",
                  {{"documented",
                    {{"any_of",
                      json::array({json::object(
                                       {{"throws", "ArgumentException"}, {"param", "asyncResult"}}),
                                   json::object({{"throws", "ArgumentNullException"}})})}}},
                   {"dotnet-unix", {{"throws", "any"}}}}}});
            steps.push_back({{"op", "end_send"}, {"socket", "other"}, {"target", theirs}});
            uses_two_sockets = true;
        }
        if (draw.chance(25)) {
            steps.push_back(
                {{"op", "shutdown"}, {"how", draw.pick(std::vector<std::string>{"send", "both"})}});
        }
        threads.push_back({{"name", "t" + std::to_string(index + 1)}, {"steps", steps}});
    }
    json scenario = {{"schema_version", 1},
                     {"name", "fuzz_send_" + std::to_string(seed)},
                     {"description", "generated by faultline fuzz (family send)"},
                     {"clauses", json::array({"S-9", "S-11", "S-20"})},
                     {"seed", seed},
                     {"threads", threads}};
    if (uses_two_sockets) {
        scenario["sockets"] = json::array({"main", "other"});
    }
    if (draw.chance(50)) {
        // Not below 512: a send_all without a chunk size asks BeginSend for all that is left
        // each time, and the harness copies those bytes for the oracle, so a 1-byte buffer
        // makes the run quadratic without reaching new states.
        scenario["network"] = {
            {"send_buffer_bytes", std::max<std::uint64_t>(512, draw.size(262'144))},
            {"receive_buffer_bytes", std::max<std::uint64_t>(512, draw.size(262'144))}};
        if (draw.chance(30)) {
            // Not below 100: a 1-byte MSS turns a 200 kB send into 200,000 segments, which only
            // makes the campaign slow.
            scenario["network"]["mss_bytes"] = draw.integer(100, 65535);
        }
    }
    if (draw.chance(40)) {
        json peer = json::object();
        if (draw.chance(50)) {
            peer["read_after_ns"] = draw.between(0, 10'000'000);
        }
        if (draw.chance(50)) {
            // At most ~2,048 reads of the whole scenario's bytes, for the reason partial sends
            // have their bound (send_fault).
            peer["read_chunk_bytes"] = std::max(draw.size(65536), send_bytes / 2048 + 1);
        }
        if (draw.chance(20)) {
            peer[draw.chance(50) ? "close_after_bytes" : "reset_after_bytes"] = draw.size(100'000);
        }
        scenario["peer"] = peer;
    }
    json faults = json::array();
    const int fault_count = draw.integer(0, 3);
    for (int index = 0; index < fault_count; ++index) {
        faults.push_back(send_fault(draw, first_thread_ids, "t1", send_bytes));
    }
    // One thread_exit per thread at most (the loader keeps one exit per thread).
    bool exit_seen = false;
    json kept = json::array();
    for (const json& fault : faults) {
        if (fault["kind"] == "thread_exit") {
            if (exit_seen) {
                continue;
            }
            exit_seen = true;
        }
        kept.push_back(fault);
    }
    if (!kept.empty()) {
        scenario["faults"] = kept;
    }
    draw_swarm(draw, scenario);
    draw_would_block(draw, scenario);
    allow_any_outcome(scenario);
    return scenario;
}

// ---- the accept family -------------------------------------------------------------------

/// "e3" and the like (not `"e" + std::to_string(n)`: GCC 12 warns -Wrestrict on that).
std::string numbered(char prefix, int number) {
    std::string text = std::to_string(number);
    text.insert(0, 1, prefix);
    return text;
}

json generate_accept(std::uint64_t seed) {
    Draw draw(seed);
    json steps = json::array();
    steps.push_back({{"op", "bind"}});
    // A backlog larger than all the clients a scenario can start: a client dropped by a full
    // backlog gives up after its SYN retries, and an accept waiting for it would hang the
    // scenario, not the implementation (backlog overflow has its own scenarios, a24/a25).
    steps.push_back({{"op", "listen"}, {"backlog", 64}});
    const int args_count = draw.integer(1, 3);
    for (int index = 1; index <= args_count; ++index) {
        steps.push_back({{"op", "args_new"}, {"args", numbered('e', index)}});
    }
    auto args_name = [&] { return numbered('e', draw.integer(1, args_count)); };
    const int total = draw.integer(2, 10);
    int accepts = 0;
    // A wait (wait_args, EndAccept) only ends if a client comes for every accept started before
    // it (they are served in order), so one is preceded by enough clients; waiting for an
    // accept nobody connects to is a hang of the scenario, not of the implementation.
    int started = 0;
    int clients = 0;
    auto clients_for_wait = [&] {
        const int needed = started - clients + 1;
        if (needed > 0) {
            steps.push_back({{"op", "client_connect"}, {"count", needed}, {"wait", false}});
            clients += needed;
        }
    };
    for (int step = 0; step < total; ++step) {
        const int choice = draw.integer(0, 9);
        if (choice <= 2) {
            steps.push_back({{"op", "accept_async"}, {"args", args_name()}});
            ++started;
        } else if (choice <= 4) {
            const int count = draw.integer(1, 3);
            steps.push_back(
                {{"op", "client_connect"}, {"count", count}, {"wait", draw.chance(70)}});
            clients += count;
        } else if (choice == 5) {
            steps.push_back({{"op", "sleep"}, {"ns", draw.between(0, 5'000'000)}});
        } else if (choice == 6) {
            clients_for_wait();
            steps.push_back({{"op", "wait_args"}, {"args", args_name()}});
        } else if (choice == 7) {
            // Re-arm: .NET requires AcceptSocket cleared before reuse.
            steps.push_back(
                {{"op", "args_set_accept_socket"}, {"args", args_name()}, {"target", "null"}});
        } else if (choice == 8) {
            const std::string id = numbered('b', ++accepts);
            steps.push_back({{"op", "begin_accept"}, {"id", id}});
            ++started;
            if (draw.chance(60)) {
                clients_for_wait();
                steps.push_back({{"op", "end_accept"}, {"target", id}});
            }
        } else {
            steps.push_back({{"op", "args_dispose"}, {"args", args_name()}});
        }
    }
    json scenario = {{"schema_version", 1},
                     {"name", "fuzz_accept_" + std::to_string(seed)},
                     {"description", "generated by faultline fuzz (family accept)"},
                     {"clauses", json::array({"A-2", "A-3", "A-12"})},
                     {"seed", seed},
                     {"sockets", json::array({"listener"})},
                     {"connect", "none"},
                     {"threads", json::array({{{"name", "main"}, {"steps", steps}}})}};
    if (draw.chance(40)) {
        scenario["faults"] = json::array({{{"kind", "half_open_scan"},
                                           {"at_ns", draw.between(0, 5'000'000)},
                                           {"count", draw.integer(1, 4)},
                                           {"interval_ns", draw.between(0, 2'000'000)}}});
    }
    draw_swarm(draw, scenario);
    allow_any_outcome(scenario);
    return scenario;
}

// ---- the smtp family ---------------------------------------------------------------------

json reply_step(Draw& draw, const std::string& command) {
    json step = json::object();
    const int choice = draw.integer(0, 9);
    if (choice <= 4) {
        static const std::vector<int> codes = {250,
                                               251,
                                               252,
                                               354,
                                               421,
                                               450,
                                               451,
                                               452,
                                               500,
                                               501,
                                               502,
                                               503,
                                               504,
                                               530,
                                               550,
                                               551,
                                               552,
                                               553,
                                               554};
        const int code = draw.pick(codes);
        step["reply"] = json::array({std::to_string(code) + " scripted"});
        if (draw.chance(20)) {
            step["reply"] =
                json::array({std::to_string(code) + "-first", std::to_string(code) + " last"});
        }
    } else if (choice == 5) {
        step["action"] = "reply_then_close";
    } else if (choice == 6) {
        step["action"] = "close_without_reply";
    } else if (choice == 7) {
        step["action"] = "abort_without_reply";
    } else {
        step["delay_ms"] = draw.between(0, 3000);
    }
    if (command == "DATA" && draw.chance(25)) {
        step = json::object({{"drop_after_data_bytes", draw.size(5000)}});
    }
    return step;
}

json generate_smtp(std::uint64_t seed) {
    Draw draw(seed);
    static const std::vector<std::string> addresses = {
        "ben@x.test", "ann@x.test", "bob@y.test", "eve@z.test"};
    static const std::vector<std::string> fragments = {"line of text\r\n",
                                                       ".\r\n",
                                                       "..dot\r\n",
                                                       ".leading dot\r\n",
                                                       "\r\n",
                                                       "bare\nLF",
                                                       "bare\rCR",
                                                       "caf\xc3\xa9 \xe2\x86\x92 \xc3\xb8\r\n",
                                                       std::string(1, '\0'),
                                                       std::string(998, 'x') + "\r\n",
                                                       std::string(1200, 'y'),
                                                       "a"};
    json script = json::object();
    json script_steps = json::object();
    bool stalls = false;
    for (const std::string command : {"CONNECT", "EHLO", "MAIL", "RCPT", "DATA", ".", "QUIT"}) {
        if (draw.chance(15)) {
            script_steps[command] = reply_step(draw, command);
        } else if (draw.chance(3)) {
            script_steps[command] = {{"action", "stall"}};
            stalls = true;
        }
    }
    if (!script_steps.empty()) {
        script["steps"] = script_steps;
    }
    if (draw.chance(30)) {
        script["recipients"] = {
            {draw.pick(addresses),
             {{"reply",
               json::array({draw.pick(std::vector<std::string>{"550 5.1.1 no such user",
                                                               "451 later",
                                                               "452 full",
                                                               "553 bad",
                                                               "251 forwarded"})})}}}};
    }
    if (draw.chance(20)) {
        script["bare_line_feed"] =
            draw.pick(std::vector<std::string>{"reject", "normalize", "legacy_accept"});
    }
    if (draw.chance(10)) {
        script["recipients_max"] = draw.integer(0, 3);
    }
    if (draw.chance(10)) {
        script["message_bytes_max"] = draw.size(20'000);
    }
    json client = json::object();
    if (draw.chance(40) || stalls) {
        client["timeout_ms"] = draw.between(1, 5000);
    }
    json threads_steps = json::array();
    const int messages = draw.integer(1, 2);
    std::uint64_t largest_body = 0;  // bytes, after body_repeat
    for (int index = 1; index <= messages; ++index) {
        json mail = {{"from", "jane@x.test"}};
        json to = json::array();
        const int recipients = draw.integer(1, 3);
        for (int r = 0; r < recipients; ++r) {
            to.push_back(draw.pick(addresses));
        }
        mail["to"] = to;
        if (draw.chance(20)) {
            mail["cc"] = json::array({draw.pick(addresses)});
        }
        if (draw.chance(10)) {
            mail["bcc"] = json::array({draw.pick(addresses)});
        }
        std::string body;
        const int pieces = draw.integer(0, 6);
        for (int p = 0; p < pieces; ++p) {
            body += draw.pick(fragments);
        }
        mail["body"] = body;
        std::uint64_t body_bytes = body.size();
        if (draw.chance(30)) {
            mail["body_repeat"] = draw.size(200);
            body_bytes *= mail["body_repeat"].get<std::uint64_t>();
        }
        largest_body = std::max(largest_body, body_bytes);
        if (draw.chance(40)) {
            mail["body_transfer_encoding"] = draw.pick(std::vector<std::string>{
                "unknown", "seven_bit", "eight_bit", "quoted_printable", "base64"});
        }
        if (draw.chance(30)) {
            mail["body_encoding"] = draw.chance(50) ? "utf-8" : "ascii";
        }
        if (draw.chance(30)) {
            mail["subject"] = draw.chance(50) ? "hello" : "caf\xc3\xa9 \xe2\x86\x92";
        }
        threads_steps.push_back(
            {{"op", "mail_new"}, {"message", "m" + std::to_string(index)}, {"mail", mail}});
    }
    // Send patterns that always end: every SendAsync gets its wait; under a stalling script
    // only cancelled or synchronous sends (documented SendAsync has no timer, M-8).
    const int sends = draw.integer(1, 4);
    int token = 0;
    for (int index = 0; index < sends; ++index) {
        const std::string message = "m" + std::to_string(draw.integer(1, messages));
        const int pattern = stalls ? draw.pick(std::vector<int>{1, 3}) : draw.integer(0, 3);
        json send_async = {
            {"op", "send_async"}, {"message", message}, {"token", "t" + std::to_string(++token)}};
        switch (pattern) {
            case 0:
                threads_steps.push_back(send_async);
                threads_steps.push_back({{"op", "wait_send_completed"}});
                break;
            case 1:
                threads_steps.push_back(send_async);
                if (draw.chance(50)) {
                    threads_steps.push_back({{"op", "sleep"}, {"ns", draw.between(0, 3'000'000)}});
                }
                threads_steps.push_back({{"op", "send_async_cancel"}});
                threads_steps.push_back({{"op", "wait_send_completed"}});
                break;
            case 2:
                threads_steps.push_back(send_async);
                threads_steps.push_back({{"op", "send_async"}, {"message", message}});  // M-3
                threads_steps.push_back({{"op", "wait_send_completed"}});
                break;
            default:
                threads_steps.push_back({{"op", "send"}, {"message", message}});
                break;
        }
    }
    if (draw.chance(30)) {
        threads_steps.push_back({{"op", "client_dispose"}});
    }
    json scenario = {{"schema_version", 1},
                     {"name", "fuzz_smtp_" + std::to_string(seed)},
                     {"description", "generated by faultline fuzz (family smtp)"},
                     {"clauses", json::array({"M-5", "M-9", "M-26", "W-10"})},
                     {"seed", seed},
                     {"smtp", {{"server", script}, {"clients", {{"client", client}}}}},
                     {"threads", json::array({{{"name", "main"}, {"steps", threads_steps}}})}};
    json faults = json::array();
    const int fault_count = draw.chance(50) ? draw.integer(1, 2) : 0;
    for (int index = 0; index < fault_count; ++index) {
        // What the sends can put on the wire: the largest body, up to 3 times over for the
        // transfer encoding, plus the envelope and headers, per send.
        const auto wire_bytes = static_cast<std::uint64_t>(sends) * (largest_body * 3 + 1024);
        json fault = send_fault(draw, {}, "main", wire_bytes);
        if (fault["kind"] == "thread_exit") {
            continue;  // SMTP steps run on one logical thread; its exit ends the scenario
        }
        if (fault["kind"] == "stall") {
            fault["duration_ns"] =
                std::min<std::uint64_t>(fault["duration_ns"].get<std::uint64_t>(), 2'000'000);
        }
        if (draw.chance(60)) {
            fault["connection"] = draw.integer(0, 2);
        }
        faults.push_back(fault);
    }
    if (!faults.empty()) {
        scenario["faults"] = faults;
    }
    draw_swarm(draw, scenario);
    draw_would_block(draw, scenario);
    allow_any_outcome(scenario);
    return scenario;
}

// ---- shrinking ---------------------------------------------------------------------------

/// `at`, moved back to the start of the UTF-8 sequence it falls in (JSON strings must stay
/// valid UTF-8).
std::size_t utf8_boundary(const std::string& text, std::size_t at) {
    while (at > 0 && at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0U) == 0x80U) {
        --at;
    }
    return at;
}

/// A non-negative integer, whether the JSON holds it as unsigned (parsed from a file) or signed
/// (built by a generator).
std::optional<std::uint64_t> natural(const json& node) {
    if (node.is_number_unsigned()) {
        return node.get<std::uint64_t>();
    }
    if (node.is_number_integer() && node.get<std::int64_t>() >= 0) {
        return static_cast<std::uint64_t>(node.get<std::int64_t>());
    }
    return std::nullopt;
}

/// Every way to make `scenario` a little smaller, most promising first.
std::vector<json> candidates(const json& scenario) {
    std::vector<json> out;
    // Whole threads, then single steps (from the end: later steps depend on earlier ones).
    if (scenario.contains("threads") && scenario["threads"].size() > 1) {
        for (std::size_t index = 0; index < scenario["threads"].size(); ++index) {
            json smaller = scenario;
            smaller["threads"].erase(index);
            out.push_back(std::move(smaller));
        }
    }
    if (scenario.contains("threads")) {
        for (std::size_t t = 0; t < scenario["threads"].size(); ++t) {
            const json& steps = scenario["threads"][t]["steps"];
            for (std::size_t s = steps.size(); s-- > 0;) {
                if (steps.size() <= 1) {
                    break;
                }
                json smaller = scenario;
                smaller["threads"][t]["steps"].erase(s);
                out.push_back(std::move(smaller));
            }
        }
    }
    // Faults, script entries, optional sections.
    if (scenario.contains("faults")) {
        for (std::size_t index = 0; index < scenario["faults"].size(); ++index) {
            json smaller = scenario;
            smaller["faults"].erase(index);
            if (smaller["faults"].empty()) {
                smaller.erase("faults");
            }
            out.push_back(std::move(smaller));
        }
    }
    for (const char* section : {"peer", "network"}) {
        if (scenario.contains(section)) {
            json smaller = scenario;
            smaller.erase(section);
            out.push_back(std::move(smaller));
        }
    }
    if (scenario.contains("smtp") && scenario["smtp"].contains("server")) {
        const json& server = scenario["smtp"]["server"];
        for (const auto& [key, value] : server.items()) {
            if (value.is_object() && (key == "steps" || key == "recipients")) {
                for (const auto& [entry, ignored] : value.items()) {
                    json smaller = scenario;
                    smaller["smtp"]["server"][key].erase(entry);
                    out.push_back(std::move(smaller));
                }
            }
            json smaller = scenario;
            smaller["smtp"]["server"].erase(key);
            out.push_back(std::move(smaller));
        }
    }
    // Inside steps: drop optional keys, shorten lists and strings, halve numbers.
    if (scenario.contains("threads")) {
        for (std::size_t t = 0; t < scenario["threads"].size(); ++t) {
            const json& steps = scenario["threads"][t]["steps"];
            for (std::size_t s = 0; s < steps.size(); ++s) {
                const json& step = steps[s];
                for (const auto& [key, value] : step.items()) {
                    if (key == "op" || key == "id" || key == "target" || key == "message" ||
                        key == "expect" || key == "callback_expect") {
                        continue;
                    }
                    json smaller = scenario;
                    smaller["threads"][t]["steps"][s].erase(key);
                    out.push_back(std::move(smaller));
                }
                if (step.contains("mail")) {
                    const json& mail = step["mail"];
                    for (const auto& [key, value] : mail.items()) {
                        if (value.is_array() && value.size() > 1) {
                            for (std::size_t i = 0; i < value.size(); ++i) {
                                json smaller = scenario;
                                smaller["threads"][t]["steps"][s]["mail"][key].erase(i);
                                out.push_back(std::move(smaller));
                            }
                        } else if (key != "from" && key != "to") {
                            json smaller = scenario;
                            smaller["threads"][t]["steps"][s]["mail"].erase(key);
                            out.push_back(std::move(smaller));
                        }
                        if (value.is_string() && value.get<std::string>().size() > 1) {
                            const std::string text = value.get<std::string>();
                            const std::size_t cut = utf8_boundary(text, text.size() / 2);
                            if (cut > 0) {
                                json smaller = scenario;
                                smaller["threads"][t]["steps"][s]["mail"][key] =
                                    text.substr(0, cut);
                                out.push_back(smaller);
                                smaller["threads"][t]["steps"][s]["mail"][key] = text.substr(cut);
                                out.push_back(std::move(smaller));
                            }
                        }
                        if (const auto number = natural(value); number && *number > 1) {
                            json smaller = scenario;
                            smaller["threads"][t]["steps"][s]["mail"][key] = *number / 2;
                            out.push_back(std::move(smaller));
                        }
                    }
                }
            }
        }
    }
    // Numbers anywhere else (sizes, byte counts, times): halve, then step down by one.
    std::function<void(const json&, const json::json_pointer&)> numbers =
        [&](const json& node, const json::json_pointer& where) {
            if (node.is_object()) {
                for (const auto& [key, value] : node.items()) {
                    if (key == "seed" || key == "schema_version" || key == "connection" ||
                        key == "on_send") {
                        continue;
                    }
                    numbers(value, where / key);
                }
            } else if (node.is_array()) {
                for (std::size_t index = 0; index < node.size(); ++index) {
                    numbers(node[index], where / index);
                }
            } else if (const auto number = natural(node); number && *number > 1) {
                const std::uint64_t value = *number;
                json smaller = scenario;
                smaller[where] = value / 2;
                out.push_back(std::move(smaller));
                smaller = scenario;
                smaller[where] = value - 1;
                out.push_back(std::move(smaller));
            }
        };
    numbers(scenario, json::json_pointer());
    return out;
}

/// A rough size, to accept only changes that make the file smaller: the text's length plus a
/// little for big numbers, then (to break ties, so 62 still shrinks to 31) the numbers' sum.
std::pair<std::size_t, std::uint64_t> weight(const json& scenario) {
    std::size_t total = scenario.dump().size();
    std::uint64_t numbers = 0;
    std::function<void(const json&)> add = [&](const json& node) {
        if (node.is_structured()) {
            for (const auto& item : node) {
                add(item);
            }
        } else if (const auto number = natural(node)) {
            const std::uint64_t value = std::min<std::uint64_t>(*number, 1U << 30U);
            total += static_cast<std::size_t>(value / 64);
            numbers += value;
        }
    };
    add(scenario);
    return {total, numbers};
}

std::string strip_digits(std::string text) {
    std::string out;
    bool in_number = false;
    for (const char c : text) {
        if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
            if (!in_number) {
                out += '#';
            }
            in_number = true;
        } else {
            in_number = false;
            out += c;
        }
    }
    return out;
}

}  // namespace

json generate_scenario(const std::string& family, std::uint64_t seed) {
    if (family == "send") {
        return generate_send(seed);
    }
    if (family == "accept") {
        return generate_accept(seed);
    }
    if (family == "smtp") {
        return generate_smtp(seed);
    }
    throw std::invalid_argument("unknown scenario family \"" + family + "\" (" +
                                fuzz_family_list() + ")");
}

RunOutcome run_scenario_json(const json& scenario, const std::string& profile,
                             CompletionPaths* paths) {
    // The loader wants the name to be the file's stem.
    const std::string path = "fuzz/" +
                             (scenario.contains("name") && scenario["name"].is_string()
                                  ? scenario["name"].get<std::string>()
                                  : std::string("scenario")) +
                             ".json";
    const auto loaded = load_scenario_json(path, scenario);
    if (const auto* error = std::get_if<std::string>(&loaded)) {
        RunOutcome outcome;
        outcome.path = path;
        outcome.transport = "sim";
        outcome.profile = profile;
        outcome.status = RunStatus::failed;
        outcome.failures.push_back(std::string(kRefusedByLoader) + *error);
        return outcome;
    }
    // No trace, and a small event budget: a generated run takes thousands of events, and a
    // candidate that never goes idle must cost little before the budget calls it a liveness
    // failure.
    SimRunOptions options;
    options.trace_mode = sim::Trace::Mode::off;
    options.events_max = kFuzzEventsMax;
    if (paths != nullptr) {
        options.observe = completion_path_observer(*paths);
    }
    return run_on_sim(std::get<Scenario>(loaded), profile, options);
}

bool refused_by_loader(const RunOutcome& outcome) {
    return !outcome.failures.empty() && outcome.failures.front().starts_with(kRefusedByLoader);
}

std::string failure_signature(const RunOutcome& outcome) {
    if (outcome.failures.empty()) {
        return {};
    }
    std::string text = outcome.failures.front();
    // Drop the step pointer ("/threads/0/steps/3: ") and quoted details.
    if (text.starts_with("/threads/")) {
        const std::size_t colon = text.find(": ");
        if (colon != std::string::npos) {
            text = text.substr(colon + 2);
        }
    }
    text = strip_digits(text);
    std::string out;
    bool quoted = false;
    for (const char c : text) {
        if (c == '"') {
            quoted = !quoted;
            out += c;
            continue;
        }
        if (!quoted) {
            out += c;
        }
    }
    if (out.size() > 120) {
        out.resize(120);
    }
    return out;
}

std::vector<json> shrink_candidates(const json& scenario) {
    const auto current = weight(scenario);
    std::vector<json> lighter;
    for (json& candidate : candidates(scenario)) {
        if (weight(candidate) < current) {
            lighter.push_back(std::move(candidate));
        }
    }
    return lighter;
}

std::size_t scenario_step_count(const json& scenario) {
    std::size_t total = 0;
    if (scenario.contains("threads")) {
        for (const json& thread : scenario["threads"]) {
            total += thread.contains("steps") ? thread["steps"].size() : 0;
        }
    }
    return total;
}

ShrinkResult shrink_scenario(const json& failing,
                             const std::string& profile,
                             const std::function<bool(const RunOutcome&)>& still_fails,
                             std::size_t max_runs) {
    ShrinkResult result;
    result.scenario = failing;
    result.steps_before = scenario_step_count(failing);
    result.outcome = run_scenario_json(failing, profile);
    ++result.runs;
    bool improved = true;
    while (improved && result.runs < max_runs) {
        improved = false;
        for (json& candidate : shrink_candidates(result.scenario)) {
            if (result.runs >= max_runs) {
                break;
            }
            RunOutcome outcome = run_scenario_json(candidate, profile);
            ++result.runs;
            // A candidate the loader refuses (a dangling reference, say) is not smaller, just
            // broken.
            if (outcome.status == RunStatus::failed && !refused_by_loader(outcome) &&
                still_fails(outcome)) {
                result.scenario = std::move(candidate);
                result.outcome = std::move(outcome);
                improved = true;
                break;  // restart from the smaller scenario
            }
        }
    }
    result.steps_after = scenario_step_count(result.scenario);
    return result;
}

const std::vector<std::string>& fuzz_fault_kinds() {
    static const std::vector<std::string> kinds = {"partial_send",
                                                   "reset",
                                                   "close",
                                                   "stall",
                                                   "latency",
                                                   "bandwidth",
                                                   "thread_exit",
                                                   "half_open_scan",
                                                   "script",
                                                   "swarm",
                                                   "would_block"};
    return kinds;
}

const std::vector<std::string>& fuzz_completion_paths() {
    static const std::vector<std::string> paths = {
        "synchronous", "pending", "error", "cancel", "unknown"};
    return paths;
}

void add_completion_paths(const Observation& observation, CompletionPaths& paths) {
    if (observation.completed_synchronously == true) {
        paths.insert("synchronous");
    }
    if (observation.completed_synchronously == false || observation.completions == 0) {
        paths.insert("pending");
    }
    if ((observation.threw && (observation.threw->starts_with("Socket") ||
                               observation.threw->starts_with("Smtp"))) ||
        (observation.send_error && *observation.send_error != "none")) {
        paths.insert("error");
    }
    if (observation.cancelled == true) {
        paths.insert("cancel");
    }
    if (observation.delivery == "unknown") {
        paths.insert("unknown");
    }
}

std::function<void(const std::string&, const Observation&)> completion_path_observer(
    CompletionPaths& paths) {
    // Steps only, as a callback's observation repeats its operation's path. The harness calls
    // this from logical threads, which on sim take turns.
    return [&paths](const std::string& pointer, const Observation& observation) {
        if (!pointer.ends_with("/callback_expect")) {
            add_completion_paths(observation, paths);
        }
    };
}

void record_coverage(const json& scenario, const CompletionPaths& paths, FuzzCoverage& coverage) {
    std::set<std::string> faults;
    if (scenario.contains("faults")) {
        for (const json& fault : scenario["faults"]) {
            faults.insert(fault["kind"].get<std::string>());
        }
    }
    if (scenario.contains("smtp") && scenario["smtp"].contains("server") &&
        !scenario["smtp"]["server"].empty()) {
        faults.insert("script");
    }
    if (scenario.contains("swarm") && scenario["swarm"] == true) {
        faults.insert("swarm");
    }
    for (const std::string& kind : faults) {
        ++coverage.faults[kind];
    }
    for (const std::string& path : paths) {
        ++coverage.paths[path];
    }
}

std::string write_regression(const std::string& dir,
                             const std::string& name,
                             json scenario,
                             const FuzzFinding& finding,
                             const RunOutcome& outcome) {
    std::filesystem::create_directories(dir);
    scenario["name"] = name;
    scenario["seed"] = finding.seed;
    scenario["profiles"] = json::array({finding.profile});
    scenario["transports"] = {{"real", "a fuzz regression: replayed on sim, where it was found"}};
    std::string failure = outcome.failures.empty() ? "?" : outcome.failures.front();
    scenario["description"] =
        "Found by " + finding.found_by + " " + std::string(kVersion) + " (family " + finding.family +
        ", seed " + std::to_string(finding.seed) + ", profile " + finding.profile +
        "). Property that failed: " + failure + ". Shrunk from " +
        std::to_string(finding.steps_before) + " to " + std::to_string(finding.steps_after) +
        " steps. Replay: ./faultline replay " + dir + "/" + name + ".json --profile " +
        finding.profile + " --seed " + std::to_string(finding.seed);
    const std::string path = dir + "/" + name + ".json";
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << scenario.dump(2) << "\n";
    if (!out) {
        throw std::runtime_error("cannot write " + path);
    }
    return path;
}

}  // namespace faultline::conformance
