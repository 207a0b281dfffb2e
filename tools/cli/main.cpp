// faultline: the command-line tool. Exit 0 when everything passed, 1 when a scenario failed,
// 2 for bad input or usage. Every failure prints scenario, seed, profile and a replay command.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "faultline/conformance/record.h"
#include "faultline/conformance/run.h"
#include "faultline/model/profile.h"
#include "fuzz_command.h"
#include "send_mail_command.h"
#include "smtp_server_command.h"
#include "faultline/conformance/scenario.h"
#include "faultline/views/coverage.h"
#include "faultline/views/junit.h"
#include "faultline/views/pcap.h"
#include "faultline/views/report.h"
#include "faultline/views/timeline.h"
#include "faultline/views/trace_diff.h"

namespace {

using faultline::conformance::RunOutcome;
using faultline::conformance::RunStatus;
using faultline::conformance::Scenario;

constexpr int kExitPassed = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

const char* const kUsage = R"(usage: faultline <command> [options]

commands:
  run PATH... [--transport sim|real|all] [--profile P] [--seed N] [--trace FILE] [--junit FILE]
      [--results FILE]
      Run scenario files or folders; one line per scenario x transport x profile, then a summary.
      --results writes every run (and each failure's sim trace) for `report`.
  run PATH... --transport real --record OUT [--profile P]
      Record each scenario's real run (one profile: P or its first) as a scenario for sim: the
      kernel's partial sends as faults, every step's observation as "recorded". OUT is a .json
      file for one scenario, else a folder. Each recording is replayed on sim at once; exit 1
      when a real run failed or a replay diverged.
  replay FILE [--profile P] [--seed N] [--trace FILE] [--chrome-trace OUT.json] [--pcap OUT.pcap]
      Run one scenario on sim and print its timeline. --chrome-trace writes it in the Trace Event
      format (Perfetto, chrome://tracing); --pcap writes the simulated network's packets.
  report RESULTS... --html OUT.html
      One self-contained HTML page from `run --results` files: pass/fail by clause and profile,
      and for every failure its sequence diagram, timeline and replay command.
  diff A.jsonl B.jsonl [--context N] [--ignore FIELD,...] [--only EVENT,...]
      The first divergent event of two traces, with N events of context (default 5). Exit 0
      identical, 1 diverged. E.g. sim against real: --only api --ignore t,seq,thread.
  validate PATH...
      Schema and semantic checks only.
  determinism PATH... [--runs K]
      Run each scenario K times on sim (default 3) and compare trace hashes; a divergence is
      shown as `diff` shows it.
  coverage [--scenarios DIR] [--tests DIR...] [--clauses FILE]
      Every clause of the conformance list with the scenarios (per profile) and tests that pin
      it; uncovered clauses flagged. Markdown, as embedded in the README.
  fuzz [--seconds N | --runs N] [--seed S] [--profile P] [--family send|accept|smtp] [--out DIR]
       [--shard I/N] [--jobs J] [--max-failures N] [--mutant NAME] [--junit FILE]
      Generated scenarios on sim, checked by the oracle; each new failure is shrunk to a file
      in DIR (default scenarios/regressions) that `replay` reproduces. Live progress on stderr.
  send-mail --host H --port P --from A --to B [--to C] [--cc D] [--bcc E] [--subject S]
            [--body-file F] [--profile P] [--timeout MS]
      One real send with SmtpClient; prints the SendCompleted outcome as one JSON object.
  smtp-server [--listen 127.0.0.1:PORT] [--script FILE] [--record DIR]
              [--max-sessions N] [--max-seconds N]
      The scriptable SMTP server on loopback, for testing other mail clients against faults.

profiles: documented (default where a scenario lists both), dotnet-unix
exit: 0 all passed, 1 a scenario failed, 2 bad input or usage
)";

struct Options {
    std::vector<std::string> paths;
    std::string transport = "all";
    std::optional<std::string> profile;
    std::optional<std::uint64_t> seed;
    std::optional<std::string> trace_file;
    std::optional<std::string> junit_file;
    std::optional<std::string> record;
    std::optional<std::string> results_file;
    std::optional<std::string> chrome_trace;
    std::optional<std::string> pcap;
    std::optional<std::string> html;
    std::optional<std::size_t> context;
    std::vector<std::string> ignore_fields;
    std::vector<std::string> only_events;
    std::optional<std::string> scenarios_dir;
    std::vector<std::string> tests_dirs;
    std::optional<std::string> clauses_file;
    int runs = 3;
};

std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        if (comma > start) {
            parts.push_back(text.substr(start, comma - start));
        }
        start = comma + 1;
    }
    return parts;
}

