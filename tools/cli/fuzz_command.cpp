#include "fuzz_command.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "faultline/conformance/fuzz.h"
#include "faultline/conformance/scenario.h"
#include "faultline/model/mutants.h"
#include "faultline/views/junit.h"
#include "faultline/sim/prng.h"

namespace faultline::cli {
namespace {

using conformance::FuzzCoverage;
using conformance::FuzzFinding;
using conformance::RunOutcome;
using conformance::RunStatus;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kExitPassed = 0;
constexpr int kExitFailed = 1;

/// What one worker has done so far; sent to the parent as one JSON line.
struct Progress {
    std::uint64_t runs = 0;
    std::uint64_t failures = 0;
    FuzzCoverage coverage;
    std::vector<json> findings;  // one object per shrunk failure
    std::map<std::string, std::uint64_t> runs_by_case;      // "family/profile" -> runs
    std::map<std::string, std::uint64_t> failures_by_case;  // "family/profile" -> failed runs
};

json to_json(const Progress& progress) {
    return {{"runs", progress.runs},
            {"failures", progress.failures},
            {"faults", progress.coverage.faults},
            {"paths", progress.coverage.paths},
            {"findings", progress.findings},
            {"runs_by_case", progress.runs_by_case},
            {"failures_by_case", progress.failures_by_case}};
}

Progress from_json(const json& value) {
    Progress progress;
    progress.runs = value.at("runs").get<std::uint64_t>();
    progress.failures = value.at("failures").get<std::uint64_t>();
    progress.coverage.faults = value.at("faults").get<std::map<std::string, std::uint64_t>>();
    progress.coverage.paths = value.at("paths").get<std::map<std::string, std::uint64_t>>();
    progress.findings = value.at("findings").get<std::vector<json>>();
    progress.runs_by_case = value.at("runs_by_case").get<std::map<std::string, std::uint64_t>>();
    progress.failures_by_case =
        value.at("failures_by_case").get<std::map<std::string, std::uint64_t>>();
    return progress;
}

/// Shrinks one failure to a file and proves the file replays it: same property, same trace.
json settle_finding(const FuzzOptions& options,
                    const std::string& family,
                    std::uint64_t seed,
                    const std::string& profile,
                    const json& scenario,
                    const RunOutcome& failed) {
    const std::string signature = conformance::failure_signature(failed);
    const auto started = Clock::now();
    auto shrunk =
        conformance::shrink_scenario(scenario, profile, [&signature](const RunOutcome& outcome) {
            return conformance::failure_signature(outcome) == signature;
        });
    const double shrink_seconds = std::chrono::duration<double>(Clock::now() - started).count();
    FuzzFinding finding{.family = family,
                        .seed = seed,
                        .profile = profile,
                        .signature = signature,
                        .path = {},
                        .steps_before = shrunk.steps_before,
                        .steps_after = shrunk.steps_after};
    const std::string name = family + "_" + std::to_string(seed) + "_" + profile;
    // Run the final file's exact text once more (its name is part of the trace), write it, and
    // load it back from disk: the replay must fail the same way with the same trace hash.
    json final_scenario = shrunk.scenario;
    final_scenario["name"] = name;
    const std::string path = options.out + "/" + name + ".json";
    finding.path =
        conformance::write_regression(options.out, name, final_scenario, finding, shrunk.outcome);
    const auto loaded = conformance::load_scenario_file(path);
    bool replays = false;
    std::string replay_hash;
    if (const auto* scenario_loaded = std::get_if<conformance::Scenario>(&loaded)) {
        // The default event budget, as `faultline replay` uses: the file must fail there too.
        const RunOutcome first =
            conformance::run_on_sim(*scenario_loaded, profile, seed, sim::Trace::Mode::hash_only);
        const RunOutcome again =
            conformance::run_on_sim(*scenario_loaded, profile, seed, sim::Trace::Mode::hash_only);
        replay_hash = first.trace_hash;
        replays = first.status == RunStatus::failed &&
                  conformance::failure_signature(first) == signature &&
                  first.trace_hash == again.trace_hash;
    }
    return {{"family", family},
            {"seed", seed},
            {"profile", profile},
            {"property", failed.failures.empty() ? "" : failed.failures.front()},
            {"signature", signature},
            {"path", finding.path},
            {"steps_before", finding.steps_before},
            {"steps_after", finding.steps_after},
            {"shrink_runs", shrunk.runs},
            {"shrink_seconds", shrink_seconds},
            {"replays", replays},
            {"trace_hash", replay_hash}};
}

/// One worker's share of the seed space: cases worker, worker + workers, worker + 2 workers …
void run_worker(const FuzzOptions& options,
                std::uint64_t worker,
                std::uint64_t workers,
                std::optional<Clock::time_point> deadline,
                std::optional<std::uint64_t> runs,
                const std::function<void(const Progress&, bool final)>& report) {
    const std::vector<std::string> families =
        options.families.empty() ? conformance::fuzz_families() : options.families;
    static const std::vector<std::string> profiles = {"documented", "dotnet-unix"};
    Progress progress;
    const auto started = Clock::now();
    std::set<std::string> seen;  // signatures already shrunk by this worker
    auto last_report = Clock::now();
    for (std::uint64_t index = 0;; ++index) {
        if ((deadline && Clock::now() >= *deadline) || (runs && index >= *runs)) {
            break;
        }
        const std::uint64_t seed = options.seed + worker + workers * index;
        const std::uint64_t drawn = sim::Prng(seed).next();  // family and profile of this case
        const std::string& family = families[drawn % families.size()];
        const std::string profile =
            options.profile ? *options.profile : profiles[(drawn >> 16U) % profiles.size()];
        const json scenario = conformance::generate_scenario(family, seed);
        conformance::CompletionPaths paths;
        const RunOutcome outcome = conformance::run_scenario_json(scenario, profile, &paths);
        conformance::record_coverage(scenario, paths, progress.coverage);
        ++progress.runs;
        ++progress.runs_by_case[family + "/" + profile];
        if (outcome.status == RunStatus::failed) {
            ++progress.failures;
            ++progress.failures_by_case[family + "/" + profile];
            const std::string signature = conformance::failure_signature(outcome);
            if (seen.insert(signature).second) {
                const double found_after =
                    std::chrono::duration<double>(Clock::now() - started).count();
                json finding = settle_finding(options, family, seed, profile, scenario, outcome);
                finding["found_after_seconds"] = found_after;
                finding["found_after_runs"] = progress.runs;
                progress.findings.push_back(std::move(finding));
                report(progress, false);
                if (options.max_failures && progress.findings.size() >= *options.max_failures) {
                    break;
                }
            }
        }
        if (Clock::now() - last_report >= std::chrono::milliseconds(250)) {
            report(progress, false);
            last_report = Clock::now();
        }
    }
    report(progress, true);
}

Progress merge(const std::vector<Progress>& parts) {
    Progress total;
    for (const Progress& part : parts) {
        total.runs += part.runs;
        total.failures += part.failures;
        for (const auto& [kind, count] : part.coverage.faults) {
            total.coverage.faults[kind] += count;
        }
        for (const auto& [path, count] : part.coverage.paths) {
            total.coverage.paths[path] += count;
        }
        total.findings.insert(total.findings.end(), part.findings.begin(), part.findings.end());
        for (const auto& [key, count] : part.runs_by_case) {
            total.runs_by_case[key] += count;
        }
        for (const auto& [key, count] : part.failures_by_case) {
            total.failures_by_case[key] += count;
        }
    }
    return total;
}

/// JUnit for CI: one testcase per family x profile the campaign drew (failed when any of its
/// runs failed) and one per shrunk finding, carrying the file and its replay command.
bool write_fuzz_junit(const std::string& path, const FuzzOptions& options, const Progress& total,
                      double seconds) {
    using views::JunitCase;
    std::vector<JunitCase> cases;
    const double per_run = total.runs > 0 ? seconds / static_cast<double>(total.runs) : 0.0;
    for (const auto& [key, runs] : total.runs_by_case) {
        const auto slash = key.find('/');
        JunitCase test;
        test.classname = "fuzz." + key.substr(0, slash);
        test.name = "generated " + key.substr(0, slash) + " scenarios [sim/" + key.substr(slash + 1) +
                    "] seeds from " + std::to_string(options.seed) + " shard " +
                    std::to_string(options.shard_index) + "/" + std::to_string(options.shard_count);
        test.seconds = per_run * static_cast<double>(runs);
        const auto failed = total.failures_by_case.find(key);
        if (failed != total.failures_by_case.end() && failed->second > 0) {
            test.status = JunitCase::Status::failed;
            test.message = std::to_string(failed->second) + " of " + std::to_string(runs) +
                           " runs failed";
            test.body = test.message + "; each distinct failure is a finding testcase below\n";
        }
        cases.push_back(std::move(test));
    }
    for (const json& finding : total.findings) {
        JunitCase test;
        test.classname = "fuzz." + finding.at("family").get<std::string>();
        test.name = "finding seed " + std::to_string(finding.at("seed").get<std::uint64_t>()) +
                    " [sim/" + finding.at("profile").get<std::string>() + "]";
        test.seconds = finding.at("shrink_seconds").get<double>();
        test.status = JunitCase::Status::failed;
        test.message = finding.at("property").get<std::string>();
        test.body = test.message + "\nshrunk " +
                    std::to_string(finding.at("steps_before").get<std::uint64_t>()) + " -> " +
                    std::to_string(finding.at("steps_after").get<std::uint64_t>()) +
                    " steps: " + finding.at("path").get<std::string>() +
                    (finding.at("replays").get<bool>() ? "" : " (THE FILE DOES NOT REPLAY IT)") +
                    "\nreplay: ./faultline replay " + finding.at("path").get<std::string>() + "\n";
        cases.push_back(std::move(test));
    }
    std::ofstream out(path, std::ios::binary);
    out << views::junit_xml("faultline fuzz", cases);
    out.close();
    if (!out) {
        std::cerr << "faultline: cannot write " << path << "\n";
        return false;
    }
    return true;
}

std::string missing(const std::map<std::string, std::uint64_t>& seen,
                    const std::vector<std::string>& all) {
    std::string out;
    for (const std::string& item : all) {
        if (!seen.contains(item)) {
            out += (out.empty() ? "" : " ") + item;
        }
    }
    return out.empty() ? "none" : out;
}

/// "label a=1 b=0 …" over every item of `all`, in that order.
void print_counts(const char* label,
                  const std::vector<std::string>& all,
                  const std::map<std::string, std::uint64_t>& counts) {
    std::printf("%s", label);
    for (const std::string& item : all) {
        const auto found = counts.find(item);
        std::printf(" %s=%llu",
                    item.c_str(),
                    static_cast<unsigned long long>(found == counts.end() ? 0 : found->second));
    }
    std::printf("\n");
}

void print_progress(const Progress& total, double seconds, bool tty, bool final) {
    const double rate = seconds > 0 ? static_cast<double>(total.runs) / seconds : 0;
    std::ostringstream line;
    line << "fuzz: " << total.runs << " runs, " << static_cast<std::uint64_t>(rate) << "/s, "
         << total.failures << " failures, fault kinds seen " << total.coverage.faults.size() << "/"
         << conformance::fuzz_fault_kinds().size() << ", paths " << total.coverage.paths.size()
         << "/" << conformance::fuzz_completion_paths().size();
    if (tty && !final) {
        std::fprintf(stderr, "\r%s   ", line.str().c_str());
    } else {
        std::fprintf(stderr, "%s%s\n", tty ? "\r" : "", line.str().c_str());
    }
}

}  // namespace

int fuzz_command(const FuzzOptions& options) {
    for (const std::string& family : options.families) {
        const auto& known = conformance::fuzz_families();
        if (std::find(known.begin(), known.end(), family) == known.end()) {
            std::cerr << "faultline: unknown family \"" << family << "\" ("
                      << conformance::fuzz_family_list() << ")\n";
            return 2;
        }
    }
    if (options.mutant) {
        const auto planted = model::mutant_by_name(*options.mutant);
        if (!model::kMutantsBuilt) {
            std::cerr << "faultline: this build has no planted bugs (configure with the "
                         "`mutants` preset: tools/mutants/run)\n";
            return 2;
        }
        if (!planted) {
            std::cerr << "faultline: unknown mutant \"" << *options.mutant << "\"\n";
            return 2;
        }
        model::set_active_mutant(*planted);  // before forking: the jobs inherit it
        std::fprintf(stderr, "fuzz: planted bug %s is on\n", options.mutant->c_str());
    }
    const auto started = Clock::now();
    std::optional<Clock::time_point> deadline;
    if (options.seconds || !options.runs) {
        deadline = started + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(options.seconds.value_or(60.0)));
    }
    const unsigned jobs = std::max(1U, options.jobs);
    const std::uint64_t workers = options.shard_count * jobs;
    const bool tty = ::isatty(STDERR_FILENO) == 1;
    std::vector<Progress> parts(jobs);
    auto per_worker_runs = [&](unsigned job) -> std::optional<std::uint64_t> {
        if (!options.runs) {
            return std::nullopt;
        }
        // Split this shard's share of --runs over its jobs; the first ones take the remainder.
        const std::uint64_t share = *options.runs / jobs;
        return share + (job < *options.runs % jobs ? 1 : 0);
    };
    auto last_print = Clock::now();
    auto maybe_print = [&](bool force) {
        const auto now = Clock::now();
        const auto every = tty ? std::chrono::milliseconds(250) : std::chrono::milliseconds(10'000);
        if (force || now - last_print >= every) {
            print_progress(
                merge(parts), std::chrono::duration<double>(now - started).count(), tty, false);
            last_print = now;
        }
    };
    if (jobs == 1) {
        run_worker(options,
                   options.shard_index * jobs,
                   workers,
                   deadline,
                   per_worker_runs(0),
                   [&](const Progress& progress, bool /*final*/) {
                       parts[0] = progress;
                       maybe_print(false);
                   });
    } else {
        // Worker processes (each simulated world is single-threaded; processes keep them apart),
        // each reporting its progress as JSON lines on a pipe.
        std::vector<pid_t> children;
        std::vector<int> pipes;
        std::vector<std::string> buffers(jobs);
        std::cout.flush();
        std::fflush(nullptr);
        for (unsigned job = 0; job < jobs; ++job) {
            int fds[2];
            if (::pipe2(fds, O_CLOEXEC) != 0) {
                std::perror("faultline: pipe");
                return 2;
            }
            const pid_t pid = ::fork();
            if (pid < 0) {
                std::perror("faultline: fork");
                return 2;
            }
            if (pid == 0) {
                ::close(fds[0]);
                int status = 0;
                try {
                    run_worker(options,
                               options.shard_index * jobs + job,
                               workers,
                               deadline,
                               per_worker_runs(job),
                               [&](const Progress& progress, bool) {
                                   const std::string line = to_json(progress).dump() + "\n";
                                   std::size_t offset = 0;
                                   while (offset < line.size()) {
                                       const ssize_t wrote = ::write(
                                           fds[1], line.data() + offset, line.size() - offset);
                                       if (wrote < 0 && errno == EINTR) {
                                           continue;
                                       }
                                       if (wrote <= 0) {
                                           return;
                                       }
                                       offset += static_cast<std::size_t>(wrote);
                                   }
                               });
                } catch (const std::exception& error) {
                    std::cerr << "faultline: fuzz worker " << job << ": " << error.what() << "\n";
                    status = 2;
                }
                ::close(fds[1]);
                ::_exit(status);
            }
            ::close(fds[1]);
            children.push_back(pid);
            pipes.push_back(fds[0]);
        }
        std::size_t open = jobs;
        while (open > 0) {
            std::vector<pollfd> polled;
            std::vector<unsigned> which;
            for (unsigned job = 0; job < jobs; ++job) {
                if (pipes[job] >= 0) {
                    polled.push_back({.fd = pipes[job], .events = POLLIN, .revents = 0});
                    which.push_back(job);
                }
            }
            if (::poll(polled.data(), polled.size(), 250) < 0 && errno != EINTR) {
                break;
            }
            for (std::size_t index = 0; index < polled.size(); ++index) {
                if (polled[index].revents == 0) {
                    continue;
                }
                const unsigned job = which[index];
                char chunk[65536];
                const ssize_t got = ::read(pipes[job], chunk, sizeof chunk);
                if (got <= 0) {
                    if (got < 0 && errno == EINTR) {
                        continue;
                    }
                    ::close(pipes[job]);
                    pipes[job] = -1;
                    --open;
                    continue;
                }
                buffers[job].append(chunk, static_cast<std::size_t>(got));
                std::size_t newline = 0;
                while ((newline = buffers[job].find('\n')) != std::string::npos) {
                    const std::string line = buffers[job].substr(0, newline);
                    buffers[job].erase(0, newline + 1);
                    parts[job] = from_json(json::parse(line));
                }
            }
            maybe_print(false);
        }
        int worst = 0;
        for (const pid_t pid : children) {
            int status = 0;
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                worst = 2;
            }
        }
        if (worst != 0) {
            std::cerr << "faultline: a fuzz worker failed\n";
            return worst;
        }
    }
    const Progress total = merge(parts);
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    print_progress(total, seconds, tty, true);
    std::printf(
        "fuzz: shard %llu/%llu, %u job(s), seeds from %llu: %llu runs in %.1f s "
        "(%.0f/s), %llu failed\n",
        static_cast<unsigned long long>(options.shard_index),
        static_cast<unsigned long long>(options.shard_count),
        jobs,
        static_cast<unsigned long long>(options.seed),
        static_cast<unsigned long long>(total.runs),
        seconds,
        seconds > 0 ? static_cast<double>(total.runs) / seconds : 0.0,
        static_cast<unsigned long long>(total.failures));
    print_counts("fault kinds scheduled:", conformance::fuzz_fault_kinds(), total.coverage.faults);
    print_counts(
        "completion paths taken:", conformance::fuzz_completion_paths(), total.coverage.paths);
    std::printf("never fired: faults %s; paths %s\n",
                missing(total.coverage.faults, conformance::fuzz_fault_kinds()).c_str(),
                missing(total.coverage.paths, conformance::fuzz_completion_paths()).c_str());
    for (const json& finding : total.findings) {
        std::printf(
            "FAIL  %s seed %llu %s: %s\n      found after %.1f s (%llu runs in its job); "
            "shrunk %llu -> %llu steps in %llu runs (%.1f s); %s%s\n      ./faultline replay "
            "%s\n",
            finding["family"].get<std::string>().c_str(),
            static_cast<unsigned long long>(finding["seed"].get<std::uint64_t>()),
            finding["profile"].get<std::string>().c_str(),
            finding["property"].get<std::string>().c_str(),
            finding["found_after_seconds"].get<double>(),
            static_cast<unsigned long long>(finding["found_after_runs"].get<std::uint64_t>()),
            static_cast<unsigned long long>(finding["steps_before"].get<std::uint64_t>()),
            static_cast<unsigned long long>(finding["steps_after"].get<std::uint64_t>()),
            static_cast<unsigned long long>(finding["shrink_runs"].get<std::uint64_t>()),
            finding["shrink_seconds"].get<double>(),
            finding["replays"].get<bool>() ? "the file replays it, trace "
                                           : "THE FILE DOES NOT REPLAY IT",
            finding["replays"].get<bool>() ? finding["trace_hash"].get<std::string>().c_str() : "",
            finding["path"].get<std::string>().c_str());
    }
    if (options.junit && !write_fuzz_junit(*options.junit, options, total, seconds)) {
        return 2;
    }
    return total.failures > 0 ? kExitFailed : kExitPassed;
}

}  // namespace faultline::cli
