// Socket<T>: the .NET Socket's APM surface (Begin*/End*, Connect, Accept, Shutdown, Dispose) and
// AcceptAsync(SocketAsyncEventArgs) as one implementation over any Transport. Invariants: operations of one kind are served FIFO and
// never interleave (S-20); every Begin* that returns a result completes it exactly once and runs
// its callback exactly once; the callback runs inline only when CompletedSynchronously. It does
// not implement the other *Async(SocketAsyncEventArgs) methods, UDP or IPv6.
#pragma once

#include <algorithm>
#include <any>
#include <climits>
#include <list>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "faultline/model/async_result.h"
#include "faultline/model/exceptions.h"
#include "faultline/model/mutants.h"
#include "faultline/model/profile.h"
#include "faultline/model/socket_async_event_args.h"
#include "faultline/model/transport.h"

namespace faultline::model {

/// Accepted and ignored: the simulated and loopback streams have no out-of-band data.
enum class SocketFlags : int { None = 0 };

enum class SocketShutdown : std::uint8_t { Receive, Send, Both };

template <Transport T>
class Socket : public std::enable_shared_from_this<Socket<T>> {
    struct Token {};

public:
    using Op = AsyncResult<T>;
    using OpPtr = std::shared_ptr<Op>;

    /// A new stream socket (InterNetwork, Stream, Tcp). The transport outlives every socket.
    [[nodiscard]] static std::shared_ptr<Socket> Create(T& transport,
                                                        const Profile& profile = kDocumented) {
        return std::make_shared<Socket>(Token{}, transport, profile);
    }

    Socket(Token /*unused*/, T& transport, const Profile& profile)
        : transport_(transport), profile_(profile) {}
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;

    /// Releases the connection quietly if Dispose was never called. Handlers hold the socket
    /// alive, so no operation is in flight here.
    ~Socket() {
        if (!disposed_) {
            if (connection_) {
                transport_.close(*connection_);
            }
            if (listener_) {
                transport_.close(*listener_);
            }
        }
    }

    // ---- properties -------------------------------------------------------------------------

    [[nodiscard]] const Profile& profile() const noexcept { return profile_; }
    /// True after a successful connect or accept, until Dispose or a failing send or receive
    /// (S-25).
    [[nodiscard]] bool Connected() const {
        std::unique_lock lock(mutex_);
        return connected_;
    }
    [[nodiscard]] std::optional<Endpoint> LocalEndPoint() const {
        std::unique_lock lock(mutex_);
        throw_if_disposed();
        if (listener_) {
            return transport_.local_endpoint(*listener_);
        }
        if (connection_) {
            return transport_.local_endpoint(*connection_);
        }
        return bound_;
    }
    [[nodiscard]] std::optional<Endpoint> RemoteEndPoint() const {
        std::unique_lock lock(mutex_);
        throw_if_disposed();
        if (connection_) {
            return transport_.remote_endpoint(*connection_);
        }
        return std::nullopt;
    }
    /// S-24: kept for synchronous Send only; asynchronous sends have no timeout of their own.
    [[nodiscard]] int SendTimeout() const {
        std::unique_lock lock(mutex_);
        return send_timeout_ms_;
    }
    void SendTimeout(int milliseconds) {
        std::unique_lock lock(mutex_);
        throw_if_disposed();
        if (milliseconds < -1) {
            throw ArgumentOutOfRangeException("value");
        }
        send_timeout_ms_ = milliseconds;
    }
    [[nodiscard]] bool Blocking() const {
        std::unique_lock lock(mutex_);
        return blocking_;
    }
    void Blocking(bool value) {
        std::unique_lock lock(mutex_);
        blocking_ = value;
    }
    /// How long a blocking call (End* before completion, Accept, Connect) may wait before it is
    /// reported as a LivenessFailure. Not .NET API: every wait in faultline has a bound.
    void SetWaitBudget(Duration budget) {
        std::unique_lock lock(mutex_);
        wait_budget_ = budget;
    }

    // ---- bind, listen, accept, connect ------------------------------------------------------

    void Bind(const Endpoint& local) {
        std::unique_lock lock(mutex_);
        throw_if_disposed();
        if (bound_ || connection_ || listener_) {
            throw socket_exception(SocketError::InvalidArgument);
        }
        bound_ = local;
    }

    void Listen(int backlog = 128) {
        std::unique_lock lock(mutex_);
        throw_if_disposed();
        if (connection_) {
            throw socket_exception(SocketError::IsConnected);
        }
        if (listener_) {
            return;
        }
        Result<ListenerId> listener = transport_.listen(bound_.value_or(Endpoint{}), backlog);
        if (!listener) {
            throw socket_exception(to_socket_error(listener.error()));
        }
        listener_ = listener.value();
    }

    AsyncResultPtr BeginAccept(AsyncCallback callback, std::any state) {
        std::unique_lock lock(mutex_);
        throw_if_disposed();
        if (!listener_) {
            throw InvalidOperationException(
                "You must call the Bind and Listen methods before performing this operation.");
        }
        OpPtr op = make_op(OperationKind::accept, std::move(callback), std::move(state));
        if (accept_queue_.empty()) {
            Result<ConnectionId> accepted = transport_.try_accept(*listener_);
            if (accepted) {
                op->accepted_ = adopt(accepted.value());
                return finish_synchronously(lock, op, {}, 0);
            }
            if (accepted.error() != NetErrc::would_block) {
                return fail_start(lock, op, accepted.error(), nullptr);
            }
        }
        enqueue(accept_queue_, op);
        if (accept_queue_.size() == 1) {
            start_accept(op);
        }
        return op;
    }

