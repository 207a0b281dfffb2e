// RealTransport: the Linux Transport. Real TCP sockets (loopback in practice), OS threads and the
// monotonic clock. Completions and tasks run on a pool of OS threads and may block; none ever runs
// inside the call that started it. It knows nothing of profiles or fault plans: its fault hooks
// only change what the kernel is asked to do (fewer bytes per send, smaller buffers), so every
// fault it produces is one a real TCP stack produces. Asio stays inside src/: this header is cheap.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>

#include "faultline/model/net_error.h"
#include "faultline/model/result.h"
#include "faultline/model/transport.h"
#include "faultline/model/types.h"

namespace faultline::real {

namespace internal {
class Core;
}  // namespace internal

/// Sizes the pool of OS threads that runs handlers, tasks and exit watches.
struct RealTransportOptions {
    /// Pool threads started by the constructor; at least 1.
    std::size_t pool_threads = 4;
    /// When every pool thread is blocked in wait(), one more is started, up to this many in all,
    /// so blocking continuations cannot starve the pool (S-23). At least pool_threads.
    std::size_t pool_threads_max = 64;
};

/// Satisfies model::Transport with Linux sockets, OS threads and std::chrono::steady_clock.
/// See the contract table in faultline/model/transport.h; notes below only add what is real-only.
/// Thread safety: every member may be called from any thread, including from handlers.
class RealTransport {
public:
    using Mutex = std::mutex;

    /// A sticky one-shot event. Waiters and signal() hold the same Mutex (the model's lock), which
    /// guards the flag; the condition variable only wakes waiters.
    class Event {
    public:
        Event() = default;

    private:
        friend class RealTransport;
        bool signalled_ = false;
        std::condition_variable changed_;
    };

    /// Starts the pool threads. The clock starts at zero now.
    RealTransport();
    explicit RealTransport(RealTransportOptions options);
    /// Joins every spawned thread (so every spawned body must return: call join_threads with a
    /// budget first to bound that), stops the pool after the handlers that are running return,
    /// then closes every socket. Pending handlers, tasks and watches are dropped, never invoked.
    ~RealTransport();

    RealTransport(const RealTransport&) = delete;
    RealTransport& operator=(const RealTransport&) = delete;
    RealTransport(RealTransport&&) = delete;
    RealTransport& operator=(RealTransport&&) = delete;

    /// Monotonic time since construction (steady_clock).
    [[nodiscard]] model::TimePoint now() const;
    /// Runs `task` on a pool thread, never inside this call.
    void post(model::Task task);
    /// Runs `task` on a pool thread no earlier than `delay` (≥ 0) from now. Equal deadlines are
    /// not ordered: the pool runs them concurrently.
    void post_after(model::Duration delay, model::Task task);

    /// Binds and listens (SO_REUSEADDR is set, so only a live listener makes `address_in_use`).
    [[nodiscard]] model::Result<model::ListenerId> listen(const model::Endpoint& endpoint,
                                                          int backlog);
    /// The bound endpoint of a live listener, with the real port.
    [[nodiscard]] model::Endpoint local_endpoint(model::ListenerId listener) const;
    /// An established connection now, or `would_block`.
    [[nodiscard]] model::Result<model::ConnectionId> try_accept(model::ListenerId listener);
    /// `handler(error, connection)` once, on a pool thread; one outstanding per listener.
    void async_accept(model::ListenerId listener, model::ConnectHandler handler);
    /// A pending accept completes with `operation_aborted` (posted); otherwise nothing happens.
    void cancel_accept(model::ListenerId listener);
    /// Closes the listening socket: a pending accept completes with `operation_aborted` and Linux
    /// resets the connections still queued. The id is dead afterwards.
    void close(model::ListenerId listener);

    /// `handler(error, connection)` once, on a pool thread; on error the id is ConnectionId{0}.
    void async_connect(const model::Endpoint& endpoint, model::ConnectHandler handler);