[[noreturn]] void usage_error(const std::string& message) {
    std::cerr << "faultline: " << message << "\n\n" << kUsage;
    std::exit(kExitUsage);
}

std::uint64_t parse_number(const std::string& text, const char* what) {
    std::uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) {
        usage_error(std::string("bad ") + what + " \"" + text + "\"");
    }
    return value;
}

Options parse_options(const std::vector<std::string>& args) {
    Options options;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= args.size()) {
                usage_error(arg + " needs a value");
            }
            return args[++i];
        };
        if (arg == "--transport") {
            options.transport = value();
            if (options.transport != "sim" && options.transport != "real" &&
                options.transport != "all") {
                usage_error("--transport is sim, real or all");
            }
        } else if (arg == "--profile") {
            options.profile = value();
            if (!faultline::model::profile_by_name(*options.profile)) {
                usage_error("unknown profile \"" + *options.profile + "\"");
            }
        } else if (arg == "--seed") {
            options.seed = parse_number(value(), "seed");
        } else if (arg == "--trace") {
            options.trace_file = value();
        } else if (arg == "--junit") {
            options.junit_file = value();
        } else if (arg == "--record") {
            options.record = value();
        } else if (arg == "--results") {
            options.results_file = value();
        } else if (arg == "--chrome-trace") {
            options.chrome_trace = value();
        } else if (arg == "--pcap") {
            options.pcap = value();
        } else if (arg == "--html") {
            options.html = value();
        } else if (arg == "--context") {
            options.context = static_cast<std::size_t>(
                std::min<std::uint64_t>(parse_number(value(), "context"), 10'000));
        } else if (arg == "--ignore") {
            options.ignore_fields = split_commas(value());
        } else if (arg == "--only") {
            options.only_events = split_commas(value());
        } else if (arg == "--scenarios") {
            options.scenarios_dir = value();
        } else if (arg == "--tests") {
            options.tests_dirs.push_back(value());
        } else if (arg == "--clauses") {
            options.clauses_file = value();
        } else if (arg == "--runs") {
            options.runs = static_cast<int>(std::min<std::uint64_t>(parse_number(value(), "runs"), 1000));
            if (options.runs < 2) {
                usage_error("--runs needs at least 2");
            }
        } else if (!arg.empty() && arg[0] == '-') {
            usage_error("unknown option " + arg);
        } else {
            options.paths.push_back(arg);
        }
    }
    return options;
}

/// Loads every scenario under the paths; prints each load error. False if any failed.
bool load_all(const std::vector<std::string>& paths, std::vector<Scenario>& scenarios) {
    bool all_ok = true;
    for (const std::string& path : paths) {
        std::error_code exists_error;
        if (!std::filesystem::exists(path, exists_error)) {
            std::cerr << path << ":1:1: (file): cannot read: no such file or folder\n";
            all_ok = false;
            continue;
        }
        const auto files = faultline::conformance::list_scenario_files(path);
        if (files.empty()) {
            std::cerr << path << ":1:1: (file): no scenario files here\n";
            all_ok = false;
        }
        for (const std::string& file : files) {
            auto loaded = faultline::conformance::load_scenario_file(file);
            if (auto* error = std::get_if<std::string>(&loaded)) {
                std::cerr << *error << "\n";
                all_ok = false;
            } else {
                scenarios.push_back(std::get<Scenario>(std::move(loaded)));
            }
        }
    }
    return all_ok;
}

std::vector<std::string> profiles_for(const Scenario& scenario, const Options& options) {
    if (!options.profile) {
        return scenario.profiles;
    }
    if (std::find(scenario.profiles.begin(), scenario.profiles.end(), *options.profile) ==
        scenario.profiles.end()) {
        return {};
    }
    return {*options.profile};
}

bool write_file(const std::string& path, const std::string& content);

/// One JUnit testcase per scenario x transport x profile; a failure carries the replay command.
bool write_junit(const std::string& path, const std::vector<RunOutcome>& outcomes) {
    std::vector<faultline::views::JunitCase> cases;
    for (const RunOutcome& outcome : outcomes) {
        faultline::views::JunitCase test;
        test.classname = outcome.path;
        test.name = outcome.scenario + " [" + outcome.transport + "/" + outcome.profile + "]";
        test.seconds = outcome.wall_ms / 1000.0;
        if (outcome.status == RunStatus::failed) {
            test.status = faultline::views::JunitCase::Status::failed;
            test.message = outcome.failures.empty() ? "failed" : outcome.failures.front();
            for (const std::string& failure : outcome.failures) {
                test.body += failure + "\n";
            }
            test.body += "replay: " + faultline::conformance::replay_command(outcome) + "\n";
        } else if (outcome.status == RunStatus::not_applicable) {
            test.status = faultline::views::JunitCase::Status::skipped;
            test.message = "not applicable: " + outcome.reason;
        }
        cases.push_back(std::move(test));
    }
    return write_file(path, faultline::views::junit_xml("faultline", cases));
}