    std::shared_ptr<Socket> EndAccept(const AsyncResultPtr& async_result) {
        OpPtr op = check_end(async_result, {OperationKind::accept}, false, "EndAccept");
        auto [error, bytes] = wait_and_end(op);
        if (error) {
            throw socket_exception(to_socket_error(error));
        }
        std::unique_lock lock(op->mutex_);
        return op->accepted_;
    }

    /// Blocking accept: BeginAccept then EndAccept.
    std::shared_ptr<Socket> Accept() { return EndAccept(BeginAccept(nullptr, {})); }

    /// The address space AcceptEx reserves in a receive buffer: 2 × (sockaddr_storage + 16).
    static constexpr int kAcceptAddressBytes = 2 * (128 + 16);

    /// A-1 … A-12. Returns true when the accept is pending: `e`'s Completed handlers run exactly
    /// once later, on a pool thread, with this socket as sender. Returns false when it finished
    /// now (success or failure): no Completed, the results are in `e` already.
    bool AcceptAsync(const std::shared_ptr<SocketAsyncEventArgs<T>>& e) {
        std::unique_lock lock(mutex_);
        throw_if_disposed();
        if (!e) {
            throw ArgumentNullException("e");
        }
        if (e->GetBufferList()) {
            throw ArgumentException("Multiple buffers cannot be used with this method.", "e");
        }
        if (!listener_) {
            throw InvalidOperationException(
                bound_ ? "You must call the Listen method before performing this operation."
                       : "You must call the Bind method before performing this operation.");
        }
        const std::shared_ptr<Socket> supplied = e->AcceptSocket();
        if (supplied && (supplied.get() == this || supplied->bound_or_connected())) {
            throw InvalidOperationException("The AcceptSocket is already bound or connected.");
        }
        e->start(SocketAsyncOperation::Accept);
        std::size_t data_wanted = 0;
        if (e->GetBuffer()) {
            const int count = e->Count();
            if (count < kAcceptAddressBytes) {
                // the shipped code throws after marking the args busy and never frees them.
                if (!profile_.accept_small_buffer_leaves_args_busy) {
                    e->release();
                }
                throw ArgumentException("The buffer is not large enough for the addresses.",
                                        "Count");
            }
            if (!profile_.accept_receive_buffer_supported) {
                e->release();
                throw PlatformNotSupportedException(
                    "This platform does not support receiving data with Socket.AcceptAsync.");
            }
            data_wanted = static_cast<std::size_t>(count - kAcceptAddressBytes);
        }
        OpPtr op = make_op(OperationKind::accept, nullptr, {});
        if (accept_queue_.empty() && data_wanted == 0) {
            Result<ConnectionId> accepted = transport_.try_accept(*listener_);
            if (accepted || accepted.error() != NetErrc::would_block) {
                std::shared_ptr<Socket> socket;
                if (accepted) {
                    socket = adopt_into(supplied, accepted.value());
                }
                lock.unlock();
                complete_args(e, accepted.error(), 0, socket, false);
                return false;
            }
        }
        op->callback_ = [self = this->shared_from_this(), e, supplied,
                         data_wanted](const AsyncResultPtr& result) {
            self->accept_args_done(std::static_pointer_cast<Op>(result), e, supplied, data_wanted);
        };
        enqueue(accept_queue_, op);
        if (accept_queue_.size() == 1) {
            start_accept(op);
        }
        return true;
    }

    AsyncResultPtr BeginConnect(const Endpoint& remote, AsyncCallback callback, std::any state) {
        std::unique_lock lock(mutex_);
        throw_if_disposed();
        if (listener_) {
            throw InvalidOperationException("The socket is listening; it cannot connect.");
        }
        if (connection_) {
            throw socket_exception(SocketError::IsConnected);
        }
        if (connect_op_) {
            throw socket_exception(SocketError::AlreadyInProgress);
        }
        OpPtr op = make_op(OperationKind::connect, std::move(callback), std::move(state));
        connect_op_ = op;
        arm_exit_watch(op);
        op->in_flight_ = true;
        transport_.async_connect(remote, [self = this->shared_from_this(), op](
                                             std::error_code error, ConnectionId connection) {
            self->connect_done(op, error, connection);
        });
        return op;
    }

    void EndConnect(const AsyncResultPtr& async_result) {
        OpPtr op = check_end(async_result, {OperationKind::connect}, false, "EndConnect");
        auto [error, bytes] = wait_and_end(op);
        if (error) {
            throw socket_exception(to_socket_error(error));
        }
    }

    /// Blocking connect: BeginConnect then EndConnect.
    void Connect(const Endpoint& remote) { EndConnect(BeginConnect(remote, nullptr, {})); }

    // ---- send -------------------------------------------------------------------------------

    /// S-1, S-3, S-4, S-9, S-10, S-20, S-21.
    AsyncResultPtr BeginSend(const Buffer& buffer, int offset, int size, SocketFlags flags,
                             AsyncCallback callback, std::any state) {
        return begin_send_single(buffer, offset, size, flags, nullptr, std::move(callback),
                                 std::move(state));
    }
    /// S-5: a synchronous failure returns nullptr, sets `error_code` and runs no callback.
    AsyncResultPtr BeginSend(const Buffer& buffer, int offset, int size, SocketFlags flags,
                             SocketError& error_code, AsyncCallback callback, std::any state) {
        return begin_send_single(buffer, offset, size, flags, &error_code, std::move(callback),
                                 std::move(state));
    }
    /// S-2: the list overload.
    AsyncResultPtr BeginSend(const BufferList& buffers, SocketFlags flags, AsyncCallback callback,
                             std::any state) {
        return begin_send_list(buffers, flags, nullptr, std::move(callback), std::move(state));
    }
    AsyncResultPtr BeginSend(const BufferList& buffers, SocketFlags flags, SocketError& error_code,
                             AsyncCallback callback, std::any state) {
        return begin_send_list(buffers, flags, &error_code, std::move(callback), std::move(state));
    }

