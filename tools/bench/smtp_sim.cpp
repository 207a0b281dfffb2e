// faultline_bench_smtp_sim: how many whole SMTP transactions the simulator runs per second.
// One sim::World (tracing off, default network: 50 us one-way latency) holds an SmtpServer<World>
// (default script, session byte limit lifted so one session can take every message) and one
// SmtpClient<World>. The client sends one small message (From, 2 To recipients, a subject and a
// short ASCII body) N times over one cached connection (M-12), one at a time: each SendCompleted
// starts the next SendAsync. A run is timed from the first SendAsync to the N-th SendCompleted;
// every completion must be a delivery and the server must have recorded N transactions on one
// session. The simulator is single-threaded (logical threads are fibers on the calling OS
// thread), so tx/s is also tx/s per core; on a busy machine wall time also counts other
// processes, so "per core" is judged on the thread's CPU time (tx per CPU second), and wall
// tx/s is printed beside it. Both profiles are measured (dotnet-unix arms the M-8
// whole-transaction timer per SendAsync; documented has none). Target: 50,000 tx/s per core.
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "bench_support.h"
#include "bench_smtp.h"
#include "faultline/model/smtp_client.h"
#include "faultline/model/smtp_server.h"
#include "faultline/sim/world.h"

// ---- allocation counter ------------------------------------------------------------------------
// Every operator new of this program bumps one counter (single-threaded: the sim runs on one OS
// thread), so a run can report heap allocations per transaction.
namespace {

std::uint64_t allocations = 0;

void* allocate(std::size_t bytes) {
    ++allocations;
    void* block = std::malloc(bytes == 0 ? 1 : bytes);
    if (block == nullptr) {
        throw std::bad_alloc();
    }
    return block;
}

}  // namespace

void* operator new(std::size_t bytes) { return allocate(bytes); }
void* operator new[](std::size_t bytes) { return allocate(bytes); }
void operator delete(void* block) noexcept { std::free(block); }
void operator delete[](void* block) noexcept { std::free(block); }
void operator delete(void* block, std::size_t /*bytes*/) noexcept { std::free(block); }
void operator delete[](void* block, std::size_t /*bytes*/) noexcept { std::free(block); }

