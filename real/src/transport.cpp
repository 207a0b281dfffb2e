#include "faultline/real/transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

// GCC 12 reports a false -Wnull-dereference inside Asio's scheduler after inlining, where the
// system-header exemption no longer applies; the pragma covers Asio's lines and nothing of ours.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#pragma GCC diagnostic pop

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "faultline/model/assert.h"

namespace faultline::real {
namespace internal {
namespace {

using model::ConnectionId;
using model::Endpoint;
using model::ListenerId;
using model::NetErrc;
using model::ThreadId;

constexpr ConnectionId no_connection{0};
// EINTR cannot happen with MSG_DONTWAIT in practice; the bound keeps the retry loops finite.
constexpr int interrupted_retries_max = 64;
// Waits longer than this are clamped so that now + budget cannot overflow steady_clock.
constexpr model::Duration wait_budget_max = std::chrono::hours(24 * 365);
// A leader that has been inside one handler or task this long without returning or blocking in
// wait() (a long computation, a blocked mutex, an OS sleep) loses the reactor to a follower.
constexpr std::chrono::milliseconds leader_stuck_after{20};

NetErrc net_error_from_errno(int error_number) {
    switch (error_number) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return NetErrc::would_block;
        case ECONNRESET:
        case ECONNABORTED:
            return NetErrc::connection_reset;
        case EPIPE: return NetErrc::broken_pipe;
        case ENOTCONN: return NetErrc::not_connected;
        case ECONNREFUSED: return NetErrc::connection_refused;
        case ETIMEDOUT: return NetErrc::timed_out;
        case EHOSTUNREACH:
        case ENETUNREACH:
        case EHOSTDOWN:
        case ENETDOWN:
            return NetErrc::host_unreachable;
        case EADDRINUSE: return NetErrc::address_in_use;
        case EADDRNOTAVAIL: return NetErrc::address_not_available;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            return NetErrc::too_many_open;
        case ECANCELED: return NetErrc::operation_aborted;
        default: return NetErrc::invalid_argument;
    }
}

std::error_code error_from_errno(int error_number) {
    return make_error_code(net_error_from_errno(error_number));
}

sockaddr_in to_sockaddr(const Endpoint& endpoint) {
    sockaddr_in address{};
    address.sin_family = static_cast<sa_family_t>(AF_INET);
    address.sin_port = htons(endpoint.port);
    address.sin_addr.s_addr = htonl(endpoint.address);
    return address;
}

Endpoint from_sockaddr(const sockaddr_in& address) {
    return Endpoint{ntohl(address.sin_addr.s_addr), ntohs(address.sin_port)};
}

std::optional<Endpoint> local_endpoint_of(int fd) {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        return std::nullopt;
    }
    return from_sockaddr(address);
}

std::optional<Endpoint> remote_endpoint_of(int fd) {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        return std::nullopt;
    }
    return from_sockaddr(address);
}

void set_int_option(int fd, int level, int name, int value) {
    const int result = ::setsockopt(fd, level, name, &value, sizeof value);
    // Only a bad descriptor or option makes this fail, and both would be our bug.
    FAULTLINE_ASSERT(result == 0);
}

void set_buffer_sizes(int fd, int send_buffer_bytes, int receive_buffer_bytes) {
    if (send_buffer_bytes > 0) {
        set_int_option(fd, SOL_SOCKET, SO_SNDBUF, send_buffer_bytes);
    }
    if (receive_buffer_bytes > 0) {
        set_int_option(fd, SOL_SOCKET, SO_RCVBUF, receive_buffer_bytes);
    }
}

void name_this_thread(std::string_view name) {
    // Linux limits thread names to 15 bytes plus the terminator.
    const std::string truncated(name.substr(0, 15));
    ::pthread_setname_np(::pthread_self(), truncated.c_str());
}

}  // namespace

/// One TCP connection. `mutex` guards every member below it that is not const or atomic, and
/// every use of `socket` or `fd` (so close cannot race a syscall on a reused descriptor).
struct Connection {
    Connection(asio::io_context& io, ConnectionId connection_id, Endpoint local_endpoint,
               Endpoint remote_endpoint)
        : id(connection_id), socket(io), local(local_endpoint), remote(remote_endpoint) {}

    const ConnectionId id;
    // Written before `established` is released, never after, so readers that acquired
    // `established` may read them without the mutex.
    std::atomic<bool> established{false};

    std::mutex mutex;
    asio::ip::tcp::socket socket;
    int fd = -1;
    Endpoint local;
    Endpoint remote;
    bool open = true;
    model::ConnectHandler connect_handler;
    bool send_pending = false;
    bool send_wait_armed = false;
    std::span<const std::byte> send_bytes;
    model::IoHandler send_handler;
    bool receive_pending = false;
    bool receive_wait_armed = false;
    std::span<std::byte> receive_buffer;
    model::IoHandler receive_handler;
    std::size_t send_bytes_max = 0;   // 0: no cap
    std::size_t send_bytes_once = 0;  // 0: none
};

/// One listening socket; `mutex` guards the mutable members and every use of the acceptor.
struct Listener {
    Listener(asio::io_context& io, ListenerId listener_id, Endpoint local_endpoint)
        : id(listener_id), local(local_endpoint), acceptor(io) {}

    const ListenerId id;
    const Endpoint local;
    std::mutex mutex;
    asio::ip::tcp::acceptor acceptor;
    int fd = -1;
    bool open = true;
    bool accept_pending = false;
    bool accept_wait_armed = false;
    model::ConnectHandler accept_handler;
};

/// Everything RealTransport owns; RealTransport forwards to it.
class Core {
public:
    explicit Core(RealTransportOptions options);
    Core(const Core&) = delete;
    Core& operator=(const Core&) = delete;
    ~Core();

    [[nodiscard]] model::TimePoint now() const;
    void post(model::Task task);
    void post_after(model::Duration delay, model::Task task);

    model::Result<ListenerId> listen(const Endpoint& endpoint, int backlog);
    Endpoint local_endpoint(ListenerId listener_id) const;
    model::Result<ConnectionId> try_accept(ListenerId listener_id);
    void async_accept(ListenerId listener_id, model::ConnectHandler handler);
    void cancel_accept(ListenerId listener_id);
    void close(ListenerId listener_id);
    void set_socket_buffers(ListenerId listener_id, int send_buffer_bytes,
                            int receive_buffer_bytes);

    void async_connect(const Endpoint& endpoint, model::ConnectHandler handler);
    model::Result<std::size_t> try_send(ConnectionId connection_id,
                                        std::span<const std::byte> bytes);
    void async_send(ConnectionId connection_id, std::span<const std::byte> bytes,
                    model::IoHandler handler);
    model::Result<std::size_t> try_receive(ConnectionId connection_id, std::span<std::byte> buffer);
    void async_receive(ConnectionId connection_id, std::span<std::byte> buffer,
                       model::IoHandler handler);
    void cancel_send(ConnectionId connection_id);
    void cancel_receive(ConnectionId connection_id);
    void shutdown(ConnectionId connection_id, model::ShutdownHow how);
    void close(ConnectionId connection_id, bool abortive);
    Endpoint local_endpoint(ConnectionId connection_id) const;
    Endpoint remote_endpoint(ConnectionId connection_id) const;
    void set_send_cap(ConnectionId connection_id, std::size_t send_bytes_max, bool once);
    void set_socket_buffers(ConnectionId connection_id, int send_buffer_bytes,
                            int receive_buffer_bytes);
    std::optional<ConnectionId> find_peer(ConnectionId connection_id) const;

