// EchoServer<T>: a TCP echo server written against faultline's .NET-shaped Socket<T>, as a user
// would write one, so the same code runs on the simulated network and on Linux. It accepts with
// AcceptLoop<T> and echoes each connection with BeginReceive/EndReceive and a send-all loop over
// BeginSend/EndSend. Invariant: every byte received is sent back, in order, before the next
// receive. It does not limit connections or time out idle peers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "faultline/model/accept_loop.h"
#include "faultline/model/assert.h"
#include "faultline/model/exceptions.h"
#include "faultline/model/profile.h"
#include "faultline/model/socket.h"
#include "faultline/model/transport.h"

namespace faultline::examples {

/// What the server has done so far; for tests and logs.
struct EchoServerCounters {
    std::uint64_t accepted = 0;       // connections taken from the accept loop
    std::uint64_t bytes_echoed = 0;   // bytes EndSend reported sent back
    std::uint64_t closed_clean = 0;   // peer ended its stream; we closed after echoing everything
    std::uint64_t closed_error = 0;   // a receive or send failed, or Stop() cut the connection
    std::uint64_t accept_resets = 0;  // accepts reset by half-open scans (documented profile)
};

template <model::Transport T>
class EchoServer : public std::enable_shared_from_this<EchoServer<T>> {
    struct Token {};

public:
    using SocketPtr = std::shared_ptr<model::Socket<T>>;

    /// Bytes asked for per receive; also the most a single echo send carries.
    static constexpr int kReceiveBytes = 16 * 1024;

    /// A server on `transport` (which outlives it) whose sockets follow `profile`. Keep the
    /// pointer until WaitStopped() has returned true.
    [[nodiscard]] static std::shared_ptr<EchoServer> Create(
        T& transport, const model::Profile& profile = model::kDocumented) {
        return std::make_shared<EchoServer>(Token{}, transport, profile);
    }
    EchoServer(Token /*unused*/, T& transport, const model::Profile& profile)
        : transport_(transport), profile_(profile) {}
    EchoServer(const EchoServer&) = delete;
    EchoServer& operator=(const EchoServer&) = delete;
    ~EchoServer() = default;

    /// Binds `local` (port 0: any free port), listens and starts accepting; returns the bound
    /// endpoint. Throws SocketException if the address cannot be bound. Call once.
    model::Endpoint Start(const model::Endpoint& local, int backlog = 128) {
        listener_ = model::Socket<T>::Create(transport_, profile_);
        listener_->Bind(local);
        listener_->Listen(backlog);
        const model::Endpoint bound = *listener_->LocalEndPoint();
        // The server holds the loop, so the loop holds the server weakly (no cycle); should the
        // owner drop the server early, sockets accepted afterwards are closed at once.
        const std::weak_ptr<EchoServer> weak = this->weak_from_this();
        loop_ = model::AcceptLoop<T>::Create(
            listener_,
            [weak](SocketPtr accepted) {
                if (auto self = weak.lock()) {
                    self->accepted(std::move(accepted));
                } else {
                    accepted->Dispose();
                }
            },
            model::default_accept_error_policy,
            [weak](model::SocketError /*reason*/) {
                if (auto self = weak.lock()) {
                    self->loop_finished();
                }
            });
        // Under the documented profile I/O is cancelled when the thread that started it exits,
        // so every operation starts on a pool thread: the accept loop (whose handler then starts
        // each connection's first receive) is started by a task, not by the caller.
        transport_.post([loop = loop_] { loop->Start(); });
        return bound;
    }

    /// After Start() has returned: stops accepting and cuts every open connection (pending
    /// operations are aborted, so peers may see a reset). Safe from any thread and more than
    /// once. WaitStopped() tells when it is done.
    void Stop() {
        std::vector<SocketPtr> open;
        {
            std::unique_lock lock(mutex_);
            stopping_ = true;
            for (const auto& [id, connection] : connections_) {
                open.push_back(connection->socket);
            }
        }
        if (loop_) {
            loop_->Stop();
        }
        // Each connection notices the dispose in its own pending operation (or at its next
        // Begin*) and removes itself; see Connection::close.
        for (const SocketPtr& socket : open) {
            socket->Dispose();
        }
    }

    /// Blocks the calling thread until the accept loop has ended and every connection is closed,
    /// or until `budget` runs out (false). On sim, call it from a logical thread.
    [[nodiscard]] bool WaitStopped(model::Duration budget) {
        std::unique_lock lock(mutex_);
        return (loop_done_ && connections_.empty()) || transport_.wait(stopped_, lock, budget);
    }

    [[nodiscard]] EchoServerCounters counters() const {
        std::unique_lock lock(mutex_);
        return counters_;
    }

private:
    /// One accepted connection: receive up to kReceiveBytes, send them all back, repeat.
    struct Connection : std::enable_shared_from_this<Connection> {
        std::shared_ptr<EchoServer> server;
        std::uint64_t id = 0;
        SocketPtr socket;
        model::Buffer buffer = std::make_shared<std::vector<std::byte>>(kReceiveBytes);
        int received = 0;  // bytes in `buffer` from the last receive
        int sent = 0;      // how many of them have been echoed
        bool sending = false;
        bool closed = false;

