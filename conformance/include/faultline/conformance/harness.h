// Harness<T>: runs one scenario's workload over any Transport, under one profile: a peer that
// accepts and reads, client sockets, the scenario's logical threads and their steps; then checks
// each step's expectations and the oracle's invariants. The same code runs on sim and real; the
// drivers (run.h) add what only a transport can do (faults, time, thread exits).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "faultline/conformance/condition.h"
#include "faultline/conformance/oracle.h"
#include "faultline/conformance/harness_options.h"
#include "faultline/conformance/scenario.h"
#include "faultline/conformance/smtp_harness.h"
#include "faultline/model/socket.h"

namespace faultline::conformance {

/// The bytes of the buffer belonging to operation `id`: distinct per operation, so the oracle can
/// tell whose bytes the peer received. Byte `index` is pattern_byte_from(pattern_seed(id), index).
inline std::uint32_t pattern_seed(const std::string& id) {
    std::uint32_t hash = 2166136261U;
    for (const char character : id) {
        hash = (hash ^ static_cast<unsigned char>(character)) * 16777619U;
    }
    return hash;
}

inline std::byte pattern_byte_from(std::uint32_t seed, std::size_t index) {
    return static_cast<std::byte>((seed + index * 131U + (index >> 8U)) & 0xffU);
}

inline model::Buffer pattern_buffer(const std::string& id, std::size_t length) {
    auto buffer = std::make_shared<std::vector<std::byte>>(length);
    const std::uint32_t seed = pattern_seed(id);
    for (std::size_t i = 0; i < length; ++i) {
        (*buffer)[i] = pattern_byte_from(seed, i);
    }
    return buffer;
}

/// An IAsyncResult not made by any Socket (S-6 "foreign").
class ForeignAsyncResult final : public model::IAsyncResult {
public:
    [[nodiscard]] const std::any& AsyncState() const override { return state_; }
    [[nodiscard]] bool IsCompleted() const override { return true; }
    [[nodiscard]] bool CompletedSynchronously() const override { return true; }

private:
    std::any state_;
};

/// The peer the client sockets talk to: accepts every connection and reads (or not) per the
/// scenario. Built on the raw Transport, never on Socket, so it is not the code under test.
template <model::Transport T>
class Peer {
public:
    struct Connection {
        model::ConnectionId id{};
        model::Endpoint remote;
        std::vector<std::byte> received;
        std::string saw = "open";  // "eof", "reset", "aborted", "open"
        bool closed = false;
        std::vector<std::byte> buffer;
        model::Buffer outgoing;
        std::size_t outgoing_sent = 0;
    };

    Peer(T& transport, const PeerSpec& spec)
        : transport_(transport), spec_(spec), changed_(transport) {}

    bool start() {
        auto listener = transport_.listen(model::Endpoint::loopback(0), 64);
        if (!listener) {
            return false;
        }
        listener_ = listener.value();
        endpoint_ = transport_.local_endpoint(*listener_);
        arm_accept();
        return true;
    }

    [[nodiscard]] model::Endpoint endpoint() const { return endpoint_; }

    /// Blocks the calling thread until `ready()` holds (checked under the peer's lock) or the
    /// budget runs out; returns ready().
    bool wait_until(const std::function<bool()>& ready, model::Duration budget) {
        std::unique_lock lock(mutex_);
        return changed_.wait_until(lock, ready, budget);
    }

    /// The connections; only inside a wait_until predicate (the lock is held there).
    [[nodiscard]] const std::vector<std::shared_ptr<Connection>>& connections_locked() const {
        return connections_;
    }

    /// Runs `body` under the peer's lock (for reading connection state).
    template <typename F>
    auto inspect(F&& body) {
        std::unique_lock lock(mutex_);
        return body(connections_);
    }

    void stop() {
        std::unique_lock lock(mutex_);
        stopping_ = true;
        if (listener_) {
            transport_.close(*listener_);
            listener_.reset();
        }
        for (auto& connection : connections_) {
            if (!connection->closed) {
                connection->closed = true;
                transport_.close(connection->id);
            }
        }
    }

private:
    void notify_locked() { changed_.notify(); }

    void arm_accept() {
        transport_.async_accept(*listener_, [this](std::error_code error,
                                                   model::ConnectionId id) { accepted(error, id); });
    }

    void accepted(std::error_code error, model::ConnectionId id) {
        std::unique_lock lock(mutex_);
        if (error || stopping_) {
            if (!error) {
                transport_.close(id);
            } else if (!stopping_ && error != model::NetErrc::operation_aborted) {
                arm_accept();  // e.g. a half-open scan reset the connection it was waiting for
            }
            return;
        }
        auto connection = std::make_shared<Connection>();
        connection->id = id;
        connection->remote = transport_.remote_endpoint(id);
        connection->buffer.resize(static_cast<std::size_t>(spec_.read_chunk_bytes));
        connections_.push_back(connection);
        if (spec_.send_bytes > 0) {
            connection->outgoing = pattern_buffer("peer", static_cast<std::size_t>(spec_.send_bytes));
            send_more(connection);
        }
        if (spec_.read) {
            if (spec_.read_after_ns > 0) {
                transport_.post_after(model::Duration(static_cast<std::int64_t>(spec_.read_after_ns)),
                                      [this, connection] {
                                          std::unique_lock inner(mutex_);
                                          receive_more(connection);
                                      });
            } else {
                receive_more(connection);
            }
        }
        arm_accept();
        notify_locked();
    }

    void send_more(const std::shared_ptr<Connection>& connection) {
        if (connection->closed || connection->outgoing_sent >= connection->outgoing->size()) {
            return;
        }
        transport_.async_send(
            connection->id,
            std::span<const std::byte>(*connection->outgoing).subspan(connection->outgoing_sent),
            [this, connection](std::error_code error, std::size_t bytes) {
                std::unique_lock lock(mutex_);
                if (!error) {
                    connection->outgoing_sent += bytes;
                    send_more(connection);
                }
            });
    }

    void receive_more(const std::shared_ptr<Connection>& connection) {
        if (connection->closed) {
            return;
        }
        transport_.async_receive(connection->id, connection->buffer,
                                 [this, connection](std::error_code error, std::size_t bytes) {
                                     received(connection, error, bytes);
                                 });
    }