namespace faultline::bench {
namespace {

using model::AsyncCompletedEventArgs;
using model::DeliveryOutcome;
using model::MailAddress;
using model::MailMessage;
using model::Profile;
using model::SmtpClient;
using model::SmtpServer;
using sim::World;

constexpr std::uint64_t kTransactions = 20'000;
constexpr int kRuns = 7;
constexpr double kTargetPerCore = 50'000;

struct RunFigures {
    bool complete = false;
    double wall_seconds = 0;
    double cpu_seconds = 0;
    double virtual_seconds = 0;
    std::uint64_t events = 0;
    std::uint64_t allocations = 0;
};

/// One World, one server, one client; N transactions chained through SendCompleted.
RunFigures run_once(const Profile& profile, std::uint64_t transactions) {
    World::Options options;
    options.trace_mode = sim::Trace::Mode::off;
    World world(options);
    model::SmtpScript script;
    script.session_bytes_max = std::numeric_limits<std::size_t>::max() / 2;
    SmtpServer<World> server(world, script);
    const auto endpoint = server.start(model::Endpoint::loopback(25));
    FAULTLINE_ASSERT(endpoint.has_value());
    const auto message = small_message();

    RunFigures figures;
    std::uint64_t completed = 0;
    std::uint64_t failures = 0;
    std::uint64_t events_start = 0;
    std::uint64_t allocations_start = 0;
    Clock::time_point start;
    double cpu_start = 0;
    model::TimePoint virtual_start{};
    {
        SmtpClient<World> client(world, profile, "127.0.0.1", endpoint.value().port);
        client.add_SendCompleted([&](SmtpClient<World>* sender,
                                     const AsyncCompletedEventArgs& args) {
            ++completed;
            if (args.Error || args.Cancelled || args.delivery != DeliveryOutcome::delivered) {
                ++failures;
            }
            if (completed == transactions) {
                figures.wall_seconds = seconds_between(start, Clock::now());
                figures.cpu_seconds = thread_cpu_seconds() - cpu_start;
                figures.events = world.scheduler().events_run() - events_start;
                figures.allocations = allocations - allocations_start;
                figures.virtual_seconds =
                    std::chrono::duration<double>(world.now() - virtual_start).count();
                return;
            }
            FAULTLINE_ASSERT(sender != nullptr);
            sender->SendAsync(message, {});
        });
        start = Clock::now();
        cpu_start = thread_cpu_seconds();
        events_start = world.scheduler().events_run();
        allocations_start = allocations;
        virtual_start = world.now();
        client.SendAsync(message, {});
        const bool idle = world.run_until_idle(std::uint64_t{1} << 40U);
        figures.complete = idle && completed == transactions && failures == 0;
    }
    server.stop();
    figures.complete = world.run_until_idle(std::uint64_t{1} << 40U) && figures.complete;
    const auto sessions = server.sessions();
    figures.complete = figures.complete && sessions.size() == 1 &&
                       sessions[0].transactions.size() == transactions;
    if (!figures.complete) {
        std::fprintf(stderr,
                     "run incomplete: %llu of %llu completed, %llu failed, %zu sessions\n",
                     static_cast<unsigned long long>(completed),
                     static_cast<unsigned long long>(transactions),
                     static_cast<unsigned long long>(failures),
                     sessions.size());
    }
    return figures;
}

struct ProfileFigures {
    bool complete = true;
    double rate = 0;
    std::string rate_spread;
    double cpu_rate = 0;
    std::string cpu_rate_spread;
    double events_per_transaction = 0;
    double allocations_per_transaction = 0;
    double virtual_us_per_transaction = 0;
};

ProfileFigures run_profile(const Profile& profile, const char* name) {
    static_cast<void>(run_once(profile, kTransactions / 10));  // warm-up: heap, code, stacks
    std::vector<double> rates;
    std::vector<double> cpu_rates;
    ProfileFigures figures;
    for (int i = 0; i < kRuns; ++i) {
        const RunFigures run = run_once(profile, kTransactions);
        figures.complete = figures.complete && run.complete;
        rates.push_back(static_cast<double>(kTransactions) / run.wall_seconds);
        cpu_rates.push_back(static_cast<double>(kTransactions) / run.cpu_seconds);
        const auto count = static_cast<double>(kTransactions);
        figures.events_per_transaction = static_cast<double>(run.events) / count;
        figures.allocations_per_transaction = static_cast<double>(run.allocations) / count;
        figures.virtual_us_per_transaction = run.virtual_seconds * 1e6 / count;
    }
    figures.rate = median(rates);
    figures.rate_spread = spread(rates, 1, "%.0f");
    figures.cpu_rate = median(cpu_rates);
    figures.cpu_rate_spread = spread(cpu_rates, 1, "%.0f");
    std::printf("  %-11s %8.0f tx per wall second (runs %s)%s\n",
                name,
                figures.rate,
                figures.rate_spread.c_str(),
                figures.complete ? "" : " INCOMPLETE");
    std::printf("              %8.0f tx per CPU second of the sim thread (runs %s)\n",
                figures.cpu_rate,
                figures.cpu_rate_spread.c_str());
    std::printf(
        "              per transaction: %.1f scheduler events, %.1f heap allocations, "
        "%.0f us virtual\n",
        figures.events_per_transaction,
        figures.allocations_per_transaction,
        figures.virtual_us_per_transaction);
    return figures;
}

int run() {
    std::printf(
        "faultline_bench_smtp_sim: SmtpClient<World>.SendAsync against SmtpServer<World>\n");
    std::printf(
        "%llu transactions per run over one cached connection, one at a time (next SendAsync "
        "from SendCompleted); message: 2 recipients, short ASCII body; trace off; %d runs per "
        "profile after a warm-up, medians; single-threaded (fibers on one OS thread, CPUs "
        "allowed: %s), so tx/s = tx/s per core\n",
        static_cast<unsigned long long>(kTransactions),
        kRuns,
        this_thread_cpus().c_str());
    const ProfileFigures unix_figures = run_profile(model::kDotnetUnix, "dotnet-unix");
    const ProfileFigures documented = run_profile(model::kDocumented, "documented");
    std::printf("\ntarget: at least %.0f tx/s per core\n", kTargetPerCore);
    for (const ProfileFigures* figures : {&unix_figures, &documented}) {
        const char* name = figures == &unix_figures ? "dotnet-unix" : "documented";
        const std::string prefix = std::string("smtp sim (") + name + "): SendAsync ";
        print_result(prefix + "tx per wall second (1 thread)",
                     fixed(figures->rate, 0) + " (runs " + figures->rate_spread + "; " +
                         fixed(figures->events_per_transaction, 0) + " events, " +
                         fixed(figures->allocations_per_transaction, 0) + " allocs per tx)" +
                         (figures->complete ? "" : " INCOMPLETE"),
                     "-",
                     "-");
        print_result(prefix + "tx/s per core (tx per CPU second)",
                     fixed(figures->cpu_rate, 0) + " (runs " + figures->cpu_rate_spread + ")" +
                         (figures->complete ? "" : " INCOMPLETE"),
                     ">= 50000",
                     pass_or_miss(figures->complete && figures->cpu_rate >= kTargetPerCore));
    }
    return 0;
}

}  // namespace
}  // namespace faultline::bench

int main() { return faultline::bench::bench_main(faultline::bench::run); }