        /// Starts operations until one is pending. S-4: an operation that completes inside its
        /// Begin* call has already run its callback there (which returned at once, see
        /// callback()); it is finished here, in a loop, so a peer whose bytes are always ready
        /// cannot grow the stack.
        void pump() {
            for (;;) {
                model::AsyncResultPtr result;
                try {
                    result = sending ? socket->BeginSend(buffer,
                                                         sent,
                                                         received - sent,
                                                         model::SocketFlags::None,
                                                         callback(),
                                                         {})
                                     : socket->BeginReceive(buffer,
                                                            0,
                                                            kReceiveBytes,
                                                            model::SocketFlags::None,
                                                            callback(),
                                                            {});
                } catch (const model::SocketException&) {
                    // S-3 (documented): a reset already known fails BeginSend/BeginReceive.
                    close(false);
                    return;
                } catch (const model::ObjectDisposedException&) {
                    close(false);  // Stop() disposed the socket between operations
                    return;
                }
                if (!result->CompletedSynchronously() || !finish_operation(result)) {
                    return;
                }
            }
        }

        /// The APM callback: runs inline when the operation completed synchronously (then
        /// pump() handles it) or later on a pool thread (then it continues the connection).
        model::AsyncCallback callback() {
            return [self = this->shared_from_this()](const model::AsyncResultPtr& result) {
                if (result->CompletedSynchronously()) {
                    return;
                }
                if (self->finish_operation(result)) {
                    self->pump();
                }
            };
        }

        /// Ends the completed operation; returns true if the connection goes on.
        bool finish_operation(const model::AsyncResultPtr& result) {
            try {
                if (sending) {
                    const int bytes = socket->EndSend(result);
                    // S-9: under the documented profile a stream send may take fewer bytes than
                    // asked, so the rest is sent again; dotnet-unix always reports them all.
                    FAULTLINE_ASSERT(bytes > 0 && bytes <= received - sent);
                    sent += bytes;
                    server->add_echoed(bytes);
                    sending = sent < received;
                    return true;
                }
                const int bytes = socket->EndReceive(result);
                if (bytes == 0) {
                    close(true);  // the peer ended its stream and has all its bytes back
                    return false;
                }
                received = bytes;
                sent = 0;
                sending = true;
                return true;
            } catch (const model::SocketException&) {
                // S-11 / S-16: a reset, or Stop() aborted the operation (documented profile).
                close(false);
            } catch (const model::ObjectDisposedException&) {
                close(false);  // S-16 (dotnet-unix): Stop() disposed the socket
            }
            return false;
        }

        /// Closes once: gracefully (FIN after the echoed bytes) when no operation is pending,
        /// which is always the case here, since only a finished operation leads to close().
        void close(bool clean) {
            if (closed) {
                return;
            }
            closed = true;
            socket->Dispose();
            server->connection_closed(id, clean);
        }
    };

    /// AcceptLoop handler: never concurrent with itself, on a pool thread (see Start).
    void accepted(SocketPtr socket) {
        auto connection = std::make_shared<Connection>();
        connection->server = this->shared_from_this();
        connection->socket = std::move(socket);
        {
            std::unique_lock lock(mutex_);
            ++counters_.accepted;
            if (stopping_) {
                lock.unlock();
                connection->socket->Dispose();  // accepted in the race with Stop()
                return;
            }
            connection->id = ++connection_id_last_;
            connections_.emplace(connection->id, connection);
        }
        connection->pump();
    }

    void add_echoed(int bytes) {
        std::unique_lock lock(mutex_);
        counters_.bytes_echoed += static_cast<std::uint64_t>(bytes);
    }

    void connection_closed(std::uint64_t id, bool clean) {
        std::shared_ptr<Connection> removed;  // released after the lock: it holds this server
        std::unique_lock lock(mutex_);
        const auto found = connections_.find(id);
        FAULTLINE_ASSERT(found != connections_.end());
        removed = std::move(found->second);
        connections_.erase(found);
        ++(clean ? counters_.closed_clean : counters_.closed_error);
        signal_if_stopped();
        lock.unlock();
    }

    void loop_finished() {
        std::unique_lock lock(mutex_);
        loop_done_ = true;
        counters_.accept_resets = loop_->counters().resets;
        signal_if_stopped();
    }

    /// Called with mutex_ held, as Transport::signal requires.
    void signal_if_stopped() {
        if (loop_done_ && connections_.empty()) {
            transport_.signal(stopped_);
        }
    }

    T& transport_;
    const model::Profile profile_;
    mutable typename T::Mutex mutex_;  // guards everything below
    SocketPtr listener_;
    std::shared_ptr<model::AcceptLoop<T>> loop_;
    std::map<std::uint64_t, std::shared_ptr<Connection>> connections_;
    std::uint64_t connection_id_last_ = 0;
    bool stopping_ = false;
    bool loop_done_ = false;
    EchoServerCounters counters_;
    typename T::Event stopped_;
};

}  // namespace faultline::examples