    void received(const std::shared_ptr<Connection>& connection, std::error_code error,
                  std::size_t bytes) {
        std::unique_lock lock(mutex_);
        if (connection->closed) {
            return;
        }
        if (error) {
            if (error == model::NetErrc::end_of_stream) {
                connection->saw = "eof";
            } else if (error == model::NetErrc::operation_aborted) {
                connection->saw = "aborted";
            } else {
                connection->saw = "reset";
            }
            connection->closed = true;
            transport_.close(connection->id);
            notify_locked();
            return;
        }
        connection->received.insert(connection->received.end(), connection->buffer.begin(),
                                    connection->buffer.begin() + static_cast<std::ptrdiff_t>(bytes));
        const std::size_t total = connection->received.size();
        if (spec_.reset_after_bytes && total >= *spec_.reset_after_bytes) {
            connection->closed = true;
            connection->saw = "aborted";
            transport_.abort(connection->id);
        } else if (spec_.close_after_bytes && total >= *spec_.close_after_bytes) {
            connection->closed = true;
            connection->saw = "closed";
            transport_.close(connection->id);
        } else {
            receive_more(connection);
        }
        notify_locked();
    }

    T& transport_;
    PeerSpec spec_;
    typename T::Mutex mutex_;
    std::optional<model::ListenerId> listener_;
    model::Endpoint endpoint_;
    bool stopping_ = false;
    std::vector<std::shared_ptr<Connection>> connections_;
    Condition<T> changed_;
};

template <model::Transport T>
class Harness {
public:
    Harness(T& transport, const Scenario& scenario, const model::Profile& profile,
            HarnessOptions options)
        : transport_(transport),
          scenario_(scenario),
          profile_(profile),
          options_(std::move(options)),
          peer_(transport, scenario.peer) {}

    /// The whole run. Call it on a logical thread of the transport; it blocks until the
    /// scenario's threads finish and the run settles.
    void run() {
        plan_recorded_schedule();
        if (set_up()) {
            run_threads();
        }
        settle();
        check_completion_order();
    }

    [[nodiscard]] const std::vector<std::string>& failures() const { return failures_; }

private:
    /// The peer listens and every socket connects (unless the scenario connects by itself).
    bool set_up() {
        if (!peer_.start()) {
            fail("/", "the peer could not listen");
            return false;
        }
        if (scenario_.smtp) {
            smtp_ = std::make_unique<SmtpHarness<T>>(
                transport_, scenario_, profile_, options_,
                [this](const std::string& pointer, const std::string& message) {
                    fail(pointer, message);
                },
                [this](std::string_view name, const std::string& detail) { record(name, detail); });
            if (!smtp_->start()) {
                return false;
            }
        }
        for (const std::string& name : scenario_.sockets) {
            auto socket = model::Socket<T>::Create(transport_, profile_);
            socket->SetWaitBudget(options_.wait_budget);
            sockets_[name] = socket;
        }
        if (scenario_.connect != "peer") {
            return true;
        }
        for (const auto& [name, socket] : sockets_) {
            try {
                socket->Connect(peer_.endpoint());
            } catch (const std::exception& error) {
                fail("/sockets", "connecting " + name + " failed: " + error.what());
                return false;
            }
        }
        const std::size_t count = sockets_.size();
        if (!peer_.wait_until([&] { return peer_.connections_locked().size() >= count; },
                              options_.wait_budget)) {
            fail("/sockets", "the peer did not accept every socket");
            return false;
        }
        map_peers();
        return true;
    }

    struct OpRecord {
        std::string id;
        std::string socket;
        bool send = true;
        std::shared_ptr<model::AsyncResult<T>> result;
        model::AsyncResultPtr plain_result;
        std::vector<std::byte> data;  // what a full send would put on the wire
        // send_all pieces refer to the loop's buffer instead of copying their bytes into
        // `data` (a copy per piece is quadratic when every send is partial): the bytes are
        // shared->[shared_offset, shared_offset + shared_size).
        model::Buffer shared;
        std::size_t shared_offset = 0;
        std::size_t shared_size = 0;
        std::atomic<int> callbacks{0};
        std::atomic<bool> begin_returned{false};
        std::atomic<bool> callback_before_return{false};
        model::ThreadId initiator{};
        std::string callback_mode;
        bool accept = false;
        const Step* step = nullptr;
        std::optional<Observation> callback_observation;
        std::uint64_t begin_order = 0;
    };

    /// One SocketAsyncEventArgs of the scenario, with what the oracle needs to know about it.
    struct ArgsRecord {
        std::string name;
        std::shared_ptr<model::SocketAsyncEventArgs<T>> args;
        std::shared_ptr<model::Socket<T>> supplied;  // the last AcceptSocket the steps set
        int true_returns = 0;                        // guarded by ops_mutex_
        int completions = 0;                         // guarded by ops_mutex_
        std::shared_ptr<model::Socket<T>> listener;  // of the last AcceptAsync
        bool sender_mismatch = false;
        bool reused_while_busy = false;
    };

    struct Connector {
        model::ConnectionId id{};
        model::Endpoint local;
        bool finished = false;
        std::error_code error;
    };

    void fail(const std::string& pointer, const std::string& message) {
        std::unique_lock lock(failures_mutex_);
        failures_.push_back(pointer + ": " + message);
    }

    void record(std::string_view name, const std::string& detail) {
        if (options_.record) {
            options_.record(name, detail);
        }
    }

    /// "/threads/T/steps/S" as (T, S).
    static std::optional<std::pair<std::size_t, std::size_t>> step_position(
        const std::string& pointer) {
        unsigned long thread = 0;
        unsigned long step = 0;
        int used = 0;
        if (std::sscanf(pointer.c_str(), "/threads/%lu/steps/%lu%n", &thread, &step, &used) != 2 ||
            static_cast<std::size_t>(used) != pointer.size()) {
            return std::nullopt;
        }
        return std::pair<std::size_t, std::size_t>{thread, step};
    }

