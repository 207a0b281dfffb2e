// The Transport concept: the only way model/ reaches the outside world. sim/ satisfies it with a
// deterministic virtual network and fibers, real/ with Linux loopback sockets and OS threads.
// Invariant: no handler ever runs inside the call that started its operation. The concept says
// nothing about profiles or faults: transports know neither.
#pragma once

#include <concepts>
#include <cstddef>
#include <mutex>
#include <span>
#include <string_view>

#include "faultline/model/net_error.h"
#include "faultline/model/result.h"
#include "faultline/model/types.h"

namespace faultline::model {

enum class ExitWatchId : std::uint64_t {};

// Contract (checked against both transports by conformance/test/transport_contract.test.cpp).
//
// | expression                      | result                 | semantics |
// |---------------------------------|------------------------|-----------|
// | `t.now()`                       | `TimePoint`            | never goes backwards; in sim it changes only between tasks |
// | `t.post(task)`                  | void                   | runs `task` on a pool thread soon; never inline |
// | `t.post_after(d, task)`         | void                   | as post, no earlier than `d` from now; equal deadlines run FIFO |
// | `t.listen(ep, backlog)`         | `Result<ListenerId>`   | `address_in_use` and similar come back as values; port 0 = ephemeral |
// | `t.local_endpoint(l)`           | `Endpoint`             | the bound endpoint, with the real port |
// | `t.try_accept(l)`               | `Result<ConnectionId>` | an established connection now, or `would_block` |
// | `t.async_accept(l, h)`          | void                   | `h(error, c)` once, on a pool thread; at most one outstanding per listener; `connection_reset` if a connection attempt was reset before it could be accepted (a half-open scan; sim reports it, Linux never does) |
// | `t.cancel_accept(l)`            | void                   | a pending accept completes with `operation_aborted` (not inline) |
// | `t.close(l)`                    | void                   | pending accept → `operation_aborted`; queued connections are reset |
// | `t.async_connect(ep, h)`        | void                   | `h(error, c)` once; `connection_refused`, `timed_out`, `host_unreachable` |
// | `t.try_send(c, bytes)`          | `Result<size_t>`       | takes `1 ≤ n ≤ size` bytes now (partial is legal) or fails; `would_block` if no room; empty `bytes` is a zero-length probe: 0, or the pending error (as send(2)) |
// | `t.async_send(c, bytes, h)`     | void                   | success ⇒ `1 ≤ n ≤ size`; error ⇒ `n = 0`; one outstanding per connection; empty `bytes` is a caller bug; caller keeps `bytes` alive until `h` |
// | `t.try_receive(c, buf)`         | `Result<size_t>`       | `1 ≤ n ≤ size` now, `would_block`, or `end_of_stream` after an orderly close |
// | `t.async_receive(c, buf, h)`    | void                   | success ⇒ `1 ≤ n ≤ size`; orderly close ⇒ `end_of_stream`, `n = 0`; one outstanding |
// | `t.cancel_send(c)`, `t.cancel_receive(c)` | void         | a pending operation that has moved no bytes completes with `operation_aborted` (not inline) |
// | `t.shutdown(c, how)`            | void                   | `send`/`both`: FIN after the buffered bytes; later sends fail with `broken_pipe` |
// | `t.close(c)`                    | void                   | graceful: buffered bytes then FIN (RST if unread data was pending, as Linux does); pending operations → `operation_aborted`; `c` is dead afterwards |
// | `t.abort(c)`                    | void                   | abortive close: RST now, buffers dropped; pending operations → `operation_aborted` |
// | `t.local_endpoint(c)`, `t.remote_endpoint(c)` | `Endpoint` | endpoints of a live connection |
// | `t.spawn(name, body)`           | `ThreadId`             | a new named thread running `body`; it exits when `body` returns |
// | `t.current_thread()`            | `ThreadId`             | the calling thread (user or pool): the initiator of what it starts |
// | `t.on_thread_exit(id, task)`    | `ExitWatchId`          | `task` runs once (on a pool thread) after thread `id` exits |
// | `t.cancel_exit_watch(w)`        | void                   | the watch will not fire; unknown or fired watches are ignored |
// | `t.wait(event, lock, budget)`   | bool                   | blocks the calling thread until `event` is signalled (true) or `budget` runs out (false); `lock` is released meanwhile |
// | `t.signal(event)`               | void                   | sets `event` (sticky) and wakes its waiters; called with the model's lock held |
//
// Handlers of async_* and tasks of post/post_after run on pool threads and may block (S-23).
// `T::Mutex` guards model state: a no-op in sim (one OS thread; fibers switch only inside
// wait), std::mutex in real. `T::Event` is a sticky one-shot event, default constructible.
template <typename T>
concept Transport = requires(T& t, const T& ct, const Endpoint& endpoint, int backlog,
                             ListenerId listener, ConnectionId connection,
                             std::span<const std::byte> outgoing, std::span<std::byte> incoming,
                             Duration delay, Task task, IoHandler on_io, ConnectHandler on_connect,
                             ShutdownHow how, ThreadId thread, ExitWatchId watch,
                             std::string_view name, typename T::Event& event,
                             std::unique_lock<typename T::Mutex>& lock) {
    typename T::Mutex;
    typename T::Event;
    requires std::default_initializable<typename T::Event>;
    { ct.now() } -> std::same_as<TimePoint>;
    t.post(task);
    t.post_after(delay, task);
    { t.listen(endpoint, backlog) } -> std::same_as<Result<ListenerId>>;
    { ct.local_endpoint(listener) } -> std::same_as<Endpoint>;
    { t.try_accept(listener) } -> std::same_as<Result<ConnectionId>>;
    t.async_accept(listener, on_connect);
    t.cancel_accept(listener);
    t.close(listener);
    t.async_connect(endpoint, on_connect);
    { t.try_send(connection, outgoing) } -> std::same_as<Result<std::size_t>>;
    t.async_send(connection, outgoing, on_io);
    { t.try_receive(connection, incoming) } -> std::same_as<Result<std::size_t>>;
    t.async_receive(connection, incoming, on_io);
    t.cancel_send(connection);
    t.cancel_receive(connection);
    t.shutdown(connection, how);
    t.close(connection);
    t.abort(connection);
    { ct.local_endpoint(connection) } -> std::same_as<Endpoint>;
    { ct.remote_endpoint(connection) } -> std::same_as<Endpoint>;
    { t.spawn(name, task) } -> std::same_as<ThreadId>;
    { ct.current_thread() } -> std::same_as<ThreadId>;
    { t.on_thread_exit(thread, task) } -> std::same_as<ExitWatchId>;
    t.cancel_exit_watch(watch);
    { t.wait(event, lock, delay) } -> std::same_as<bool>;
    t.signal(event);
};

}  // namespace faultline::model
