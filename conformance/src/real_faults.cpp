#include "faultline/conformance/real_faults.h"

#include <algorithm>

namespace faultline::conformance {

using model::ConnectionId;
using model::NetErrc;

namespace {

std::uint32_t key(ConnectionId connection) { return model::to_underlying(connection); }

}  // namespace

RealFaults::RealFaults(real::RealTransport& transport, std::vector<sim::Fault> faults)
    : transport_(transport), faults_(std::move(faults)) {}

// Timed-fault tasks capture `this`: the driver destroys the transport (dropping pending tasks)
// before this object.
RealFaults::~RealFaults() = default;

std::optional<std::string> RealFaults::unsupported_reason(const std::vector<sim::Fault>& faults) {
    for (const sim::Fault& fault : faults) {
        switch (fault.kind) {
            case sim::FaultKind::latency:
                return "latency faults need the simulated network: loopback has no honest way "
                       "to add delay";
            case sim::FaultKind::bandwidth:
                return "bandwidth faults need the simulated network: loopback cannot be "
                       "throttled without privileges";
            case sim::FaultKind::half_open_scan:
                return "a half-open scan never reaches accept on Linux: the kernel keeps the "
                       "embryonic connection in its SYN queue and drops it on the RST";
            case sim::FaultKind::partial_send:
            case sim::FaultKind::would_block:
            case sim::FaultKind::reset:
            case sim::FaultKind::close:
            case sim::FaultKind::stall: break;
        }
    }
    return std::nullopt;
}

bool RealFaults::matches(const sim::Fault& fault, const End& end) const {
    return fault.side == end.side && (!fault.connection || *fault.connection == end.pair);
}

void RealFaults::register_end(ConnectionId connection, sim::Side side,
                              std::optional<std::uint32_t> pair) {
    End end;
    end.side = side;
    end.pair = pair.value_or(UINT32_MAX);
    ends_[key(connection)] = end;
    // Timed faults due from the start apply to this end as soon as it exists.
    for (const sim::Fault& fault : faults_) {
        if (!fault.at || !matches(fault, end)) {
            continue;
        }
        const model::Duration delay = *fault.at - transport_.now().time_since_epoch();
        transport_.post_after(std::max(delay, model::Duration::zero()), [this, connection, fault] {
            std::unique_lock lock(mutex_);
            auto found = ends_.find(key(connection));
            if (found == ends_.end() || found->second.killed) {
                return;
            }
            if (fault.kind == sim::FaultKind::reset) {
                kill_other_end(connection);
            } else if (fault.kind == sim::FaultKind::close) {
                found->second.killed = true;
                found->second.killed_send_error = model::make_error_code(NetErrc::broken_pipe);
                transport_.close(connection);
            } else if (fault.kind == sim::FaultKind::stall) {
                lock.unlock();
                start_stall(connection, fault.duration);
            }
        });
    }
}

model::Result<ConnectionId> RealFaults::try_accept(model::ListenerId listener) {
    model::Result<ConnectionId> accepted = transport_.try_accept(listener);
    if (accepted) {
        std::unique_lock lock(mutex_);
        const auto client = transport_.find_peer(accepted.value());
        std::optional<std::uint32_t> pair;
        if (client && ends_.count(key(*client)) != 0) {
            pair = ends_[key(*client)].pair;
        }
        register_end(accepted.value(), sim::Side::server, pair);
    }
    return accepted;
}

void RealFaults::async_accept(model::ListenerId listener, model::ConnectHandler handler) {
    transport_.async_accept(listener, [this, handler = std::move(handler)](
                                          std::error_code error, ConnectionId connection) {
        if (!error) {
            std::unique_lock lock(mutex_);
            const auto client = transport_.find_peer(connection);
            std::optional<std::uint32_t> pair;
            if (client && ends_.count(key(*client)) != 0) {
                pair = ends_[key(*client)].pair;
            }
            register_end(connection, sim::Side::server, pair);
        }
        handler(error, connection);
    });
}

void RealFaults::async_connect(const model::Endpoint& endpoint, model::ConnectHandler handler) {
    std::uint32_t pair = 0;
    {
        std::unique_lock lock(mutex_);
        pair = pairs_++;
    }
    transport_.async_connect(endpoint, [this, pair, handler = std::move(handler)](
                                           std::error_code error, ConnectionId connection) {
        if (!error) {
            std::unique_lock lock(mutex_);
            register_end(connection, sim::Side::client, pair);
        }
        handler(error, connection);
    });
}

void RealFaults::kill_other_end(ConnectionId connection) {
    const auto other = transport_.find_peer(connection);
    if (!other) {
        return;
    }
    auto found = ends_.find(key(*other));
    if (found != ends_.end()) {
        if (found->second.killed) {
            return;
        }
        found->second.killed = true;
        found->second.killed_send_error = model::make_error_code(NetErrc::connection_reset);
    }
    // SO_LINGER {1, 0}: the kernel sends a real RST to `connection`.
    transport_.abort(*other);
}

std::span<const std::byte> RealFaults::shape_send(End& end, ConnectionId connection,
                                                  std::span<const std::byte> bytes) {
    if (bytes.empty()) {
        return bytes;  // a zero-length probe is not a send call
    }
    std::size_t cap = bytes.size();
    for (const sim::Fault& fault : faults_) {
        if (!matches(fault, end)) {
            continue;
        }
        if (fault.kind == sim::FaultKind::partial_send &&
            (!fault.on_send || *fault.on_send == end.send_calls + 1)) {
            cap = std::min<std::size_t>(cap, std::max<std::uint64_t>(1, fault.bytes));
        }
        if (fault.kind == sim::FaultKind::reset && fault.on_send &&
            *fault.on_send == end.send_calls + 1) {
            kill_other_end(connection);
        }
        if (fault.kind == sim::FaultKind::reset && fault.after_bytes) {
            if (end.sent >= *fault.after_bytes) {
                kill_other_end(connection);
            } else {
                cap = std::min<std::size_t>(cap, *fault.after_bytes - end.sent);
            }
        }
    }
    return bytes.first(cap);
}

void RealFaults::note_would_block(End& end) {
    const std::uint64_t call = end.send_calls + 1;
    if (end.would_block_noted == call) {
        return;  // one hold-back per call, however often it was tried
    }
    end.would_block_noted = call;
    if (end.pair == UINT32_MAX) {
        ++seam_.unpaired_cuts;
        return;
    }
    seam_.would_blocks.push_back({end.side, end.pair, call});
}

RealFaults::Seam RealFaults::seam() const {
    std::unique_lock lock(mutex_);
    return seam_;
}

void RealFaults::after_send(ConnectionId connection, std::size_t bytes, std::size_t asked) {
    std::unique_lock lock(mutex_);
    auto found = ends_.find(key(connection));
    if (found == ends_.end()) {
        return;
    }
    End& end = found->second;
    ++end.send_calls;
    end.sent += bytes;
    ++seam_.send_calls;
    seam_.largest_send = std::max(seam_.largest_send, bytes);
    seam_.largest_total = std::max(seam_.largest_total, end.sent);
    if (bytes < asked) {
        if (end.pair == UINT32_MAX) {
            ++seam_.unpaired_cuts;
        } else {
            seam_.partial_sends.push_back({end.side, end.pair, end.send_calls, asked, bytes});
        }
    }
    for (const sim::Fault& fault : faults_) {
        if (matches(fault, end) && fault.kind == sim::FaultKind::reset && fault.after_bytes &&
            end.sent >= *fault.after_bytes) {
            kill_other_end(connection);
        }
    }
}

model::Result<std::size_t> RealFaults::try_send(ConnectionId connection,
                                                std::span<const std::byte> bytes) {
    std::span<const std::byte> shaped = bytes;
    {
        std::unique_lock lock(mutex_);
        auto found = ends_.find(key(connection));
        if (found != ends_.end()) {
            End& end = found->second;
            if (end.killed) {
                return end.killed_send_error;
            }
            if (!bytes.empty() && end.would_block_call != end.send_calls + 1) {
                for (const sim::Fault& fault : faults_) {
                    if (fault.kind == sim::FaultKind::would_block && matches(fault, end) &&
                        fault.on_send && *fault.on_send == end.send_calls + 1) {
                        end.would_block_call = end.send_calls + 1;
                        note_would_block(end);
                        return NetErrc::would_block;
                    }
                }
            }
            shaped = shape_send(end, connection, bytes);
        }
    }
    model::Result<std::size_t> sent = transport_.try_send(connection, shaped);
    if (!sent && sent.error() == NetErrc::would_block && !bytes.empty()) {
        std::unique_lock lock(mutex_);
        auto found = ends_.find(key(connection));
        if (found != ends_.end()) {
            note_would_block(found->second);  // the kernel's: its buffer was full
        }
    }
    if (sent && !bytes.empty()) {
        after_send(connection, sent.value(), bytes.size());
    }
    return sent;
}

void RealFaults::async_send(ConnectionId connection, std::span<const std::byte> bytes,
                            model::IoHandler handler) {
    std::span<const std::byte> shaped = bytes;
    {
        std::unique_lock lock(mutex_);
        auto found = ends_.find(key(connection));
        if (found != ends_.end()) {
            if (found->second.killed) {
                transport_.post([handler = std::move(handler),
                                 error = found->second.killed_send_error] { handler(error, 0); });
                return;
            }
            shaped = shape_send(found->second, connection, bytes);
        }
    }
    transport_.async_send(connection, shaped,
                          [this, connection, asked = bytes.size(),
                           handler = std::move(handler)](std::error_code error, std::size_t sent) {
                              if (!error) {
                                  after_send(connection, sent, asked);
                              }
                              handler(error, sent);
                          });
}

model::Result<std::size_t> RealFaults::try_receive(ConnectionId connection,
                                                   std::span<std::byte> buffer) {
    {
        std::unique_lock lock(mutex_);
        auto found = ends_.find(key(connection));
        if (found != ends_.end()) {
            if (found->second.killed) {
                return NetErrc::operation_aborted;  // its application closed the socket
            }
            if (found->second.stalled) {
                return NetErrc::would_block;
            }
        }
    }
    return transport_.try_receive(connection, buffer);
}

void RealFaults::async_receive(ConnectionId connection, std::span<std::byte> buffer,
                               model::IoHandler handler) {
    std::unique_lock lock(mutex_);
    auto found = ends_.find(key(connection));
    if (found != ends_.end()) {
        End& end = found->second;
        if (end.killed) {
            transport_.post([handler = std::move(handler)] {
                handler(model::make_error_code(NetErrc::operation_aborted), 0);
            });
            return;
        }
        if (end.stalled) {
            end.receive_held = true;
            end.held_buffer = buffer;
            end.held_handler = std::move(handler);
            return;
        }
        end.receive_pending = true;
    }
    transport_.async_receive(
        connection, buffer,
        [this, connection, buffer, handler = std::move(handler)](std::error_code error,
                                                                 std::size_t bytes) mutable {
            std::unique_lock inner(mutex_);
            auto end = ends_.find(key(connection));
            if (end != ends_.end()) {
                end->second.receive_pending = false;
                if (error == NetErrc::operation_aborted && end->second.swallow_abort) {
                    // Cancelled by a stall: hold it until the stall ends.
                    end->second.swallow_abort = false;
                    end->second.receive_held = true;
                    end->second.held_buffer = buffer;
                    end->second.held_handler = std::move(handler);
                    return;
                }
                end->second.swallow_abort = false;
            }
            inner.unlock();
            handler(error, bytes);
        });
}

void RealFaults::start_stall(ConnectionId connection, std::optional<model::Duration> duration) {
    std::unique_lock lock(mutex_);
    auto found = ends_.find(key(connection));
    if (found == ends_.end() || found->second.killed) {
        return;
    }
    found->second.stalled = true;
    if (found->second.receive_pending) {
        found->second.swallow_abort = true;
        transport_.cancel_receive(connection);
    }
    if (duration) {
        transport_.post_after(*duration, [this, connection] { end_stall(connection); });
    }
}

void RealFaults::end_stall(ConnectionId connection) {
    std::unique_lock lock(mutex_);
    auto found = ends_.find(key(connection));
    if (found == ends_.end()) {
        return;
    }
    End& end = found->second;
    end.stalled = false;
    if (end.receive_held && !end.killed) {
        end.receive_held = false;
        const std::span<std::byte> buffer = end.held_buffer;
        model::IoHandler handler = std::move(end.held_handler);
        lock.unlock();
        async_receive(connection, buffer, std::move(handler));
    }
}

void RealFaults::cancel_send(ConnectionId connection) { transport_.cancel_send(connection); }

void RealFaults::cancel_receive(ConnectionId connection) {
    std::unique_lock lock(mutex_);
    auto found = ends_.find(key(connection));
    if (found != ends_.end() && found->second.receive_held) {
        found->second.receive_held = false;
        transport_.post([handler = std::move(found->second.held_handler)] {
            handler(model::make_error_code(NetErrc::operation_aborted), 0);
        });
        return;
    }
    if (found != ends_.end() && found->second.killed) {
        return;
    }
    transport_.cancel_receive(connection);
}

void RealFaults::shutdown(ConnectionId connection, model::ShutdownHow how) {
    {
        std::unique_lock lock(mutex_);
        auto found = ends_.find(key(connection));
        if (found != ends_.end() && found->second.killed) {
            return;
        }
    }
    transport_.shutdown(connection, how);
}

bool RealFaults::forget_end(ConnectionId connection) {
    std::unique_lock lock(mutex_);
    auto found = ends_.find(key(connection));
    if (found == ends_.end()) {
        return false;
    }
    const bool killed = found->second.killed;
    if (found->second.receive_held) {
        transport_.post([handler = std::move(found->second.held_handler)] {
            handler(model::make_error_code(NetErrc::operation_aborted), 0);
        });
    }
    ends_.erase(found);
    return killed;
}

void RealFaults::close(ConnectionId connection) {
    if (!forget_end(connection)) {
        transport_.close(connection);
    }
}

void RealFaults::abort(ConnectionId connection) {
    if (!forget_end(connection)) {
        transport_.abort(connection);
    }
}

}  // namespace faultline::conformance