    /// When replaying a recording with a schedule: for every step, how many steps of each other
    /// thread had started, then how many had ended, on the recorded run before it started (one
    /// vector of 2 x threads counts). Empty otherwise.
    void plan_recorded_schedule() {
        if (!scenario_.recorded || !scenario_.recorded->schedule ||
            scenario_.recorded->profile != profile_.name) {
            return;
        }
        const std::size_t threads = scenario_.threads.size();
        std::vector<std::size_t> started(threads, 0);
        std::vector<std::size_t> ended(threads, 0);
        for (const std::string& event : *scenario_.recorded->schedule) {
            const auto position = step_position(event.substr(1));
            if (!position || position->first >= threads) {
                continue;
            }
            const std::size_t thread = position->first;
            const std::size_t count = position->second + 1;
            if (event[0] == '-') {
                ended[thread] = std::max(ended[thread], count);
                continue;
            }
            // Before this step: steps of other threads that had started, and that had ended.
            std::vector<std::size_t> before = started;
            before.insert(before.end(), ended.begin(), ended.end());
            before[thread] = 0;  // its own thread is in order by itself
            before[threads + thread] = 0;
            schedule_before_[event.substr(1)] = std::move(before);
            started[thread] = std::max(started[thread], count);
        }
        steps_started_.assign(threads, 0);
        steps_ended_.assign(threads, 0);
    }

    /// Waits (within the wait budget) until every step that started, and every one that ended,
    /// before this one started on the recorded run has done so here too: real threads'
    /// interleaving, replayed at step granularity.
    void follow_recorded_schedule(const std::string& pointer) {
        const auto found = schedule_before_.find(pointer);
        if (found == schedule_before_.end()) {
            return;
        }
        const std::vector<std::size_t>& before = found->second;
        std::unique_lock lock(threads_mutex_);
        const bool followed = schedule_changed_.wait_until(
            lock,
            [&] {
                const std::size_t threads = steps_ended_.size();
                for (std::size_t t = 0; t < threads; ++t) {
                    if (steps_started_[t] < before[t] || steps_ended_[t] < before[threads + t]) {
                        return false;
                    }
                }
                return true;
            },
            options_.wait_budget);
        if (!followed) {
            lock.unlock();
            fail(pointer, "diverges from the recorded " + scenario_.recorded->transport +
                              " run: the steps that started or ended before this one there did "
                              "not here within the wait budget");
        }
    }

    /// A step started (`counts` = steps_started_) or ended (steps_ended_) on a replay that
    /// follows a recorded schedule.
    void step_reached(const std::string& pointer, std::vector<std::size_t>& counts) {
        if (schedule_before_.empty()) {
            return;
        }
        const auto position = step_position(pointer);
        std::unique_lock lock(threads_mutex_);
        if (position && position->first < counts.size()) {
            counts[position->first] = position->second + 1;
        }
        schedule_changed_.notify();
    }

    /// A replay of a recording ran its completions in the recorded order.
    void check_completion_order() {
        if (!scenario_.recorded || !scenario_.recorded->completion_order ||
            scenario_.recorded->profile != profile_.name) {
            return;
        }
        std::unique_lock lock(failures_mutex_);
        const std::vector<std::string>& expected = *scenario_.recorded->completion_order;
        if (completion_order_ == expected) {
            return;
        }
        std::size_t at = 0;
        while (at < expected.size() && at < completion_order_.size() &&
               expected[at] == completion_order_[at]) {
            ++at;
        }
        const auto nth = [](const std::vector<std::string>& order, std::size_t i) {
            return i < order.size() ? "\"" + order[i] + "\"" : std::string("nothing");
        };
        failures_.push_back("/recorded/completion_order: diverges from the recorded " +
                            scenario_.recorded->transport + " run at completion " +
                            std::to_string(at + 1) + ": recorded " + nth(expected, at) +
                            ", this run " + nth(completion_order_, at));
    }

    /// A callback or Completed event ran: kept in order when the run is recorded or replays a
    /// recording.
    void completed(const std::string& what) {
        record("completed", what);  // the end of the operation's span in a timeline
        if (options_.completion) {
            options_.completion(what);
        }
        if (scenario_.recorded && scenario_.recorded->completion_order) {
            std::unique_lock lock(failures_mutex_);
            completion_order_.push_back(what);
        }
    }

    /// The recording's observation for `pointer` when this run replays a recording under its
    /// profile, else null.
    const Expectation* recorded_at(const std::string& pointer) const {
        if (!scenario_.recorded || scenario_.recorded->profile != profile_.name) {
            return nullptr;
        }
        const auto found = scenario_.recorded->steps.find(pointer);
        return found == scenario_.recorded->steps.end() ? nullptr : &found->second;
    }

    /// Hands the observation to the driver and compares it with the recording, if any.
    void observed(const std::string& pointer, const Observation& observation) {
        if (options_.observe) {
            options_.observe(pointer, observation);
        }
        if (const Expectation* recorded = recorded_at(pointer)) {
            const std::string difference = mismatch(*recorded, observation);
            if (!difference.empty()) {
                fail(pointer, "diverges from the recorded " + scenario_.recorded->transport +
                                  " run: " + difference);
            }
        }
    }

    void run_threads() {
        std::vector<model::ThreadId> ids;
        for (const ThreadSpec& spec : scenario_.threads) {
            const model::ThreadId id = transport_.spawn(spec.name, [this, &spec] {
                run_thread(spec);
                std::unique_lock lock(threads_mutex_);
                ++threads_finished_;
                threads_done_.notify();
            });
            ids.push_back(id);
            if (spec.exit_at_ns && options_.schedule_thread_exit) {
                options_.schedule_thread_exit(
                    id, model::Duration(static_cast<std::int64_t>(*spec.exit_at_ns)));
            }
        }
        // Threads told to exit mid-step never reach the counter: watch their exit instead.
        for (std::size_t i = 0; i < ids.size(); ++i) {
            if (scenario_.threads[i].exit_at_ns) {
                static_cast<void>(transport_.on_thread_exit(ids[i], [this] {
                    std::unique_lock lock(threads_mutex_);
                    ++threads_exited_;
                    threads_done_.notify();
                }));
            }
        }
        const std::size_t expected = scenario_.threads.size();
        std::unique_lock lock(threads_mutex_);
        if (!threads_done_.wait_until(
                lock, [&] { return threads_finished_ + threads_exited_ >= expected; },
                options_.settle_budget)) {
            fail("/threads", "threads did not finish within the settle budget (liveness)");
        }
    }

    void run_thread(const ThreadSpec& spec) {
        for (const Step& step : spec.steps) {
            follow_recorded_schedule(step.pointer);
            step_reached(step.pointer, steps_started_);
            if (options_.schedule) {
                options_.schedule("+" + step.pointer);
            }
            execute(step);
            if (options_.schedule) {
                options_.schedule("-" + step.pointer);
            }
            step_reached(step.pointer, steps_ended_);
            if (spec.exit_after_step && step.id == *spec.exit_after_step) {
                record("thread_exit_fault", spec.name);
                return;
            }
        }
    }