    ThreadId spawn(std::string_view name, model::Task body);
    ThreadId current_thread();
    model::ExitWatchId on_thread_exit(ThreadId thread, model::Task task);
    void cancel_exit_watch(model::ExitWatchId watch);
    bool join_threads(std::optional<std::chrono::steady_clock::time_point> deadline);
    /// Marks `thread` exited and posts its watches; unknown or already exited threads are ignored.
    void thread_exited(ThreadId thread);

    /// Pool accounting around a blocking wait; returns whether the caller is one of our pool
    /// threads (and so must call leave_blocking afterwards). A pool thread that leads hands the
    /// reactor to a follower first.
    bool enter_blocking();
    void leave_blocking();
    std::size_t pool_thread_count() const;
    std::exception_ptr take_exception();

private:
    enum class ThreadKind : std::uint8_t { pool, spawned, foreign };
    struct ThreadRecord {
        ThreadKind kind = ThreadKind::foreign;
        bool exited = false;
        std::thread os_thread;  // spawned threads only, until joined
    };
    struct Watch {
        ThreadId thread;
        model::Task task;
    };

    void record_exception(std::exception_ptr exception);
    void start_pool_thread_locked();
    void run_pool_thread(ThreadId thread);
    /// Waits until the calling pool thread may lead; its token, or 0 when the pool is stopping.
    std::uint64_t acquire_leadership();
    /// Gives up leadership if `token` still holds it, and wakes one follower.
    void resign_leadership_locked(std::uint64_t token);
    [[nodiscard]] bool leader_stuck_locked() const;
    /// Runs handler or task code that may block or run long; the watchdog sees it.
    template <typename Body>
    void run_user(Body&& body);
    void run_spawned_thread(ThreadId thread, const std::string& name, const model::Task& body);
    void join_spawned_until_none_left();
    void stop_pool();
    void close_everything();

    std::shared_ptr<Connection> find_connection(ConnectionId connection_id) const;
    std::shared_ptr<Listener> find_listener(ListenerId listener_id) const;
    model::Result<std::shared_ptr<Connection>> adopt_connection(int fd, Endpoint local,
                                                                Endpoint remote,
                                                                bool established);
    model::Result<ConnectionId> accept_one(Listener& listener);
    model::Result<std::size_t> send_once(Connection& connection, std::span<const std::byte> bytes);
    model::Result<std::size_t> receive_once(Connection& connection, std::span<std::byte> buffer);
    void arm_send_wait(const std::shared_ptr<Connection>& connection);
    void arm_receive_wait(const std::shared_ptr<Connection>& connection);
    void arm_accept_wait(const std::shared_ptr<Listener>& listener);
    void arm_connect_wait(const std::shared_ptr<Connection>& connection);
    void send_ready(const std::shared_ptr<Connection>& connection);
    void receive_ready(const std::shared_ptr<Connection>& connection);
    void accept_ready(const std::shared_ptr<Listener>& listener);
    void connect_ready(const std::shared_ptr<Connection>& connection);
    void complete_io(model::IoHandler handler,
                     std::error_code error,
                     std::size_t bytes,
                     bool from_reactor = false);
    void complete_connect(model::ConnectHandler handler, model::Result<ConnectionId> result);

    const std::uint64_t serial_;
    const std::chrono::steady_clock::time_point origin_;
    const std::size_t pool_threads_max_;

    // Declared before everything holding sockets or timers, so it is destroyed after them.
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;

    mutable std::mutex pool_mutex_;
    std::vector<std::thread> pool_;  // guarded by pool_mutex_
    std::size_t pool_blocked_ = 0;   // guarded by pool_mutex_
    bool pool_stopping_ = false;     // guarded by pool_mutex_
    // Leader/followers: one pool thread at a time (the leader) runs io_ and so both waits in the
    // reactor and runs the handler it finds, on its own CPU, with no pool thread woken per
    // event. It hands the reactor on only when a handler blocks (enter_blocking) or runs longer
    // than leader_stuck_after (a follower's watchdog); followers wait on leader_changed_.
    std::condition_variable leader_changed_;  // with pool_mutex_
    bool leader_present_ = false;             // guarded by pool_mutex_
    std::uint64_t leader_token_next_ = 1;     // guarded by pool_mutex_
    std::atomic<std::uint64_t> leader_token_{0};  // written under pool_mutex_; 0: no leader
    // The token of the leader running user code, and since when (steady_clock ticks).
    std::atomic<std::uint64_t> busy_token_{0};
    std::atomic<std::int64_t> busy_since_{0};

    std::mutex exception_mutex_;
    std::exception_ptr first_exception_;  // guarded by exception_mutex_

    // A leaf lock: never held while taking another lock or calling out.
    mutable std::mutex objects_mutex_;
    std::uint32_t connection_next_ = 1;
    std::uint32_t listener_next_ = 1;
    std::map<std::uint32_t, std::shared_ptr<Connection>> connections_;
    std::map<std::uint32_t, std::shared_ptr<Listener>> listeners_;

    std::mutex threads_mutex_;
    std::condition_variable threads_changed_;
    std::map<std::uint32_t, ThreadRecord> threads_;  // guarded by threads_mutex_
    std::uint64_t watch_next_ = 1;                   // guarded by threads_mutex_
    std::map<std::uint64_t, Watch> watches_;         // guarded by threads_mutex_
};

namespace {

// Thread identity is process-wide: a ThreadId names one OS thread in every transport, so a thread
// spawned by one transport that calls another's current_thread() still has exactly one id.
std::atomic<std::uint32_t> thread_id_next{1};
std::atomic<std::uint64_t> core_serial_next{1};

ThreadId allocate_thread_id() {
    return ThreadId{thread_id_next.fetch_add(1, std::memory_order_relaxed)};
}

/// The live cores, so that a foreign thread's exit can reach the cores it registered with. The
/// serial guards against a new core reusing a destroyed one's address.
struct LiveCores {
    std::mutex mutex;
    std::map<Core*, std::uint64_t> serials;
};

LiveCores& live_cores() {
    // Leaked on purpose: thread_local destructors of the main thread may run after statics die.
    static auto* const cores = new LiveCores;
    return *cores;
}

struct Registration {
    Core* core;
    std::uint64_t serial;
};

struct ThreadIdentity {
    ThreadId id{0};
    std::uint64_t owner_serial = 0;  // the core that spawned or pools this thread; 0 if none
    bool pool = false;
    std::uint64_t leader_token = 0;  // pool threads: the leadership this thread was granted
    std::vector<Registration> foreign;  // cores that met this thread through current_thread()

    ThreadIdentity() = default;
    ThreadIdentity(const ThreadIdentity&) = delete;
    ThreadIdentity& operator=(const ThreadIdentity&) = delete;
    ~ThreadIdentity() {
        if (foreign.empty()) {
            return;
        }
        LiveCores& cores = live_cores();
        const std::lock_guard lock(cores.mutex);
        for (const Registration& registration : foreign) {
            const auto found = cores.serials.find(registration.core);
            if (found != cores.serials.end() && found->second == registration.serial) {
                registration.core->thread_exited(id);
            }
        }
    }
};

thread_local ThreadIdentity this_thread_identity;

}  // namespace

