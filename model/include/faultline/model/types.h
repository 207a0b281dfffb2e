// Value types shared by every layer: time, identifiers, endpoints and handler signatures.
// Time is integer nanoseconds on the transport's own clock (virtual in sim/, monotonic in real/).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace faultline::model {

using Duration = std::chrono::nanoseconds;

/// The clock of a Transport. It has no static now(): time belongs to a transport instance.
struct TransportClock {
    using rep = std::int64_t;
    using period = std::nano;
    using duration = Duration;
    using time_point = std::chrono::time_point<TransportClock, Duration>;
    static constexpr bool is_steady = true;
};
using TimePoint = TransportClock::time_point;

enum class ConnectionId : std::uint32_t {};
enum class ListenerId : std::uint32_t {};
/// A logical thread. Thread 0 never exists; pool threads have ids like any other thread.
enum class ThreadId : std::uint32_t {};

constexpr std::uint32_t to_underlying(ConnectionId id) { return static_cast<std::uint32_t>(id); }
constexpr std::uint32_t to_underlying(ListenerId id) { return static_cast<std::uint32_t>(id); }
constexpr std::uint32_t to_underlying(ThreadId id) { return static_cast<std::uint32_t>(id); }

/// An IPv4 endpoint. Address 0.0.0.0 is the wildcard and port 0 asks for an ephemeral port.
struct Endpoint {
    std::uint32_t address = 0;  // host byte order: 127.0.0.1 == 0x7f000001
    std::uint16_t port = 0;

    friend bool operator==(const Endpoint&, const Endpoint&) = default;
    friend auto operator<=>(const Endpoint&, const Endpoint&) = default;

    [[nodiscard]] std::string to_string() const;
    /// Parses "a.b.c.d:port"; nullopt on any syntax error.
    [[nodiscard]] static std::optional<Endpoint> parse(std::string_view text);
    [[nodiscard]] static constexpr Endpoint loopback(std::uint16_t port_value) {
        return Endpoint{0x7f000001U, port_value};
    }
};

enum class ShutdownHow : std::uint8_t { receive, send, both };

using Task = std::function<void()>;
/// Completion of a send or receive: error (empty on success) and bytes transferred.
using IoHandler = std::function<void(std::error_code, std::size_t)>;
/// Completion of an accept or connect: error (empty on success) and the new connection.
using ConnectHandler = std::function<void(std::error_code, ConnectionId)>;

}  // namespace faultline::model
