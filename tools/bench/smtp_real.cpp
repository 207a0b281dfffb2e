// faultline_bench_smtp_real: one-connection, one-message-at-a-time SMTP to Postfix's smtp-sink on
// real loopback, three clients in the same run under the same CPU placement: faultline's
// SmtpClient<RealTransport> (dotnet-unix profile) calling Send N times, Python smtplib
// (/usr/bin/python3, one SMTP object, sendmail N times) and Postfix's smtp-source
// (-s 1 -m N -d: one session, messages sent one after another over it). All three send the same
// message: the bytes faultline's write_message produces (From, 2 To recipients, a short ASCII
// body), with the same envelope (1 sender, 2 recipients, one RCPT at a time: no client here
// pipelines). Placements: "shared" = every client thread and smtp-sink on CPU 0; "split" =
// clients on CPU 0, smtp-sink on CPU 1. Runs are interleaved (faultline, smtplib, smtp-source),
// the ratio is the median of per-run ratios. Targets: faultline/smtplib >= 1.5 and
// faultline/smtp-source >= 0.8. Each client's context switches and CPU time per message (its
// process's rusage) are printed too: on one CPU they, not the wire, decide the rate. Without
// smtp-sink, smtp-source or /usr/bin/python3 it says so and exits 0 with a SKIP row.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "bench_smtp.h"
#include "faultline/model/mime.h"
#include "faultline/model/smtp_client.h"
#include "faultline/real/transport.h"

namespace faultline::bench {
namespace {

using model::MailAddress;
using model::MailMessage;
using model::SmtpClient;
using real::RealTransport;

constexpr const char* kSmtpSink = "/usr/sbin/smtp-sink";
constexpr const char* kSmtpSource = "/usr/sbin/smtp-source";
constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kDate = "Sat, 21 Nov 2026 10:00:00 +0000";
constexpr int kRuns = 5;
constexpr int kClientCpu = 0;
constexpr double kSmtplibRatioMin = 1.5;
constexpr double kSmtpSourceRatioMin = 0.8;

/// Where smtp-sink runs; every client (all faultline threads, python3, smtp-source) is on
/// kClientCpu. Split placement pays a cross-CPU wake-up per reply, so it gets fewer messages.
struct Placement {
    const char* name;
    int sink_cpu;
    int messages;
};

// Python smtplib: argv = port, N, message file (CRLF lines). One warm-up sendmail opens the
// session (connect, EHLO) outside the timed loop; prints messages per second.
constexpr const char* kPythonClient = R"(
import smtplib, sys, time
port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(path, 'rb') as f:
    msg = f.read()
rcpts = ['ben@x.test', 'ann@x.test']
s = smtplib.SMTP('127.0.0.1', port, local_hostname='client.faultline.test')
s.sendmail('jane@x.test', rcpts, msg)
start = time.perf_counter()
for _ in range(n):
    s.sendmail('jane@x.test', rcpts, msg)
elapsed = time.perf_counter() - start
s.quit()
print(n / elapsed)
)";

/// A child process started with fork/exec on one CPU, stdout captured into a pipe if asked.
class Child {
public:
    Child(std::vector<std::string> argv, int cpu, bool capture) {
        std::vector<char*> raw;
        raw.reserve(argv.size() + 1);
        for (std::string& arg : argv) {
            raw.push_back(arg.data());
        }
        raw.push_back(nullptr);
        int pipe_fds[2] = {-1, -1};
        if (capture) {
            const int piped = ::pipe2(pipe_fds, O_CLOEXEC);
            FAULTLINE_ASSERT(piped == 0);
        }
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(static_cast<std::size_t>(cpu), &set);
        pid_ = ::fork();
        FAULTLINE_ASSERT(pid_ >= 0);
        if (pid_ == 0) {
            // Only async-signal-safe calls between fork and exec: the parent has threads.
            static_cast<void>(::sched_setaffinity(0, sizeof set, &set));
            if (capture) {
                ::dup2(pipe_fds[1], STDOUT_FILENO);
            }
            ::execv(raw[0], raw.data());
            ::_exit(127);
        }
        if (capture) {
            ::close(pipe_fds[1]);
            out_fd_ = pipe_fds[0];
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            static_cast<void>(wait());
        }
        if (out_fd_ >= 0) {
            ::close(out_fd_);
        }
    }