// ---- lifetime, pool, exceptions ----

Core::Core(RealTransportOptions options)
    : serial_(core_serial_next.fetch_add(1, std::memory_order_relaxed)),
      origin_(std::chrono::steady_clock::now()),
      pool_threads_max_(options.pool_threads_max),
      work_(asio::make_work_guard(io_)) {
    FAULTLINE_ASSERT(options.pool_threads >= 1);
    FAULTLINE_ASSERT(options.pool_threads_max >= options.pool_threads);
    {
        LiveCores& cores = live_cores();
        const std::lock_guard lock(cores.mutex);
        cores.serials[this] = serial_;
    }
    const std::lock_guard lock(pool_mutex_);
    for (std::size_t index = 0; index < options.pool_threads; ++index) {
        start_pool_thread_locked();
    }
}

Core::~Core() {
    {
        LiveCores& cores = live_cores();
        const std::lock_guard lock(cores.mutex);
        cores.serials.erase(this);
    }
    // Spawned bodies may still need the pool, so they finish first.
    join_spawned_until_none_left();
    stop_pool();
    // Handlers that were running while the pool stopped may have spawned threads.
    join_spawned_until_none_left();
    close_everything();
}

void Core::start_pool_thread_locked() {
    const ThreadId thread = allocate_thread_id();
    {
        const std::lock_guard lock(threads_mutex_);
        threads_[model::to_underlying(thread)].kind = ThreadKind::pool;
    }
    pool_.emplace_back([this, thread] { run_pool_thread(thread); });
}

void Core::run_pool_thread(ThreadId thread) {
    ThreadIdentity& self = this_thread_identity;
    self.id = thread;
    self.owner_serial = serial_;
    self.pool = true;
    name_this_thread("faultline-pool");
    for (;;) {
        const std::uint64_t token = acquire_leadership();
        if (token == 0) {
            return;  // stopping
        }
        self.leader_token = token;
        // One handler per run_one, so a leadership lost inside a handler is noticed right after.
        while (leader_token_.load(std::memory_order_acquire) == token) {
            std::size_t ran = 0;
            try {
                ran = io_.run_one();
            } catch (...) {
                // Asio lets run_one() be called again after a handler throws.
                record_exception(std::current_exception());
                continue;
            }
            if (ran == 0) {  // stopped
                const std::lock_guard lock(pool_mutex_);
                resign_leadership_locked(token);
                return;
            }
        }
        self.leader_token = 0;
    }
}

std::uint64_t Core::acquire_leadership() {
    std::unique_lock lock(pool_mutex_);
    while (!pool_stopping_ && leader_present_) {
        if (leader_changed_.wait_for(lock, leader_stuck_after) == std::cv_status::timeout &&
            leader_stuck_locked()) {
            break;  // the leader keeps running its handler; it rejoins as a follower after it
        }
    }
    if (pool_stopping_) {
        leader_changed_.notify_one();  // pass the news on to the next follower
        return 0;
    }
    leader_present_ = true;
    const std::uint64_t token = leader_token_next_++;
    leader_token_.store(token, std::memory_order_release);
    return token;
}

void Core::resign_leadership_locked(std::uint64_t token) {
    if (token == 0 || leader_token_.load(std::memory_order_relaxed) != token) {
        return;  // not the leader, or deposed already
    }
    leader_token_.store(0, std::memory_order_release);
    leader_present_ = false;
    leader_changed_.notify_one();
}

bool Core::leader_stuck_locked() const {
    const std::uint64_t leader = leader_token_.load(std::memory_order_relaxed);
    if (leader == 0 || busy_token_.load(std::memory_order_acquire) != leader) {
        return false;  // no leader, or the leader is in the reactor or in our own code
    }
    const auto since = std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(busy_since_.load(std::memory_order_relaxed)));
    return std::chrono::steady_clock::now() - since >= leader_stuck_after;
}

void Core::stop_pool() {
    std::vector<std::thread> pool;
    {
        const std::lock_guard lock(pool_mutex_);
        pool_stopping_ = true;
        leader_changed_.notify_all();
        pool.swap(pool_);
    }
    work_.reset();
    io_.stop();
    for (std::thread& thread : pool) {
        thread.join();
    }
}

bool Core::enter_blocking() {
    const ThreadIdentity& self = this_thread_identity;
    if (!self.pool || self.owner_serial != serial_) {
        return false;
    }
    const std::lock_guard lock(pool_mutex_);
    // A blocked leader would stall the reactor and every other handler (S-23): a follower
    // takes over, and this thread rejoins the followers once its handler returns.
    resign_leadership_locked(self.leader_token);
    ++pool_blocked_;
    // Every pool thread is blocked: without one more, the completion they wait for may never run.
    if (pool_blocked_ >= pool_.size() && pool_.size() < pool_threads_max_ && !pool_stopping_) {
        start_pool_thread_locked();
    }
    return true;
}

void Core::leave_blocking() {
    const std::lock_guard lock(pool_mutex_);
    FAULTLINE_ASSERT(pool_blocked_ > 0);
    --pool_blocked_;
}

std::size_t Core::pool_thread_count() const {
    const std::lock_guard lock(pool_mutex_);
    return pool_.size();
}

void Core::record_exception(std::exception_ptr exception) {
    const std::lock_guard lock(exception_mutex_);
    if (!first_exception_) {
        first_exception_ = std::move(exception);
    }
}

std::exception_ptr Core::take_exception() {
    const std::lock_guard lock(exception_mutex_);
    return std::exchange(first_exception_, nullptr);
}

template <typename Body>
void Core::run_user(Body&& body) {
    const std::uint64_t token = this_thread_identity.leader_token;
    if (token != 0) {
        busy_since_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                          std::memory_order_relaxed);
        busy_token_.store(token, std::memory_order_release);
    }
    struct Clear {
        std::atomic<std::uint64_t>& busy;
        std::uint64_t token;
        Clear(std::atomic<std::uint64_t>& busy_token, std::uint64_t own_token)
            : busy(busy_token), token(own_token) {}
        Clear(const Clear&) = delete;
        Clear& operator=(const Clear&) = delete;
        ~Clear() {
            std::uint64_t expected = token;
            if (token != 0) {
                busy.compare_exchange_strong(expected, 0, std::memory_order_release);
            }
        }
    } const clear{busy_token_, token};
    std::forward<Body>(body)();
}

void Core::close_everything() {
    // Only this thread is left: the pool and every spawned thread have been joined.
    std::map<std::uint32_t, std::shared_ptr<Connection>> connections;
    std::map<std::uint32_t, std::shared_ptr<Listener>> listeners;
    {
        const std::lock_guard lock(objects_mutex_);
        connections.swap(connections_);
        listeners.swap(listeners_);
    }
    for (auto& [id, listener] : listeners) {
        const std::lock_guard lock(listener->mutex);
        listener->open = false;
        listener->accept_handler = nullptr;
        asio::error_code ignored;
        listener->acceptor.close(ignored);
    }
    for (auto& [id, connection] : connections) {
        const std::lock_guard lock(connection->mutex);
        connection->open = false;
        connection->connect_handler = nullptr;
        connection->send_handler = nullptr;
        connection->receive_handler = nullptr;
        asio::error_code ignored;
        connection->socket.close(ignored);
    }
}