    /// The named socket; an empty name (a scenario built in code) means the first one.
    std::shared_ptr<model::Socket<T>> socket(const std::string& name) {
        return sockets_.at(name.empty() ? scenario_.sockets.front() : name);
    }

    std::shared_ptr<OpRecord> find_op(const std::string& id) {
        std::unique_lock lock(ops_mutex_);
        auto found = ops_.find(id);
        return found == ops_.end() ? nullptr : found->second;
    }

    model::AsyncResultPtr resolve_target(const Step& step) {
        if (step.target == "null") {
            return nullptr;
        }
        if (step.target == "foreign") {
            return std::make_shared<ForeignAsyncResult>();
        }
        auto op = find_op(step.target);
        if (!op) {
            fail(step.pointer, "target \"" + step.target + "\" has not been started");
            return nullptr;
        }
        return op->plain_result;
    }

    model::AsyncCallback make_callback(const std::shared_ptr<OpRecord>& op) {
        if (op->callback_mode == "none") {
            return nullptr;
        }
        // A raw pointer: ops_ owns every record for the harness's lifetime, and a shared_ptr here
        // would form a cycle (record -> result -> callback -> record).
        return [this, op = op.get()](const model::AsyncResultPtr& result) {
            if (!op->begin_returned.load()) {
                op->callback_before_return = true;
            }
            if (op->callback_mode == "end" || op->callback_mode == "end_out") {
                Observation observation;
                observe([&] {
                    auto owner = socket(op->socket);
                    if (op->callback_mode == "end" && op->accept) {
                        const auto accepted = owner->EndAccept(result);
                        record_accepted(accepted);
                        observation.accept_socket = accepted && accepted->Connected()
                                                        ? "connected"
                                                        : "unconnected";
                    } else if (op->callback_mode == "end") {
                        observation.returned = op->send ? owner->EndSend(result)
                                                        : owner->EndReceive(result);
                    } else {
                        model::SocketError error{};
                        observation.returned = owner->EndSend(result, error);
                        observation.out_error = error;
                    }
                }, observation);
                op->callback_observation = observation;
            }
            completed(!op->id.empty() || op->step == nullptr ? op->id : op->step->pointer);
            ++op->callbacks;
            std::unique_lock lock(ops_mutex_);
            ops_changed_.notify();
        };
    }

    template <typename F>
    void observe(F&& body, Observation& observation) {
        try {
            body();
        } catch (const model::ArgumentException& error) {
            observation.threw = std::string(error.type_name());
            observation.param = error.param_name();
        } catch (const model::SocketException& error) {
            observation.threw = std::string(error.type_name());
            observation.socket_error = error.SocketErrorCode();
            observation.error_code = error.ErrorCode();
        } catch (const model::DotnetException& error) {
            observation.threw = std::string(error.type_name());
        } catch (const model::LivenessFailure&) {
            observation.threw = "LivenessFailure";
        }
    }

    std::shared_ptr<OpRecord> new_op(const Step& step, bool send) {
        return new_op(step, step.id, send);
    }

    /// An operation of `step` under its own id (a send_all piece is "<id>.<round>").
    std::shared_ptr<OpRecord> new_op(const Step& step, const std::string& id, bool send) {
        auto op = std::make_shared<OpRecord>();
        op->id = id;
        op->socket = step.socket.empty() ? scenario_.sockets.front() : step.socket;
        op->send = send;
        op->callback_mode = step.callback;
        op->step = &step;
        op->initiator = transport_.current_thread();
        std::unique_lock lock(ops_mutex_);
        op->begin_order = begin_counter_++;
        ops_[id] = op;
        return op;
    }

    void finish_begin(const std::shared_ptr<OpRecord>& op, const model::AsyncResultPtr& result,
                      Observation& observation) {
        op->plain_result = result;
        op->result = std::dynamic_pointer_cast<model::AsyncResult<T>>(result);
        op->begin_returned = true;
        observation.returned_null = result == nullptr;
        if (result) {
            observation.completed_synchronously = result->CompletedSynchronously();
            observation.is_completed = result->IsCompleted();
            observation.callback_before_return = op->callback_before_return.load();
        }
    }

    void begin_send(const Step& step, Observation& observation) {
        // The oracle orders sends by the order BeginSend was entered: on real sockets two threads
        // could otherwise number their sends in one order and enqueue them in the other.
        std::unique_lock begin_lock(begin_mutex_);
        auto op = new_op(step, true);
        auto owner = socket(step.socket);
        model::AsyncResultPtr result;
        if (step.overload == "list" || step.overload == "list_out") {
            std::shared_ptr<std::vector<model::ArraySegment>> list;
            if (!step.null_list) {
                list = std::make_shared<std::vector<model::ArraySegment>>();
                std::size_t index = 0;
                for (const Segment& segment : step.segments) {
                    model::ArraySegment built;
                    const std::string segment_id = step.id + "#" + std::to_string(index++);
                    if (!segment.null_array) {
                        built.array = pattern_buffer(segment_id,
                                                     static_cast<std::size_t>(segment.array_length));
                        if (segment.offset >= 0 && segment.count >= 0 &&
                            segment.offset + segment.count <= segment.array_length) {
                            op->data.insert(op->data.end(), built.array->begin() + segment.offset,
                                            built.array->begin() + segment.offset + segment.count);
                        }
                    }
                    built.offset = segment.offset;
                    built.count = segment.count;
                    list->push_back(built);
                }
            }
            record("begin_send", step.id);
            if (step.overload == "list") {
                result = owner->BeginSend(list, model::SocketFlags::None, make_callback(op), step.id);
            } else {
                model::SocketError error{};
                result = owner->BeginSend(list, model::SocketFlags::None, error, make_callback(op),
                                          step.id);
                observation.out_error = error;
            }
        } else {
            model::Buffer buffer;
            if (!step.null_buffer) {
                const int length = step.buffer_length.value_or(std::max(0, step.offset + step.size));
                buffer = pattern_buffer(step.id, static_cast<std::size_t>(length));
                if (step.offset >= 0 && step.size >= 0 && step.offset + step.size <= length) {
                    op->data.assign(buffer->begin() + step.offset,
                                    buffer->begin() + step.offset + step.size);
                }
            }
            record("begin_send", step.id);
            if (step.overload == "out") {
                model::SocketError error{};
                result = owner->BeginSend(buffer, step.offset, step.size, model::SocketFlags::None,
                                          error, make_callback(op), step.id);
                observation.out_error = error;
            } else {
                result = owner->BeginSend(buffer, step.offset, step.size, model::SocketFlags::None,
                                          make_callback(op), step.id);
            }
        }
        finish_begin(op, result, observation);
    }