    /// Reads stdout to its end (if captured), reaps the child; true if it exited with 0.
    bool wait() {
        if (out_fd_ >= 0) {
            char chunk[256];
            while (true) {
                const ssize_t got = ::read(out_fd_, chunk, sizeof chunk);
                if (got < 0 && errno == EINTR) {
                    continue;
                }
                if (got <= 0) {
                    break;
                }
                output_.append(chunk, static_cast<std::size_t>(got));
            }
        }
        int status = 0;
        while (::wait4(pid_, &status, 0, &usage_) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    [[nodiscard]] const std::string& output() const { return output_; }
    /// The child's resource use, once wait() returned.
    [[nodiscard]] const rusage& usage() const { return usage_; }

private:
    pid_t pid_ = -1;
    rusage usage_{};
    int out_fd_ = -1;
    std::string output_;
};

/// A port nobody listens on now (bound to port 0 and released; a small race we accept).
std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FAULTLINE_ASSERT(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int bound =
        ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);  // NOLINT
    FAULTLINE_ASSERT(bound == 0);
    socklen_t length = sizeof address;
    const int named = ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);  // NOLINT
    FAULTLINE_ASSERT(named == 0);
    ::close(fd);
    return ntohs(address.sin_port);
}

/// True once something accepts TCP connections on 127.0.0.1:port (polls for up to 5 s).
bool wait_listening(std::uint16_t port) {
    for (int attempt = 0; attempt < 500; ++attempt) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(port);
        const int connected =
            ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);  // NOLINT
        ::close(fd);
        if (connected == 0) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

/// One client's run: messages per second, and per message the context switches (voluntary and
/// involuntary) and CPU time of the client's process.
struct Sample {
    double rate = 0;
    double switches = 0;
    double cpu_us = 0;
};

/// Per-message switches and CPU microseconds between two rusage readings.
void per_message(const rusage& before, const rusage& after, int messages, Sample& sample) {
    const auto seconds = [](const timeval& time) {
        return static_cast<double>(time.tv_sec) + static_cast<double>(time.tv_usec) * 1e-6;
    };
    const long voluntary = after.ru_nvcsw - before.ru_nvcsw;
    const long involuntary = after.ru_nivcsw - before.ru_nivcsw;
    const auto switches = static_cast<double>(voluntary + involuntary);
    const double cpu = seconds(after.ru_utime) - seconds(before.ru_utime) +
                       seconds(after.ru_stime) - seconds(before.ru_stime);
    sample.switches = switches / messages;
    sample.cpu_us = cpu * 1e6 / messages;
}

/// faultline: one SmtpClient on a transport thread; one warm-up Send opens the session, then N
/// Sends are timed; Dispose sends QUIT. Messages per second, 0 on any failure.
Sample measure_faultline(RealTransport& transport,
                         std::uint16_t port,
                         const std::shared_ptr<const MailMessage>& message,
                         int messages) {
    Sample sample;
    transport.spawn("client", [&] {
        SmtpClient<RealTransport> client(transport, model::kDotnetUnix, "127.0.0.1", port);
        client.DateHeader(kDate);
        try {
            static_cast<void>(client.Send(*message));
            rusage before{};
            rusage after{};
            ::getrusage(RUSAGE_SELF, &before);  // every thread of this process: client and pool
            const Clock::time_point start = Clock::now();
            for (int i = 0; i < messages; ++i) {
                const model::DeliveryOutcome outcome = client.Send(*message);
                FAULTLINE_ASSERT(outcome == model::DeliveryOutcome::delivered);
            }
            sample.rate = static_cast<double>(messages) / seconds_between(start, Clock::now());
            ::getrusage(RUSAGE_SELF, &after);
            per_message(before, after, messages, sample);
        } catch (const std::exception& error) {
            std::fprintf(stderr, "faultline client failed: %s\n", error.what());
        }
        client.Dispose();
    });
    if (!transport.join_threads(std::chrono::seconds(600))) {
        std::fprintf(stderr, "faultline client did not finish\n");
        std::abort();
    }
    if (transport.take_exception() != nullptr) {
        return Sample{};
    }
    return sample;
}

/// smtplib's switches and CPU time are the whole python3 process's (start-up and warm-up
/// message included: a few ms against seconds).
Sample measure_smtplib(std::uint16_t port, const std::string& message_file, int messages) {
    Child python({kPython, "-c", kPythonClient, std::to_string(port), std::to_string(messages),
                  message_file},
                 kClientCpu,
                 /*capture=*/true);
    const bool ok = python.wait();
    if (!ok) {
        std::fprintf(stderr, "smtplib client failed: %s\n", python.output().c_str());
        return Sample{};
    }
    Sample sample;
    sample.rate = std::strtod(python.output().c_str(), nullptr);
    per_message(rusage{}, python.usage(), messages, sample);
    return sample;
}

/// smtp-source is timed from fork to exit, so its figure includes process start, connect and
/// EHLO (about a millisecond, against a second or more of sending).
Sample measure_smtp_source(std::uint16_t port, const std::string& message_file, int messages) {
    const Clock::time_point start = Clock::now();
    Child source({kSmtpSource, "-s", "1", "-m", std::to_string(messages), "-d", "-r", "2", "-F",
                  message_file, "-f", "jane@x.test", "-t", "ben@x.test", "-M",
                  "client.faultline.test", "127.0.0.1:" + std::to_string(port)},
                 kClientCpu,
                 /*capture=*/true);
    const bool ok = source.wait();
    const double seconds = seconds_between(start, Clock::now());
    if (!ok) {
        std::fprintf(stderr, "smtp-source failed: %s\n", source.output().c_str());
        return Sample{};
    }
    Sample sample;
    sample.rate = static_cast<double>(messages) / seconds;
    per_message(rusage{}, source.usage(), messages, sample);
    return sample;
}

struct PlacementFigures {
    double faultline = 0;
    double smtplib = 0;
    double smtp_source = 0;
    double versus_smtplib = 0;
    double versus_smtp_source = 0;
    std::string versus_smtplib_spread;
    std::string versus_smtp_source_spread;
    bool complete = true;
};

PlacementFigures run_placement(RealTransport& transport,
                               const Placement& placement,
                               const std::shared_ptr<const MailMessage>& message,
                               const std::string& crlf_file,
                               const std::string& lf_file) {
    std::printf(
        "\nplacement %s: clients (every faultline thread, python3, smtp-source) on CPU %d, "
        "smtp-sink on CPU %d; N = %d messages per run\n",
        placement.name,
        kClientCpu,
        placement.sink_cpu,
        placement.messages);
    const std::uint16_t port = free_port();
    std::vector<std::string> sink_argv = {kSmtpSink};
    if (::geteuid() == 0) {
        sink_argv.insert(sink_argv.end(), {"-u", "nobody"});
    }
    sink_argv.insert(sink_argv.end(), {"127.0.0.1:" + std::to_string(port), "64"});
    Child sink(sink_argv, placement.sink_cpu, /*capture=*/false);
    PlacementFigures figures;
    if (!wait_listening(port)) {
        std::fprintf(stderr, "smtp-sink did not start listening on port %u\n", port);
        figures.complete = false;
        return figures;
    }
    // Warm-up of every client (page cache, python imports, pool threads).
    const int warm = placement.messages / 10;
    static_cast<void>(measure_faultline(transport, port, message, warm));
    static_cast<void>(measure_smtplib(port, crlf_file, warm));
    static_cast<void>(measure_smtp_source(port, lf_file, warm));
    std::vector<double> faultline_rates;
    std::vector<double> smtplib_rates;
    std::vector<double> source_rates;
    std::vector<double> versus_smtplib;
    std::vector<double> versus_source;
    std::array<std::vector<double>, 3> switches;
    std::array<std::vector<double>, 3> cpu_us;
    for (int run = 0; run < kRuns; ++run) {
        const std::array<Sample, 3> samples = {
            measure_faultline(transport, port, message, placement.messages),
            measure_smtplib(port, crlf_file, placement.messages),
            measure_smtp_source(port, lf_file, placement.messages)};
        const double faultline = samples[0].rate;
        const double smtplib = samples[1].rate;
        const double source = samples[2].rate;
        figures.complete = figures.complete && faultline > 0 && smtplib > 0 && source > 0;
        faultline_rates.push_back(faultline);
        smtplib_rates.push_back(smtplib);
        source_rates.push_back(source);
        versus_smtplib.push_back(smtplib > 0 ? faultline / smtplib : 0);
        versus_source.push_back(source > 0 ? faultline / source : 0);
        for (std::size_t client = 0; client < samples.size(); ++client) {
            switches[client].push_back(samples[client].switches);
            cpu_us[client].push_back(samples[client].cpu_us);
        }
    }
    figures.faultline = median(faultline_rates);
    figures.smtplib = median(smtplib_rates);
    figures.smtp_source = median(source_rates);
    figures.versus_smtplib = median(versus_smtplib);
    figures.versus_smtp_source = median(versus_source);
    figures.versus_smtplib_spread = spread(versus_smtplib, 1, "%.2f");
    figures.versus_smtp_source_spread = spread(versus_source, 1, "%.2f");
    std::printf("  faultline SmtpClient.Send  %8.0f msg/s (runs %s)\n",
                figures.faultline,
                spread(faultline_rates, 1, "%.0f").c_str());
    std::printf("  Python smtplib             %8.0f msg/s (runs %s)\n",
                figures.smtplib,
                spread(smtplib_rates, 1, "%.0f").c_str());
    std::printf("  Postfix smtp-source        %8.0f msg/s (runs %s)\n",
                figures.smtp_source,
                spread(source_rates, 1, "%.0f").c_str());
    const char* names[] = {"faultline", "smtplib", "smtp-source"};
    for (std::size_t client = 0; client < switches.size(); ++client) {
        std::printf(
            "  %-11s per message: %5.1f context switches, %6.1f us CPU (client process; "
            "medians)\n",
            names[client],
            median(switches[client]),
            median(cpu_us[client]));
    }
    std::printf("  faultline/smtplib          %8.2f (median of per-run ratios, runs %s)\n",
                figures.versus_smtplib,
                figures.versus_smtplib_spread.c_str());
    std::printf("  faultline/smtp-source      %8.2f (median of per-run ratios, runs %s)\n",
                figures.versus_smtp_source,
                figures.versus_smtp_source_spread.c_str());
    return figures;
}

void report(const Placement& placement, const PlacementFigures& figures) {
    const std::string name = std::string("smtp real, ") + placement.name + " (clients CPU " +
                             std::to_string(kClientCpu) + ", smtp-sink CPU " +
                             std::to_string(placement.sink_cpu) + ", N " +
                             std::to_string(placement.messages) + ")";
    const char* incomplete = figures.complete ? "" : " INCOMPLETE";
    print_result(name + ": faultline / smtplib / smtp-source msg/s",
                 fixed(figures.faultline, 0) + " / " + fixed(figures.smtplib, 0) + " / " +
                     fixed(figures.smtp_source, 0) + incomplete,
                 "-",
                 "-");
    print_result(name + ": ratio faultline/smtplib",
                 fixed(figures.versus_smtplib, 2) + " (runs " + figures.versus_smtplib_spread +
                     ")" + incomplete,
                 ">= 1.5",
                 pass_or_miss(figures.complete && figures.versus_smtplib >= kSmtplibRatioMin));
    print_result(
        name + ": ratio faultline/smtp-source",
        fixed(figures.versus_smtp_source, 2) + " (runs " + figures.versus_smtp_source_spread +
            ")" + incomplete,
        ">= 0.8",
        pass_or_miss(figures.complete && figures.versus_smtp_source >= kSmtpSourceRatioMin));
}

/// The message as faultline writes it, once with CRLF lines (smtplib) and once with LF lines
/// (smtp-source -F appends CRLF to each line itself).
void write_message_files(const MailMessage& message,
                         const std::string& crlf_file,
                         const std::string& lf_file) {
    const std::string crlf = model::write_message(message, model::MimeOptions{.date = kDate});
    std::string lf;
    for (std::size_t i = 0; i < crlf.size(); ++i) {
        if (crlf[i] == '\r' && i + 1 < crlf.size() && crlf[i + 1] == '\n') {
            continue;
        }
        lf += crlf[i];
    }
    std::ofstream(crlf_file, std::ios::binary) << crlf;
    std::ofstream(lf_file, std::ios::binary) << lf;
}

int run() {
    std::printf(
        "faultline_bench_smtp_real: one connection, one message at a time, to smtp-sink: "
        "SmtpClient<RealTransport>.Send vs Python smtplib vs Postfix smtp-source\n");
    std::vector<std::string> missing;
    for (const char* program : {kSmtpSink, kSmtpSource, kPython}) {
        if (::access(program, X_OK) != 0) {
            missing.emplace_back(program);
        }
    }
    if (!missing.empty()) {
        std::string list;
        for (const std::string& program : missing) {
            list += (list.empty() ? "" : ", ") + program;
        }
        std::printf(
            "skipped: %s not found or not executable (smtp-sink and smtp-source come with "
            "Debian's postfix package: see docs/peers.md for installing it without starting "
            "the daemon; smtplib needs Debian's /usr/bin/python3)\n",
            list.c_str());
        print_result("smtp real: skipped, missing " + list, "-", ">= 1.5 / >= 0.8", "SKIP");
        return 0;
    }
    // The main thread is pinned before the transport exists, so its pool threads inherit it;
    // children are pinned explicitly.
    const bool pinned = pin_this_thread({kClientCpu});
    const unsigned cpus = std::thread::hardware_concurrency();
    std::printf(
        "%d interleaved runs per client and placement after a warm-up, medians; %u CPUs%s\n",
                kRuns,
                cpus,
                pinned ? "" : " (pinning refused)");
    const auto message = small_message();
    char directory_template[] = "/tmp/faultline_smtp_real.XXXXXX";
    const char* directory = ::mkdtemp(directory_template);
    FAULTLINE_ASSERT(directory != nullptr);
    const std::string crlf_file = std::string(directory) + "/message.crlf";
    const std::string lf_file = std::string(directory) + "/message.lf";
    write_message_files(*message, crlf_file, lf_file);
    std::printf("message: %zu bytes as written (1 sender, 2 recipients)\n",
                model::write_message(*message, model::MimeOptions{.date = kDate}).size());

    RealTransport transport;
    const Placement shared{"shared", kClientCpu, 20'000};
    const Placement split{"split", cpus > 1 ? 1 : 0, 4'000};
    const PlacementFigures shared_figures =
        run_placement(transport, shared, message, crlf_file, lf_file);
    const PlacementFigures split_figures =
        run_placement(transport, split, message, crlf_file, lf_file);
    std::printf("\ntargets: faultline/smtplib >= %.1f, faultline/smtp-source >= %.1f\n",
                kSmtplibRatioMin,
                kSmtpSourceRatioMin);
    report(shared, shared_figures);
    report(split, split_figures);
    ::unlink(crlf_file.c_str());
    ::unlink(lf_file.c_str());
    ::rmdir(directory);
    return 0;
}

}  // namespace
}  // namespace faultline::bench

int main() { return faultline::bench::bench_main(faultline::bench::run); }