    /// One non-blocking send(2) of at most `bytes.size()` (and at most the send cap): `1 ≤ n`,
    /// `would_block`, or the mapped error. Empty `bytes` is a zero-length probe: 0 on a healthy
    /// connection, else the pending error.
    [[nodiscard]] model::Result<std::size_t> try_send(model::ConnectionId connection,
                                                      std::span<const std::byte> bytes);
    /// Waits for writability, then makes one send(2): success ⇒ `1 ≤ n ≤ size` (partial is legal).
    /// The caller keeps `bytes` alive until `handler` runs; one outstanding send per connection.
    void async_send(model::ConnectionId connection, std::span<const std::byte> bytes,
                    model::IoHandler handler);
    /// One non-blocking recv(2): `1 ≤ n ≤ size`, `would_block`, `end_of_stream`, or an error.
    [[nodiscard]] model::Result<std::size_t> try_receive(model::ConnectionId connection,
                                                         std::span<std::byte> buffer);
    /// Waits for readability, then makes one recv(2); orderly close ⇒ `end_of_stream`, n = 0.
    /// The caller keeps `buffer` alive until `handler` runs; one outstanding receive.
    void async_receive(model::ConnectionId connection, std::span<std::byte> buffer,
                       model::IoHandler handler);
    /// A pending send completes with `operation_aborted`, n = 0 (posted). A send that has already
    /// moved bytes has already completed, so it is unaffected.
    void cancel_send(model::ConnectionId connection);
    /// As cancel_send, for the pending receive.
    void cancel_receive(model::ConnectionId connection);
    /// shutdown(2). Errors (e.g. the peer already reset) are ignored: later calls report them.
    void shutdown(model::ConnectionId connection, model::ShutdownHow how);
    /// close(2): Linux sends FIN after buffered bytes, or RST if unread data is pending. Pending
    /// operations complete with `operation_aborted` (posted). The id is dead afterwards.
    void close(model::ConnectionId connection);
    /// SO_LINGER {1, 0} then close(2): RST now. Pending operations → `operation_aborted`.
    void abort(model::ConnectionId connection);
    /// Endpoints of a live connection, recorded when it was established.
    [[nodiscard]] model::Endpoint local_endpoint(model::ConnectionId connection) const;
    [[nodiscard]] model::Endpoint remote_endpoint(model::ConnectionId connection) const;

    /// Starts an OS thread named `name` (truncated to 15 bytes for the OS) that runs `body`.
    /// An exception escaping `body` is kept for take_exception().
    model::ThreadId spawn(std::string_view name, model::Task body);
    /// The calling thread's id. A thread this transport did not start gets an id (and is watched
    /// for exit) on its first call.
    [[nodiscard]] model::ThreadId current_thread() const;
    /// Runs `task` on a pool thread once thread `thread` has exited (at once, posted, if it has).
    /// Pool threads never exit while the transport lives. `thread` must be known to this
    /// transport (returned by spawn or current_thread).
    model::ExitWatchId on_thread_exit(model::ThreadId thread, model::Task task);
    /// The watch will not fire. Unknown or fired watches are ignored.
    void cancel_exit_watch(model::ExitWatchId watch);
    /// Blocks until `event` is signalled (true) or `budget` runs out (false), releasing `lock`
    /// meanwhile. `lock` must own the Mutex that signal() callers hold.
    [[nodiscard]] bool wait(Event& event, std::unique_lock<Mutex>& lock, model::Duration budget);
    /// Sets `event` and wakes its waiters. The caller holds the Mutex the waiters use.
    void signal(Event& event);

    // Driver and fault hooks: real/-only, used by tests and the conformance runner.

    /// Waits up to `budget` for every spawned body to return, then joins those threads. Returns
    /// false, joining none, if some body is still running when the budget runs out.
    [[nodiscard]] bool join_threads(model::Duration budget);
    /// The first exception that escaped a handler, task, watch or spawned body (nullptr if none),
    /// and forgets it. Such an exception does not stop the pool.
    [[nodiscard]] std::exception_ptr take_exception();
    /// Pool threads currently running (grows when all are blocked in wait()).
    [[nodiscard]] std::size_t pool_thread_count() const;

    /// Hands the kernel at most `send_bytes_max` bytes per send(2) on `connection` (try_send and
    /// async_send alike), so sends complete partially. 0 removes the cap.
    void set_send_cap(model::ConnectionId connection, std::size_t send_bytes_max);
    /// Caps only the next send(2) on `connection` that takes bytes at `send_bytes` (≥ 1); it
    /// combines with set_send_cap by taking the smaller.
    void set_send_cap_once(model::ConnectionId connection, std::size_t send_bytes);
    /// setsockopt SO_SNDBUF / SO_RCVBUF (Linux doubles the value and applies its minimum).
    /// A value ≤ 0 leaves that buffer unchanged.
    void set_socket_buffers(model::ConnectionId connection, int send_buffer_bytes,
                            int receive_buffer_bytes);
    /// As above for a listener; connections it accepts later inherit the sizes.
    void set_socket_buffers(model::ListenerId listener, int send_buffer_bytes,
                            int receive_buffer_bytes);
    /// The live in-process connection whose local and remote endpoints mirror `connection`'s,
    /// i.e. the other end of a loopback connection (e.g. to abort it for a real RST).
    [[nodiscard]] std::optional<model::ConnectionId> find_peer(
        model::ConnectionId connection) const;

private:
    std::unique_ptr<internal::Core> core_;
};

static_assert(model::Transport<RealTransport>);

}  // namespace faultline::real