    void begin_receive(const Step& step, Observation& observation) {
        auto op = new_op(step, false);
        auto owner = socket(step.socket);
        model::Buffer buffer;
        if (!step.null_buffer) {
            const int length = step.buffer_length.value_or(std::max(0, step.offset + step.size));
            buffer = std::make_shared<std::vector<std::byte>>(static_cast<std::size_t>(length));
        }
        record("begin_receive", step.id);
        const model::AsyncResultPtr result = owner->BeginReceive(
            buffer, step.offset, step.size, model::SocketFlags::None, make_callback(op), step.id);
        finish_begin(op, result, observation);
    }

    void send_all(const Step& step, Observation& observation) {
        auto owner = socket(step.socket);
        const std::string id = step.id.empty() ? step.pointer : step.id;
        const model::Buffer buffer = pattern_buffer(id, static_cast<std::size_t>(step.bytes));
        std::size_t offset = 0;
        std::size_t round = 0;
        while (offset < buffer->size()) {
            const std::size_t left = buffer->size() - offset;
            const auto size = static_cast<int>(step.chunk > 0 ? std::min<std::size_t>(left, static_cast<std::size_t>(step.chunk)) : left);
            std::string piece_id = id;
            piece_id += '.';
            piece_id += std::to_string(round++);
            std::unique_lock begin_lock(begin_mutex_);
            auto op = new_op(step, piece_id, true);
            op->shared = buffer;
            op->shared_offset = offset;
            op->shared_size = static_cast<std::size_t>(size);
            const model::AsyncResultPtr result =
                owner->BeginSend(buffer, static_cast<int>(offset), size, model::SocketFlags::None,
                                 make_callback(op), piece_id);
            finish_begin(op, result, observation);
            begin_lock.unlock();
            const int sent = owner->EndSend(result);
            if (sent <= 0) {
                fail(step.pointer, "EndSend returned " + std::to_string(sent) + " in send_all");
                break;
            }
            {
                // A completed piece needs only the bytes it sent for the oracle (copying the
                // whole remainder per piece made a run quadratic when every send is partial;
                // found by the fuzzer: 72 kB in 1-byte sends took 5 GB).
                const std::unique_lock trim_lock(begin_mutex_);
                op->shared_size = std::min(op->shared_size, static_cast<std::size_t>(sent));
            }
            offset += static_cast<std::size_t>(sent);
        }
        observation.returned = static_cast<std::int64_t>(offset);
        observation.completed_synchronously.reset();
        observation.is_completed.reset();
        observation.callback_before_return.reset();
        observation.returned_null.reset();
    }

    std::optional<std::size_t> peer_index_of(const std::string& socket_name) {
        auto owner = socket(socket_name);
        std::optional<model::Endpoint> local;
        try {
            local = owner->LocalEndPoint();
        } catch (const std::exception&) {
            return std::nullopt;
        }
        if (!local) {
            return std::nullopt;
        }
        return peer_.inspect([&](auto& connections) -> std::optional<std::size_t> {
            for (std::size_t i = 0; i < connections.size(); ++i) {
                if (connections[i]->remote.port == local->port) {
                    return i;
                }
            }
            return std::nullopt;
        });
    }

    std::shared_ptr<ArgsRecord> args_record(const std::string& name) {
        std::unique_lock lock(ops_mutex_);
        auto found = args_.find(name);
        return found == args_.end() ? nullptr : found->second;
    }

    void record_accepted(const std::shared_ptr<model::Socket<T>>& accepted) {
        if (!accepted) {
            return;
        }
        std::optional<model::Endpoint> remote;
        try {
            remote = accepted->RemoteEndPoint();
        } catch (const std::exception&) {
        }
        std::unique_lock lock(ops_mutex_);
        accepted_sockets_.push_back(accepted);
        if (remote) {
            accepted_remotes_.push_back(*remote);
        }
    }

    /// e's observable state, as accept steps and waits report it.
    void observe_args(const std::shared_ptr<ArgsRecord>& record, Observation& observation) {
        const auto& e = record->args;
        observation.args_error = e->SocketError();
        observation.bytes_transferred = e->BytesTransferred();
        const auto socket = e->AcceptSocket();
        if (!socket) {
            observation.accept_socket = "null";
        } else if (!socket->Connected()) {
            observation.accept_socket = "unconnected";
        } else {
            observation.accept_socket = socket == record->supplied ? "supplied" : "connected";
        }
        std::unique_lock lock(ops_mutex_);
        observation.completions = record->completions;
    }

    void args_new(const Step& step) {
        auto record = std::make_shared<ArgsRecord>();
        record->name = step.args;
        record->args = model::SocketAsyncEventArgs<T>::Create();
        std::weak_ptr<ArgsRecord> weak = record;
        record->args->AddCompleted([this, weak](const std::shared_ptr<model::Socket<T>>& sender,
                                                const std::shared_ptr<model::SocketAsyncEventArgs<T>>& e) {
            const auto owner = weak.lock();
            if (!owner) {
                return;
            }
            if (e->SocketError() == model::SocketError::Success) {
                record_accepted(e->AcceptSocket());
            }
            completed(owner->name);
            std::unique_lock lock(ops_mutex_);
            ++owner->completions;
            owner->sender_mismatch = owner->sender_mismatch || sender != owner->listener;
            ops_changed_.notify();
        });
        std::unique_lock lock(ops_mutex_);
        args_[step.args] = record;
    }

    void accept_async(const Step& step, Observation& observation) {
        auto owner = socket(step.socket);
        const auto record = step.args == "null" ? nullptr : args_record(step.args);
        int outstanding_before = 0;
        if (record) {
            std::unique_lock lock(ops_mutex_);
            outstanding_before = record->true_returns - record->completions;
            record->listener = owner;
        }
        record_event("accept_async", step.args);
        const bool pending = owner->AcceptAsync(record ? record->args : nullptr);
        observation.pending = pending;
        std::unique_lock lock(ops_mutex_);
        if (outstanding_before > 0 &&
            record->completions + outstanding_before == record->true_returns) {
            record->reused_while_busy = true;  // A-12: a busy args was accepted again
        }
        if (pending) {
            ++record->true_returns;
        }
        lock.unlock();
        if (!pending) {
            if (record->args->SocketError() == model::SocketError::Success) {
                record_accepted(record->args->AcceptSocket());
            }
            observe_args(record, observation);
        }
    }