/// Writes `content` to `path`; false (and a message) when it cannot.
bool write_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary);
    out << content;
    out.close();
    if (!out) {
        std::cerr << "faultline: cannot write " << path << "\n";
        return false;
    }
    return true;
}

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        return std::nullopt;
    }
    return std::move(text).str();
}

/// A run as the results file keeps it. A failure carries a sim trace for its diagrams: its own,
/// or (a real run's) the sim run of the same scenario, profile and seed.
faultline::views::ReportRun report_run(const Scenario& scenario, const RunOutcome& outcome,
                                       const Options& options) {
    faultline::views::ReportRun run;
    run.scenario = outcome.scenario;
    run.path = outcome.path;
    run.description = scenario.description;
    run.clauses = scenario.clauses;
    run.transport = outcome.transport;
    run.profile = outcome.profile;
    run.seed = outcome.seed;
    run.status = outcome.status == RunStatus::passed   ? "passed"
                 : outcome.status == RunStatus::failed ? "failed"
                                                       : "not_applicable";
    run.failures = outcome.failures;
    run.reason = outcome.reason;
    run.trace_hash = outcome.trace_hash;
    run.events = outcome.events;
    run.virtual_ns = outcome.virtual_ns;
    run.wall_ms = outcome.wall_ms;
    if (outcome.status == RunStatus::failed) {
        run.replay = faultline::conformance::replay_command(outcome);
        if (!scenario.sim_not_applicable) {
            run.trace = faultline::conformance::run_on_sim(scenario, outcome.profile, options.seed).trace;
        }
    }
    return run;
}

void print_outcome(const RunOutcome& outcome) {
    const char* status = outcome.status == RunStatus::passed   ? "PASS"
                         : outcome.status == RunStatus::failed ? "FAIL"
                                                               : "N/A ";
    std::printf("%s  %-4s  %-11s  %s", status, outcome.transport.c_str(), outcome.profile.c_str(),
                outcome.path.c_str());
    if (outcome.status == RunStatus::not_applicable) {
        std::printf("  (%s)\n", outcome.reason.c_str());
        return;
    }
    if (outcome.transport == "sim") {
        std::printf("  [%llu events, %.3f ms virtual, hash %s]\n",
                    static_cast<unsigned long long>(outcome.events),
                    static_cast<double>(outcome.virtual_ns) / 1e6, outcome.trace_hash.c_str());
    } else {
        std::printf("  [%.1f ms]\n", outcome.wall_ms);
    }
    if (outcome.status == RunStatus::failed) {
        std::printf("      scenario %s, seed %llu, profile %s, transport %s\n",
                    outcome.scenario.c_str(), static_cast<unsigned long long>(outcome.seed),
                    outcome.profile.c_str(), outcome.transport.c_str());
        for (const std::string& failure : outcome.failures) {
            std::printf("      %s\n", failure.c_str());
        }
        std::printf("      replay: %s\n", faultline::conformance::replay_command(outcome).c_str());
    }
}

/// run --transport real --record OUT: record, write, replay on sim, report.
int command_record(const Options& options, const std::vector<Scenario>& scenarios, bool loaded) {
    const std::string& out = *options.record;
    const bool one_file = std::filesystem::path(out).extension() == ".json";
    if (one_file && scenarios.size() > 1) {
        usage_error("--record " + out + " names one file; give a folder to record " +
                    std::to_string(scenarios.size()) + " scenarios");
    }
    std::size_t same = 0;
    std::size_t diverged = 0;
    std::size_t failed = 0;
    std::size_t skipped = 0;
    for (const Scenario& scenario : scenarios) {
        const std::vector<std::string> profiles = profiles_for(scenario, options);
        if (profiles.empty()) {
            continue;
        }
        const std::string& profile = profiles.front();
        const std::string path =
            one_file ? out : (std::filesystem::path(out) / (scenario.name + ".json")).string();
        const auto run = faultline::conformance::record_and_replay(scenario, profile, path);
        print_outcome(run.real);
        if (run.real.status == RunStatus::not_applicable) {
            ++skipped;
            continue;
        }
        failed += run.real.status == RunStatus::failed ? 1U : 0U;
        if (run.written.empty() || !run.error.empty()) {
            ++diverged;
            std::printf("      not recorded: %s\n", run.error.c_str());
            continue;
        }
        if (run.replay.status == RunStatus::passed) {
            ++same;
            std::printf("      recorded %s; replay on sim observed the same (hash %s)\n",
                        path.c_str(), run.replay.trace_hash.c_str());
        } else {
            ++diverged;
            std::printf("      recorded %s; replay on sim DIVERGED:\n", path.c_str());
            for (const std::string& failure : run.replay.failures) {
                std::printf("        %s\n", failure.c_str());
            }
        }
        std::fflush(stdout);
    }
    std::printf("\n%zu recorded: %zu replay the same on sim, %zu diverged or not recorded, "
                "%zu real runs failed, %zu not applicable\n",
                same + diverged, same, diverged, failed, skipped);
    if (!loaded) {
        return kExitUsage;
    }
    return diverged > 0 || failed > 0 ? kExitFailed : kExitPassed;
}

