// World: the deterministic Transport. Virtual integer-nanosecond time, one seeded PRNG, events
// ordered by (time, sequence); logical threads are fibers parked and resumed by the scheduler; a
// simulated TCP (handshake, send and receive buffers, MSS segments, latency/jitter, bandwidth, FIN,
// RST) with scripted and swarm faults, every decision traced. Faults are TCP-legal: delay, split,
// reset, close, stall; bytes inside a stream are never reordered or dropped.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "faultline/model/transport.h"
#include "faultline/sim/prng.h"
#include "faultline/sim/scheduler.h"
#include "faultline/sim/trace.h"

namespace faultline::sim {

/// Which end of a connection: the one that connected, or the one a listener accepted.
enum class Side : std::uint8_t { client, server };

struct NetworkConfig {
    model::Duration latency = std::chrono::microseconds(50);
    model::Duration jitter{};                 // extra delay drawn per segment in [0, jitter]
    std::uint64_t bytes_per_second = 0;       // 0: no bandwidth limit
    std::size_t mss_bytes = 1460;
    std::size_t send_buffer_bytes = 65536;
    std::size_t receive_buffer_bytes = 65536;
    int syn_retries = 6;                      // Linux tcp_syn_retries
    model::Duration syn_timeout = std::chrono::seconds(1);  // first SYN retransmission
    std::vector<std::uint32_t> unreachable_addresses;  // answered with host_unreachable
    std::vector<std::uint32_t> silent_addresses;       // SYNs vanish: connect times out
};

enum class FaultKind : std::uint8_t {
    partial_send,
    reset,
    close,
    stall,
    latency,
    bandwidth,
    half_open_scan,
    would_block,
};

/// A scripted fault. A would_block makes `side`'s immediate send attempt before its `on_send`th
/// taking call find no room once (the send goes pending, as on a real socket whose buffer was
/// full); recordings of real runs use it. A half_open_scan sends SYN, answers the SYN-ACK with RST, against every open
/// listener, `count` times from `at`. Otherwise `side` is the end where it acts: whose sends are cut (partial_send), whose
/// sends count towards the trigger (reset: both ends are reset), which application closes
/// (close) or stops reading (stall). `connection` is the pair index in connect order (all pairs
/// when empty).
struct Fault {
    FaultKind kind = FaultKind::partial_send;
    Side side = Side::client;
    std::optional<std::uint32_t> connection;
    std::optional<model::Duration> at;          // trigger: virtual time
    std::optional<std::uint64_t> after_bytes;   // trigger: bytes sent by `side` (reset)
    std::optional<std::uint64_t> on_send;       // trigger: the Nth send call by `side` (1-based)
    std::uint64_t bytes = 0;                    // partial_send: most bytes that call takes
    std::optional<model::Duration> duration;    // stall: how long (forever when empty)
    model::Duration latency{};                  // latency: new one-way latency
    model::Duration jitter{};                   // latency: new jitter
    std::uint64_t bytes_per_second = 0;         // bandwidth: new limit (0: unlimited)
    std::uint64_t count = 1;                    // half_open_scan: how many scans
    model::Duration interval{};                 // half_open_scan: time between scans
};

/// Swarm testing: per seed, draw which fault kinds are on and at what rate, then fire them.
struct SwarmConfig {
    bool enabled = false;
};

/// One TCP segment as the simulated network carries it, for a packet capture: stamped when it
/// arrives (or, for an RST and a half-open scan's SYN-ACK, when it is sent). TCP flag bits as
/// on the wire. Scans come from 127.0.0.2, port 40000 + scan number (mod 20000).
struct WirePacket {
    static constexpr std::uint8_t fin = 0x01;
    static constexpr std::uint8_t syn = 0x02;
    static constexpr std::uint8_t rst = 0x04;
    static constexpr std::uint8_t psh = 0x08;
    static constexpr std::uint8_t ack = 0x10;
    model::TimePoint at{};
    model::Endpoint source;
    model::Endpoint destination;
    std::uint8_t flags = 0;
    std::span<const std::byte> payload;
};

/// Thrown inside a logical thread that was told to exit while blocked; caught by the world.
struct ThreadExitRequested {};

class World {
public:
    struct NullMutex {
        void lock() noexcept {}
        void unlock() noexcept {}
        bool try_lock() noexcept { return true; }
    };
    /// Sticky one-shot event; waiters are logical threads.
    struct Event {
        bool set = false;
        std::vector<model::ThreadId> waiters;
    };
    using Mutex = NullMutex;

