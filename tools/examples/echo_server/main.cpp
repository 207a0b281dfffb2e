// faultline_echo_server: runs EchoServer<RealTransport> on 127.0.0.1 for a bounded time. The same
// EchoServer<T> runs on the simulated network in conformance/test/echo_server.test.cpp; this is the
// whole difference between the two: which Transport the template gets.
//
//   faultline_echo_server [--port N] [--max-seconds N] [--profile documented|dotnet-unix]
//
// Exit 0 after a clean stop, 1 if the server did not stop in time or a handler threw, 2 for bad
// arguments or a port that cannot be bound.
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "echo_server/echo_server.h"
#include "faultline/model/exceptions.h"
#include "faultline/model/profile.h"
#include "faultline/real/transport.h"

namespace {

constexpr int kExitStopped = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

struct Arguments {
    std::uint16_t port = 7007;
    std::int64_t max_seconds = 10;
    faultline::model::Profile profile = faultline::model::kDocumented;
};

template <typename Number>
std::optional<Number> parse_number(std::string_view text) {
    Number value{};
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

std::optional<Arguments> parse_arguments(int argc, char** argv) {
    Arguments arguments;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view name = argv[i];
        const std::string_view value = argv[i + 1];
        if (name == "--port") {
            const auto port = parse_number<std::uint16_t>(value);
            if (!port) {
                return std::nullopt;
            }
            arguments.port = *port;
        } else if (name == "--max-seconds") {
            const auto seconds = parse_number<std::int64_t>(value);
            if (!seconds || *seconds < 0 || *seconds > 86'400) {
                return std::nullopt;
            }
            arguments.max_seconds = *seconds;
        } else if (name == "--profile") {
            const auto profile = faultline::model::profile_by_name(value);
            if (!profile) {
                return std::nullopt;
            }
            arguments.profile = *profile;
        } else {
            return std::nullopt;
        }
    }
    if (argc % 2 == 0) {
        return std::nullopt;  // a flag without its value
    }
    return arguments;
}

int run(const Arguments& arguments) {
    using faultline::real::RealTransport;
    // Declared first, destroyed last: sockets must be gone (or disposed) before their transport.
    RealTransport transport;
    auto server =
        faultline::examples::EchoServer<RealTransport>::Create(transport, arguments.profile);
    const faultline::model::Endpoint bound =
        server->Start(faultline::model::Endpoint::loopback(arguments.port));
    std::printf("echo server on %s (profile %s), stopping after %lld s\n",
                bound.to_string().c_str(),
                std::string(arguments.profile.name).c_str(),
                static_cast<long long>(arguments.max_seconds));
    std::fflush(stdout);

    // The run is bounded: wait out --max-seconds on an event nobody signals, then stop.
    {
        RealTransport::Mutex mutex;
        RealTransport::Event never;
        std::unique_lock lock(mutex);
        static_cast<void>(transport.wait(never, lock, std::chrono::seconds(arguments.max_seconds)));
    }
    server->Stop();
    const bool stopped = server->WaitStopped(std::chrono::seconds(5));
    const auto counters = server->counters();
    std::printf("accepted %llu, echoed %llu bytes, closed %llu clean and %llu on error\n",
                static_cast<unsigned long long>(counters.accepted),
                static_cast<unsigned long long>(counters.bytes_echoed),
                static_cast<unsigned long long>(counters.closed_clean),
                static_cast<unsigned long long>(counters.closed_error));
    if (!stopped) {
        std::fprintf(stderr, "the server did not stop within 5 s\n");
        return kExitFailed;
    }
    // A handler that threw on a pool thread is kept by the transport, not lost.
    if (const std::exception_ptr escaped = transport.take_exception()) {
        std::rethrow_exception(escaped);
    }
    return kExitStopped;
}

}  // namespace

int main(int argc, char** argv) {
    const std::optional<Arguments> arguments = parse_arguments(argc, argv);
    if (!arguments) {
        std::fprintf(stderr,
                     "usage: faultline_echo_server [--port N] [--max-seconds N] "
                     "[--profile documented|dotnet-unix]\n");
        return kExitUsage;
    }
    try {
        return run(*arguments);
    } catch (const faultline::model::SocketException& exception) {
        std::fprintf(stderr, "cannot serve: %s\n", exception.what());
        return kExitUsage;
    } catch (const std::exception& exception) {
        std::fprintf(stderr, "failed: %s\n", exception.what());
        return kExitFailed;
    }
}