// ---- time and tasks ----

model::TimePoint Core::now() const {
    const auto elapsed = std::chrono::steady_clock::now() - origin_;
    return model::TimePoint(std::chrono::duration_cast<model::Duration>(elapsed));
}

void Core::post(model::Task task) {
    FAULTLINE_ASSERT(static_cast<bool>(task));
    asio::post(io_, [this, task = std::move(task)] { run_user(task); });
}

void Core::post_after(model::Duration delay, model::Task task) {
    FAULTLINE_ASSERT(static_cast<bool>(task));
    FAULTLINE_ASSERT(delay >= model::Duration::zero());
    // The timer uses steady_clock like now(), so the task observes now() ≥ start + delay.
    auto timer = std::make_shared<asio::steady_timer>(io_, delay);
    timer->async_wait([this, timer, task = std::move(task)](const asio::error_code& error) {
        if (!error) {
            run_user(task);
        }
    });
}

// From a readiness callback the handler runs right here, on the leader that saw the readiness:
// no queue round trip and no other thread woken (the readiness callback is never inside the
// initiating call). If the handler blocks, wait() hands the reactor to a follower first.
// Anywhere else it is posted: the caller may be the initiating call, or a handler that now
// blocks waiting for this very completion.
void Core::complete_io(model::IoHandler handler,
                       std::error_code error,
                       std::size_t bytes,
                       bool from_reactor) {
    FAULTLINE_ASSERT(!error || bytes == 0);
    if (from_reactor) {
        run_user([&handler, error, bytes] { handler(error, bytes); });
        return;
    }
    asio::post(io_, [this, handler = std::move(handler), error, bytes] {
        run_user([&handler, error, bytes] { handler(error, bytes); });
    });
}

void Core::complete_connect(model::ConnectHandler handler, model::Result<ConnectionId> result) {
    const std::error_code error = result.error();
    const ConnectionId connection = result.has_value() ? result.value() : no_connection;
    asio::post(io_, [this, handler = std::move(handler), error, connection] {
        run_user([&handler, error, connection] { handler(error, connection); });
    });
}

// ---- object tables ----

std::shared_ptr<Connection> Core::find_connection(ConnectionId connection_id) const {
    const std::lock_guard lock(objects_mutex_);
    const auto found = connections_.find(model::to_underlying(connection_id));
    // An id that was closed, aborted or never returned is a caller bug.
    FAULTLINE_ASSERT(found != connections_.end());
    FAULTLINE_ASSERT(found->second->established.load(std::memory_order_acquire));
    return found->second;
}

std::shared_ptr<Listener> Core::find_listener(ListenerId listener_id) const {
    const std::lock_guard lock(objects_mutex_);
    const auto found = listeners_.find(model::to_underlying(listener_id));
    FAULTLINE_ASSERT(found != listeners_.end());
    return found->second;
}

model::Result<std::shared_ptr<Connection>> Core::adopt_connection(int fd, Endpoint local,
                                                                  Endpoint remote,
                                                                  bool established) {
    ConnectionId id{};
    {
        const std::lock_guard lock(objects_mutex_);
        id = ConnectionId{connection_next_++};
    }
    auto connection = std::make_shared<Connection>(io_, id, local, remote);
    asio::error_code error;
    connection->socket.assign(asio::ip::tcp::v4(), fd, error);
    if (!error) {
        connection->socket.non_blocking(true, error);
    }
    if (error) {
        connection->socket.close(error);
        if (!connection->socket.is_open()) {
            ::close(fd);
        }
        return NetErrc::too_many_open;  // the reactor could not take one more descriptor
    }
    connection->fd = fd;
    connection->established.store(established, std::memory_order_release);
    const std::lock_guard lock(objects_mutex_);
    connections_.emplace(model::to_underlying(id), connection);
    return connection;
}

// ---- listeners ----

model::Result<ListenerId> Core::listen(const Endpoint& endpoint, int backlog) {
    FAULTLINE_ASSERT(backlog >= 0);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return error_from_errno(errno);
    }
    set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    const sockaddr_in address = to_sockaddr(endpoint);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd, backlog) != 0) {
        const int error_number = errno;
        ::close(fd);
        return error_from_errno(error_number);
    }
    const std::optional<Endpoint> local = local_endpoint_of(fd);
    FAULTLINE_ASSERT(local.has_value());
    ListenerId id{};
    {
        const std::lock_guard lock(objects_mutex_);
        id = ListenerId{listener_next_++};
    }
    auto listener = std::make_shared<Listener>(io_, id, *local);
    asio::error_code error;
    listener->acceptor.assign(asio::ip::tcp::v4(), fd, error);
    if (!error) {
        listener->acceptor.non_blocking(true, error);
    }
    if (error) {
        listener->acceptor.close(error);
        if (!listener->acceptor.is_open()) {
            ::close(fd);
        }
        return NetErrc::too_many_open;
    }
    listener->fd = fd;
    const std::lock_guard lock(objects_mutex_);
    listeners_.emplace(model::to_underlying(id), std::move(listener));
    return id;
}

Endpoint Core::local_endpoint(ListenerId listener_id) const {
    return find_listener(listener_id)->local;
}

model::Result<ConnectionId> Core::accept_one(Listener& listener) {
    for (int attempt = 0; attempt < interrupted_retries_max; ++attempt) {
        sockaddr_in peer{};
        socklen_t length = sizeof peer;
        const int fd = ::accept4(listener.fd, reinterpret_cast<sockaddr*>(&peer), &length,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            const int error_number = errno;
            // accept(2): a connection that died in the queue, or a pending network error on it,
            // is reported by accept itself; for TCP the next queued connection is still there.
            if (error_number == EINTR || error_number == ECONNABORTED || error_number == EPROTO ||
                error_number == ENETDOWN || error_number == ENOPROTOOPT ||
                error_number == EHOSTDOWN || error_number == ENONET ||
                error_number == EHOSTUNREACH || error_number == EOPNOTSUPP ||
                error_number == ENETUNREACH) {
                continue;
            }
            return error_from_errno(error_number);
        }
        // A listener bound to one address knows the local endpoint already; only a wildcard
        // listener has to ask which address the client reached.
        const Endpoint local = listener.local.address != 0
                                   ? listener.local
                                   : local_endpoint_of(fd).value_or(listener.local);
        auto adopted = adopt_connection(fd, local, from_sockaddr(peer), true);
        if (!adopted) {
            return adopted.error();
        }
        return adopted.value()->id;
    }
    return NetErrc::would_block;
}

model::Result<ConnectionId> Core::try_accept(ListenerId listener_id) {
    const std::shared_ptr<Listener> listener = find_listener(listener_id);
    const std::lock_guard lock(listener->mutex);
    FAULTLINE_ASSERT(listener->open);
    return accept_one(*listener);
}