    struct Options {
        std::uint64_t seed = 1;
        NetworkConfig network;
        std::vector<Fault> faults;
        SwarmConfig swarm;
        Trace::Mode trace_mode = Trace::Mode::full;
        std::size_t stack_bytes = std::size_t{256} * 1024;
        std::size_t pool_threads_max = 512;
        /// Sees every packet on the simulated wire (optional; changes nothing in the run).
        std::function<void(const WirePacket&)> packet_tap;
    };

    explicit World(Options options);
    World(const World&) = delete;
    World& operator=(const World&) = delete;
    ~World();

    // ---- Transport ---------------------------------------------------------------------------
    [[nodiscard]] model::TimePoint now() const noexcept { return scheduler_.now(); }
    void post(model::Task task);
    void post_after(model::Duration delay, model::Task task);
    model::Result<model::ListenerId> listen(const model::Endpoint& endpoint, int backlog);
    [[nodiscard]] model::Endpoint local_endpoint(model::ListenerId listener) const;
    model::Result<model::ConnectionId> try_accept(model::ListenerId listener);
    void async_accept(model::ListenerId listener, model::ConnectHandler handler);
    void cancel_accept(model::ListenerId listener);
    void close(model::ListenerId listener);
    void async_connect(const model::Endpoint& remote, model::ConnectHandler handler);
    model::Result<std::size_t> try_send(model::ConnectionId connection,
                                        std::span<const std::byte> bytes);
    void async_send(model::ConnectionId connection, std::span<const std::byte> bytes,
                    model::IoHandler handler);
    model::Result<std::size_t> try_receive(model::ConnectionId connection,
                                           std::span<std::byte> buffer);
    void async_receive(model::ConnectionId connection, std::span<std::byte> buffer,
                       model::IoHandler handler);
    void cancel_send(model::ConnectionId connection);
    void cancel_receive(model::ConnectionId connection);
    void shutdown(model::ConnectionId connection, model::ShutdownHow how);
    void close(model::ConnectionId connection);
    void abort(model::ConnectionId connection);
    [[nodiscard]] model::Endpoint local_endpoint(model::ConnectionId connection) const;
    [[nodiscard]] model::Endpoint remote_endpoint(model::ConnectionId connection) const;
    model::ThreadId spawn(std::string_view name, model::Task body);
    [[nodiscard]] model::ThreadId current_thread() const noexcept;
    model::ExitWatchId on_thread_exit(model::ThreadId thread, model::Task task);
    void cancel_exit_watch(model::ExitWatchId watch);
    bool wait(Event& event, std::unique_lock<Mutex>& lock, model::Duration budget);
    void signal(Event& event);

    // ---- driver and introspection (not part of the concept) ---------------------------------
    /// Runs until nothing is scheduled or `events_max` events ran (false: budget exhausted).
    /// An exception escaping a logical thread or pool task is rethrown here.
    [[nodiscard]] bool run_until_idle(std::uint64_t events_max = 50'000'000);
    /// Runs events due up to now + `duration`, then sets the clock there.
    void run_for(model::Duration duration);
    /// Makes thread `thread` exit: at once if it is blocked, or before it starts.
    void request_thread_exit(model::ThreadId thread);
    [[nodiscard]] bool thread_finished(model::ThreadId thread) const;
    [[nodiscard]] std::string_view thread_name(model::ThreadId thread) const;
    [[nodiscard]] std::string_view current_thread_name() const noexcept;
    /// Pair index (connect order) and side of a connection.
    [[nodiscard]] std::uint32_t pair_of(model::ConnectionId connection) const;
    [[nodiscard]] Side side_of(model::ConnectionId connection) const;
    /// Stops (or resumes) the application reads on `connection`, as the stall fault does.
    void set_stalled(model::ConnectionId connection, bool stalled);
    [[nodiscard]] Trace& trace() noexcept { return trace_; }
    [[nodiscard]] const Trace& trace() const noexcept { return trace_; }
    [[nodiscard]] Scheduler& scheduler() noexcept { return scheduler_; }
    /// Records an event stamped with the current time and thread.
    void trace_event(std::string_view name, std::initializer_list<Trace::Field> fields);
    [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }

private:
    struct Conn;
    struct Listener;
    struct Thread;
    struct Swarm;
    /// What a pool thread runs next: a task, or an I/O or connect completion carried as its
    /// handler and arguments (so delivering one does not wrap the handler in another Task).
    struct PoolWork {
        enum class Kind : std::uint8_t { task, io, connect };
        Kind kind = Kind::task;
        model::Task task;
        model::IoHandler io_handler;
        model::ConnectHandler connect_handler;
        std::error_code error;
        std::size_t bytes = 0;
        model::ConnectionId connection{};
    };