int command_run(const Options& options) {
    if (options.paths.empty()) {
        usage_error("run needs at least one PATH");
    }
    if (options.record) {
        if (options.transport != "real") {
            usage_error("--record records real runs: add --transport real");
        }
        std::vector<Scenario> scenarios;
        const bool loaded = load_all(options.paths, scenarios);
        return command_record(options, scenarios, loaded);
    }
    std::vector<Scenario> scenarios;
    const bool loaded = load_all(options.paths, scenarios);
    std::vector<RunOutcome> outcomes;
    std::vector<faultline::views::ReportRun> results;
    std::ofstream trace;
    if (options.trace_file) {
        trace.open(*options.trace_file);
    }
    for (const Scenario& scenario : scenarios) {
        for (const std::string& profile : profiles_for(scenario, options)) {
            if (options.transport != "real") {
                RunOutcome outcome = faultline::conformance::run_on_sim(
                    scenario, profile, options.seed,
                    options.trace_file ? faultline::sim::Trace::Mode::full
                                       : faultline::sim::Trace::Mode::hash_only);
                for (const std::string& line : outcome.trace) {
                    trace << line << "\n";
                }
                print_outcome(outcome);
                outcome.trace.clear();
                if (options.results_file) {
                    results.push_back(report_run(scenario, outcome, options));
                }
                outcomes.push_back(std::move(outcome));
            }
            if (options.transport != "sim") {
                RunOutcome outcome = faultline::conformance::run_on_real(
                    scenario, profile, options.trace_file.has_value());
                for (const std::string& line : outcome.trace) {
                    trace << line << "\n";
                }
                outcome.trace.clear();
                print_outcome(outcome);
                if (options.results_file) {
                    results.push_back(report_run(scenario, outcome, options));
                }
                outcomes.push_back(std::move(outcome));
            }
            std::fflush(stdout);
        }
    }
    std::size_t passed = 0;
    std::size_t failed = 0;
    std::size_t not_applicable = 0;
    for (const RunOutcome& outcome : outcomes) {
        passed += outcome.status == RunStatus::passed ? 1U : 0U;
        failed += outcome.status == RunStatus::failed ? 1U : 0U;
        not_applicable += outcome.status == RunStatus::not_applicable ? 1U : 0U;
    }
    if (options.junit_file && !write_junit(*options.junit_file, outcomes)) {
        return kExitUsage;
    }
    if (options.results_file &&
        !write_file(*options.results_file, faultline::views::results_to_json(results).dump(
                                              1, ' ', false, nlohmann::json::error_handler_t::replace) +
                                              "\n")) {
        return kExitUsage;
    }
    std::printf("\n%zu scenarios, %zu runs: %zu passed, %zu failed, %zu not applicable\n",
                scenarios.size(), outcomes.size(), passed, failed, not_applicable);
    if (failed > 0) {
        std::printf("failed:\n");
        for (const RunOutcome& outcome : outcomes) {
            if (outcome.status == RunStatus::failed) {
                std::printf("  %s [%s/%s]  replay: %s\n", outcome.scenario.c_str(),
                            outcome.transport.c_str(), outcome.profile.c_str(),
                            faultline::conformance::replay_command(outcome).c_str());
            }
        }
    }
    if (!loaded) {
        std::printf("some scenario files could not be loaded (see above)\n");
        return kExitUsage;
    }
    return failed > 0 ? kExitFailed : kExitPassed;
}