void Core::async_accept(ListenerId listener_id, model::ConnectHandler handler) {
    FAULTLINE_ASSERT(static_cast<bool>(handler));
    const std::shared_ptr<Listener> listener = find_listener(listener_id);
    const std::lock_guard lock(listener->mutex);
    FAULTLINE_ASSERT(listener->open);
    FAULTLINE_ASSERT(!listener->accept_pending);
    listener->accept_pending = true;
    listener->accept_handler = std::move(handler);
    arm_accept_wait(listener);
}

void Core::arm_accept_wait(const std::shared_ptr<Listener>& listener) {
    // At most one wait is armed; a wait left armed by a cancelled accept serves the next one.
    if (listener->accept_wait_armed) {
        return;
    }
    listener->accept_wait_armed = true;
    listener->acceptor.async_wait(asio::ip::tcp::acceptor::wait_read,
                                  [this, listener](const asio::error_code&) {
                                      accept_ready(listener);
                                  });
}

void Core::accept_ready(const std::shared_ptr<Listener>& listener) {
    model::ConnectHandler handler;
    model::Result<ConnectionId> result = NetErrc::would_block;
    {
        const std::lock_guard lock(listener->mutex);
        listener->accept_wait_armed = false;
        if (!listener->open || !listener->accept_pending) {
            return;
        }
        result = accept_one(*listener);
        if (!result && result.error() == NetErrc::would_block) {
            arm_accept_wait(listener);
            return;
        }
        listener->accept_pending = false;
        handler = std::move(listener->accept_handler);
        listener->accept_handler = nullptr;
    }
    complete_connect(std::move(handler), result);
}

void Core::cancel_accept(ListenerId listener_id) {
    const std::shared_ptr<Listener> listener = find_listener(listener_id);
    model::ConnectHandler handler;
    {
        const std::lock_guard lock(listener->mutex);
        FAULTLINE_ASSERT(listener->open);
        if (!listener->accept_pending) {
            return;
        }
        listener->accept_pending = false;
        handler = std::move(listener->accept_handler);
        listener->accept_handler = nullptr;
    }
    complete_connect(std::move(handler), NetErrc::operation_aborted);
}

void Core::close(ListenerId listener_id) {
    std::shared_ptr<Listener> listener;
    {
        const std::lock_guard lock(objects_mutex_);
        const auto found = listeners_.find(model::to_underlying(listener_id));
        FAULTLINE_ASSERT(found != listeners_.end());
        listener = std::move(found->second);
        listeners_.erase(found);
    }
    model::ConnectHandler handler;
    {
        const std::lock_guard lock(listener->mutex);
        listener->open = false;
        if (listener->accept_pending) {
            listener->accept_pending = false;
            handler = std::move(listener->accept_handler);
            listener->accept_handler = nullptr;
        }
        // The armed wait completes with operation_aborted and finds the listener closed.
        asio::error_code ignored;
        listener->acceptor.close(ignored);
    }
    if (handler) {
        complete_connect(std::move(handler), NetErrc::operation_aborted);
    }
}

void Core::set_socket_buffers(ListenerId listener_id, int send_buffer_bytes,
                              int receive_buffer_bytes) {
    const std::shared_ptr<Listener> listener = find_listener(listener_id);
    const std::lock_guard lock(listener->mutex);
    FAULTLINE_ASSERT(listener->open);
    set_buffer_sizes(listener->fd, send_buffer_bytes, receive_buffer_bytes);
}

// ---- connect ----

void Core::async_connect(const Endpoint& endpoint, model::ConnectHandler handler) {
    FAULTLINE_ASSERT(static_cast<bool>(handler));
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        complete_connect(std::move(handler), error_from_errno(errno));
        return;
    }
    const sockaddr_in address = to_sockaddr(endpoint);
    const int result = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
    const int error_number = result == 0 ? 0 : errno;
    // A non-blocking connect interrupted by a signal still proceeds, exactly like EINPROGRESS.
    if (result != 0 && error_number != EINPROGRESS && error_number != EINTR) {
        ::close(fd);
        complete_connect(std::move(handler), error_from_errno(error_number));
        return;
    }
    // connect(2) binds the ephemeral port at once, so the local endpoint is already final.
    const std::optional<Endpoint> local = local_endpoint_of(fd);
    FAULTLINE_ASSERT(local.has_value());
    // A wildcard target connects to this host; record the address actually reached.
    const Endpoint remote =
        result == 0 ? remote_endpoint_of(fd).value_or(endpoint) : endpoint;
    auto adopted = adopt_connection(fd, *local, remote, result == 0);
    if (!adopted) {
        complete_connect(std::move(handler), adopted.error());
        return;
    }
    const std::shared_ptr<Connection>& connection = adopted.value();
    if (result == 0) {
        complete_connect(std::move(handler), connection->id);
        return;
    }
    const std::lock_guard lock(connection->mutex);
    connection->connect_handler = std::move(handler);
    arm_connect_wait(connection);
}

void Core::arm_connect_wait(const std::shared_ptr<Connection>& connection) {
    connection->send_wait_armed = true;
    connection->socket.async_wait(asio::ip::tcp::socket::wait_write,
                                  [this, connection](const asio::error_code&) {
                                      connect_ready(connection);
                                  });
}

void Core::connect_ready(const std::shared_ptr<Connection>& connection) {
    model::ConnectHandler handler;
    model::Result<ConnectionId> result = NetErrc::would_block;
    {
        const std::lock_guard lock(connection->mutex);
        connection->send_wait_armed = false;
        if (!connection->open) {
            return;  // the transport is shutting down
        }
        int socket_error = 0;
        socklen_t length = sizeof socket_error;
        if (::getsockopt(connection->fd, SOL_SOCKET, SO_ERROR, &socket_error, &length) != 0) {
            socket_error = errno;
        }
        handler = std::move(connection->connect_handler);
        connection->connect_handler = nullptr;
        if (socket_error == 0) {
            // A wildcard target connects to this host; record the address actually reached.
            connection->remote = remote_endpoint_of(connection->fd).value_or(connection->remote);
            connection->established.store(true, std::memory_order_release);
            result = connection->id;
        } else {
            connection->open = false;
            asio::error_code ignored;
            connection->socket.close(ignored);
            result = error_from_errno(socket_error);
        }
    }
    if (!result) {
        const std::lock_guard lock(objects_mutex_);
        connections_.erase(model::to_underlying(connection->id));
    }
    complete_connect(std::move(handler), result);
}

// ---- send and receive ----

model::Result<std::size_t> Core::send_once(Connection& connection,
                                           std::span<const std::byte> bytes) {
    std::size_t length = bytes.size();
    if (connection.send_bytes_max > 0) {
        length = std::min(length, connection.send_bytes_max);
    }
    if (connection.send_bytes_once > 0) {
        length = std::min(length, connection.send_bytes_once);
    }
    for (int attempt = 0; attempt < interrupted_retries_max; ++attempt) {
        const ssize_t sent = ::send(connection.fd, bytes.data(), length, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent >= 0) {
            if (length == 0) {
                return std::size_t{0};  // a zero-length probe found the connection healthy
            }
            // TCP never takes zero of a non-empty buffer; zero would break the contract (n ≥ 1).
            FAULTLINE_ASSERT(sent > 0);
            FAULTLINE_ASSERT(static_cast<std::size_t>(sent) <= length);
            connection.send_bytes_once = 0;
            return static_cast<std::size_t>(sent);
        }
        if (errno != EINTR) {
            return error_from_errno(errno);
        }
    }
    return NetErrc::would_block;
}

