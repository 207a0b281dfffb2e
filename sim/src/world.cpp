#include "faultline/sim/world.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include "faultline/sim/fiber.h"

namespace faultline::sim {

using model::ConnectionId;
using model::Duration;
using model::Endpoint;
using model::ListenerId;
using model::NetErrc;
using model::ThreadId;
using model::TimePoint;

namespace {

constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint32_t kLoopback = 0x7f000001U;
// Half-open scans come from an address no simulated client ever has (every client bound to a
// 127.x destination is given 127.0.0.1), one source port per scan, so a capture shows each scan
// as its own conversation and never as part of a real connection.
constexpr std::uint32_t kScannerAddress = 0x7f000002U;
constexpr std::uint32_t kScannerPortFirst = 40000;
constexpr std::uint32_t kScannerPorts = 20000;

Endpoint scanner_of(std::uint64_t scan) {
    return Endpoint{kScannerAddress,
                    static_cast<std::uint16_t>(kScannerPortFirst + scan % kScannerPorts)};
}

/// An endpoint as a packet carries it: a connection to the wildcard address goes to loopback,
/// as on Linux.
Endpoint on_wire(Endpoint endpoint) {
    if (endpoint.address == 0) {
        endpoint.address = kLoopback;
    }
    return endpoint;
}

std::string_view side_name(Side side) { return side == Side::client ? "client" : "server"; }

std::error_code error_of(NetErrc error) { return model::make_error_code(error); }

/// A byte ring of fixed logical capacity. Storage is allocated on first use, only as large as
/// the bytes held need (doubling from kStorageBytesMin up to the capacity, so SMTP-sized
/// exchanges never touch a 64 KiB block), left uninitialised (every byte read was written first),
/// and released when the ring empties, so an idle connection holds none.
class ByteRing {
public:
    explicit ByteRing(std::size_t capacity) : capacity_(capacity) {}

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t space() const noexcept { return capacity_ - size_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

    void push(std::span<const std::byte> bytes) {
        FAULTLINE_ASSERT(bytes.size() <= space());
        reserve(size_ + bytes.size());
        std::size_t tail = (head_ + size_) % storage_bytes_;
        std::size_t copied = 0;
        while (copied < bytes.size()) {
            const std::size_t chunk = std::min(bytes.size() - copied, storage_bytes_ - tail);
            std::memcpy(storage_.get() + tail, bytes.data() + copied, chunk);
            copied += chunk;
            tail = (tail + chunk) % storage_bytes_;
        }
        size_ += bytes.size();
    }

    /// Copies `out.size()` bytes starting `offset` bytes into the ring.
    void peek(std::size_t offset, std::span<std::byte> out) const {
        FAULTLINE_ASSERT(offset + out.size() <= size_);
        if (out.empty()) {
            return;
        }
        std::size_t position = (head_ + offset) % storage_bytes_;
        std::size_t copied = 0;
        while (copied < out.size()) {
            const std::size_t chunk = std::min(out.size() - copied, storage_bytes_ - position);
            std::memcpy(out.data() + copied, storage_.get() + position, chunk);
            copied += chunk;
            position = (position + chunk) % storage_bytes_;
        }
    }

    void consume(std::size_t bytes) {
        FAULTLINE_ASSERT(bytes <= size_);
        if (bytes == size_) {
            head_ = 0;
            size_ = 0;
            storage_.reset();
            storage_bytes_ = 0;
            return;
        }
        head_ = (head_ + bytes) % storage_bytes_;
        size_ -= bytes;
    }

    /// Moves `bytes` from `from` (starting `offset` bytes in) into this ring.
    void transfer_from(const ByteRing& from, std::size_t offset, std::size_t bytes) {
        FAULTLINE_ASSERT(bytes <= space());
        reserve(size_ + bytes);
        std::size_t tail = (head_ + size_) % storage_bytes_;
        std::size_t moved = 0;
        while (moved < bytes) {
            const std::size_t chunk = std::min(bytes - moved, storage_bytes_ - tail);
            from.peek(offset + moved, std::span<std::byte>(storage_.get() + tail, chunk));
            moved += chunk;
            tail = (tail + chunk) % storage_bytes_;
        }
        size_ += bytes;
    }

    void clear() { consume(size_); }

    /// The `bytes` bytes starting `offset` bytes in, without changing the ring: a view of its
    /// storage when they lie in one piece, else a copy in `scratch` (only a wrapped range).
    std::span<const std::byte> view(std::size_t offset,
                                    std::size_t bytes,
                                    std::vector<std::byte>& scratch) const {
        FAULTLINE_ASSERT(offset + bytes <= size_);
        if (bytes == 0) {
            return {};
        }
        const std::size_t position = (head_ + offset) % storage_bytes_;
        if (position + bytes <= storage_bytes_) {
            return {storage_.get() + position, bytes};
        }
        scratch.resize(bytes);
        peek(offset, scratch);
        return scratch;
    }

private:
    // Small enough for glibc's per-thread cache of freed blocks (up to 1032 bytes), so the
    // allocate/release cycle of a command-sized exchange stays off the slow malloc paths.
    static constexpr std::size_t kStorageBytesMin = 1024;

    /// Makes the storage hold at least `bytes` (≤ capacity), moving the held bytes to the front.
    void reserve(std::size_t bytes) {
        FAULTLINE_ASSERT(bytes <= capacity_);
        if (bytes <= storage_bytes_) {
            return;
        }
        std::size_t grown = std::max(storage_bytes_ * 2, kStorageBytesMin);
        while (grown < bytes) {
            grown *= 2;
        }
        grown = std::min(grown, capacity_);
        std::unique_ptr<std::byte[]> larger(new std::byte[grown]);  // uninitialised on purpose
        if (size_ > 0) {
            peek(0, std::span<std::byte>(larger.get(), size_));
        }
        storage_ = std::move(larger);
        storage_bytes_ = grown;
        head_ = 0;
    }

    std::size_t capacity_;
    std::unique_ptr<std::byte[]> storage_;
    std::size_t storage_bytes_ = 0;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace

// ---- internal state ---------------------------------------------------------------------------

struct World::Conn {
    Conn(std::uint32_t index_value, Side side_value, std::uint32_t pair_value,
         const NetworkConfig& network)
        : index(index_value),
          side(side_value),
          pair(pair_value),
          send_buffer(network.send_buffer_bytes),
          receive_buffer(network.receive_buffer_bytes) {}

    struct Pending {
        bool active = false;
        std::span<const std::byte> outgoing;
        std::span<std::byte> incoming;
        model::IoHandler handler;
    };

    std::uint32_t index;
    Side side;
    std::uint32_t pair;
    std::uint32_t peer = kNone;
    Endpoint local;
    Endpoint remote;
    bool established = false;
    bool app_open = false;      // the application holds the id
    bool dead = false;          // reset: no more traffic either way
    bool fin_pending = false;   // shutdown(send) or close: FIN after the buffered bytes
    bool fin_sent = false;
    bool fin_received = false;
    bool shutdown_receive = false;
    bool stalled = false;       // the application's reads are held back
    bool orphaned = false;      // closed by a fault: arriving data is answered with RST
    std::uint64_t stall_generation = 0;
    bool sticky_consumed = false;
    std::error_code sticky;     // the reset as reported to the first operation
    ByteRing send_buffer;       // bytes accepted from the application and not yet acknowledged
    ByteRing receive_buffer;    // bytes arrived and not yet read by the application
    std::uint64_t accepted = 0;
    std::uint64_t transmitted = 0;
    std::uint64_t delivered = 0;
    std::uint64_t acked = 0;
    std::uint64_t received_total = 0;
    std::uint64_t send_calls = 0;
    std::uint64_t would_block_call = 0;  // the call a would_block fault last held back
    TimePoint link_free{};
    TimePoint last_arrival{};
    std::uint32_t epoch = 0;
    bool window_update_scheduled = false;
    Pending send;
    Pending receive;
    model::ConnectHandler connect_handler;  // client end, until the handshake ends
    std::uint32_t listener = kNone;         // server end, until accepted
};

struct World::Listener {
    ListenerId id{};
    Endpoint endpoint;
    std::size_t backlog = 1;
    bool open = true;
    std::vector<std::uint32_t> ready;  // established, waiting for accept (FIFO)
    std::size_t ready_head = 0;
    std::size_t handshaking = 0;
    bool accept_pending = false;
    model::ConnectHandler accept_handler;

    [[nodiscard]] std::size_t ready_count() const { return ready.size() - ready_head; }
    std::uint32_t pop_ready() {
        const std::uint32_t index = ready[ready_head++];
        if (ready_head == ready.size()) {
            ready.clear();
            ready_head = 0;
        }
        return index;
    }
};

struct World::Thread {
    ThreadId id{};
    std::string name;
    bool pool = false;
    std::unique_ptr<Fiber> fiber;
    model::Task task;  // a spawned thread's body
    PoolWork work;     // a pool thread's next work
    bool finished = false;
    bool exit_requested = false;
    Event* waiting = nullptr;
    bool wake_pending = false;
    Scheduler::TimerKey wait_timer = 0;
};

struct World::Swarm {
    std::uint64_t partial_per_1024 = 0;
    std::uint64_t reset_per_1024 = 0;
    std::uint64_t close_per_1024 = 0;
    std::uint64_t stall_per_1024 = 0;
    Prng prng{0};
};

// ---- construction -----------------------------------------------------------------------------

World::World(Options options)
    : seed_(options.seed),
      options_(std::move(options)),
      network_(options_.network),
      prng_(seed_),
      jitter_prng_(prng_.fork()),
      trace_(options_.trace_mode) {
    trace_event("world", {{"seed", seed_},
                          {"latency_ns", network_.latency.count()},
                          {"jitter_ns", network_.jitter.count()},
                          {"bytes_per_second", network_.bytes_per_second},
                          {"mss_bytes", network_.mss_bytes},
                          {"send_buffer_bytes", network_.send_buffer_bytes},
                          {"receive_buffer_bytes", network_.receive_buffer_bytes}});
    if (options_.swarm.enabled) {
        // Swarm: each kind is on with its own odds, at a rate drawn per seed.
        swarm_ = std::make_unique<Swarm>();
        Prng draw = prng_.fork();
        constexpr std::uint64_t kRates[] = {8, 32, 128, 512};
        if (draw.chance(1, 2)) {
            swarm_->partial_per_1024 = kRates[draw.below(4)];
        }
        if (draw.chance(1, 4)) {
            swarm_->reset_per_1024 = kRates[draw.below(2)] / 4;
        }
        if (draw.chance(1, 8)) {
            swarm_->close_per_1024 = kRates[draw.below(2)] / 4;
        }
        if (draw.chance(1, 4)) {
            swarm_->stall_per_1024 = kRates[draw.below(3)];
        }
        if (draw.chance(1, 2)) {
            network_.jitter = network_.latency;
        }
        swarm_->prng = draw.fork();
        trace_event("swarm", {{"partial_per_1024", swarm_->partial_per_1024},
                              {"reset_per_1024", swarm_->reset_per_1024},
                              {"close_per_1024", swarm_->close_per_1024},
                              {"stall_per_1024", swarm_->stall_per_1024},
                              {"jitter_ns", network_.jitter.count()}});
    }
    arm_timed_faults();
}

World::~World() = default;

World::Conn& World::conn(ConnectionId connection) {
    const std::uint32_t index = model::to_underlying(connection) - 1;
    FAULTLINE_ASSERT(index < conns_.size());
    return *conns_[index];
}
const World::Conn& World::conn(ConnectionId connection) const {
    const std::uint32_t index = model::to_underlying(connection) - 1;
    FAULTLINE_ASSERT(index < conns_.size());
    return *conns_[index];
}
World::Listener& World::listener(ListenerId id) {
    const std::uint32_t index = model::to_underlying(id) - 1;
    FAULTLINE_ASSERT(index < listeners_.size());
    return *listeners_[index];
}
const World::Listener& World::listener(ListenerId id) const {
    const std::uint32_t index = model::to_underlying(id) - 1;
    FAULTLINE_ASSERT(index < listeners_.size());
    return *listeners_[index];
}
World::Thread& World::thread(ThreadId id) {
    const std::uint32_t index = model::to_underlying(id) - 1;
    FAULTLINE_ASSERT(index < threads_.size());
    return *threads_[index];
}
const World::Thread& World::thread(ThreadId id) const {
    const std::uint32_t index = model::to_underlying(id) - 1;
    FAULTLINE_ASSERT(index < threads_.size());
    return *threads_[index];
}

void World::trace_event(std::string_view name, std::initializer_list<Trace::Field> fields) {
    if (trace_.enabled()) {
        trace_.event(now(), current_thread_name(), name, fields);
    }
}

void World::tap_packet(const Endpoint& source,
                       const Endpoint& destination,
                       std::uint8_t flags,
                       std::span<const std::byte> payload) {
    WirePacket packet;
    packet.at = now();
    packet.source = on_wire(source);
    packet.destination = on_wire(destination);
    packet.flags = flags;
    packet.payload = payload;
    options_.packet_tap(packet);
}

std::string_view World::current_thread_name() const noexcept {
    return current_ != nullptr ? std::string_view(current_->name) : std::string_view("sim");
}

// ---- time and the pool ------------------------------------------------------------------------

void World::post(model::Task task) {
    PoolWork work;
    work.task = std::move(task);
    post_pooled(std::move(work));
}

void World::post_after(Duration delay, model::Task task) {
    scheduler_.post_after(std::max(delay, Duration::zero()),
                          [this, task = std::move(task)]() mutable {
                              PoolWork work;
                              work.task = std::move(task);
                              run_pooled(std::move(work));
                          });
}

void World::deliver_io(model::IoHandler handler, std::error_code error, std::size_t bytes) {
    PoolWork work;
    work.kind = PoolWork::Kind::io;
    work.io_handler = std::move(handler);
    work.error = error;
    work.bytes = bytes;
    post_pooled(std::move(work));
}

void World::deliver_connect(model::ConnectHandler handler, std::error_code error,
                            ConnectionId connection) {
    PoolWork work;
    work.kind = PoolWork::Kind::connect;
    work.connect_handler = std::move(handler);
    work.error = error;
    work.connection = connection;
    post_pooled(std::move(work));
}

// Zero-delay events run in posting order (equal times run by sequence, and time never goes
// back), so the event posted here for the k-th queued item is the k-th such event to run. The
// event itself captures only `this`, which std::function stores without allocating.
void World::post_pooled(PoolWork work) {
    pool_queue_.push_back(std::move(work));
    scheduler_.post_after(Duration::zero(), [this] { run_next_pooled(); });
}

void World::run_next_pooled() {
    FAULTLINE_ASSERT(pool_queue_head_ < pool_queue_.size());
    PoolWork work = std::move(pool_queue_[pool_queue_head_]);
    ++pool_queue_head_;
    if (pool_queue_head_ == pool_queue_.size()) {
        pool_queue_.clear();
        pool_queue_head_ = 0;
    }
    run_pooled(std::move(work));
}

bool World::run_until_idle(std::uint64_t events_max) {
    for (std::uint64_t step = 0; step < events_max; ++step) {
        if (!scheduler_.run_one()) {
            return true;
        }
        if (escaped_) {
            std::exception_ptr escaped = std::exchange(escaped_, nullptr);
            std::rethrow_exception(escaped);
        }
    }
    return scheduler_.empty();
}

void World::run_for(Duration duration) {
    const TimePoint until = now() + duration;
    Scheduler::TimerKey key = scheduler_.make_timer_key();
    bool reached = false;
    scheduler_.post_at(until, [&reached] { reached = true; }, key);
    while (!reached && scheduler_.run_one()) {
        if (escaped_) {
            std::exception_ptr escaped = std::exchange(escaped_, nullptr);
            std::rethrow_exception(escaped);
        }
    }
}

// ---- threads ----------------------------------------------------------------------------------

ThreadId World::spawn(std::string_view name, model::Task body) {
    auto created = std::make_unique<Thread>();
    Thread& self = *created;
    self.id = ThreadId{static_cast<std::uint32_t>(threads_.size() + 1)};
    self.name = std::string(name);
    self.task = std::move(body);
    self.fiber = std::make_unique<Fiber>([this, &self] { thread_main(self); }, options_.stack_bytes);
    threads_.push_back(std::move(created));
    trace_event("spawn", {{"name", name}, {"id", model::to_underlying(self.id)}});
    scheduler_.post_after(Duration::zero(), [this, &self] {
        if (!self.fiber->finished()) {
            resume(self);
        }
    });
    return self.id;
}

ThreadId World::current_thread() const noexcept {
    return current_ != nullptr ? current_->id : ThreadId{0};
}

void World::resume(Thread& target) {
    FAULTLINE_ASSERT(current_ == nullptr);
    FAULTLINE_ASSERT(!target.fiber->finished());
    current_ = &target;
    target.fiber->resume();
    current_ = nullptr;
}

void World::schedule_resume(Thread& target) {
    FAULTLINE_ASSERT(!target.wake_pending);
    target.wake_pending = true;
    scheduler_.post_after(Duration::zero(), [this, &target] { resume(target); });
}

void World::capture_exception() {
    if (!escaped_) {
        escaped_ = std::current_exception();
    }
}

void World::thread_main(Thread& self) {
    try {
        if (!self.exit_requested) {
            self.task();
        }
    } catch (const ThreadExitRequested&) {
        // Told to exit while blocked: the stack has unwound.
    } catch (...) {
        capture_exception();
    }
    self.task = nullptr;
    thread_exited(self);
}

void World::thread_exited(Thread& self) {
    self.finished = true;
    trace_event("thread_exit", {{"name", std::string_view(self.name)}});
    // Exit watches fire in registration order, each on the pool.
    for (auto it = exit_watches_.begin(); it != exit_watches_.end();) {
        if (it->second.first == self.id) {
            post(std::move(it->second.second));
            it = exit_watches_.erase(it);
        } else {
            ++it;
        }
    }
}

// An idle pool fiber is parked in suspend() and never unwound, so nothing may stay alive on its
// stack between tasks: the task is destroyed before the fiber parks.
void World::pool_main(Thread& self) {
    for (;;) {
        {
            PoolWork work = std::move(self.work);
            self.work = PoolWork{};
            try {
                switch (work.kind) {
                    case PoolWork::Kind::task:
                        work.task();
                        break;
                    case PoolWork::Kind::io:
                        work.io_handler(work.error, work.bytes);
                        break;
                    case PoolWork::Kind::connect:
                        work.connect_handler(work.error, work.connection);
                        break;
                }
            } catch (...) {
                capture_exception();
            }
        }
        idle_pool_.push_back(self.id);
        self.fiber->suspend();
    }
}

void World::run_pooled(PoolWork work) {
    Thread* worker = nullptr;
    if (!idle_pool_.empty()) {
        worker = &thread(idle_pool_.back());
        idle_pool_.pop_back();
    } else {
        // Every pool thread is busy or blocked: a new one, as the .NET pool would inject.
        FAULTLINE_ASSERT(threads_.size() < options_.pool_threads_max + 4096);
        auto created = std::make_unique<Thread>();
        worker = created.get();
        worker->id = ThreadId{static_cast<std::uint32_t>(threads_.size() + 1)};
        worker->pool = true;
        std::size_t pool_count = 0;
        for (const auto& existing : threads_) {
            pool_count += existing->pool ? 1U : 0U;
        }
        worker->name = "pool-" + std::to_string(pool_count + 1);
        Thread& self = *worker;
        worker->fiber =
            std::make_unique<Fiber>([this, &self] { pool_main(self); }, options_.stack_bytes);
        threads_.push_back(std::move(created));
    }
    worker->work = std::move(work);
    resume(*worker);
}

model::ExitWatchId World::on_thread_exit(ThreadId thread_id, model::Task task) {
    const std::uint64_t id = ++exit_watch_last_;
    if (model::to_underlying(thread_id) == 0 || thread(thread_id).finished) {
        post(std::move(task));
    } else {
        exit_watches_.emplace(id, std::make_pair(thread_id, std::move(task)));
    }
    return model::ExitWatchId{id};
}

void World::cancel_exit_watch(model::ExitWatchId watch) {
    exit_watches_.erase(static_cast<std::uint64_t>(watch));
}

bool World::wait(Event& event, std::unique_lock<Mutex>& lock, Duration budget) {
    if (event.set) {
        return true;
    }
    Thread* self = current_;
    // Blocking outside a logical thread would deadlock the scheduler: a caller bug.
    FAULTLINE_ASSERT(self != nullptr);
    if (self->exit_requested && !self->pool) {
        throw ThreadExitRequested{};
    }
    event.waiters.push_back(self->id);
    self->waiting = &event;
    const Scheduler::TimerKey key = scheduler_.make_timer_key();
    self->wait_timer = key;
    scheduler_.post_after(
        std::max(budget, Duration::zero()),
        [this, self, key] {
            if (self->waiting != nullptr && self->wait_timer == key && !self->wake_pending) {
                // The scheduler runs this on the waiter's behalf: the line's own "thread" is "sim".
                trace_event("wait_budget_exhausted", {{"waiter", std::string_view(self->name)}});
                schedule_resume(*self);
            }
        },
        key);
    const bool owned = lock.owns_lock();
    if (owned) {
        lock.unlock();
    }
    self->fiber->suspend();
    if (owned) {
        lock.lock();
    }
    self->wake_pending = false;
    self->waiting = nullptr;
    scheduler_.cancel(key);
    if (self->exit_requested && !self->pool) {
        throw ThreadExitRequested{};
    }
    return event.set;
}

void World::signal(Event& event) {
    event.set = true;
    for (const ThreadId waiter : event.waiters) {
        Thread& target = thread(waiter);
        if (target.waiting == &event && !target.wake_pending) {
            scheduler_.cancel(target.wait_timer);
            schedule_resume(target);
        }
    }
    event.waiters.clear();
}

void World::request_thread_exit(ThreadId thread_id) {
    Thread& target = thread(thread_id);
    if (target.finished || target.exit_requested) {
        return;
    }
    target.exit_requested = true;
    trace_event("fault", {{"kind", "thread_exit"}, {"thread", std::string_view(target.name)}});
    if (target.waiting != nullptr && !target.wake_pending) {
        scheduler_.cancel(target.wait_timer);
        schedule_resume(target);
    }
}

bool World::thread_finished(ThreadId thread_id) const { return thread(thread_id).finished; }

std::string_view World::thread_name(ThreadId thread_id) const { return thread(thread_id).name; }

// ---- listeners and handshakes -----------------------------------------------------------------

model::Result<ListenerId> World::listen(const Endpoint& endpoint, int backlog) {
    Endpoint bound = endpoint;
    if (bound.port == 0) {
        bound.port = next_ephemeral_port();
    }
    for (const auto& existing : listeners_) {
        if (existing->open && existing->endpoint.port == bound.port &&
            (existing->endpoint.address == bound.address || existing->endpoint.address == 0 ||
             bound.address == 0)) {
            return NetErrc::address_in_use;
        }
    }
    auto created = std::make_unique<Listener>();
    created->id = ListenerId{static_cast<std::uint32_t>(listeners_.size() + 1)};
    created->endpoint = bound;
    // Linux lets backlog + 1 connections wait in the accept queue.
    created->backlog = static_cast<std::size_t>(std::clamp(backlog, 0, 65535)) + 1;
    const ListenerId id = created->id;
    listeners_.push_back(std::move(created));
    trace_event("listen", {{"listener", model::to_underlying(id)},
                           {"endpoint", std::string_view(bound.to_string())},
                           {"backlog", backlog}});
    return id;
}

Endpoint World::local_endpoint(ListenerId id) const { return listener(id).endpoint; }

std::uint16_t World::next_ephemeral_port() {
    for (std::uint32_t tries = 0; tries <= kEphemeralPortLast - kEphemeralPortFirst; ++tries) {
        const auto port = static_cast<std::uint16_t>(ephemeral_port_next_);
        ephemeral_port_next_ =
            ephemeral_port_next_ == kEphemeralPortLast ? kEphemeralPortFirst : ephemeral_port_next_ + 1;
        const bool taken = std::any_of(listeners_.begin(), listeners_.end(), [port](const auto& l) {
            return l->open && l->endpoint.port == port;
        });
        if (!taken) {
            return port;
        }
    }
    FAULTLINE_ASSERT(false);  // every ephemeral port has an open listener
}

World::Listener* World::find_listener(const Endpoint& endpoint) {
    for (const auto& candidate : listeners_) {
        if (candidate->open && candidate->endpoint.port == endpoint.port &&
            (candidate->endpoint.address == 0 || candidate->endpoint.address == endpoint.address)) {
            return candidate.get();
        }
    }
    return nullptr;
}

model::Result<ConnectionId> World::try_accept(ListenerId id) {
    Listener& target = listener(id);
    FAULTLINE_ASSERT(target.open);
    if (target.ready_count() == 0) {
        return NetErrc::would_block;
    }
    Conn& accepted = *conns_[target.pop_ready()];
    accepted.app_open = true;
    accepted.listener = kNone;
    const ConnectionId connection{accepted.index + 1};
    trace_event("accept", {{"listener", model::to_underlying(id)},
                           {"conn", model::to_underlying(connection)},
                           {"pair", accepted.pair}});
    return connection;
}

void World::async_accept(ListenerId id, model::ConnectHandler handler) {
    Listener& target = listener(id);
    FAULTLINE_ASSERT(target.open);
    FAULTLINE_ASSERT(!target.accept_pending);
    if (target.ready_count() > 0) {
        model::Result<ConnectionId> accepted = try_accept(id);
        deliver_connect(std::move(handler), {}, accepted.value());
        return;
    }
    target.accept_pending = true;
    target.accept_handler = std::move(handler);
}

void World::cancel_accept(ListenerId id) {
    Listener& target = listener(id);
    if (target.accept_pending) {
        target.accept_pending = false;
        deliver_connect(std::move(target.accept_handler), error_of(NetErrc::operation_aborted),
                        ConnectionId{0});
    }
}

void World::close(ListenerId id) {
    Listener& target = listener(id);
    FAULTLINE_ASSERT(target.open);
    target.open = false;
    trace_event("close_listener", {{"listener", model::to_underlying(id)}});
    cancel_accept(id);
    while (target.ready_count() > 0) {
        Conn& queued = *conns_[target.pop_ready()];
        queued.listener = kNone;
        send_rst(queued);
    }
}

World::Conn& World::new_conn(Side side, std::uint32_t pair) {
    const auto index = static_cast<std::uint32_t>(conns_.size());
    conns_.push_back(std::make_unique<Conn>(index, side, pair, network_));
    return *conns_.back();
}

void World::async_connect(const Endpoint& remote, model::ConnectHandler handler) {
    Conn& client = new_conn(Side::client, pairs_++);
    client.local = Endpoint{remote.address == 0 ? kLoopback : remote.address,
                            next_ephemeral_port()};
    if ((client.local.address >> 24U) == 127U) {
        client.local.address = kLoopback;
    }
    client.remote = remote;
    client.connect_handler = std::move(handler);
    trace_event("connect", {{"conn", client.index + 1},
                            {"pair", client.pair},
                            {"remote", std::string_view(remote.to_string())}});
    send_syn(client.index, remote, 0);
}

void World::send_syn(std::uint32_t client_index, Endpoint remote, int attempt) {
    scheduler_.post_after(network_.latency, [this, client_index, remote, attempt] {
        syn_arrived(client_index, remote, attempt);
    });
}

void World::fail_connect(std::uint32_t client_index, std::error_code error) {
    Conn& client = *conns_[client_index];
    client.dead = true;
    trace_event("connect_failed",
                {{"conn", client_index + 1}, {"error", std::string_view(error.message())}});
    deliver_connect(std::move(client.connect_handler), error, ConnectionId{0});
}

void World::syn_arrived(std::uint32_t client_index, Endpoint remote, int attempt) {
    // Every SYN is on the wire, a retransmission too; a silent host's and a full backlog's
    // SYNs go unanswered. An unreachable host's router would answer with ICMP, which the
    // simulated wire does not carry, so the capture shows its SYN alone.
    if (options_.packet_tap) {
        tap_packet(conns_[client_index]->local, remote, WirePacket::syn);
    }
    const auto& unreachable = network_.unreachable_addresses;
    const auto& silent = network_.silent_addresses;
    if (std::find(unreachable.begin(), unreachable.end(), remote.address) != unreachable.end()) {
        scheduler_.post_after(network_.latency, [this, client_index] {
            fail_connect(client_index, error_of(NetErrc::host_unreachable));
        });
        return;
    }
    Listener* target = nullptr;
    if (std::find(silent.begin(), silent.end(), remote.address) == silent.end()) {
        target = find_listener(remote);
        if (target == nullptr) {
            trace_event("rst", {{"to", client_index + 1}, {"reason", "no listener"}});
            if (options_.packet_tap) {
                tap_packet(remote, conns_[client_index]->local, WirePacket::rst | WirePacket::ack);
            }
            scheduler_.post_after(network_.latency, [this, client_index] {
                fail_connect(client_index, error_of(NetErrc::connection_refused));
            });
            return;
        }
    }
    if (target == nullptr || target->ready_count() + target->handshaking >= target->backlog) {
        // The SYN is dropped (silent host or full backlog): the client retransmits with
        // exponential backoff, then gives up (Linux tcp_syn_retries).
        trace_event("syn_dropped", {{"conn", client_index + 1}, {"attempt", attempt}});
        const Duration backoff = network_.syn_timeout * (std::int64_t{1} << attempt);
        if (attempt >= network_.syn_retries) {
            scheduler_.post_after(backoff - network_.latency, [this, client_index] {
                fail_connect(client_index, error_of(NetErrc::timed_out));
            });
        } else {
            scheduler_.post_after(backoff - network_.latency, [this, client_index, remote,
                                                               attempt] {
                send_syn(client_index, remote, attempt + 1);
            });
        }
        return;
    }
    Conn& server = new_conn(Side::server, conns_[client_index]->pair);
    Conn& client = *conns_[client_index];
    server.local = Endpoint{remote.address, remote.port};
    server.remote = client.local;
    server.peer = client.index;
    client.peer = server.index;
    server.listener = model::to_underlying(target->id) - 1;
    ++target->handshaking;
    const std::uint32_t server_index = server.index;
    // SYN-ACK reaches the client one latency later; its ACK reaches the server one more later.
    scheduler_.post_after(network_.latency, [this, client_index, server_index] {
        Conn& connected = *conns_[client_index];
        if (options_.packet_tap) {
            tap_packet(connected.remote, connected.local, WirePacket::syn | WirePacket::ack);
        }
        connected.established = true;
        connected.app_open = true;
        trace_event("established", {{"conn", client_index + 1}, {"side", "client"}});
        deliver_connect(std::move(connected.connect_handler), {}, ConnectionId{client_index + 1});
        scheduler_.post_after(network_.latency, [this, server_index] {
            Conn& accepted = *conns_[server_index];
            if (options_.packet_tap) {
                tap_packet(accepted.remote, accepted.local, WirePacket::ack);
            }
            Listener& queue = *listeners_[accepted.listener];
            --queue.handshaking;
            accepted.established = true;
            trace_event("established", {{"conn", server_index + 1}, {"side", "server"}});
            if (!queue.open) {
                send_rst(accepted);
                return;
            }
            queue.ready.push_back(server_index);
            if (queue.accept_pending) {
                queue.accept_pending = false;
                model::Result<ConnectionId> taken = try_accept(queue.id);
                deliver_connect(std::move(queue.accept_handler), {}, taken.value());
            }
        });
    });
}

// ---- data path --------------------------------------------------------------------------------

std::error_code World::consume_send_error(Conn& end) {
    if (!end.sticky_consumed) {
        end.sticky_consumed = true;
        return end.sticky;
    }
    return error_of(NetErrc::broken_pipe);
}

bool World::fault_matches(const Fault& fault, const Conn& end) const {
    return fault.side == end.side && (!fault.connection || *fault.connection == end.pair);
}

model::Result<std::size_t> World::take_bytes(Conn& sender, std::span<const std::byte> bytes) {
    if (sender.dead) {
        return consume_send_error(sender);
    }
    if (sender.fin_pending) {
        return NetErrc::broken_pipe;
    }
    if (bytes.empty()) {
        return std::size_t{0};  // a zero-length probe of a healthy connection
    }
    const std::size_t space = sender.send_buffer.space();
    if (space == 0) {
        return NetErrc::would_block;
    }
    ++sender.send_calls;
    std::size_t cap = std::min(bytes.size(), space);
    bool reset_after = false;
    for (const Fault& fault : options_.faults) {
        if (!fault_matches(fault, sender)) {
            continue;
        }
        if (fault.kind == FaultKind::partial_send && !fault.at &&
            (!fault.on_send || *fault.on_send == sender.send_calls) && fault.bytes < cap) {
            cap = std::max<std::size_t>(1, fault.bytes);
            trace_event("fault", {{"kind", "partial_send"},
                                  {"conn", sender.index + 1},
                                  {"call", sender.send_calls},
                                  {"bytes", cap}});
        }
        if (fault.kind == FaultKind::reset && fault.on_send && *fault.on_send == sender.send_calls) {
            inject_reset(sender, "on_send");
            return consume_send_error(sender);
        }
        if (fault.kind == FaultKind::reset && fault.after_bytes) {
            if (sender.accepted >= *fault.after_bytes) {
                inject_reset(sender, "after_bytes");
                return consume_send_error(sender);
            }
            const std::uint64_t limit = *fault.after_bytes - sender.accepted;
            if (limit <= cap) {
                cap = static_cast<std::size_t>(limit);
                reset_after = true;
            }
        }
    }
    if (swarm_) {
        if (swarm_->reset_per_1024 != 0 && swarm_->prng.chance(swarm_->reset_per_1024, 1024)) {
            inject_reset(sender, "swarm");
            return consume_send_error(sender);
        }
        if (swarm_->close_per_1024 != 0 && swarm_->prng.chance(swarm_->close_per_1024, 1024)) {
            if (sender.peer != kNone) {
                inject_close(*conns_[sender.peer], "swarm");
            }
        }
        if (swarm_->partial_per_1024 != 0 && cap > 1 &&
            swarm_->prng.chance(swarm_->partial_per_1024, 1024)) {
            cap = static_cast<std::size_t>(swarm_->prng.between(1, cap - 1));
            trace_event("fault", {{"kind", "partial_send"},
                                  {"conn", sender.index + 1},
                                  {"call", sender.send_calls},
                                  {"bytes", cap},
                                  {"source", "swarm"}});
        }
    }
    if (sender.dead) {
        return consume_send_error(sender);
    }
    if (sender.fin_pending) {
        return NetErrc::broken_pipe;
    }
    sender.send_buffer.push(bytes.first(cap));
    sender.accepted += cap;
    trace_event("send", {{"conn", sender.index + 1}, {"bytes", cap}, {"asked", bytes.size()}});
    pump(sender);
    if (reset_after) {
        const std::uint32_t index = sender.index;
        scheduler_.post_after(Duration::zero(), [this, index] {
            Conn& end = *conns_[index];
            if (!end.dead) {
                inject_reset(end, "after_bytes");
            }
        });
    }
    return cap;
}

model::Result<std::size_t> World::give_bytes(Conn& receiver, std::span<std::byte> buffer) {
    FAULTLINE_ASSERT(!buffer.empty());
    if (receiver.orphaned) {
        return NetErrc::operation_aborted;  // its application closed the socket (close fault)
    }
    if (receiver.stalled) {
        return NetErrc::would_block;
    }
    if (receiver.receive_buffer.size() > 0) {
        const std::size_t bytes = std::min(buffer.size(), receiver.receive_buffer.size());
        receiver.receive_buffer.peek(0, buffer.first(bytes));
        receiver.receive_buffer.consume(bytes);
        trace_event("receive", {{"conn", receiver.index + 1}, {"bytes", bytes}});
        // The window opened: the sender hears of it one latency later.
        if (receiver.peer != kNone && !receiver.window_update_scheduled) {
            receiver.window_update_scheduled = true;
            const std::uint32_t index = receiver.index;
            scheduler_.post_after(network_.latency, [this, index] {
                Conn& reader = *conns_[index];
                reader.window_update_scheduled = false;
                Conn& writer = *conns_[reader.peer];
                if (!writer.dead) {
                    pump(writer);
                }
            });
        }
        return bytes;
    }
    if (receiver.dead) {
        if (!receiver.sticky_consumed) {
            receiver.sticky_consumed = true;
            return receiver.sticky;
        }
        return NetErrc::end_of_stream;
    }
    if (receiver.fin_received || receiver.shutdown_receive) {
        return NetErrc::end_of_stream;
    }
    return NetErrc::would_block;
}

TimePoint World::segment_arrival(Conn& sender, std::size_t bytes) {
    const TimePoint start = std::max(now(), sender.link_free);
    Duration serialization{};
    if (network_.bytes_per_second != 0) {
        // A segment is at most one MSS (asserted by the loader to be small), so this cannot wrap.
        serialization = Duration(static_cast<std::int64_t>(
            (static_cast<std::uint64_t>(bytes) * 1'000'000'000U) / network_.bytes_per_second));
    }
    sender.link_free = start + serialization;
    Duration jitter{};
    if (network_.jitter.count() > 0) {
        jitter = Duration(static_cast<std::int64_t>(
            jitter_prng_.below(static_cast<std::uint64_t>(network_.jitter.count()) + 1)));
    }
    // Jitter never reorders a stream: a segment arrives no earlier than the one before it.
    const TimePoint arrival = std::max(sender.link_free + network_.latency + jitter,
                                       sender.last_arrival);
    sender.last_arrival = arrival;
    return arrival;
}

void World::pump(Conn& sender) {
    if (sender.dead || sender.peer == kNone || !sender.established) {
        return;
    }
    const Conn& receiver = *conns_[sender.peer];
    while (sender.transmitted < sender.accepted) {
        const std::uint64_t in_flight = sender.transmitted - sender.delivered;
        const std::uint64_t used = receiver.receive_buffer.size() + in_flight;
        const std::uint64_t capacity = receiver.receive_buffer.capacity();
        // A closed or reset receiver answers data with RST; let one segment go to provoke it.
        const bool receiver_gone = receiver.dead || receiver.orphaned ||
                                   (!receiver.app_open && receiver.listener == kNone);
        std::uint64_t window = used >= capacity ? 0 : capacity - used;
        if (receiver_gone) {
            window = in_flight == 0 ? network_.mss_bytes : 0;
        }
        if (window == 0) {
            break;
        }
        const auto bytes = static_cast<std::uint32_t>(
            std::min<std::uint64_t>({network_.mss_bytes, sender.accepted - sender.transmitted,
                                     window}));
        const TimePoint arrival = segment_arrival(sender, bytes);
        sender.transmitted += bytes;
        scheduler_.post_at(arrival, [this, index = sender.index, bytes, epoch = sender.epoch] {
            segment_arrived(index, bytes, epoch);
        });
    }
    if (sender.transmitted == sender.accepted && sender.fin_pending && !sender.fin_sent) {
        sender.fin_sent = true;
        const TimePoint arrival = segment_arrival(sender, 0);
        scheduler_.post_at(arrival, [this, index = sender.index, epoch = sender.epoch] {
            fin_arrived(index, epoch);
        });
    }
}

void World::segment_arrived(std::uint32_t sender_index, std::uint32_t bytes, std::uint32_t epoch) {
    Conn& sender = *conns_[sender_index];
    if (sender.epoch != epoch || sender.dead) {
        return;  // dropped by a reset
    }
    if (options_.packet_tap) {
        // The segment's bytes are the next ones of the sender's buffer, which still holds
        // every unacknowledged byte; it is read, not changed.
        tap_packet(sender.local,
                   sender.remote,
                   WirePacket::psh | WirePacket::ack,
                   sender.send_buffer.view(sender.delivered - sender.acked, bytes, tap_scratch_));
    }
    Conn& receiver = *conns_[sender.peer];
    if (receiver.dead || receiver.orphaned ||
        (!receiver.app_open && receiver.listener == kNone)) {
        // Data for a closed socket: it answers with RST (RFC 793 §3.4, as Linux does).
        trace_event("segment_refused", {{"from", sender_index + 1}, {"bytes", bytes}});
        send_rst(receiver);
        return;
    }
    receiver.receive_buffer.transfer_from(sender.send_buffer, sender.delivered - sender.acked,
                                          bytes);
    sender.delivered += bytes;
    receiver.received_total += bytes;
    trace_event("segment", {{"from", sender_index + 1}, {"to", receiver.index + 1},
                            {"bytes", bytes}});
    scheduler_.post_after(network_.latency, [this, sender_index, bytes, epoch] {
        Conn& acked = *conns_[sender_index];
        if (acked.epoch != epoch || acked.dead) {
            return;
        }
        if (options_.packet_tap) {
            tap_packet(acked.remote, acked.local, WirePacket::ack);
        }
        acked.acked += bytes;
        acked.send_buffer.consume(bytes);
        wake_send(acked);
    });
    if (swarm_ && swarm_->stall_per_1024 != 0 && receiver.app_open && !receiver.stalled &&
        swarm_->prng.chance(swarm_->stall_per_1024, 1024)) {
        const Duration stall(static_cast<std::int64_t>(swarm_->prng.between(1, 10'000'000)));
        inject_stall(receiver, stall, "swarm");
    }
    wake_receive(receiver);
}

void World::fin_arrived(std::uint32_t sender_index, std::uint32_t epoch) {
    Conn& sender = *conns_[sender_index];
    if (sender.epoch != epoch || sender.dead) {
        return;
    }
    if (options_.packet_tap) {
        tap_packet(sender.local, sender.remote, WirePacket::fin | WirePacket::ack);
    }
    Conn& receiver = *conns_[sender.peer];
    if (receiver.dead) {
        return;
    }
    receiver.fin_received = true;
    trace_event("fin", {{"from", sender_index + 1}, {"to", receiver.index + 1}});
    wake_receive(receiver);
}

void World::send_rst(Conn& from) {
    if (from.dead && from.peer == kNone) {
        return;
    }
    // An end that is already dead (reset) keeps its pending error for the application: a
    // segment arriving after the reset is answered with RST, but the next receive still reports
    // the reset, as on Linux (found by the fuzzer: the peer saw a clean end of stream instead).
    if (!from.dead) {
        from.sticky_consumed = true;
    }
    from.dead = true;
    ++from.epoch;
    from.send_buffer.clear();
    from.receive_buffer.clear();
    if (from.peer == kNone) {
        return;
    }
    if (options_.packet_tap) {
        tap_packet(from.local, from.remote, WirePacket::rst | WirePacket::ack);
    }
    Conn& target = *conns_[from.peer];
    trace_event("rst", {{"from", from.index + 1}, {"to", target.index + 1}});
    scheduler_.post_after(network_.latency, [this, index = target.index, epoch = target.epoch] {
        rst_arrived(index, epoch);
    });
}

void World::rst_arrived(std::uint32_t target_index, std::uint32_t epoch) {
    Conn& target = *conns_[target_index];
    if (target.dead || target.epoch != epoch) {
        return;
    }
    // Linux: a reset in CLOSE_WAIT (FIN already received) reports EPIPE, otherwise ECONNRESET.
    reset_end(target, error_of(target.fin_received ? NetErrc::broken_pipe
                                                   : NetErrc::connection_reset));
}

void World::reset_end(Conn& end, std::error_code sticky) {
    end.dead = true;
    ++end.epoch;
    end.sticky = sticky;
    end.sticky_consumed = false;
    end.send_buffer.clear();
    end.receive_buffer.clear();
    trace_event("reset", {{"conn", end.index + 1}, {"error", std::string_view(sticky.message())}});
    // Every operation waiting at the moment of the reset sees it.
    const bool had_pending = end.send.active || end.receive.active;
    if (end.send.active) {
        end.send.active = false;
        deliver_io(std::move(end.send.handler), sticky, 0);
    }
    if (end.receive.active) {
        end.receive.active = false;
        deliver_io(std::move(end.receive.handler), sticky, 0);
    }
    end.sticky_consumed = had_pending;
}

// The pending operation is taken out before the attempt: a fault fired inside the attempt (a
// reset) must not complete it a second time.
void World::wake_send(Conn& end) {
    if (!end.send.active) {
        return;
    }
    Conn::Pending pending = std::move(end.send);
    end.send = Conn::Pending{};
    model::Result<std::size_t> taken = take_bytes(end, pending.outgoing);
    if (!taken && taken.error() == NetErrc::would_block) {
        end.send = std::move(pending);
        return;
    }
    deliver_io(std::move(pending.handler), taken.error(), taken ? taken.value() : 0);
}

void World::wake_receive(Conn& end) {
    if (!end.receive.active) {
        return;
    }
    Conn::Pending pending = std::move(end.receive);
    end.receive = Conn::Pending{};
    model::Result<std::size_t> given = give_bytes(end, pending.incoming);
    if (!given && given.error() == NetErrc::would_block) {
        end.receive = std::move(pending);
        return;
    }
    deliver_io(std::move(pending.handler), given.error(), given ? given.value() : 0);
}

void World::fail_pending(Conn& end, std::error_code error) {
    if (end.send.active) {
        end.send.active = false;
        deliver_io(std::move(end.send.handler), error, 0);
    }
    if (end.receive.active) {
        end.receive.active = false;
        deliver_io(std::move(end.receive.handler), error, 0);
    }
}

model::Result<std::size_t> World::try_send(ConnectionId connection,
                                           std::span<const std::byte> bytes) {
    Conn& sender = conn(connection);
    FAULTLINE_ASSERT(sender.app_open);
    FAULTLINE_ASSERT(!sender.send.active);  // no immediate attempt beside an async one
    if (!bytes.empty() && !sender.dead && sender.would_block_call != sender.send_calls + 1) {
        for (const Fault& fault : options_.faults) {
            if (fault.kind == FaultKind::would_block && fault_matches(fault, sender) &&
                fault.on_send && *fault.on_send == sender.send_calls + 1) {
                sender.would_block_call = sender.send_calls + 1;
                trace_event("fault", {{"kind", "would_block"},
                                      {"conn", sender.index + 1},
                                      {"call", sender.send_calls + 1}});
                return NetErrc::would_block;
            }
        }
    }
    return take_bytes(sender, bytes);
}

void World::async_send(ConnectionId connection, std::span<const std::byte> bytes,
                       model::IoHandler handler) {
    Conn& sender = conn(connection);
    FAULTLINE_ASSERT(sender.app_open);
    FAULTLINE_ASSERT(!sender.send.active);
    FAULTLINE_ASSERT(!bytes.empty());  // zero-length sends are immediate probes, never async
    sender.send = Conn::Pending{true, bytes, {}, std::move(handler)};
    wake_send(sender);
}

model::Result<std::size_t> World::try_receive(ConnectionId connection, std::span<std::byte> buffer) {
    Conn& receiver = conn(connection);
    FAULTLINE_ASSERT(receiver.app_open);
    FAULTLINE_ASSERT(!receiver.receive.active);
    return give_bytes(receiver, buffer);
}

void World::async_receive(ConnectionId connection, std::span<std::byte> buffer,
                          model::IoHandler handler) {
    Conn& receiver = conn(connection);
    FAULTLINE_ASSERT(receiver.app_open);
    FAULTLINE_ASSERT(!receiver.receive.active);
    FAULTLINE_ASSERT(!buffer.empty());
    receiver.receive = Conn::Pending{true, {}, buffer, std::move(handler)};
    wake_receive(receiver);
}

void World::cancel_send(ConnectionId connection) {
    Conn& end = conn(connection);
    if (end.send.active) {
        end.send.active = false;
        deliver_io(std::move(end.send.handler), error_of(NetErrc::operation_aborted), 0);
    }
}

void World::cancel_receive(ConnectionId connection) {
    Conn& end = conn(connection);
    if (end.receive.active) {
        end.receive.active = false;
        deliver_io(std::move(end.receive.handler), error_of(NetErrc::operation_aborted), 0);
    }
}

void World::shutdown(ConnectionId connection, model::ShutdownHow how) {
    Conn& end = conn(connection);
    FAULTLINE_ASSERT(end.app_open);
    trace_event("shutdown", {{"conn", end.index + 1},
                             {"how", how == model::ShutdownHow::send      ? "send"
                                     : how == model::ShutdownHow::receive ? "receive"
                                                                          : "both"}});
    if (how != model::ShutdownHow::receive) {
        end.fin_pending = true;
        pump(end);
        if (end.send.active) {
            end.send.active = false;
            deliver_io(std::move(end.send.handler), error_of(NetErrc::broken_pipe), 0);
        }
    }
    if (how != model::ShutdownHow::send) {
        end.shutdown_receive = true;
        wake_receive(end);
    }
}

void World::close(ConnectionId connection) {
    Conn& end = conn(connection);
    FAULTLINE_ASSERT(end.app_open);
    end.app_open = false;
    fail_pending(end, error_of(NetErrc::operation_aborted));
    if (end.dead) {
        trace_event("close", {{"conn", end.index + 1}});
        return;
    }
    if (end.receive_buffer.size() > 0) {
        // Closing with unread data resets the connection (Linux, RFC 2525 §2.17).
        trace_event("close", {{"conn", end.index + 1}, {"unread", end.receive_buffer.size()}});
        send_rst(end);
        return;
    }
    trace_event("close", {{"conn", end.index + 1}});
    end.fin_pending = true;
    pump(end);
}

void World::abort(ConnectionId connection) {
    Conn& end = conn(connection);
    FAULTLINE_ASSERT(end.app_open);
    end.app_open = false;
    trace_event("abort", {{"conn", end.index + 1}});
    fail_pending(end, error_of(NetErrc::operation_aborted));
    if (!end.dead) {
        send_rst(end);
    }
}

Endpoint World::local_endpoint(ConnectionId connection) const { return conn(connection).local; }
Endpoint World::remote_endpoint(ConnectionId connection) const { return conn(connection).remote; }

std::uint32_t World::pair_of(ConnectionId connection) const { return conn(connection).pair; }
Side World::side_of(ConnectionId connection) const { return conn(connection).side; }

void World::set_stalled(ConnectionId connection, bool stalled) {
    Conn& end = conn(connection);
    end.stalled = stalled;
    ++end.stall_generation;
    if (!stalled) {
        wake_receive(end);
    }
}

// ---- faults -----------------------------------------------------------------------------------

void World::inject_reset(Conn& end, std::string_view reason) {
    if (end.dead) {
        return;
    }
    trace_event("fault", {{"kind", "reset"}, {"conn", end.index + 1}, {"reason", reason}});
    // The network resets the connection: this end at once, the other end one latency later.
    // On the wire that is what a middlebox killing a connection sends: an RST to each end in
    // the name of the other, both leaving now (the first arrives now).
    if (options_.packet_tap && end.peer != kNone) {
        tap_packet(end.remote, end.local, WirePacket::rst | WirePacket::ack);
    }
    if (end.peer != kNone) {
        Conn& other = *conns_[end.peer];
        if (!other.dead) {
            if (options_.packet_tap) {
                tap_packet(end.local, end.remote, WirePacket::rst | WirePacket::ack);
            }
            scheduler_.post_after(network_.latency, [this, index = other.index,
                                                     epoch = other.epoch] {
                rst_arrived(index, epoch);
            });
        }
    }
    reset_end(end, error_of(NetErrc::connection_reset));
}

void World::inject_close(Conn& end, std::string_view reason) {
    if (end.dead || end.fin_pending) {
        return;
    }
    trace_event("fault", {{"kind", "close"}, {"conn", end.index + 1}, {"reason", reason}});
    // The application on this end closed gracefully behind the model's back: FIN after its
    // buffered bytes; data arriving later is answered with RST.
    end.fin_pending = true;
    end.shutdown_receive = true;
    end.orphaned = true;
    pump(end);
    if (end.send.active) {
        end.send.active = false;
        deliver_io(std::move(end.send.handler), error_of(NetErrc::broken_pipe), 0);
    }
    wake_receive(end);
}

void World::inject_stall(Conn& end, std::optional<Duration> duration, std::string_view reason) {
    trace_event("fault", {{"kind", "stall"},
                          {"conn", end.index + 1},
                          {"duration_ns", duration ? duration->count() : -1},
                          {"reason", reason}});
    end.stalled = true;
    const std::uint64_t generation = ++end.stall_generation;
    if (duration) {
        scheduler_.post_after(*duration, [this, index = end.index, generation] {
            Conn& stalled = *conns_[index];
            if (stalled.stall_generation == generation) {
                stalled.stalled = false;
                trace_event("stall_end", {{"conn", index + 1}});
                wake_receive(stalled);
            }
        });
    }
}

void World::half_open_scan(std::uint32_t listener_index, std::uint64_t scan) {
    Listener& target = *listeners_[listener_index];
    if (!target.open) {
        return;
    }
    if (options_.packet_tap) {
        tap_packet(scanner_of(scan), target.endpoint, WirePacket::syn);
    }
    if (target.ready_count() + target.handshaking >= target.backlog) {
        trace_event("scan_dropped", {{"listener", listener_index + 1}, {"scan", scan}});
        return;
    }
    // The SYN takes a slot of the backlog (SYN_RECV) until the scanner's RST arrives one round
    // trip after the SYN-ACK left.
    ++target.handshaking;
    trace_event("scan_syn", {{"listener", listener_index + 1}, {"scan", scan}});
    // Nothing happens in the model when the SYN-ACK reaches the scanner, so the capture shows
    // it as it leaves; the scanner's RST (sequence number from the SYN-ACK's acknowledgement,
    // no ACK, RFC 793 §3.4) when it arrives and frees the slot.
    if (options_.packet_tap) {
        tap_packet(target.endpoint, scanner_of(scan), WirePacket::syn | WirePacket::ack);
    }
    scheduler_.post_after(network_.latency * 2, [this, listener_index, scan] {
        Listener& scanned = *listeners_[listener_index];
        if (options_.packet_tap) {
            tap_packet(scanner_of(scan), scanned.endpoint, WirePacket::rst);
        }
        --scanned.handshaking;
        trace_event("scan_rst", {{"listener", listener_index + 1},
                                 {"scan", scan},
                                 {"accept_pending", scanned.accept_pending}});
        if (scanned.open && scanned.accept_pending) {
            // What AcceptEx reports: the connection it was waiting for was reset.
            scanned.accept_pending = false;
            deliver_connect(std::move(scanned.accept_handler),
                            error_of(NetErrc::connection_reset), ConnectionId{0});
        }
    });
}

void World::arm_timed_faults() {
    for (std::size_t i = 0; i < options_.faults.size(); ++i) {
        const Fault& fault = options_.faults[i];
        if (fault.kind == FaultKind::half_open_scan) {
            for (std::uint64_t scan = 0; scan < fault.count; ++scan) {
                const TimePoint when{fault.at.value_or(Duration::zero()) + fault.interval * static_cast<std::int64_t>(scan)};
                scheduler_.post_at(when, [this, scan] {
                    trace_event("fault", {{"kind", "half_open_scan"}, {"scan", scan}});
                    for (std::uint32_t index = 0; index < listeners_.size(); ++index) {
                        half_open_scan(index, scan);
                    }
                });
            }
            continue;
        }
        if (fault.kind == FaultKind::latency || fault.kind == FaultKind::bandwidth) {
            scheduler_.post_at(TimePoint{fault.at.value_or(Duration::zero())}, [this, i] {
                const Fault& change = options_.faults[i];
                if (change.kind == FaultKind::latency) {
                    network_.latency = change.latency;
                    network_.jitter = change.jitter;
                    trace_event("fault", {{"kind", "latency"},
                                          {"latency_ns", change.latency.count()},
                                          {"jitter_ns", change.jitter.count()}});
                } else {
                    network_.bytes_per_second = change.bytes_per_second;
                    trace_event("fault", {{"kind", "bandwidth"},
                                          {"bytes_per_second", change.bytes_per_second}});
                }
            });
            continue;
        }
        if (!fault.at) {
            continue;
        }
        scheduler_.post_at(TimePoint{*fault.at}, [this, i] {
            const Fault& due = options_.faults[i];
            bool fired = false;
            for (const auto& end : conns_) {
                if (!fault_matches(due, *end) || !end->established) {
                    continue;
                }
                fired = true;
                switch (due.kind) {
                    case FaultKind::reset: inject_reset(*end, "at"); break;
                    case FaultKind::close: inject_close(*end, "at"); break;
                    case FaultKind::stall: inject_stall(*end, due.duration, "at"); break;
                    case FaultKind::partial_send:  // the loader rejects a timed partial send
                    case FaultKind::would_block:
                    case FaultKind::half_open_scan:
                    case FaultKind::latency:
                    case FaultKind::bandwidth: break;
                }
            }
            if (!fired) {
                trace_event("fault_skipped", {{"kind", static_cast<int>(due.kind)},
                                              {"side", side_name(due.side)}});
            }
        });
    }
}

}  // namespace faultline::sim