    /// S-6, S-7, S-8, S-11, S-15, S-16: blocks until the send completes; returns the bytes sent
    /// or throws SocketException.
    int EndSend(const AsyncResultPtr& async_result) {
        OpPtr op = check_end(async_result, end_send_kinds(), false, "EndSend");
        auto [error, bytes] = wait_and_end(op);
        if (error) {
            throw socket_exception(to_socket_error(error));
        }
        return static_cast<int>(bytes);
    }
    /// S-13, S-14: as EndSend, but I/O failures come back in `error_code` with 0 bytes.
    int EndSend(const AsyncResultPtr& async_result, SocketError& error_code) {
        OpPtr op = check_end(async_result, end_send_kinds(), true, "EndSend");
        auto [error, bytes] = wait_and_end(op);
        error_code = to_socket_error(error);
        return error ? 0 : static_cast<int>(bytes);
    }

    // ---- receive ----------------------------------------------------------------------------

    AsyncResultPtr BeginReceive(const Buffer& buffer, int offset, int size, SocketFlags flags,
                                AsyncCallback callback, std::any state) {
        std::unique_lock lock(mutex_);
        validate_buffer(buffer, offset, size);
        static_cast<void>(flags);
        OpPtr op = make_op(OperationKind::receive, std::move(callback), std::move(state));
        add_piece(*op, buffer, offset, size);
        if (!connection_) {
            return fail_start(lock, op, make_error_code(NetErrc::not_connected), nullptr);
        }
        if (op->total_ == 0) {
            return finish_synchronously(lock, op, {}, 0);
        }
        if (receive_queue_.empty()) {
            const Attempt attempt = attempt_receive(*op);
            if (attempt.status == Status::done) {
                return finish_synchronously(lock, op, {}, op->done_);
            }
            if (attempt.status == Status::failed) {
                return fail_start(lock, op, attempt.error, nullptr);
            }
        }
        enqueue(receive_queue_, op);
        if (receive_queue_.size() == 1) {
            start_receive(op);
        }
        return op;
    }

    /// Returns the bytes received; 0 means the peer closed its side in order.
    int EndReceive(const AsyncResultPtr& async_result) {
        OpPtr op = check_end(async_result, end_receive_kinds(), false, "EndReceive");
        auto [error, bytes] = wait_and_end(op);
        if (error) {
            throw socket_exception(to_socket_error(error));
        }
        return static_cast<int>(bytes);
    }

    // ---- shutdown and close -----------------------------------------------------------------

    void Shutdown(SocketShutdown how) {
        std::unique_lock lock(mutex_);
        throw_if_disposed();
        if (!connection_) {
            throw socket_exception(SocketError::NotConnected);
        }
        transport_.shutdown(*connection_, how == SocketShutdown::Receive ? ShutdownHow::receive
                                          : how == SocketShutdown::Send  ? ShutdownHow::send
                                                                         : ShutdownHow::both);
        shutdown_send_ = shutdown_send_ || how != SocketShutdown::Receive;
    }

    /// S-16, S-17, S-22: pending operations complete with OperationAborted and their callbacks
    /// are queued to the pool (never run inside Dispose); with operations pending the close is
    /// abortive (the peer sees a reset), otherwise graceful. After Shutdown(Send/Both) the FIN is
    /// already queued, so the close stays graceful and the peer sees a clean end (S-19).
    void Dispose() {
        std::vector<OpPtr> aborted;
        {
            std::unique_lock lock(mutex_);
            if (disposed_) {
                return;
            }
            disposed_ = true;
            connected_ = false;
            if (listener_) {
                transport_.close(*listener_);
                listener_.reset();
            }
            // Accepts already accepted but still waiting for their data fail too.
            for (Task& give_up : data_waits_) {
                transport_.post(std::move(give_up));
            }
            data_waits_.clear();
            if (connection_) {
                const bool pending = !send_queue_.empty() || !receive_queue_.empty();
                if (pending && !shutdown_send_) {
                    transport_.abort(*connection_);
                } else {
                    transport_.close(*connection_);
                }
                connection_.reset();
            }
            for (auto* queue : {&send_queue_, &receive_queue_, &accept_queue_}) {
                for (auto it = queue->begin(); it != queue->end();) {
                    if ((*it)->in_flight_) {
                        ++it;  // its transport handler completes it with operation_aborted
                        continue;
                    }
                    complete(*it, make_error_code(NetErrc::operation_aborted), 0, false, aborted);
                    it = queue->erase(it);
                }
            }
        }
        for (OpPtr& op : aborted) {
            transport_.post([op] { run_callback(op); });
        }
    }
    void Close() { Dispose(); }

private:
    enum class Status : std::uint8_t { done, would_block, failed };
    struct Attempt {
        Status status;
        std::error_code error;
    };
    using Completions = std::vector<OpPtr>;

    // ---- helpers shared by every operation ---------------------------------------------------

