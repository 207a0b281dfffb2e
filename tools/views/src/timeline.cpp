#include "faultline/views/timeline.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "trace_fields.h"

namespace faultline::views {
namespace {

using nlohmann::json;

using detail::field;
using detail::first_word;
using detail::text_of;

/// An integer field, or `otherwise` (absent, not an integer, out of range).
std::int64_t integer(const json& event, const char* key, std::int64_t otherwise = 0) {
    return detail::integer_field(event, key, otherwise);
}

/// Builds the timeline one trace line at a time.
class Builder {
public:
    Timeline take() {
        for (const auto& [key, index] : open_ops_) {
            static_cast<void>(key);
            timeline_.events[index].end_ns = timeline_.end_ns;
            timeline_.events[index].unfinished = true;
        }
        for (const auto* open : {&open_connections_, &open_threads_}) {
            for (const auto& [key, index] : *open) {
                static_cast<void>(key);
                timeline_.events[index].end_ns = timeline_.end_ns;
            }
        }
        return std::move(timeline_);
    }

    void add(const json& event) {
        const std::string ev = field(event, "ev");
        now_ = integer(event, "t", now_);
        seq_ = static_cast<std::uint64_t>(integer(event, "seq", static_cast<std::int64_t>(seq_)));
        timeline_.end_ns = std::max(timeline_.end_ns, now_);
        thread_ = field(event, "thread");
        if (ev == "world") {
            latency_ns_ = integer(event, "latency_ns", latency_ns_);
            instant(network_track(), "network settings", "net", event);
        } else if (ev == "scenario") {
            timeline_.scenario = field(event, "name");
            timeline_.profile = field(event, "profile");
        } else if (ev == "end") {
            timeline_.hash = field(event, "hash");
        } else if (ev == "api") {
            api(event);
        } else if (ev == "spawn") {
            const std::string name = field(event, "name");
            open_threads_[name] = span(thread_track(name), "thread " + name, "thread", event);
        } else if (ev == "thread_exit") {
            close(open_threads_, field(event, "name"));
            instant(here(), "exit", "thread", event);
        } else if (ev == "connect") {
            const std::size_t track = connection_track(field(event, "conn"), "client");
            open_connections_[field(event, "conn")] =
                span(track, "connection to " + field(event, "remote"), "conn", event);
        } else if (ev == "established") {
            const std::string conn = field(event, "conn");
            const std::string side = field(event, "side");
            const std::size_t track = connection_track(conn, side);
            if (side == "server") {
                open_connections_[conn] = span(track, "connection (accepted)", "conn", event);
            }
            instant(track, "established", "net", event);
        } else if (ev == "segment") {
            const std::string bytes = field(event, "bytes");
            message(field(event, "from"), field(event, "to"), bytes + " B", now_ - latency_ns_, now_);
            instant(connection_track(field(event, "to")), "segment " + bytes + " B", "net", event);
        } else if (ev == "fin") {
            message(field(event, "from"), field(event, "to"), "FIN", now_ - latency_ns_, now_);
            instant(connection_track(field(event, "to")), "FIN received", "net", event);
        } else if (ev == "rst") {
            if (event.contains("from")) {
                // Traced when sent; it arrives one latency later.
                message(field(event, "from"), field(event, "to"), "RST", now_, now_ + latency_ns_);
                instant(connection_track(field(event, "from")), "RST sent", "net", event);
            } else {
                instant(connection_track(field(event, "to")), "RST: " + field(event, "reason"),
                        "net", event);
            }
        } else if (ev == "send") {
            const std::string asked = field(event, "asked");
            const std::string bytes = field(event, "bytes");
            instant(connection_track(field(event, "conn")),
                    (asked == bytes ? "send " : "partial send ") + bytes + "/" + asked + " B",
                    "net", event);
        } else if (ev == "receive") {
            instant(connection_track(field(event, "conn")), "read " + field(event, "bytes") + " B",
                    "net", event);
        } else if (ev == "reset" || ev == "close" || ev == "abort" || ev == "shutdown" ||
                   ev == "connect_failed" || ev == "stall_end" || ev == "syn_dropped" ||
                   ev == "accept") {
            const std::string conn = field(event, "conn");
            std::string name = ev;
            if (ev == "reset" || ev == "connect_failed") {
                name += ": " + field(event, "error");
            } else if (ev == "shutdown") {
                name += " " + field(event, "how");
            }
            instant(connection_track(conn), name, ev == "accept" || ev == "stall_end" ? "net" : "conn",
                    event);
            if (ev == "close" || ev == "abort" || ev == "connect_failed") {
                close(open_connections_, conn);
            }
        } else if (ev == "fault") {
            const std::string kind = field(event, "kind");
            const bool on_connection = event.contains("conn");
            instant(on_connection ? connection_track(field(event, "conn")) : network_track(),
                    "fault " + kind, "fault", event);
            if (kind == "latency") {
                latency_ns_ = integer(event, "latency_ns", latency_ns_);
            }
        } else if (ev == "segment_refused") {
            instant(connection_track(field(event, "from")), "segment refused (peer closed)", "net",
                    event);
        } else if (ev == "wait_budget_exhausted") {
            instant(thread_track(field(event, "waiter")), "wait budget exhausted", "api", event);
        } else {
            // listen, close_listener, scan_syn, scan_rst, swarm, and any
            // event a later version adds: an instant where it happened.
            instant(here(), ev, ev.rfind("scan", 0) == 0 ? "fault" : "api", event);
        }
    }

private:
    std::size_t track(TrackKind kind, const std::string& name) {
        const auto found = tracks_.find(name);
        if (found != tracks_.end()) {
            return found->second;
        }
        timeline_.tracks.push_back(Track{kind, name});
        return tracks_[name] = timeline_.tracks.size() - 1;
    }
    std::size_t network_track() { return track(TrackKind::network, "network"); }
    std::size_t thread_track(const std::string& name) {
        return name == "sim" || name.empty() ? network_track() : track(TrackKind::thread, name);
    }
    /// The track of connection end `conn`; its side is known from connect/established.
    std::size_t connection_track(const std::string& conn, const std::string& side = "") {
        if (conn.empty()) {
            return here();
        }
        auto known = connection_names_.find(conn);
        if (known == connection_names_.end()) {
            known = connection_names_
                        .emplace(conn, "conn " + conn + (side.empty() ? "" : " (" + side + ")"))
                        .first;
        }
        return track(TrackKind::connection, known->second);
    }
    std::size_t here() { return thread_track(thread_); }