model::Result<std::size_t> Core::receive_once(Connection& connection,
                                              std::span<std::byte> buffer) {
    for (int attempt = 0; attempt < interrupted_retries_max; ++attempt) {
        const ssize_t received = ::recv(connection.fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (received > 0) {
            FAULTLINE_ASSERT(static_cast<std::size_t>(received) <= buffer.size());
            return static_cast<std::size_t>(received);
        }
        if (received == 0) {
            return NetErrc::end_of_stream;
        }
        if (errno != EINTR) {
            return error_from_errno(errno);
        }
    }
    return NetErrc::would_block;
}

model::Result<std::size_t> Core::try_send(ConnectionId connection_id,
                                          std::span<const std::byte> bytes) {
    const std::shared_ptr<Connection> connection = find_connection(connection_id);
    const std::lock_guard lock(connection->mutex);
    FAULTLINE_ASSERT(connection->open);
    return send_once(*connection, bytes);
}

model::Result<std::size_t> Core::try_receive(ConnectionId connection_id,
                                             std::span<std::byte> buffer) {
    FAULTLINE_ASSERT(!buffer.empty());
    const std::shared_ptr<Connection> connection = find_connection(connection_id);
    const std::lock_guard lock(connection->mutex);
    FAULTLINE_ASSERT(connection->open);
    return receive_once(*connection, buffer);
}

void Core::async_send(ConnectionId connection_id, std::span<const std::byte> bytes,
                      model::IoHandler handler) {
    FAULTLINE_ASSERT(!bytes.empty());
    FAULTLINE_ASSERT(static_cast<bool>(handler));
    const std::shared_ptr<Connection> connection = find_connection(connection_id);
    model::Result<std::size_t> result = NetErrc::would_block;
    {
        const std::lock_guard lock(connection->mutex);
        FAULTLINE_ASSERT(connection->open);
        FAULTLINE_ASSERT(!connection->send_pending);
        // One send(2) now: a writable socket (the usual case) needs no readiness wait, which
        // would cost a reactor round trip and a pool thread wake-up. The handler still runs
        // later, on the pool.
        result = send_once(*connection, bytes);
        if (!result && result.error() == NetErrc::would_block) {
            connection->send_pending = true;
            connection->send_bytes = bytes;
            connection->send_handler = std::move(handler);
            arm_send_wait(connection);
            return;
        }
    }
    complete_io(std::move(handler), result.error(), result.has_value() ? result.value() : 0);
}

void Core::async_receive(ConnectionId connection_id, std::span<std::byte> buffer,
                         model::IoHandler handler) {
    FAULTLINE_ASSERT(!buffer.empty());
    FAULTLINE_ASSERT(static_cast<bool>(handler));
    const std::shared_ptr<Connection> connection = find_connection(connection_id);
    model::Result<std::size_t> result = NetErrc::would_block;
    {
        const std::lock_guard lock(connection->mutex);
        FAULTLINE_ASSERT(connection->open);
        FAULTLINE_ASSERT(!connection->receive_pending);
        // As async_send: bytes already queued are taken at once, the handler runs later.
        result = receive_once(*connection, buffer);
        if (!result && result.error() == NetErrc::would_block) {
            connection->receive_pending = true;
            connection->receive_buffer = buffer;
            connection->receive_handler = std::move(handler);
            arm_receive_wait(connection);
            return;
        }
    }
    complete_io(std::move(handler), result.error(), result.has_value() ? result.value() : 0);
}

void Core::arm_send_wait(const std::shared_ptr<Connection>& connection) {
    // At most one wait per direction is armed; a wait left armed by a cancelled operation serves
    // the next one, so cancelling never has to touch the reactor.
    if (connection->send_wait_armed) {
        return;
    }
    connection->send_wait_armed = true;
    connection->socket.async_wait(asio::ip::tcp::socket::wait_write,
                                  [this, connection](const asio::error_code&) {
                                      send_ready(connection);
                                  });
}

void Core::arm_receive_wait(const std::shared_ptr<Connection>& connection) {
    if (connection->receive_wait_armed) {
        return;
    }
    connection->receive_wait_armed = true;
    connection->socket.async_wait(asio::ip::tcp::socket::wait_read,
                                  [this, connection](const asio::error_code&) {
                                      receive_ready(connection);
                                  });
}

void Core::send_ready(const std::shared_ptr<Connection>& connection) {
    model::IoHandler handler;
    model::Result<std::size_t> result = NetErrc::would_block;
    {
        const std::lock_guard lock(connection->mutex);
        connection->send_wait_armed = false;
        if (!connection->open || !connection->send_pending) {
            return;  // closed or cancelled: the handler has been completed already
        }
        result = send_once(*connection, connection->send_bytes);
        if (!result && result.error() == NetErrc::would_block) {
            arm_send_wait(connection);
            return;
        }
        connection->send_pending = false;
        connection->send_bytes = {};
        handler = std::move(connection->send_handler);
        connection->send_handler = nullptr;
    }
    complete_io(std::move(handler),
                result.error(),
                result.has_value() ? result.value() : 0,
                /*from_reactor=*/true);
}

void Core::receive_ready(const std::shared_ptr<Connection>& connection) {
    model::IoHandler handler;
    model::Result<std::size_t> result = NetErrc::would_block;
    {
        const std::lock_guard lock(connection->mutex);
        connection->receive_wait_armed = false;
        if (!connection->open || !connection->receive_pending) {
            return;
        }
        result = receive_once(*connection, connection->receive_buffer);
        if (!result && result.error() == NetErrc::would_block) {
            arm_receive_wait(connection);
            return;
        }
        connection->receive_pending = false;
        connection->receive_buffer = {};
        handler = std::move(connection->receive_handler);
        connection->receive_handler = nullptr;
    }
    complete_io(std::move(handler),
                result.error(),
                result.has_value() ? result.value() : 0,
                /*from_reactor=*/true);
}

void Core::cancel_send(ConnectionId connection_id) {
    const std::shared_ptr<Connection> connection = find_connection(connection_id);
    model::IoHandler handler;
    {
        const std::lock_guard lock(connection->mutex);
        FAULTLINE_ASSERT(connection->open);
        // A send that moved bytes completed in the same critical section, so a pending send has
        // moved none.
        if (!connection->send_pending) {
            return;
        }
        connection->send_pending = false;
        connection->send_bytes = {};
        handler = std::move(connection->send_handler);
        connection->send_handler = nullptr;
    }
    complete_io(std::move(handler), NetErrc::operation_aborted, 0);
}

void Core::cancel_receive(ConnectionId connection_id) {
    const std::shared_ptr<Connection> connection = find_connection(connection_id);
    model::IoHandler handler;
    {
        const std::lock_guard lock(connection->mutex);
        FAULTLINE_ASSERT(connection->open);
        if (!connection->receive_pending) {
            return;
        }
        connection->receive_pending = false;
        connection->receive_buffer = {};
        handler = std::move(connection->receive_handler);
        connection->receive_handler = nullptr;
    }
    complete_io(std::move(handler), NetErrc::operation_aborted, 0);
}

void Core::shutdown(ConnectionId connection_id, model::ShutdownHow how) {
    const std::shared_ptr<Connection> connection = find_connection(connection_id);
    const std::lock_guard lock(connection->mutex);
    FAULTLINE_ASSERT(connection->open);
    int mode = SHUT_RDWR;
    switch (how) {
        case model::ShutdownHow::receive: mode = SHUT_RD; break;
        case model::ShutdownHow::send: mode = SHUT_WR; break;
        case model::ShutdownHow::both: mode = SHUT_RDWR; break;
    }
    // ENOTCONN after a reset is the only expected failure; the next send or receive reports it.
    static_cast<void>(::shutdown(connection->fd, mode));
}

void Core::close(ConnectionId connection_id, bool abortive) {
    std::shared_ptr<Connection> connection;
    {
        const std::lock_guard lock(objects_mutex_);
        const auto found = connections_.find(model::to_underlying(connection_id));
        FAULTLINE_ASSERT(found != connections_.end());
        FAULTLINE_ASSERT(found->second->established.load(std::memory_order_acquire));
        connection = std::move(found->second);
        connections_.erase(found);
    }
    model::IoHandler send_handler;
    model::IoHandler receive_handler;
    {
        const std::lock_guard lock(connection->mutex);
        connection->open = false;
        if (connection->send_pending) {
            connection->send_pending = false;
            send_handler = std::move(connection->send_handler);
            connection->send_handler = nullptr;
        }
        if (connection->receive_pending) {
            connection->receive_pending = false;
            receive_handler = std::move(connection->receive_handler);
            connection->receive_handler = nullptr;
        }
        if (abortive) {
            // SO_LINGER with a zero timeout makes close(2) drop the buffers and send RST.
            const linger reset_now{1, 0};
            static_cast<void>(
                ::setsockopt(connection->fd, SOL_SOCKET, SO_LINGER, &reset_now, sizeof reset_now));
        }
        // Armed waits complete with operation_aborted and find the connection closed.
        asio::error_code ignored;
        connection->socket.close(ignored);
        connection->fd = -1;
    }
    if (send_handler) {
        complete_io(std::move(send_handler), NetErrc::operation_aborted, 0);
    }
    if (receive_handler) {
        complete_io(std::move(receive_handler), NetErrc::operation_aborted, 0);
    }
}

Endpoint Core::local_endpoint(ConnectionId connection_id) const {
    return find_connection(connection_id)->local;
}

Endpoint Core::remote_endpoint(ConnectionId connection_id) const {
    return find_connection(connection_id)->remote;
}

void Core::set_send_cap(ConnectionId connection_id, std::size_t send_bytes_max, bool once) {
    const std::shared_ptr<Connection> connection = find_connection(connection_id);
    const std::lock_guard lock(connection->mutex);
    FAULTLINE_ASSERT(connection->open);
    if (once) {
        FAULTLINE_ASSERT(send_bytes_max >= 1);
        connection->send_bytes_once = send_bytes_max;
    } else {
        connection->send_bytes_max = send_bytes_max;
    }
}

void Core::set_socket_buffers(ConnectionId connection_id, int send_buffer_bytes,
                              int receive_buffer_bytes) {
    const std::shared_ptr<Connection> connection = find_connection(connection_id);
    const std::lock_guard lock(connection->mutex);
    FAULTLINE_ASSERT(connection->open);
    set_buffer_sizes(connection->fd, send_buffer_bytes, receive_buffer_bytes);
}

std::optional<ConnectionId> Core::find_peer(ConnectionId connection_id) const {
    const std::shared_ptr<Connection> connection = find_connection(connection_id);
    const std::lock_guard lock(objects_mutex_);
    for (const auto& [id, candidate] : connections_) {
        if (candidate != connection && candidate->established.load(std::memory_order_acquire) &&
            candidate->local == connection->remote && candidate->remote == connection->local) {
            return candidate->id;
        }
    }
    return std::nullopt;
}

// ---- threads ----

ThreadId Core::spawn(std::string_view name, model::Task body) {
    FAULTLINE_ASSERT(static_cast<bool>(body));
    const ThreadId thread = allocate_thread_id();
    const std::lock_guard lock(threads_mutex_);
    ThreadRecord& record = threads_[model::to_underlying(thread)];
    record.kind = ThreadKind::spawned;
    // The new thread takes threads_mutex_ only when its body has returned, so creating it under
    // the lock cannot deadlock, and its record exists before anyone can learn its id.
    record.os_thread = std::thread(
        [this, thread, thread_name = std::string(name), thread_body = std::move(body)] {
            run_spawned_thread(thread, thread_name, thread_body);
        });
    return thread;
}

void Core::run_spawned_thread(ThreadId thread, const std::string& name, const model::Task& body) {
    ThreadIdentity& self = this_thread_identity;
    self.id = thread;
    self.owner_serial = serial_;
    name_this_thread(name);
    try {
        body();
    } catch (...) {
        record_exception(std::current_exception());
    }
    thread_exited(thread);
}

ThreadId Core::current_thread() {
    ThreadIdentity& self = this_thread_identity;
    if (self.id == ThreadId{0}) {
        self.id = allocate_thread_id();
    }
    if (self.owner_serial == serial_) {
        return self.id;
    }
    for (const Registration& registration : self.foreign) {
        if (registration.serial == serial_) {
            return self.id;
        }
    }
    {
        const std::lock_guard lock(threads_mutex_);
        threads_.try_emplace(model::to_underlying(self.id));
    }
    {
        // Forget cores that have died, so a long-lived thread's list stays as short as the number
        // of live transports.
        LiveCores& cores = live_cores();
        const std::lock_guard lock(cores.mutex);
        std::erase_if(self.foreign, [&cores](const Registration& registration) {
            const auto found = cores.serials.find(registration.core);
            return found == cores.serials.end() || found->second != registration.serial;
        });
    }
    self.foreign.push_back(Registration{this, serial_});
    return self.id;
}

void Core::thread_exited(ThreadId thread) {
    std::vector<model::Task> tasks;
    {
        const std::lock_guard lock(threads_mutex_);
        const auto found = threads_.find(model::to_underlying(thread));
        if (found == threads_.end() || found->second.exited) {
            return;
        }
        found->second.exited = true;
        for (auto watch = watches_.begin(); watch != watches_.end();) {
            if (watch->second.thread == thread) {
                tasks.push_back(std::move(watch->second.task));
                watch = watches_.erase(watch);
            } else {
                ++watch;
            }
        }
        threads_changed_.notify_all();
    }
    for (model::Task& task : tasks) {
        asio::post(io_, [this, task = std::move(task)] { run_user(task); });
    }
}

model::ExitWatchId Core::on_thread_exit(ThreadId thread, model::Task task) {
    FAULTLINE_ASSERT(static_cast<bool>(task));
    model::ExitWatchId watch{};
    {
        const std::lock_guard lock(threads_mutex_);
        const auto found = threads_.find(model::to_underlying(thread));
        FAULTLINE_ASSERT(found != threads_.end());
        watch = model::ExitWatchId{watch_next_++};
        if (!found->second.exited) {
            watches_.emplace(static_cast<std::uint64_t>(watch), Watch{thread, std::move(task)});
            return watch;
        }
    }
    asio::post(io_, [this, task = std::move(task)] { run_user(task); });
    return watch;
}

void Core::cancel_exit_watch(model::ExitWatchId watch) {
    const std::lock_guard lock(threads_mutex_);
    watches_.erase(static_cast<std::uint64_t>(watch));
}

bool Core::join_threads(std::optional<std::chrono::steady_clock::time_point> deadline) {
    std::vector<std::thread> finished;
    {
        std::unique_lock lock(threads_mutex_);
        const auto all_returned = [this] {
            return std::none_of(threads_.begin(), threads_.end(), [](const auto& entry) {
                return entry.second.kind == ThreadKind::spawned && !entry.second.exited;
            });
        };
        if (deadline.has_value()) {
            if (!threads_changed_.wait_until(lock, *deadline, all_returned)) {
                return false;
            }
        } else {
            threads_changed_.wait(lock, all_returned);
        }
        for (auto& [id, record] : threads_) {
            if (record.os_thread.joinable()) {
                finished.push_back(std::move(record.os_thread));
            }
        }
    }
    // Each body has returned; what is left of the thread is its thread_local destructors.
    for (std::thread& thread : finished) {
        thread.join();
    }
    return true;
}

void Core::join_spawned_until_none_left() {
    for (;;) {
        bool any_joinable = false;
        {
            const std::lock_guard lock(threads_mutex_);
            for (const auto& [id, record] : threads_) {
                any_joinable = any_joinable || record.os_thread.joinable();
            }
        }
        if (!any_joinable) {
            return;
        }
        static_cast<void>(join_threads(std::nullopt));
    }
}

}  // namespace internal