    void throw_if_disposed() const {
        if (disposed_) {
            throw ObjectDisposedException("System.Net.Sockets.Socket");
        }
    }

    [[nodiscard]] SocketException socket_exception(SocketError error) const {
        return SocketException(error, error_code_for(error, profile_));
    }

    OpPtr make_op(OperationKind kind, AsyncCallback callback, std::any state) {
        auto op = std::make_shared<Op>(transport_, mutex_, kind, this, std::move(callback),
                                       std::move(state));
        op->initiator_ = transport_.current_thread();
        return op;
    }

    static void add_piece(Op& op, const Buffer& array, int offset, int count) {
        op.arrays_.push_back(array);
        op.pieces_.emplace_back(array->data() + offset, static_cast<std::size_t>(count));
        op.total_ += static_cast<std::size_t>(count);
    }

    /// S-1 order: disposed, null buffer, offset, size.
    void validate_buffer(const Buffer& buffer, int offset, int size) const {
        throw_if_disposed();
        if (!buffer) {
            throw ArgumentNullException("buffer");
        }
        const auto length = static_cast<long long>(buffer->size());
        if (offset < 0 || offset > length) {
            throw ArgumentOutOfRangeException("offset");
        }
        if (size < 0 || size > length - offset) {
            throw ArgumentOutOfRangeException("size");
        }
    }

    /// S-25: errors after which Socket.Connected turns false.
    static bool disconnects(std::error_code error) {
        return error && error != NetErrc::would_block && error != NetErrc::timed_out;
    }

    /// Marks `op` complete and collects it; its callback runs after the lock is released.
    void complete(const OpPtr& op, std::error_code error, std::size_t bytes, bool synchronously,
                  Completions& completions) {
        FAULTLINE_ASSERT(!op->completed_);
        FAULTLINE_ASSERT(!op->in_flight_);
        FAULTLINE_ASSERT(!error || bytes == 0);
        op->completed_ = true;
        op->completed_synchronously_ = synchronously;
        op->error_ = error;
        op->bytes_ = bytes;
        if (op->exit_watch_) {
            transport_.cancel_exit_watch(*op->exit_watch_);
            op->exit_watch_.reset();
        }
        if ((op->kind() == OperationKind::send || op->kind() == OperationKind::receive) &&
            disconnects(error)) {
            connected_ = false;
        }
        transport_.signal(op->event_);
        completions.push_back(op);
    }

    /// Runs the callback once and drops it, so a callback that captures its own result (or
    /// anything holding it) cannot keep the operation alive in a cycle.
    static void run_callback(const OpPtr& op) {
        AsyncCallback callback = std::move(op->callback_);
        op->callback_ = nullptr;
        if (callback) {
            const AsyncResultPtr result = op;
            callback(result);
        }
    }

    static void run_callbacks(Completions& completions) {
        for (const OpPtr& op : completions) {
            run_callback(op);
        }
    }

    /// S-4: completion inside Begin*: the callback runs on the calling thread before return.
    AsyncResultPtr finish_synchronously(std::unique_lock<typename T::Mutex>& lock, const OpPtr& op,
                                        std::error_code error, std::size_t bytes) {
        Completions completions;
        complete(op, error, bytes, true, completions);
        lock.unlock();
        run_callbacks(completions);
        return op;
    }

    /// S-3/S-5: an error found while starting an operation.
    AsyncResultPtr fail_start(std::unique_lock<typename T::Mutex>& lock, const OpPtr& op,
                              std::error_code error, SocketError* out_error) {
        const SocketError mapped = to_socket_error(error);
        if (disconnects(error)) {
            connected_ = false;
        }
        if (out_error != nullptr) {
            *out_error = mapped;
            return nullptr;
        }
        if (profile_.begin_throws_socket_errors) {
            throw socket_exception(mapped);
        }
        return finish_synchronously(lock, op, error, 0);
    }

    void enqueue(std::list<OpPtr>& queue, const OpPtr& op) {
        queue.push_back(op);
        arm_exit_watch(op);
    }

    /// Seed note: "All I/O initiated by a given thread is canceled when that thread exits."
    void arm_exit_watch(const OpPtr& op) {
        if (!profile_.thread_exit_cancels_io) {
            return;
        }
        op->exit_watch_ = transport_.on_thread_exit(
            op->initiator_, [weak = this->weak_from_this(), op] {
                if (auto self = weak.lock()) {
                    self->initiator_exited(op);
                }
            });
    }

    void initiator_exited(const OpPtr& op) {
        Completions completions;
        {
            std::unique_lock lock(mutex_);
            op->exit_watch_.reset();
            if (op->completed_) {
                return;
            }
            op->cancel_requested_ = true;
            if (op->in_flight_) {
                // The transport completes it: aborted if it moved no bytes, else partial success.
                cancel_in_transport(*op);
                return;
            }
            auto& queue = queue_for(op->kind());
            queue.erase(std::find(queue.begin(), queue.end(), op));
            complete(op, make_error_code(NetErrc::operation_aborted), 0, false, completions);
        }
        run_callbacks(completions);
    }

    void cancel_in_transport(const Op& op) {
        switch (op.kind()) {
            case OperationKind::send:
                if (connection_) {
                    transport_.cancel_send(*connection_);
                }
                break;
            case OperationKind::receive:
                if (connection_) {
                    transport_.cancel_receive(*connection_);
                }
                break;
            case OperationKind::accept:
                if (listener_) {
                    transport_.cancel_accept(*listener_);
                }
                break;
            case OperationKind::connect:
                break;  // a connect in progress cannot be recalled; its handler checks the flag
        }
    }

