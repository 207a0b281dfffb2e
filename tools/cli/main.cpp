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
#include <string>
#include <vector>

#include "faultline/conformance/record.h"
#include "faultline/conformance/run.h"
#include "faultline/model/profile.h"
#include "fuzz_command.h"
#include "send_mail_command.h"
#include "smtp_server_command.h"
#include "faultline/conformance/scenario.h"

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
      Run scenario files or folders; one line per scenario x transport x profile, then a summary.
  run PATH... --transport real --record OUT [--profile P]
      Record each scenario's real run (one profile: P or its first) as a scenario for sim: the
      kernel's partial sends as faults, every step's observation as "recorded". OUT is a .json
      file for one scenario, else a folder. Each recording is replayed on sim at once; exit 1
      when a real run failed or a replay diverged.
  replay FILE [--profile P] [--seed N] [--trace FILE]
      Run one scenario on sim and print its timeline.
  validate PATH...
      Schema and semantic checks only.
  determinism PATH... [--runs K]
      Run each scenario K times on sim (default 3) and compare trace hashes.
  fuzz [--seconds N | --runs N] [--seed S] [--profile P] [--family send|accept|smtp] [--out DIR]
       [--shard I/N] [--jobs J] [--max-failures N] [--mutant NAME]
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
    int runs = 3;
};

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

std::string xml_escape(const std::string& text) {
    std::string escaped;
    for (const char character : text) {
        switch (character) {
            case '&': escaped += "&amp;"; break;
            case '<': escaped += "&lt;"; break;
            case '>': escaped += "&gt;"; break;
            case '"': escaped += "&quot;"; break;
            default: escaped += character;
        }
    }
    return escaped;
}

void write_junit(const std::string& path, const std::vector<RunOutcome>& outcomes) {
    std::ofstream out(path);
    std::size_t failures = 0;
    std::size_t skipped = 0;
    double seconds = 0;
    for (const RunOutcome& outcome : outcomes) {
        failures += outcome.status == RunStatus::failed ? 1U : 0U;
        skipped += outcome.status == RunStatus::not_applicable ? 1U : 0U;
        seconds += outcome.wall_ms / 1000.0;
    }
    out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out << "<testsuites><testsuite name=\"faultline\" tests=\"" << outcomes.size()
        << "\" failures=\"" << failures << "\" skipped=\"" << skipped << "\" time=\"" << seconds
        << "\">\n";
    for (const RunOutcome& outcome : outcomes) {
        out << "  <testcase classname=\"" << xml_escape(outcome.path) << "\" name=\""
            << xml_escape(outcome.scenario + " [" + outcome.transport + "/" + outcome.profile + "]")
            << "\" time=\"" << outcome.wall_ms / 1000.0 << "\">";
        if (outcome.status == RunStatus::failed) {
            std::string body;
            for (const std::string& failure : outcome.failures) {
                body += failure + "\n";
            }
            body += "replay: " + faultline::conformance::replay_command(outcome) + "\n";
            out << "<failure message=\"" << xml_escape(outcome.failures.front()) << "\">"
                << xml_escape(body) << "</failure>";
        } else if (outcome.status == RunStatus::not_applicable) {
            out << "<skipped message=\"" << xml_escape("not applicable: " + outcome.reason)
                << "\"/>";
        }
        out << "</testcase>\n";
    }
    out << "</testsuite></testsuites>\n";
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
                outcomes.push_back(std::move(outcome));
            }
            if (options.transport != "sim") {
                RunOutcome outcome = faultline::conformance::run_on_real(scenario, profile);
                print_outcome(outcome);
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
    if (options.junit_file) {
        write_junit(*options.junit_file, outcomes);
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
    RunOutcome outcome = faultline::conformance::run_on_sim(scenario, profile, options.seed);
    for (const std::string& line : outcome.trace) {
        std::printf("%s\n", timeline_row(line).c_str());
    }
    if (options.trace_file) {
        std::ofstream trace(*options.trace_file);
        for (const std::string& line : outcome.trace) {
            trace << line << "\n";
        }
    }
    std::printf("\n");
    outcome.trace.clear();
    print_outcome(outcome);
    return outcome.status == RunStatus::failed ? kExitFailed : kExitPassed;
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
                const std::size_t common = std::min(first.trace.size(), again.trace.size());
                for (std::size_t i = 0; i < common; ++i) {
                    if (first.trace[i] != again.trace[i]) {
                        std::printf("    first divergent event (#%zu):\n      run 1: %s\n      run %d: %s\n",
                                    i, first.trace[i].c_str(), run + 1, again.trace[i].c_str());
                        break;
                    }
                }
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
    } catch (const std::exception& error) {
        std::cerr << "faultline: internal error: " << error.what() << "\n";
        return kExitFailed;
    }
    usage_error("unknown command \"" + command + "\"");
}