    void client_connect(const Step& step, Observation& observation) {
        auto listener = socket(step.socket);
        model::Endpoint endpoint = *listener->LocalEndPoint();
        if (endpoint.address == 0) {
            endpoint.address = model::Endpoint::loopback(0).address;
        }
        std::vector<std::shared_ptr<Connector>> started;
        for (int i = 0; i < step.count; ++i) {
            auto connector = std::make_shared<Connector>();
            {
                std::unique_lock lock(ops_mutex_);
                connectors_.push_back(connector);
            }
            started.push_back(connector);
            transport_.async_connect(endpoint, [this, connector](std::error_code error,
                                                                 model::ConnectionId id) {
                std::unique_lock lock(ops_mutex_);
                connector->finished = true;
                connector->error = error;
                if (!error) {
                    connector->id = id;
                    connector->local = transport_.local_endpoint(id);
                }
                ops_changed_.notify();
            });
        }
        std::unique_lock lock(ops_mutex_);
        if (step.wait) {
            const bool finished = ops_changed_.wait_until(
                lock,
                [&] {
                    return std::all_of(started.begin(), started.end(),
                                       [](const auto& c) { return c->finished; });
                },
                options_.wait_budget);
            if (!finished) {
                throw model::LivenessFailure("client_connect ran out of budget");
            }
        }
        int connected = 0;
        for (const auto& connector : started) {
            connected += connector->finished && !connector->error ? 1 : 0;
        }
        observation.clients_connected = connected;
        if (step.bytes > 0) {
            // Data for receive-on-accept: one immediate write per client (it fits any buffer).
            const model::Buffer data = pattern_buffer(step.pointer, static_cast<std::size_t>(step.bytes));
            for (const auto& connector : started) {
                if (connector->finished && !connector->error) {
                    static_cast<void>(transport_.try_send(connector->id, *data));
                }
            }
        }
    }

    void record_event(std::string_view name, const std::string& detail) { record(name, detail); }

    /// Accept steps that are not plain socket calls; false if `step` is not one of them.
    bool execute_accept_step(const Step& step, Observation& observation) {
        auto owner = socket(step.socket);
        switch (step.op) {
            case StepOp::bind:
                owner->Bind(model::Endpoint{step.address == "0.0.0.0" ? 0U : 0x7f000001U, 0});
                return true;
            case StepOp::listen: owner->Listen(step.backlog); return true;
            case StepOp::args_new: args_new(step); return true;
            case StepOp::args_set_buffer: {
                const auto record = args_record(step.args);
                model::Buffer buffer;
                if (!step.null_buffer) {
                    const int length = step.buffer_length.value_or(std::max(0, step.offset + step.size));
                    buffer = std::make_shared<std::vector<std::byte>>(static_cast<std::size_t>(length));
                }
                record->args->SetBuffer(buffer, step.offset, step.size);
                return true;
            }
            case StepOp::args_set_buffer_list: {
                const auto record = args_record(step.args);
                std::shared_ptr<std::vector<model::ArraySegment>> list;
                if (!step.null_list) {
                    list = std::make_shared<std::vector<model::ArraySegment>>();
                    list->push_back({std::make_shared<std::vector<std::byte>>(16), 0, 16});
                }
                record->args->SetBufferList(list);
                return true;
            }
            case StepOp::args_set_accept_socket: {
                const auto record = args_record(step.args);
                record->supplied = step.target == "null" ? nullptr : socket(step.target);
                record->args->AcceptSocket(record->supplied);
                return true;
            }
            case StepOp::args_dispose: args_record(step.args)->args->Dispose(); return true;
            case StepOp::accept_async: accept_async(step, observation); return true;
            case StepOp::wait_args: {
                const auto record = args_record(step.args);
                std::unique_lock lock(ops_mutex_);
                const bool done = ops_changed_.wait_until(
                    lock, [&] { return record->completions >= record->true_returns; },
                    options_.wait_budget);
                lock.unlock();
                if (!done) {
                    throw model::LivenessFailure("wait_args ran out of budget");
                }
                observe_args(record, observation);
                return true;
            }
            case StepOp::client_connect: client_connect(step, observation); return true;
            case StepOp::begin_accept: {
                auto op = new_op(step, false);
                op->accept = true;
                record("begin_accept", step.id);
                finish_begin(op, owner->BeginAccept(make_callback(op), step.id), observation);
                return true;
            }
            case StepOp::end_accept: {
                const model::AsyncResultPtr target = resolve_target(step);
                record("end_accept", step.target);
                const auto accepted = owner->EndAccept(target);
                record_accepted(accepted);
                observation.accept_socket = accepted && accepted->Connected() ? "connected"
                                                                              : "unconnected";
                return true;
            }
            default: return false;
        }
    }