    std::list<OpPtr>& queue_for(OperationKind kind) {
        switch (kind) {
            case OperationKind::send: return send_queue_;
            case OperationKind::receive: return receive_queue_;
            case OperationKind::accept: return accept_queue_;
            case OperationKind::connect: break;
        }
        FAULTLINE_ASSERT(false);
    }

    // ---- End* ---------------------------------------------------------------------------------

    [[nodiscard]] std::initializer_list<OperationKind> end_send_kinds() const {
        static constexpr std::initializer_list<OperationKind> kOwn = {OperationKind::send};
        static constexpr std::initializer_list<OperationKind> kAnyInt = {OperationKind::send,
                                                                         OperationKind::receive};
        return profile_.end_requires_own_send_result ? kOwn : kAnyInt;
    }
    [[nodiscard]] std::initializer_list<OperationKind> end_receive_kinds() const {
        static constexpr std::initializer_list<OperationKind> kOwn = {OperationKind::receive};
        static constexpr std::initializer_list<OperationKind> kAnyInt = {OperationKind::send,
                                                                         OperationKind::receive};
        return profile_.end_requires_own_send_result ? kOwn : kAnyInt;
    }

    /// S-6 / S-14 / S-15 / S-16 checks, in the profile's order.
    OpPtr check_end(const AsyncResultPtr& async_result, std::initializer_list<OperationKind> kinds,
                    bool out_overload, const std::string& method) {
        std::unique_lock lock(mutex_);
        if (disposed_) {
            if (profile_.end_on_closed_throws_socket_exception) {
                throw socket_exception(SocketError::OperationAborted);
            }
            throw_if_disposed();
        }
        if (!async_result) {
            if (out_overload && !profile_.end_out_null_is_argument_null) {
                throw ArgumentException("Value does not fall within the expected range.",
                                        "asyncResult");
            }
            throw ArgumentNullException("asyncResult");
        }
        auto op = std::dynamic_pointer_cast<Op>(async_result);
        const bool kind_ok =
            op && std::find(kinds.begin(), kinds.end(), op->kind()) != kinds.end();
        const bool owner_ok = op && (!profile_.end_requires_own_send_result || op->owner() == this ||
                                     mutant(Mutant::end_send_accepts_foreign));  // planted bug
        if (!kind_ok || !owner_ok) {
            throw ArgumentException(
                "The IAsyncResult object was not returned from the corresponding asynchronous "
                "method on this class.",
                "asyncResult");
        }
        if (profile_.end_twice_throws && op->owner() == this && op->ended_) {
            throw InvalidOperationException(method +
                                            " can only be called once for each asynchronous "
                                            "operation.");
        }
        return op;
    }

    /// S-8: blocks (within the wait budget) until `op` completes; marks it ended.
    std::pair<std::error_code, std::size_t> wait_and_end(const OpPtr& op) {
        Duration budget{};
        {
            std::unique_lock lock(mutex_);
            budget = wait_budget_;
        }
        std::unique_lock lock(op->mutex_);
        if (!op->completed_ && !transport_.wait(op->event_, lock, budget)) {
            throw LivenessFailure("blocking call waited longer than its budget");
        }
        FAULTLINE_ASSERT(op->completed_);
        op->ended_ = true;
        return {op->error_, op->bytes_};
    }

    // ---- send engine --------------------------------------------------------------------------

    AsyncResultPtr begin_send_single(const Buffer& buffer, int offset, int size, SocketFlags flags,
                                     SocketError* out_error, AsyncCallback callback,
                                     std::any state) {
        std::unique_lock lock(mutex_);
        validate_buffer(buffer, offset, size);
        static_cast<void>(flags);
        OpPtr op = make_op(OperationKind::send, std::move(callback), std::move(state));
        add_piece(*op, buffer, offset, size);
        return begin_send_common(lock, op, out_error);
    }

    AsyncResultPtr begin_send_list(const BufferList& buffers, SocketFlags flags,
                                   SocketError* out_error, AsyncCallback callback,
                                   std::any state) {
        std::unique_lock lock(mutex_);
        throw_if_disposed();
        if (!buffers) {
            throw ArgumentNullException("buffers");
        }
        if (buffers->empty()) {
            throw ArgumentException("The parameter cannot be an empty list.", "buffers");
        }
        static_cast<void>(flags);
        OpPtr op = make_op(OperationKind::send, std::move(callback), std::move(state));
        for (const ArraySegment& segment : *buffers) {
            if (!segment.array) {
                throw ArgumentNullException("buffers");
            }
            const auto length = static_cast<long long>(segment.array->size());
            if (segment.offset < 0 || segment.count < 0 ||
                segment.offset > length - segment.count) {
                throw ArgumentOutOfRangeException("buffers");
            }
            if (op->total_ + static_cast<std::size_t>(segment.count) > INT_MAX) {
                throw ArgumentOutOfRangeException("buffers");
            }
            add_piece(*op, segment.array, segment.offset, segment.count);
        }
        return begin_send_common(lock, op, out_error);
    }

    std::error_code send_not_connected() const {
        return make_error_code(profile_.send_not_connected_error == SocketError::Shutdown
                                   ? NetErrc::broken_pipe
                                   : NetErrc::not_connected);
    }

