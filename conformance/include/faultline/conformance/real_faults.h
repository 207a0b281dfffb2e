// RealFaults: a Transport that forwards to real::RealTransport and realises a scenario's scripted
// faults with real sockets, where that is honest: partial sends hand the kernel fewer bytes,
// resets abort the other end (the kernel sends a real RST), stalls hold the application's reads
// back, a close closes that end's socket. What loopback cannot show (latency, bandwidth, swarm)
// is refused by unsupported_reason() so the runner reports it as not applicable.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "faultline/real/transport.h"
#include "faultline/sim/world.h"

namespace faultline::conformance {

class RealFaults {
public:
    using Mutex = real::RealTransport::Mutex;
    using Event = real::RealTransport::Event;

    RealFaults(real::RealTransport& transport, std::vector<sim::Fault> faults);
    ~RealFaults();
    RealFaults(const RealFaults&) = delete;
    RealFaults& operator=(const RealFaults&) = delete;

    /// A send call that took fewer bytes than it was given (a scripted partial send or the
    /// kernel's), as `run --record` writes it back as a sim partial_send fault.
    struct PartialSend {
        sim::Side side = sim::Side::client;
        std::uint32_t pair = 0;   // connection, in connect order
        std::uint64_t call = 0;   // the end's send calls that took bytes, 1-based
        std::size_t asked = 0;
        std::size_t took = 0;
    };
    /// An immediate send attempt that found no room (the kernel's or a would_block fault),
    /// before the end's `call`th taking call; recorded as a sim would_block fault.
    struct WouldBlock {
        sim::Side side = sim::Side::client;
        std::uint32_t pair = 0;
        std::uint64_t call = 0;
    };
    /// What the transport seam saw, for recording.
    struct Seam {
        std::vector<PartialSend> partial_sends;  // in the order they happened
        std::vector<WouldBlock> would_blocks;    // in the order they happened
        std::uint64_t send_calls = 0;            // calls that took bytes, all ends
        std::size_t largest_send = 0;            // most bytes one call took
        std::uint64_t largest_total = 0;         // most bytes one end sent
        std::uint64_t unpaired_cuts = 0;  // cuts and hold-backs on unnamed ends
    };
    [[nodiscard]] Seam seam() const;

    /// Why these faults cannot be realised on loopback, or nullopt if they can.
    [[nodiscard]] static std::optional<std::string> unsupported_reason(
        const std::vector<sim::Fault>& faults);

    [[nodiscard]] model::TimePoint now() const { return transport_.now(); }
    void post(model::Task task) { transport_.post(std::move(task)); }
    void post_after(model::Duration delay, model::Task task) {
        transport_.post_after(delay, std::move(task));
    }
    model::Result<model::ListenerId> listen(const model::Endpoint& endpoint, int backlog) {
        return transport_.listen(endpoint, backlog);
    }
    [[nodiscard]] model::Endpoint local_endpoint(model::ListenerId listener) const {
        return transport_.local_endpoint(listener);
    }
    model::Result<model::ConnectionId> try_accept(model::ListenerId listener);
    void async_accept(model::ListenerId listener, model::ConnectHandler handler);
    void cancel_accept(model::ListenerId listener) { transport_.cancel_accept(listener); }
    void close(model::ListenerId listener) { transport_.close(listener); }
    void async_connect(const model::Endpoint& endpoint, model::ConnectHandler handler);
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
    [[nodiscard]] model::Endpoint local_endpoint(model::ConnectionId connection) const {
        return transport_.local_endpoint(connection);
    }
    [[nodiscard]] model::Endpoint remote_endpoint(model::ConnectionId connection) const {
        return transport_.remote_endpoint(connection);
    }
    model::ThreadId spawn(std::string_view name, model::Task body) {
        return transport_.spawn(name, std::move(body));
    }
    [[nodiscard]] model::ThreadId current_thread() const { return transport_.current_thread(); }
    model::ExitWatchId on_thread_exit(model::ThreadId thread, model::Task task) {
        return transport_.on_thread_exit(thread, std::move(task));
    }
    void cancel_exit_watch(model::ExitWatchId watch) { transport_.cancel_exit_watch(watch); }
    bool wait(Event& event, std::unique_lock<Mutex>& lock, model::Duration budget) {
        return transport_.wait(event, lock, budget);
    }
    void signal(Event& event) { transport_.signal(event); }

private:
    struct End {
        sim::Side side = sim::Side::client;
        std::uint32_t pair = 0;
        std::uint64_t send_calls = 0;   // calls that took bytes
        std::uint64_t sent = 0;         // bytes taken
        bool killed = false;            // closed behind the application's back
        std::error_code killed_send_error;
        bool stalled = false;
        bool receive_pending = false;   // an async_receive is outstanding in the kernel
        bool receive_held = false;      // ... or held back by a stall
        std::span<std::byte> held_buffer;
        model::IoHandler held_handler;
        bool swallow_abort = false;     // the outstanding receive was cancelled by a stall
        std::uint64_t would_block_call = 0;   // the call a would_block fault last held back
        std::uint64_t would_block_noted = 0;  // the call whose hold-back the seam noted
    };

    /// The span a send call may pass to the kernel, and whether the call must first reset.
    std::span<const std::byte> shape_send(End& end, model::ConnectionId connection,
                                          std::span<const std::byte> bytes);
    void after_send(model::ConnectionId connection, std::size_t bytes, std::size_t asked);
    void note_would_block(End& end);  // with mutex_ held
    void kill_other_end(model::ConnectionId connection);
    /// Drops the bookkeeping of an end the application closes; true if a fault already closed
    /// its socket (so the transport must not be asked again).
    bool forget_end(model::ConnectionId connection);
    void register_end(model::ConnectionId connection, sim::Side side,
                      std::optional<std::uint32_t> pair);
    [[nodiscard]] bool matches(const sim::Fault& fault, const End& end) const;
    void start_stall(model::ConnectionId connection, std::optional<model::Duration> duration);
    void end_stall(model::ConnectionId connection);

    real::RealTransport& transport_;
    std::vector<sim::Fault> faults_;
    mutable std::mutex mutex_;
    std::map<std::uint32_t, End> ends_;
    std::uint32_t pairs_ = 0;
    Seam seam_;  // guarded by mutex_
};

static_assert(model::Transport<RealFaults>);

}  // namespace faultline::conformance