    void execute(const Step& step) {
        Observation observation;
        auto owner = socket(step.socket);
        observe(
            [&] {
                if (smtp_ && smtp_->execute(step, observation)) {
                    return;
                }
                if (execute_accept_step(step, observation)) {
                    return;
                }
                switch (step.op) {
                    case StepOp::begin_send: begin_send(step, observation); break;
                    case StepOp::begin_receive: begin_receive(step, observation); break;
                    case StepOp::end_send:
                    case StepOp::end_receive: {
                        const model::AsyncResultPtr target = resolve_target(step);
                        record(step.op == StepOp::end_send ? "end_send" : "end_receive",
                               step.target);
                        if (step.overload == "out") {
                            model::SocketError error{};
                            observation.returned = owner->EndSend(target, error);
                            observation.out_error = error;
                        } else if (step.op == StepOp::end_send) {
                            observation.returned = owner->EndSend(target);
                        } else {
                            observation.returned = owner->EndReceive(target);
                        }
                        break;
                    }
                    case StepOp::send_all: send_all(step, observation); break;
                    case StepOp::wait_completed: {
                        auto op = find_op(step.target);
                        if (!op || !op->result) {
                            fail(step.pointer, "nothing to wait for");
                            break;
                        }
                        if (!op->result->Wait(options_.wait_budget)) {
                            throw model::LivenessFailure("wait_completed ran out of budget");
                        }
                        observation.is_completed = true;
                        break;
                    }
                    case StepOp::wait_peer: {
                        const auto index = peer_index_of(step.socket);
                        const std::uint64_t bytes = step.bytes;
                        const bool reached = index && peer_.wait_until(
                            [&] {
                                const auto& connection = *peer_.connections_locked()[*index];
                                return connection.received.size() >= bytes || connection.closed;
                            },
                            options_.wait_budget);
                        if (!reached) {
                            throw model::LivenessFailure("wait_peer ran out of budget");
                        }
                        break;
                    }
                    case StepOp::sleep: {
                        typename T::Event never;
                        typename T::Mutex mutex;
                        std::unique_lock lock(mutex);
                        static_cast<void>(transport_.wait(
                            never, lock, model::Duration(static_cast<std::int64_t>(step.ns))));
                        break;
                    }
                    case StepOp::shutdown:
                        owner->Shutdown(step.how == "send"      ? model::SocketShutdown::Send
                                        : step.how == "receive" ? model::SocketShutdown::Receive
                                                                : model::SocketShutdown::Both);
                        break;
                    case StepOp::dispose: owner->Dispose(); break;
                    case StepOp::check: break;
                    case StepOp::connect: {
                        const model::Endpoint endpoint =
                            step.to == "peer"          ? peer_.endpoint()
                            : step.to == "refused"     ? options_.refused_endpoint
                            : step.to == "unreachable" ? options_.unreachable_endpoint
                                                       : options_.silent_endpoint;
                        owner->Connect(endpoint);
                        break;
                    }
                    default: break;  // accept steps ran above
                }
            },
            observation);
        observation.connected = owner->Connected();
        record("step_result", step.pointer + " " + observation.describe());
        observed(step.pointer, observation);
        check_step(step.pointer, step.expect, observation, "");
    }

    void check_step(const std::string& pointer, const ProfileExpectations& expectations,
                    const Observation& observation, const std::string& what) {
        const ExpectationSet* set = select(expectations);
        const std::string mismatch =
            set != nullptr ? match_any(*set, observation) : match_any({Expectation{}}, observation);
        if (!mismatch.empty()) {
            fail(pointer, what + mismatch);
        }
    }

    const ExpectationSet* select(const ProfileExpectations& expectations) const {
        auto found = expectations.find(std::string(profile_.name));
        if (found == expectations.end()) {
            found = expectations.find("*");
        }
        return found == expectations.end() ? nullptr : &found->second;
    }

    /// After the threads: dispose every socket (as a process exit would), let every pending
    /// operation complete, then check the oracle's invariants.
    void settle() {
        if (smtp_) {
            auto global = scenario_.expect.find(std::string(profile_.name));
            if (global == scenario_.expect.end()) {
                global = scenario_.expect.find("*");
            }
            smtp_->settle(global == scenario_.expect.end() ? nullptr : &global->second);
        }
        // Sockets connected by a step are mapped now, before Dispose hides their endpoints.
        for (const auto& [name, owner] : sockets_) {
            if (!peer_socket_index_[name]) {
                std::optional<model::Endpoint> local;
                try {
                    // Only sockets connected to the peer (not, say, accepted ones) have a match.
                    const auto remote = owner->Connected() ? owner->RemoteEndPoint() : std::nullopt;
                    if (remote && remote->port == peer_.endpoint().port) {
                        local = owner->LocalEndPoint();
                    }
                } catch (const std::exception&) {
                }
                if (local) {
                    const std::uint16_t port = local->port;
                    peer_.wait_until(
                        [&] {
                            const auto& connections = peer_.connections_locked();
                            return std::any_of(connections.begin(), connections.end(),
                                               [&](const auto& c) { return c->remote.port == port; });
                        },
                        options_.wait_budget);
                    peer_socket_index_[name] = peer_index_of(name);
                }
            }
        }
        for (auto& [name, owner] : sockets_) {
            owner->Dispose();
        }
        settle_accepts();
        std::vector<std::shared_ptr<OpRecord>> all;
        {
            std::unique_lock lock(ops_mutex_);
            for (auto& [id, op] : ops_) {
                all.push_back(op);
            }
        }
        for (auto& op : all) {
            if (op->result && !op->result->Wait(options_.settle_budget)) {
                fail(op->step->pointer, "operation " + op->id + " never completed (liveness)");
            }
        }
        // Callbacks run after completion on the pool: wait until each has had its turn (the
        // oracle then reports any that never ran, or ran twice).
        {
            std::unique_lock lock(ops_mutex_);
            static_cast<void>(ops_changed_.wait_until(
                lock,
                [&] {
                    return std::all_of(all.begin(), all.end(), [](const auto& op) {
                        return !op->result || op->callback_mode == "none" ||
                               op->callbacks.load() > 0;
                    });
                },
                options_.settle_budget));
        }
        if (scenario_.peer.read) {
            peer_.wait_until(
                [&] {
                    const auto& connections = peer_.connections_locked();
                    return std::all_of(connections.begin(), connections.end(),
                                       [](const auto& c) { return c->closed; });
                },
                options_.settle_budget);
        }
        check_invariants(all);
        peer_.stop();
    }