    static std::map<std::string, std::string> args_of(const json& event) {
        std::map<std::string, std::string> args;
        for (const auto& item : event.items()) {
            if (item.key() != "t" && item.key() != "seq" && item.key() != "ev") {
                args[item.key()] = text_of(item.value());
            }
        }
        return args;
    }

    std::size_t instant(std::size_t on, std::string name, std::string category, const json& event) {
        TimelineEvent added;
        added.track = on;
        added.name = std::move(name);
        added.category = std::move(category);
        added.start_ns = added.end_ns = now_;
        added.seq = seq_;
        added.args = args_of(event);
        timeline_.events.push_back(std::move(added));
        return timeline_.events.size() - 1;
    }
    std::size_t span(std::size_t on, std::string name, std::string category, const json& event) {
        const std::size_t index = instant(on, std::move(name), std::move(category), event);
        timeline_.events[index].instant = false;
        return index;
    }
    void close(std::map<std::string, std::size_t>& open, const std::string& key) {
        const auto found = open.find(key);
        if (found != open.end()) {
            timeline_.events[found->second].end_ns = now_;
            open.erase(found);
        }
    }
    void message(const std::string& from, const std::string& to, std::string name,
                 std::int64_t start, std::int64_t end) {
        TimelineFlow flow;
        flow.from_track = connection_track(from);
        flow.to_track = connection_track(to);
        flow.start_ns = std::max<std::int64_t>(start, 0);
        flow.end_ns = end;
        flow.name = std::move(name);
        timeline_.flows.push_back(std::move(flow));
    }

    /// api events: calls that begin an operation open a span on the calling thread, keyed by the
    /// operation's id; its callback or Completed event (api completed), or SendCompleted for a
    /// client's SendAsync, closes it. A step_result says whether an AcceptAsync completed
    /// synchronously (pending=false: no Completed follows, A-2).
    void api(const json& event) {
        const std::string call = field(event, "call");
        const std::string detail = field(event, "detail");
        if (call == "begin_send" || call == "begin_receive" || call == "begin_accept" ||
            call == "accept_async") {
            const std::string key = "op " + detail;
            close(open_ops_, key);
            open_ops_[key] = span(here(), call + " " + detail, "op", event);
            last_accept_async_[thread_] = call == "accept_async" ? key : std::string();
        } else if (call == "send_async" || call == "send_mail_async") {
            const std::string key = "smtp " + first_word(detail);
            close(open_ops_, key);
            open_ops_[key] = span(here(), call + " " + detail, "op", event);
        } else if (call == "completed") {
            instant(here(), "completed " + detail, "api", event);
            close(open_ops_, "op " + detail);
        } else if (call == "send_completed") {
            instant(here(), "SendCompleted " + detail, "api", event);
            close(open_ops_, "smtp " + first_word(detail));
        } else if (call == "step_result") {
            const std::string pointer = first_word(detail);
            instant(here(), "result " + pointer, "api", event);
            auto pending = last_accept_async_.find(thread_);
            if (pending != last_accept_async_.end() && !pending->second.empty()) {
                if (detail.find("pending=false") != std::string::npos) {
                    close(open_ops_, pending->second);
                }
                pending->second.clear();
            }
        } else {
            instant(here(), call + (detail.empty() ? "" : " " + detail), "api", event);
        }
    }