/// One trace line as a readable timeline row.
std::string timeline_row(const std::string& line) {
    const auto event = nlohmann::json::parse(line, nullptr, false);
    if (event.is_discarded() || !event.is_object()) {
        return line;
    }
    if (event.value("ev", "") == "end") {
        return "end: " + std::to_string(event.value("events", 0)) + " events, hash " +
               event.value("hash", "");
    }
    const auto ns = event.value("t", std::int64_t{0});
    char stamp[40];
    std::snprintf(stamp, sizeof stamp, "%6lld.%09lld", static_cast<long long>(ns / 1'000'000'000),
                  static_cast<long long>(ns % 1'000'000'000));
    std::string row = std::string(stamp) + "  " + event.value("thread", "") + "  ";
    row.resize(std::max<std::size_t>(row.size(), 34), ' ');
    row += event.value("ev", "");
    for (const auto& item : event.items()) {
        if (item.key() == "t" || item.key() == "seq" || item.key() == "thread" ||
            item.key() == "ev") {
            continue;
        }
        row += " " + item.key() + "=" +
               (item.value().is_string() ? item.value().get<std::string>() : item.value().dump());
    }
    return row;
}

int command_replay(const Options& options) {
    if (options.paths.size() != 1) {
        usage_error("replay needs exactly one FILE");
    }
    auto loaded = faultline::conformance::load_scenario_file(options.paths.front());
    if (auto* error = std::get_if<std::string>(&loaded)) {
        std::cerr << *error << "\n";
        return kExitUsage;
    }
    const Scenario& scenario = std::get<Scenario>(loaded);
    const std::string profile = options.profile.value_or(scenario.profiles.front());
    faultline::conformance::SimRunOptions run_options;
    run_options.seed = options.seed;
    faultline::views::PcapWriter capture;
    if (options.pcap) {
        run_options.packet_tap = [&capture](const faultline::sim::WirePacket& packet) {
            capture.add(packet);
        };
    }
    RunOutcome outcome = faultline::conformance::run_on_sim(scenario, profile, run_options);
    for (const std::string& line : outcome.trace) {
        std::printf("%s\n", timeline_row(line).c_str());
    }
    bool written = true;
    if (options.trace_file) {
        std::string lines;
        for (const std::string& line : outcome.trace) {
            lines += line + "\n";
        }
        written = write_file(*options.trace_file, lines) && written;
    }
    if (options.chrome_trace) {
        written = write_file(*options.chrome_trace, faultline::views::chrome_trace_json(
                                                        faultline::views::timeline_from_trace(
                                                            outcome.trace))) &&
                  written;
    }
    if (options.pcap) {
        written = write_file(*options.pcap, capture.bytes()) && written;
    }
    std::printf("\n");
    outcome.trace.clear();
    print_outcome(outcome);
    if (options.chrome_trace) {
        std::printf("timeline: %s (open in https://ui.perfetto.dev or chrome://tracing)\n",
                    options.chrome_trace->c_str());
    }
    if (options.pcap) {
        std::printf("capture: %s (%zu packets; tshark -r %s -d tcp.port==PORT,smtp)\n",
                    options.pcap->c_str(), capture.packets(), options.pcap->c_str());
    }
    if (!written) {
        return kExitUsage;
    }
    return outcome.status == RunStatus::failed ? kExitFailed : kExitPassed;
}

int command_report(const Options& options) {
    if (options.paths.empty() || !options.html) {
        usage_error("report needs RESULTS... and --html OUT.html");
    }
    std::vector<faultline::views::ReportRun> runs;
    for (const std::string& path : options.paths) {
        const auto text = read_file(path);
        if (!text) {
            std::cerr << path << ": cannot read\n";
            return kExitUsage;
        }
        const auto document = nlohmann::json::parse(*text, nullptr, false);
        if (document.is_discarded()) {
            std::cerr << path << ": not JSON (expected the file `run --results` writes)\n";
            return kExitUsage;
        }
        auto parsed = faultline::views::results_from_json(document);
        if (auto* error = std::get_if<std::string>(&parsed)) {
            std::cerr << path << ": " << *error << "\n";
            return kExitUsage;
        }
        for (auto& run : std::get<std::vector<faultline::views::ReportRun>>(parsed)) {
            runs.push_back(std::move(run));
        }
    }
    if (!write_file(*options.html, faultline::views::render_report_html(runs))) {
        return kExitUsage;
    }
    std::size_t failed = 0;
    for (const auto& run : runs) {
        failed += run.status == "failed" ? 1U : 0U;
    }
    std::printf("report: %s (%zu runs, %zu failed)\n", options.html->c_str(), runs.size(), failed);
    return kExitPassed;
}

/// Reads a JSON Lines trace; nullopt when the file cannot be read.
std::optional<std::vector<std::string>> read_lines(const std::string& path) {
    const auto text = read_file(path);
    if (!text) {
        return std::nullopt;
    }
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text->size()) {
        const std::size_t end = std::min(text->find('\n', start), text->size());
        if (end > start) {
            lines.push_back(text->substr(start, end - start));
        }
        start = end + 1;
    }
    return lines;
}

faultline::views::DiffOptions diff_options(const Options& options) {
    faultline::views::DiffOptions diff;
    diff.context = options.context.value_or(5);
    diff.ignore_fields.insert(options.ignore_fields.begin(), options.ignore_fields.end());
    diff.only_events.insert(options.only_events.begin(), options.only_events.end());
    return diff;
}

int command_coverage(const Options& options) {
    if (!options.paths.empty()) {
        usage_error("coverage takes no PATH (see --scenarios, --tests, --clauses)");
    }
    const std::string clauses_path = options.clauses_file.value_or("conformance/clauses.tsv");
    const auto clauses_text = read_file(clauses_path);
    if (!clauses_text) {
        std::cerr << clauses_path << ": cannot read (run from the repository root, or pass --clauses)\n";
        return kExitUsage;
    }
    auto clauses = faultline::views::parse_clauses(*clauses_text);
    if (auto* error = std::get_if<std::string>(&clauses)) {
        std::cerr << clauses_path << ": " << *error << "\n";
        return kExitUsage;
    }
    std::vector<Scenario> scenarios;
    if (!load_all({options.scenarios_dir.value_or("scenarios")}, scenarios)) {
        return kExitUsage;
    }
    std::vector<faultline::views::ScenarioCitation> scenario_citations;
    for (const Scenario& scenario : scenarios) {
        scenario_citations.push_back({scenario.path, scenario.clauses, scenario.profiles});
    }
    const std::vector<std::string> test_dirs =
        options.tests_dirs.empty()
            ? std::vector<std::string>{"model/test", "sim/test", "real/test", "conformance/test",
                                       "tools/views/test"}
            : options.tests_dirs;
    std::vector<faultline::views::TestCitation> test_citations;
    for (const std::string& dir : test_dirs) {
        std::error_code error;
        std::vector<std::filesystem::path> files;
        for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
            const std::string name = entry.path().filename().string();
            if (entry.is_regular_file() && name.size() > 9 &&
                name.compare(name.size() - 9, 9, ".test.cpp") == 0) {
                files.push_back(entry.path());
            }
        }
        if (error) {
            std::cerr << dir << ": cannot read tests: " << error.message() << "\n";
            return kExitUsage;
        }
        std::sort(files.begin(), files.end());
        for (const auto& file : files) {
            const auto source = read_file(file.string());
            if (!source) {
                std::cerr << file.string() << ": cannot read\n";
                return kExitUsage;
            }
            for (auto& citation : faultline::views::cited_in_test_source(file.string(), *source)) {
                test_citations.push_back(std::move(citation));
            }
        }
    }
    const auto& list = std::get<std::vector<faultline::views::Clause>>(clauses);
    const std::vector<std::string> profiles = {"documented", "dotnet-unix"};
    const auto coverage =
        faultline::views::clause_coverage(list, scenario_citations, test_citations, profiles);
    std::printf("%s", faultline::views::coverage_markdown(coverage, profiles).c_str());
    // Ids cited that the list does not have: a typo or a clause the list lost.
    std::set<std::string> unknown;
    auto check = [&](const std::vector<std::string>& cited) {
        for (const std::string& id : cited) {
            // T- (dotnet/runtime tests) and P- (peers) ids name notes, not clauses.
            if (id.empty() || std::string_view("SAMW").find(id.front()) == std::string_view::npos) {
                continue;
            }
            if (std::none_of(list.begin(), list.end(),
                             [&](const faultline::views::Clause& clause) { return clause.id == id; })) {
                unknown.insert(id);
            }
        }
    };
    for (const auto& citation : scenario_citations) {
        check(citation.clauses);
    }
    for (const auto& citation : test_citations) {
        check(citation.clauses);
    }
    if (!unknown.empty()) {
        std::printf("cited but not in %s:", clauses_path.c_str());
        for (const std::string& id : unknown) {
            std::printf(" %s", id.c_str());
        }
        std::printf("\n");
    }
    const bool all_covered = std::all_of(coverage.begin(), coverage.end(),
                                         [](const auto& row) { return row.covered(); });
    return all_covered ? kExitPassed : kExitFailed;
}

int command_diff(const Options& options) {
    if (options.paths.size() != 2) {
        usage_error("diff needs two trace files, A.jsonl and B.jsonl");
    }
    const auto a = read_lines(options.paths[0]);
    const auto b = read_lines(options.paths[1]);
    for (std::size_t i = 0; i < 2; ++i) {
        if (!(i == 0 ? a : b)) {
            std::cerr << options.paths[i] << ": cannot read\n";
            return kExitUsage;
        }
    }
    const auto diff = faultline::views::diff_traces(*a, *b, diff_options(options));
    std::printf("%s", faultline::views::format_trace_diff(diff, options.paths[0], options.paths[1])
                          .c_str());
    return diff.identical ? kExitPassed : kExitFailed;
}

int command_validate(const Options& options) {
    if (options.paths.empty()) {
        usage_error("validate needs at least one PATH");
    }
    std::vector<Scenario> scenarios;
    const bool loaded = load_all(options.paths, scenarios);
    for (const Scenario& scenario : scenarios) {
        std::printf("ok  %s\n", scenario.path.c_str());
    }
    std::printf("%zu valid scenario files%s\n", scenarios.size(),
                loaded ? "" : "; some files are invalid (see above)");
    return loaded ? kExitPassed : kExitUsage;
}

int command_determinism(const Options& options) {
    if (options.paths.empty()) {
        usage_error("determinism needs at least one PATH");
    }
    std::vector<Scenario> scenarios;
    const bool loaded = load_all(options.paths, scenarios);
    std::size_t identical = 0;
    std::size_t diverged = 0;
    for (const Scenario& scenario : scenarios) {
        for (const std::string& profile : profiles_for(scenario, options)) {
            if (scenario.sim_not_applicable) {
                continue;
            }
            const RunOutcome first = faultline::conformance::run_on_sim(scenario, profile, options.seed);
            bool same = true;
            for (int run = 1; run < options.runs && same; ++run) {
                const RunOutcome again =
                    faultline::conformance::run_on_sim(scenario, profile, options.seed);
                if (again.trace_hash == first.trace_hash) {
                    continue;
                }
                same = false;
                std::printf("DIVERGED  %-11s  %s  run 1 hash %s, run %d hash %s\n", profile.c_str(),
                            scenario.path.c_str(), first.trace_hash.c_str(), run + 1,
                            again.trace_hash.c_str());
                const auto diff =
                    faultline::views::diff_traces(first.trace, again.trace, diff_options(options));
                std::printf("%s", faultline::views::format_trace_diff(
                                      diff, "run 1", "run " + std::to_string(run + 1))
                                      .c_str());
            }
            if (same) {
                ++identical;
                std::printf("SAME      %-11s  %s  %s x%d\n", profile.c_str(), scenario.path.c_str(),
                            first.trace_hash.c_str(), options.runs);
            } else {
                ++diverged;
            }
        }
    }
    std::printf("\n%zu identical, %zu diverged across %d runs each\n", identical, diverged,
                options.runs);
    if (!loaded) {
        return kExitUsage;
    }
    return diverged > 0 ? kExitFailed : kExitPassed;
}

}  // namespace