namespace {

std::chrono::steady_clock::time_point deadline_after(model::Duration budget) {
    const model::Duration clamped =
        std::clamp(budget, model::Duration::zero(), internal::wait_budget_max);
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(clamped);
}

}  // namespace

// ---- RealTransport: forwarding ----

RealTransport::RealTransport() : RealTransport(RealTransportOptions{}) {}

RealTransport::RealTransport(RealTransportOptions options)
    : core_(std::make_unique<internal::Core>(options)) {}

RealTransport::~RealTransport() = default;

model::TimePoint RealTransport::now() const { return core_->now(); }

void RealTransport::post(model::Task task) { core_->post(std::move(task)); }

void RealTransport::post_after(model::Duration delay, model::Task task) {
    core_->post_after(delay, std::move(task));
}

model::Result<model::ListenerId> RealTransport::listen(const model::Endpoint& endpoint,
                                                       int backlog) {
    return core_->listen(endpoint, backlog);
}

model::Endpoint RealTransport::local_endpoint(model::ListenerId listener) const {
    return core_->local_endpoint(listener);
}

model::Result<model::ConnectionId> RealTransport::try_accept(model::ListenerId listener) {
    return core_->try_accept(listener);
}

void RealTransport::async_accept(model::ListenerId listener, model::ConnectHandler handler) {
    core_->async_accept(listener, std::move(handler));
}