    AsyncResultPtr begin_send_common(std::unique_lock<typename T::Mutex>& lock, const OpPtr& op,
                                     SocketError* out_error) {
        if (!connection_) {
            return fail_start(lock, op, send_not_connected(), out_error);
        }
        if (out_error != nullptr) {
            *out_error = SocketError::Success;
        }
        if (send_queue_.empty()) {
            // S-21: with an idle queue the send is tried inline; a zero-length send completes
            // here with 0 (S-10). Behind a pending send it waits its turn like any other (S-20).
            const Attempt attempt = attempt_send(*op);
            if (attempt.status == Status::done) {
                return finish_synchronously(lock, op, {}, op->done_);
            }
            if (attempt.status == Status::failed) {
                return fail_start(lock, op, attempt.error, out_error);
            }
        }
        enqueue(send_queue_, op);
        if (send_queue_.size() == 1) {
            start_send(op);
        }
        return op;
    }

    /// The first piece of `op` with bytes left, from its first unsent byte.
    static std::span<std::byte> remaining_piece(const Op& op) {
        std::size_t skip = op.done_;
        for (const auto& piece : op.pieces_) {
            if (skip < piece.size()) {
                return piece.subspan(skip);
            }
            skip -= piece.size();
        }
        return {};
    }

    /// Immediate attempts. S-9: under a partial profile a short take (or no room after some
    /// bytes) completes the send; otherwise the socket keeps writing until all bytes are taken.
    /// A zero-length send still asks the transport once, as send(2) does, so a pending reset or
    /// shutdown surfaces (S-10, S-12).
    Attempt attempt_send(Op& op) {
        if (op.total_ == 0) {
            Result<std::size_t> probe = transport_.try_send(*connection_, {});
            if (!probe && probe.error() != NetErrc::would_block) {
                return {Status::failed, probe.error()};
            }
            return {Status::done, {}};
        }
        while (op.done_ < op.total_) {
            const std::span<std::byte> piece = remaining_piece(op);
            FAULTLINE_ASSERT(!piece.empty());
            Result<std::size_t> sent = transport_.try_send(*connection_, std::as_bytes(piece));
            if (!sent) {
                if (sent.error() == NetErrc::would_block) {
                    const bool partial_done =
                        profile_.stream_send_may_be_partial && op.done_ > 0;
                    return {partial_done ? Status::done : Status::would_block, {}};
                }
                return {Status::failed, sent.error()};
            }
            FAULTLINE_ASSERT(sent.value() >= 1);
            FAULTLINE_ASSERT(sent.value() <= piece.size());
            op.done_ += sent.value();
            if (profile_.stream_send_may_be_partial && sent.value() < piece.size()) {
                return {Status::done, {}};
            }
        }
        return {Status::done, {}};
    }

    void start_send(const OpPtr& op) {
        FAULTLINE_ASSERT(!send_in_flight_);
        FAULTLINE_ASSERT(send_queue_.front() == op);
        const std::span<std::byte> piece = remaining_piece(*op);
        op->in_flight_ = true;
        send_in_flight_ = true;
        transport_.async_send(*connection_, std::as_bytes(piece),
                              [self = this->shared_from_this(), op, requested = piece.size()](
                                  std::error_code error, std::size_t bytes) {
                                  self->send_done(op, error, bytes, requested);
                              });
    }

    void send_done(const OpPtr& op, std::error_code error, std::size_t bytes,
                   std::size_t requested) {
        Completions completions;
        {
            std::unique_lock lock(mutex_);
            FAULTLINE_ASSERT(send_queue_.front() == op);
            op->in_flight_ = false;
            send_in_flight_ = false;
            if (error) {
                send_queue_.pop_front();
                complete(op, error, 0, false, completions);
            } else {
                FAULTLINE_ASSERT(bytes >= 1 && bytes <= requested);
                op->done_ += bytes;
                const bool short_take = profile_.stream_send_may_be_partial && bytes < requested;
                if (op->done_ == op->total_ || short_take || op->cancel_requested_) {
                    send_queue_.pop_front();
                    complete(op, {}, op->done_, false, completions);
                }
            }
            pump_sends(completions);
        }
        run_callbacks(completions);
    }

    /// Serves the send queue in order until one operation has to wait for the transport.
    void pump_sends(Completions& completions) {
        while (!send_queue_.empty() && !send_in_flight_) {
            const OpPtr head = send_queue_.front();
            if (!connection_) {
                send_queue_.pop_front();
                complete(head, make_error_code(NetErrc::operation_aborted), 0, false,
                         completions);
                continue;
            }
            const Attempt attempt = attempt_send(*head);
            if (attempt.status == Status::would_block) {
                start_send(head);
                return;
            }
            send_queue_.pop_front();
            if (attempt.status == Status::done) {
                complete(head, {}, head->done_, false, completions);
            } else {
                complete(head, attempt.error, 0, false, completions);
            }
        }
    }

    // ---- receive engine -----------------------------------------------------------------------

    Attempt attempt_receive(Op& op) {
        const std::span<std::byte> piece = remaining_piece(op);
        Result<std::size_t> received = transport_.try_receive(*connection_, piece);
        if (received) {
            op.done_ += received.value();
            return {Status::done, {}};
        }
        if (received.error() == NetErrc::end_of_stream) {
            return {Status::done, {}};
        }
        if (received.error() == NetErrc::would_block) {
            return {Status::would_block, {}};
        }
        return {Status::failed, received.error()};
    }

    void start_receive(const OpPtr& op) {
        FAULTLINE_ASSERT(!receive_in_flight_);
        op->in_flight_ = true;
        receive_in_flight_ = true;
        transport_.async_receive(*connection_, remaining_piece(*op),
                                 [self = this->shared_from_this(), op](std::error_code error,
                                                                       std::size_t bytes) {
                                     self->receive_done(op, error, bytes);
                                 });
    }