    /// With the listeners disposed every pending accept completes (OperationAborted); then the
    /// accept invariants: Completed exactly once per true return and never after a false one
    /// (A-2), the listener as sender (A-13), never two operations on one args (A-12), no
    /// connection accepted twice.
    void settle_accepts() {
        std::unique_lock lock(ops_mutex_);
        static_cast<void>(ops_changed_.wait_until(
            lock,
            [&] {
                return std::all_of(args_.begin(), args_.end(), [](const auto& item) {
                    return item.second->completions >= item.second->true_returns;
                });
            },
            options_.settle_budget));
        std::uint64_t completions = 0;
        for (const auto& [name, record] : args_) {
            completions += static_cast<std::uint64_t>(record->completions);
            if (record->completions != record->true_returns) {
                fail("oracle", "args " + name + ": Completed fired " +
                                   std::to_string(record->completions) + " times for " +
                                   std::to_string(record->true_returns) +
                                   " pending AcceptAsync calls (A-2)");
            }
            if (record->sender_mismatch) {
                fail("oracle", "args " + name + ": Completed's sender was not the listener (A-13)");
            }
            if (record->reused_while_busy) {
                fail("oracle", "args " + name + ": AcceptAsync accepted it while busy (A-12)");
            }
        }
        std::vector<model::Endpoint> remotes = accepted_remotes_;
        std::sort(remotes.begin(), remotes.end());
        if (std::adjacent_find(remotes.begin(), remotes.end()) != remotes.end()) {
            fail("oracle", "a client connection was accepted twice");
        }
        auto global = scenario_.expect.find(std::string(profile_.name));
        if (global == scenario_.expect.end()) {
            global = scenario_.expect.find("*");
        }
        if (global != scenario_.expect.end()) {
            if (global->second.accepted && remotes.size() != *global->second.accepted) {
                fail("/expect/accepted", "accepted " + std::to_string(remotes.size()) +
                                             " connections, expected " +
                                             std::to_string(*global->second.accepted));
            }
            if (global->second.completions && completions != *global->second.completions) {
                fail("/expect/completions", "Completed fired " + std::to_string(completions) +
                                                " times, expected " +
                                                std::to_string(*global->second.completions));
            }
        }
        const auto accepted = accepted_sockets_;
        const auto connectors = connectors_;
        lock.unlock();
        for (const auto& socket : accepted) {
            socket->Dispose();
        }
        for (const auto& connector : connectors) {
            if (connector->finished && !connector->error) {
                transport_.close(connector->id);
            }
        }
    }

    void check_invariants(const std::vector<std::shared_ptr<OpRecord>>& all) {
        std::vector<OpView> views;
        for (const auto& op : all) {
            OpView view;
            view.id = op->id;
            view.pointer = op->step->pointer;
            view.socket = op->socket;
            view.send = op->send;
            view.began = op->plain_result != nullptr;
            view.has_callback = op->callback_mode != "none";
            view.callbacks = op->callbacks.load();
            view.callback_before_return = op->callback_before_return.load();
            view.begin_order = op->begin_order;
            if (op->shared) {
                const auto first =
                    op->shared->begin() + static_cast<std::ptrdiff_t>(op->shared_offset);
                view.data.assign(first, first + static_cast<std::ptrdiff_t>(op->shared_size));
            } else {
                view.data = op->data;
            }
            if (op->result) {
                const auto outcome = op->result->outcome();
                view.completed = outcome.completed;
                view.completed_synchronously = op->result->CompletedSynchronously();
                view.failed = static_cast<bool>(outcome.error);
                view.bytes = outcome.bytes;
            }
            views.push_back(std::move(view));
            if (op->callback_observation && op->step != nullptr) {
                observed(op->step->pointer + "/callback_expect", *op->callback_observation);
                check_step(op->step->pointer + "/callback_expect", op->step->callback_expect,
                           *op->callback_observation, "in callback: ");
            }
        }
        std::map<std::string, PeerView> peers;
        for (const auto& [name, owner] : sockets_) {
            static_cast<void>(owner);
            const auto index = peer_socket_index_.count(name) != 0 ? peer_socket_index_[name]
                                                                   : std::optional<std::size_t>{};
            if (!index) {
                continue;
            }
            peers[name] = peer_.inspect([&](auto& connections) {
                PeerView view;
                view.received = connections[*index]->received;
                view.saw = connections[*index]->saw;
                view.read_all = scenario_.peer.read && !scenario_.peer.close_after_bytes &&
                                !scenario_.peer.reset_after_bytes;
                return view;
            });
        }
        for (const std::string& failure : check_oracle(views, peers)) {
            fail("oracle", failure);
        }
        auto global = scenario_.expect.find(std::string(profile_.name));
        if (global == scenario_.expect.end()) {
            global = scenario_.expect.find("*");
        }
        if (global != scenario_.expect.end() && !peers.empty()) {
            const PeerView& first = peers.begin()->second;
            if (global->second.peer_received_bytes &&
                first.received.size() != *global->second.peer_received_bytes) {
                fail("/expect/peer_received_bytes",
                     "peer received " + std::to_string(first.received.size()) + " bytes, expected " +
                         std::to_string(*global->second.peer_received_bytes));
            }
            if (global->second.peer_saw) {
                const std::string saw = first.saw == "aborted" || first.saw == "closed"
                                            ? std::string("open")
                                            : first.saw;
                if (saw != *global->second.peer_saw) {
                    fail("/expect/peer_saw", "peer saw " + first.saw + ", expected " +
                                                 *global->second.peer_saw);
                }
            }
        }
    }

public:
    /// Maps each socket to its peer connection; called once sockets are connected.
    void map_peers() {
        for (const auto& [name, owner] : sockets_) {
            static_cast<void>(owner);
            peer_socket_index_[name] = peer_index_of(name);
        }
    }

private:
    T& transport_;
    const Scenario& scenario_;
    const model::Profile profile_;
    HarnessOptions options_;
    Peer<T> peer_;
    std::unique_ptr<SmtpHarness<T>> smtp_;
    std::map<std::string, std::shared_ptr<model::Socket<T>>> sockets_;
    std::map<std::string, std::optional<std::size_t>> peer_socket_index_;
    typename T::Mutex ops_mutex_;
    std::map<std::string, std::shared_ptr<OpRecord>> ops_;
    std::map<std::string, std::shared_ptr<ArgsRecord>> args_;
    std::vector<std::shared_ptr<Connector>> connectors_;
    std::vector<std::shared_ptr<model::Socket<T>>> accepted_sockets_;
    std::vector<model::Endpoint> accepted_remotes_;
    Condition<T> ops_changed_{transport_};
    std::uint64_t begin_counter_ = 0;
    typename T::Mutex threads_mutex_;
    Condition<T> threads_done_{transport_};
    Condition<T> schedule_changed_{transport_};              // guarded by threads_mutex_
    std::map<std::string, std::vector<std::size_t>> schedule_before_;  // set before threads
    std::vector<std::size_t> steps_started_;                 // per thread; threads_mutex_
    std::vector<std::size_t> steps_ended_;                   // per thread; threads_mutex_
    std::size_t threads_finished_ = 0;
    std::size_t threads_exited_ = 0;
    std::mutex failures_mutex_;
    std::mutex begin_mutex_;
    std::vector<std::string> failures_;
    std::vector<std::string> completion_order_;  // guarded by failures_mutex_
};

}  // namespace faultline::conformance