    Timeline timeline_;
    std::map<std::string, std::size_t> tracks_;
    std::map<std::string, std::string> connection_names_;
    std::map<std::string, std::size_t> open_ops_;
    std::map<std::string, std::size_t> open_connections_;
    std::map<std::string, std::size_t> open_threads_;
    std::map<std::string, std::string> last_accept_async_;  // thread -> its open accept_async
    std::int64_t now_ = 0;
    std::uint64_t seq_ = 0;
    std::int64_t latency_ns_ = 0;
    std::string thread_;
};

/// Virtual nanoseconds as Trace Event microseconds, exactly (no binary fraction).
json microseconds(std::int64_t ns) {
    if (ns % 1000 == 0) {
        return ns / 1000;
    }
    return static_cast<double>(ns) / 1000.0;
}

}  // namespace

Timeline timeline_from_trace(const std::vector<std::string>& lines) {
    Builder builder;
    for (const std::string& line : lines) {
        const json event = json::parse(line, nullptr, false);
        if (event.is_object()) {
            builder.add(event);
        }
    }
    return builder.take();
}

std::string chrome_trace_json(const Timeline& timeline) {
    // Threads in process 1, the network and connection ends in process 2; a track's tid is its
    // index + 1, so the file names every track once and in the order the run met them.
    auto pid_of = [&](std::size_t track) { return timeline.tracks[track].kind == TrackKind::thread ? 1 : 2; };
    json events = json::array();
    events.push_back({{"ph", "M"}, {"pid", 1}, {"tid", 0}, {"name", "process_name"},
                      {"args", {{"name", "logical threads"}}}});
    events.push_back({{"ph", "M"}, {"pid", 2}, {"tid", 0}, {"name", "process_name"},
                      {"args", {{"name", "simulated network"}}}});
    for (std::size_t index = 0; index < timeline.tracks.size(); ++index) {
        const int pid = pid_of(index);
        events.push_back({{"ph", "M"}, {"pid", pid}, {"tid", index + 1}, {"name", "thread_name"},
                          {"args", {{"name", timeline.tracks[index].name}}}});
        events.push_back({{"ph", "M"}, {"pid", pid}, {"tid", index + 1},
                          {"name", "thread_sort_index"}, {"args", {{"sort_index", index}}}});
    }
    for (const TimelineEvent& event : timeline.events) {
        json args(event.args);
        args["seq"] = event.seq;
        if (event.unfinished) {
            args["unfinished"] = "still pending when the run ended";
        }
        json out = {{"name", event.name}, {"cat", event.category},
                    {"pid", pid_of(event.track)}, {"tid", event.track + 1},
                    {"ts", microseconds(event.start_ns)}, {"args", std::move(args)}};
        if (event.instant) {
            out["ph"] = "i";
            out["s"] = "t";
        } else {
            out["ph"] = "X";
            out["dur"] = microseconds(event.end_ns - event.start_ns);
        }
        events.push_back(std::move(out));
    }
    std::uint64_t id = 0;
    for (const TimelineFlow& flow : timeline.flows) {
        ++id;
        events.push_back({{"ph", "s"}, {"id", id}, {"name", flow.name}, {"cat", "net"},
                          {"pid", pid_of(flow.from_track)}, {"tid", flow.from_track + 1},
                          {"ts", microseconds(flow.start_ns)}});
        events.push_back({{"ph", "f"}, {"bp", "e"}, {"id", id}, {"name", flow.name}, {"cat", "net"},
                          {"pid", pid_of(flow.to_track)}, {"tid", flow.to_track + 1},
                          {"ts", microseconds(flow.end_ns)}});
    }
    json document = {{"traceEvents", std::move(events)},
                     {"displayTimeUnit", "ns"},
                     {"otherData",
                      {{"scenario", timeline.scenario},
                       {"profile", timeline.profile},
                       {"trace_hash", timeline.hash},
                       {"clock", "virtual time of the simulated network (microseconds)"}}}};
    return document.dump(1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace faultline::views