    void receive_done(const OpPtr& op, std::error_code error, std::size_t bytes) {
        Completions completions;
        {
            std::unique_lock lock(mutex_);
            FAULTLINE_ASSERT(receive_queue_.front() == op);
            op->in_flight_ = false;
            receive_in_flight_ = false;
            receive_queue_.pop_front();
            if (error && error != NetErrc::end_of_stream) {
                complete(op, error, 0, false, completions);
            } else {
                op->done_ += bytes;
                complete(op, {}, op->done_, false, completions);
            }
            while (!receive_queue_.empty() && !receive_in_flight_) {
                const OpPtr head = receive_queue_.front();
                const Attempt attempt = connection_ ? attempt_receive(*head)
                                                    : Attempt{Status::failed,
                                                              NetErrc::operation_aborted};
                if (attempt.status == Status::would_block) {
                    start_receive(head);
                    break;
                }
                receive_queue_.pop_front();
                complete(head, attempt.error, attempt.error ? 0 : head->done_, false, completions);
            }
        }
        run_callbacks(completions);
    }

    // ---- accept and connect engines -----------------------------------------------------------

    [[nodiscard]] bool bound_or_connected() const {
        std::unique_lock lock(mutex_);
        return bound_.has_value() || listener_.has_value() || connection_.has_value() || disposed_;
    }

    /// the accepted connection goes into the caller's AcceptSocket when one was supplied,
    /// else into a new Socket of the listener's kind.
    std::shared_ptr<Socket> adopt_into(const std::shared_ptr<Socket>& supplied,
                                       ConnectionId connection) {
        if (!supplied) {
            return adopt(connection);
        }
        std::unique_lock lock(supplied->mutex_);
        supplied->connection_ = connection;
        supplied->connected_ = true;
        supplied->blocking_ = blocking_;
        return supplied;
    }

    /// Fills `e` with an accept's results and, when `raise`, runs its Completed handlers with
    /// this listener as sender.
    void complete_args(const std::shared_ptr<SocketAsyncEventArgs<T>>& e, std::error_code error,
                       int bytes, const std::shared_ptr<Socket>& accepted, bool raise) {
        std::optional<Endpoint> remote;
        bool set_socket = true;
        std::shared_ptr<Socket> socket = accepted;
        if (!error && accepted) {
            remote = accepted->RemoteEndPoint();
        } else if (profile_.accept_socket_precreated && !e->AcceptSocket()) {
            socket = Create(transport_, profile_);  // Windows pre-creates the socket
        } else {
            set_socket = false;  // Unix leaves what the caller set
        }
        const auto handlers = e->finish(to_socket_error(error), bytes, remote, socket, set_socket);
        if (raise) {
            const std::shared_ptr<Socket> sender = this->shared_from_this();
            for (const auto& handler : handlers) {
                handler(sender, e);
            }
        } else if (mutant(Mutant::accept_completed_after_sync_return)) {
            // Planted bug: a synchronous completion raises Completed too, after AcceptAsync
            // returned false (A-2 says it never does).
            transport_.post([sender = this->shared_from_this(), e, handlers] {
                for (const auto& handler : handlers) {
                    handler(sender, e);
                }
            });
        }
    }

    /// The pending AcceptAsync's accept finished (on a pool thread).
    void accept_args_done(const OpPtr& op, const std::shared_ptr<SocketAsyncEventArgs<T>>& e,
                          const std::shared_ptr<Socket>& supplied, std::size_t data_wanted) {
        std::shared_ptr<Socket> accepted;
        std::error_code error;
        {
            std::unique_lock lock(op->mutex_);
            error = op->error_;
            accepted = op->accepted_;
        }
        if (!error && supplied) {
            // Move the connection from the fresh socket into the caller's.
            std::unique_lock lock(accepted->mutex_);
            const ConnectionId connection = *accepted->connection_;
            accepted->connection_.reset();
            accepted->connected_ = false;
            accepted->disposed_ = true;
            lock.unlock();
            std::unique_lock listener_lock(mutex_);
            accepted = adopt_into(supplied, connection);
        }
        if (!error && data_wanted > 0) {
            accepted->receive_on_accept(this->shared_from_this(), e, data_wanted);
            return;
        }
        complete_args(e, error, 0, error ? nullptr : accepted, true);
    }