    Conn& conn(model::ConnectionId connection);
    [[nodiscard]] const Conn& conn(model::ConnectionId connection) const;
    Listener& listener(model::ListenerId listener);
    [[nodiscard]] const Listener& listener(model::ListenerId listener) const;
    Thread& thread(model::ThreadId thread);
    [[nodiscard]] const Thread& thread(model::ThreadId thread) const;

    void deliver_io(model::IoHandler handler, std::error_code error, std::size_t bytes);
    void deliver_connect(model::ConnectHandler handler, std::error_code error,
                         model::ConnectionId connection);

    // network internals
    Conn& new_conn(Side side, std::uint32_t pair);
    model::Result<std::size_t> take_bytes(Conn& sender, std::span<const std::byte> bytes);
    model::Result<std::size_t> give_bytes(Conn& receiver, std::span<std::byte> buffer);
    std::error_code consume_send_error(Conn& end);
    void pump(Conn& sender);
    model::TimePoint segment_arrival(Conn& sender, std::size_t bytes);
    void segment_arrived(std::uint32_t sender_index, std::uint32_t bytes, std::uint32_t epoch);
    void fin_arrived(std::uint32_t sender_index, std::uint32_t epoch);
    void send_rst(Conn& from);
    void rst_arrived(std::uint32_t target_index, std::uint32_t epoch);
    void reset_end(Conn& end, std::error_code sticky);
    void wake_send(Conn& end);
    void wake_receive(Conn& end);
    void fail_pending(Conn& end, std::error_code error);
    void send_syn(std::uint32_t client_index, model::Endpoint remote, int attempt);
    void syn_arrived(std::uint32_t client_index, model::Endpoint remote, int attempt);
    Listener* find_listener(const model::Endpoint& endpoint);
    /// The next port of the ephemeral range, cycling, never one an open listener holds.
    std::uint16_t next_ephemeral_port();
    void fail_connect(std::uint32_t client_index, std::error_code error);

    // faults
    void arm_timed_faults();
    [[nodiscard]] bool fault_matches(const Fault& fault, const Conn& end) const;
    void inject_reset(Conn& end, std::string_view reason);
    void inject_close(Conn& end, std::string_view reason);
    void inject_stall(Conn& end, std::optional<model::Duration> duration, std::string_view reason);
    void half_open_scan(std::uint32_t listener_index, std::uint64_t scan);

    // packet capture
    /// Hands one segment, stamped now, to Options::packet_tap; callers test that the tap is set
    /// first, so that a run without one pays one branch per segment and nothing more.
    void tap_packet(const model::Endpoint& source,
                    const model::Endpoint& destination,
                    std::uint8_t flags,
                    std::span<const std::byte> payload = {});

    // threads
    void resume(Thread& target);
    void schedule_resume(Thread& target);
    void thread_main(Thread& self);
    void pool_main(Thread& self);
    void post_pooled(PoolWork work);
    void run_next_pooled();
    void run_pooled(PoolWork work);
    void thread_exited(Thread& self);
    void capture_exception();

    std::uint64_t seed_;
    Options options_;
    NetworkConfig network_;
    Scheduler scheduler_;
    Prng prng_;
    Prng jitter_prng_;
    Trace trace_;
    std::unique_ptr<Swarm> swarm_;
    std::vector<std::unique_ptr<Conn>> conns_;
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::vector<std::unique_ptr<Thread>> threads_;
    std::vector<model::ThreadId> idle_pool_;
    // Zero-delay pool work in posting order; each matching scheduler event takes the front.
    std::vector<PoolWork> pool_queue_;
    std::size_t pool_queue_head_ = 0;
    std::map<std::uint64_t, std::pair<model::ThreadId, model::Task>> exit_watches_;
    std::uint64_t exit_watch_last_ = 0;
    Thread* current_ = nullptr;
    std::exception_ptr escaped_;
    std::uint32_t pairs_ = 0;
    std::vector<std::byte> tap_scratch_;  // a tapped segment's bytes when its ring wraps
    std::uint32_t ephemeral_port_next_ = kEphemeralPortFirst;
    static constexpr std::uint32_t kEphemeralPortFirst = 32768;  // Linux ip_local_port_range
    static constexpr std::uint32_t kEphemeralPortLast = 60999;
};

static_assert(model::Transport<World>);

}  // namespace faultline::sim