int main(int argc, char** argv) {
    faultline::conformance::install_throwing_assert_handler();
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args.front() == "--help" || args.front() == "-h" || args.front() == "help") {
        std::printf("%s", kUsage);
        return args.empty() ? kExitUsage : kExitPassed;
    }
    const std::string command = args.front();
    if (command == "send-mail") {
        faultline::cli::SendMailOptions mail;
        for (std::size_t i = 1; i < args.size(); ++i) {
            const std::string& arg = args[i];
            if (i + 1 >= args.size()) {
                usage_error(arg + " needs a value");
            }
            const std::string value = args[++i];
            if (arg == "--host") {
                mail.host = value;
            } else if (arg == "--port") {
                mail.port = static_cast<int>(std::min<std::uint64_t>(parse_number(value, "--port"), 1'000'000));
            } else if (arg == "--from") {
                mail.from = value;
            } else if (arg == "--to") {
                mail.to.push_back(value);
            } else if (arg == "--cc") {
                mail.cc.push_back(value);
            } else if (arg == "--bcc") {
                mail.bcc.push_back(value);
            } else if (arg == "--subject") {
                mail.subject = value;
            } else if (arg == "--body-file") {
                mail.body_file = value;
            } else if (arg == "--profile") {
                mail.profile = value;
            } else if (arg == "--timeout") {
                mail.timeout_ms = static_cast<int>(std::min<std::uint64_t>(parse_number(value, "--timeout"), 86'400'000));
            } else {
                usage_error("unknown option " + arg);
            }
        }
        if (mail.from.empty() || mail.to.empty()) {
            usage_error("send-mail needs --from and at least one --to");
        }
        return faultline::cli::send_mail_command(mail);
    }
    if (command == "fuzz") {
        faultline::cli::FuzzOptions fuzz;
        for (std::size_t i = 1; i < args.size(); ++i) {
            const std::string& arg = args[i];
            if (i + 1 >= args.size()) {
                usage_error(arg + " needs a value");
            }
            const std::string value = args[++i];
            if (arg == "--seconds") {
                fuzz.seconds = static_cast<double>(
                    std::clamp<std::uint64_t>(parse_number(value, "--seconds"), 1, 604'800));
            } else if (arg == "--runs") {
                fuzz.runs = std::clamp<std::uint64_t>(parse_number(value, "--runs"), 1,
                                                      1'000'000'000'000ULL);
            } else if (arg == "--seed") {
                fuzz.seed = parse_number(value, "--seed");
            } else if (arg == "--profile") {
                if (!faultline::model::profile_by_name(value)) {
                    usage_error("unknown profile \"" + value + "\"");
                }
                fuzz.profile = value;
            } else if (arg == "--family") {
                fuzz.families.push_back(value);
            } else if (arg == "--out") {
                fuzz.out = value;
            } else if (arg == "--shard") {
                const auto slash = value.find('/');
                if (slash == std::string::npos) {
                    usage_error("--shard takes I/N, e.g. 0/4");
                }
                fuzz.shard_index = parse_number(value.substr(0, slash), "--shard");
                fuzz.shard_count = parse_number(value.substr(slash + 1), "--shard");
                if (fuzz.shard_count == 0 || fuzz.shard_index >= fuzz.shard_count ||
                    fuzz.shard_count > 1'000'000) {
                    usage_error("--shard I/N needs 0 <= I < N <= 1000000");
                }
            } else if (arg == "--mutant") {
                fuzz.mutant = value;
            } else if (arg == "--max-failures") {
                fuzz.max_failures = static_cast<std::size_t>(
                    std::clamp<std::uint64_t>(parse_number(value, "--max-failures"), 1, 1000));
            } else if (arg == "--junit") {
                fuzz.junit = value;
            } else if (arg == "--jobs") {
                fuzz.jobs = static_cast<unsigned>(
                    std::clamp<std::uint64_t>(parse_number(value, "--jobs"), 1, 256));
            } else {
                usage_error("unknown option " + arg);
            }
        }
        if (fuzz.seconds && fuzz.runs) {
            usage_error("fuzz takes --seconds or --runs, not both");
        }
        try {
            return faultline::cli::fuzz_command(fuzz);
        } catch (const std::exception& error) {
            std::cerr << "faultline: internal error: " << error.what() << "\n";
            return kExitFailed;
        }
    }
    if (command == "smtp-server") {
        faultline::cli::SmtpServerOptions server;
        for (std::size_t i = 1; i < args.size(); ++i) {
            const std::string& arg = args[i];
            if (i + 1 >= args.size()) {
                usage_error(arg + " needs a value");
            }
            const std::string value = args[++i];
            if (arg == "--listen") {
                const auto endpoint = faultline::model::Endpoint::parse(value);
                if (!endpoint) {
                    usage_error("--listen takes ADDRESS:PORT, e.g. 127.0.0.1:2525");
                }
                server.listen = *endpoint;
            } else if (arg == "--script") {
                server.script_file = value;
            } else if (arg == "--record") {
                server.record_dir = value;
            } else if (arg == "--max-sessions") {
                server.max_sessions = static_cast<std::size_t>(
                    std::clamp<std::uint64_t>(parse_number(value, "--max-sessions"), 1, 100'000));
            } else if (arg == "--max-seconds") {
                server.max_seconds = static_cast<std::int64_t>(
                    std::clamp<std::uint64_t>(parse_number(value, "--max-seconds"), 0, 86'400));
            } else {
                usage_error("unknown option " + arg);
            }
        }
        return faultline::cli::smtp_server_command(server);
    }
    const Options options = parse_options({args.begin() + 1, args.end()});
    try {
        if (command == "run") {
            return command_run(options);
        }
        if (command == "replay") {
            return command_replay(options);
        }
        if (command == "validate") {
            return command_validate(options);
        }
        if (command == "determinism") {
            return command_determinism(options);
        }
        if (command == "report") {
            return command_report(options);
        }
        if (command == "diff") {
            return command_diff(options);
        }
        if (command == "coverage") {
            return command_coverage(options);
        }
    } catch (const std::exception& error) {
        std::cerr << "faultline: internal error: " << error.what() << "\n";
        return kExitFailed;
    }
    usage_error("unknown command \"" + command + "\"");
}