void RealTransport::cancel_accept(model::ListenerId listener) { core_->cancel_accept(listener); }

void RealTransport::close(model::ListenerId listener) { core_->close(listener); }

void RealTransport::async_connect(const model::Endpoint& endpoint,
                                  model::ConnectHandler handler) {
    core_->async_connect(endpoint, std::move(handler));
}

model::Result<std::size_t> RealTransport::try_send(model::ConnectionId connection,
                                                   std::span<const std::byte> bytes) {
    return core_->try_send(connection, bytes);
}

void RealTransport::async_send(model::ConnectionId connection, std::span<const std::byte> bytes,
                               model::IoHandler handler) {
    core_->async_send(connection, bytes, std::move(handler));
}

model::Result<std::size_t> RealTransport::try_receive(model::ConnectionId connection,
                                                      std::span<std::byte> buffer) {
    return core_->try_receive(connection, buffer);
}

void RealTransport::async_receive(model::ConnectionId connection, std::span<std::byte> buffer,
                                  model::IoHandler handler) {
    core_->async_receive(connection, buffer, std::move(handler));
}

void RealTransport::cancel_send(model::ConnectionId connection) {
    core_->cancel_send(connection);
}

void RealTransport::cancel_receive(model::ConnectionId connection) {
    core_->cancel_receive(connection);
}

void RealTransport::shutdown(model::ConnectionId connection, model::ShutdownHow how) {
    core_->shutdown(connection, how);
}

void RealTransport::close(model::ConnectionId connection) { core_->close(connection, false); }

void RealTransport::abort(model::ConnectionId connection) { core_->close(connection, true); }

model::Endpoint RealTransport::local_endpoint(model::ConnectionId connection) const {
    return core_->local_endpoint(connection);
}

model::Endpoint RealTransport::remote_endpoint(model::ConnectionId connection) const {
    return core_->remote_endpoint(connection);
}

model::ThreadId RealTransport::spawn(std::string_view name, model::Task body) {
    return core_->spawn(name, std::move(body));
}

model::ThreadId RealTransport::current_thread() const { return core_->current_thread(); }

model::ExitWatchId RealTransport::on_thread_exit(model::ThreadId thread, model::Task task) {
    return core_->on_thread_exit(thread, std::move(task));
}

void RealTransport::cancel_exit_watch(model::ExitWatchId watch) {
    core_->cancel_exit_watch(watch);
}

bool RealTransport::wait(Event& event, std::unique_lock<Mutex>& lock, model::Duration budget) {
    FAULTLINE_ASSERT(lock.owns_lock());
    const auto deadline = deadline_after(budget);
    const bool counted = core_->enter_blocking();
    const bool signalled =
        event.changed_.wait_until(lock, deadline, [&event] { return event.signalled_; });
    if (counted) {
        core_->leave_blocking();
    }
    return signalled;
}

void RealTransport::signal(Event& event) {
    event.signalled_ = true;
    event.changed_.notify_all();
}

bool RealTransport::join_threads(model::Duration budget) {
    return core_->join_threads(deadline_after(budget));
}

std::exception_ptr RealTransport::take_exception() { return core_->take_exception(); }

std::size_t RealTransport::pool_thread_count() const { return core_->pool_thread_count(); }

void RealTransport::set_send_cap(model::ConnectionId connection, std::size_t send_bytes_max) {
    core_->set_send_cap(connection, send_bytes_max, false);
}

void RealTransport::set_send_cap_once(model::ConnectionId connection, std::size_t send_bytes) {
    core_->set_send_cap(connection, send_bytes, true);
}

void RealTransport::set_socket_buffers(model::ConnectionId connection, int send_buffer_bytes,
                                       int receive_buffer_bytes) {
    core_->set_socket_buffers(connection, send_buffer_bytes, receive_buffer_bytes);
}

void RealTransport::set_socket_buffers(model::ListenerId listener, int send_buffer_bytes,
                                       int receive_buffer_bytes) {
    core_->set_socket_buffers(listener, send_buffer_bytes, receive_buffer_bytes);
}

std::optional<model::ConnectionId> RealTransport::find_peer(
    model::ConnectionId connection) const {
    return core_->find_peer(connection);
}

}  // namespace faultline::real