    /// A-9 (documented): the accept completes once `wanted` bytes have arrived after the
    /// address space of `e`'s buffer, or resets the connection when the profile's timeout ends.
    void receive_on_accept(const std::shared_ptr<Socket>& listener,
                           const std::shared_ptr<SocketAsyncEventArgs<T>>& e, std::size_t wanted) {
        struct Progress {
            std::size_t received = 0;
            bool finished = false;
        };
        auto progress = std::make_shared<Progress>();
        const Buffer buffer = e->GetBuffer();
        const std::span<std::byte> target =
            std::span<std::byte>(*buffer).subspan(
                static_cast<std::size_t>(e->Offset()) + std::size_t{kAcceptAddressBytes}, wanted);
        auto self = this->shared_from_this();
        auto finish = [self, listener, e, progress](std::error_code error) {
            // Called with self->mutex_ held and progress->finished just set.
            return [self, listener, e, progress, error] {
                listener->complete_args(e, error,
                                        error ? 0 : static_cast<int>(progress->received),
                                        error ? nullptr : self, true);
            };
        };
        auto receive_more = std::make_shared<std::function<void()>>();
        *receive_more = [self, progress, target, finish, receive_more, buffer] {
            self->transport_.async_receive(
                *self->connection_, target.subspan(progress->received),
                [self, progress, target, finish, receive_more, buffer](std::error_code error,
                                                                       std::size_t bytes) {
                    Task done;
                    {
                        std::unique_lock lock(self->mutex_);
                        if (progress->finished) {
                            return;
                        }
                        progress->received += bytes;
                        if (!error && progress->received < target.size()) {
                            (*receive_more)();
                            return;
                        }
                        progress->finished = true;
                        *receive_more = nullptr;  // breaks the self-reference
                        const bool ended = !error || error == NetErrc::end_of_stream;
                        done = finish(ended ? std::error_code{} : error);
                    }
                    done();
                });
        };
        // Giving up (the timeout, or the listener disposed, A-6) aborts the accepted connection.
        auto give_up = [self, progress, finish, receive_more](std::error_code why) {
            Task done;
            {
                std::unique_lock inner(self->mutex_);
                if (progress->finished) {
                    return;
                }
                progress->finished = true;
                *receive_more = nullptr;
                self->transport_.abort(*self->connection_);
                self->connection_.reset();
                self->connected_ = false;
                self->disposed_ = true;
                done = finish(why);
            }
            done();
        };
        {
            std::unique_lock listener_lock(listener->mutex_);
            if (listener->disposed_) {
                transport_.post([give_up] { give_up(make_error_code(NetErrc::operation_aborted)); });
                return;
            }
            listener->data_waits_.push_back(
                [give_up] { give_up(make_error_code(NetErrc::operation_aborted)); });
        }
        std::unique_lock lock(mutex_);
        (*receive_more)();
        // "If a timeout occurs, the connection is reset."
        transport_.post_after(profile_.accept_receive_timeout, [give_up] {
            give_up(make_error_code(NetErrc::connection_reset));
        });
    }

    std::shared_ptr<Socket> adopt(ConnectionId connection) {
        auto accepted = Create(transport_, profile_);
        accepted->connection_ = connection;
        accepted->connected_ = true;
        accepted->blocking_ = blocking_;
        accepted->wait_budget_ = wait_budget_;
        return accepted;
    }

    void start_accept(const OpPtr& op) {
        op->in_flight_ = true;
        transport_.async_accept(*listener_, [self = this->shared_from_this(), op](
                                                std::error_code error, ConnectionId connection) {
            self->accept_done(op, error, connection);
        });
    }

    void accept_done(const OpPtr& op, std::error_code error, ConnectionId connection) {
        Completions completions;
        {
            std::unique_lock lock(mutex_);
            FAULTLINE_ASSERT(accept_queue_.front() == op);
            op->in_flight_ = false;
            if (error == NetErrc::connection_reset && !profile_.accept_reports_half_open_reset &&
                listener_ && !op->cancel_requested_) {
                // A half-open scan the platform hides from the application: keep waiting.
                start_accept(op);
                return;
            }
            accept_queue_.pop_front();
            if (!error && disposed_) {
                transport_.close(connection);
                error = make_error_code(NetErrc::operation_aborted);
            }
            if (!error) {
                op->accepted_ = adopt(connection);
            }
            complete(op, error, 0, false, completions);
            while (!accept_queue_.empty()) {
                const OpPtr head = accept_queue_.front();
                if (!listener_) {
                    accept_queue_.pop_front();
                    complete(head, make_error_code(NetErrc::operation_aborted), 0, false,
                             completions);
                    continue;
                }
                Result<ConnectionId> accepted = transport_.try_accept(*listener_);
                if (!accepted && accepted.error() == NetErrc::would_block) {
                    start_accept(head);
                    break;
                }
                accept_queue_.pop_front();
                if (accepted) {
                    head->accepted_ = adopt(accepted.value());
                }
                complete(head, accepted.error(), 0, false, completions);
            }
        }
        run_callbacks(completions);
    }

    void connect_done(const OpPtr& op, std::error_code error, ConnectionId connection) {
        Completions completions;
        {
            std::unique_lock lock(mutex_);
            op->in_flight_ = false;
            connect_op_.reset();
            if (!error && (disposed_ || op->cancel_requested_)) {
                transport_.close(connection);
                error = make_error_code(NetErrc::operation_aborted);
            }
            if (!error) {
                connection_ = connection;
                connected_ = true;
            }
            complete(op, error, 0, false, completions);
        }
        run_callbacks(completions);
    }

    T& transport_;
    const Profile profile_;
    mutable typename T::Mutex mutex_;
    bool disposed_ = false;
    bool connected_ = false;
    bool shutdown_send_ = false;
    bool blocking_ = true;
    int send_timeout_ms_ = 0;
    Duration wait_budget_ = std::chrono::seconds(60);
    std::optional<Endpoint> bound_;
    std::optional<ListenerId> listener_;
    std::optional<ConnectionId> connection_;
    // Lists, not deques: an empty std::list allocates nothing, and most sockets of a large
    // simulation never queue anything (libstdc++'s deque allocates ~600 B up front).
    std::list<OpPtr> send_queue_;
    std::list<OpPtr> receive_queue_;
    std::list<OpPtr> accept_queue_;
    OpPtr connect_op_;
    std::vector<Task> data_waits_;  // receive-on-accept waits to abort if this listener closes
    bool send_in_flight_ = false;
    bool receive_in_flight_ = false;
};

}  // namespace faultline::model
