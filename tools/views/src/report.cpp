#include "faultline/views/report.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

#include "faultline/views/timeline.h"
#include "trace_fields.h"

namespace faultline::views {
namespace {

using nlohmann::json;
using detail::ClauseLess;
using detail::field;
using detail::first_word;
using detail::integer_field;
using detail::text_of;

// ---------------------------------------------------------------------------------------------
// Text. Everything drawn comes from a results file or a trace, which may hold raw bytes from the
// wire or deliberately hostile text, so every string goes through append_escaped.

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

/// Length of the well-formed UTF-8 sequence starting at `text[at]` (a non-ASCII lead byte), or
/// 0 if it is malformed (overlong, surrogate, beyond U+10FFFF or cut short).
std::size_t utf8_sequence_length(std::string_view text, std::size_t at) {
    const auto byte = [&](std::size_t index) {
        return index < text.size() ? static_cast<unsigned char>(text[index]) : 0U;
    };
    const unsigned lead = byte(at);
    const auto continuation = [&](std::size_t index, unsigned low, unsigned high) {
        const unsigned value = byte(index);
        return value >= low && value <= high;
    };
    if (lead >= 0xC2 && lead <= 0xDF) {
        return continuation(at + 1, 0x80, 0xBF) ? 2 : 0;
    }
    if (lead >= 0xE0 && lead <= 0xEF) {
        const unsigned low = lead == 0xE0 ? 0xA0 : 0x80;
        const unsigned high = lead == 0xED ? 0x9F : 0xBF;
        return continuation(at + 1, low, high) && continuation(at + 2, 0x80, 0xBF) ? 3 : 0;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        const unsigned low = lead == 0xF0 ? 0x90 : 0x80;
        const unsigned high = lead == 0xF4 ? 0x8F : 0xBF;
        return continuation(at + 1, low, high) && continuation(at + 2, 0x80, 0xBF) &&
                       continuation(at + 3, 0x80, 0xBF)
                   ? 4
                   : 0;
    }
    return 0;
}

/// Appends `text` escaped for HTML text and attribute values (the same escaping is right for
/// inline SVG). Malformed UTF-8 and control characters become U+FFFD, so the page is always
/// valid UTF-8 and free of the control characters HTML forbids.
void append_escaped(std::string& out, std::string_view text) {
    std::size_t at = 0;
    while (at < text.size()) {
        const auto byte = static_cast<unsigned char>(text[at]);
        if (byte >= 0x80) {
            const std::size_t length = utf8_sequence_length(text, at);
            // U+0080..U+009F (C1 controls) are as unwelcome in HTML as C0 controls.
            const bool c1_control =
                length == 2 && byte == 0xC2 && static_cast<unsigned char>(text[at + 1]) < 0xA0;
            if (length == 0 || c1_control) {
                out += kReplacement;
                ++at;
            } else {
                out.append(text.substr(at, length));
                at += length;
            }
            continue;
        }
        switch (byte) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            case '\n':
            case '\t':
                out += static_cast<char>(byte);
                break;
            default:
                if (byte < 0x20 || byte == 0x7F) {
                    out += kReplacement;
                } else {
                    out += static_cast<char>(byte);
                }
        }
        ++at;
    }
}

/// `text` cut to at most `chars_max` code points (never inside a UTF-8 sequence), with an
/// ellipsis when cut.
std::string truncated(std::string_view text, std::size_t chars_max) {
    std::size_t chars = 0;
    std::size_t at = 0;
    while (at < text.size()) {
        if (chars == chars_max) {
            return std::string(text.substr(0, at)) + "\xE2\x80\xA6";  // U+2026
        }
        const auto byte = static_cast<unsigned char>(text[at]);
        const std::size_t length =
            byte < 0x80 ? 1 : std::max<std::size_t>(1, utf8_sequence_length(text, at));
        at += length;
        ++chars;
    }
    return std::string(text);
}

std::string with_commas(std::uint64_t value) {
    std::string digits = std::to_string(value);
    std::string out;
    for (std::size_t index = 0; index < digits.size(); ++index) {
        if (index > 0 && (digits.size() - index) % 3 == 0) {
            out += ',';
        }
        out += digits[index];
    }
    return out;
}

/// Virtual time in the largest unit that keeps it >= 1, up to three decimals, trailing zeros
/// dropped ("150 µs", "1.25 ms", "10 s"). Integer arithmetic, so the bytes never depend on
/// floating-point formatting.
std::string format_time(std::int64_t ns) {
    if (ns < 0) {
        return ns == std::numeric_limits<std::int64_t>::min() ? "-\xE2\x88\x9E"
                                                              : "-" + format_time(-ns);
    }
    struct Unit {
        std::int64_t ns;
        const char* name;
    };
    static constexpr Unit kUnits[] = {
        {1'000'000'000, "s"}, {1'000'000, "ms"}, {1'000, "\xC2\xB5s"}};
    for (const Unit& unit : kUnits) {
        if (ns >= unit.ns) {
            std::string text = std::to_string(ns / unit.ns);
            const std::int64_t milli_units = (ns % unit.ns) / (unit.ns / 1000);
            if (milli_units != 0) {
                std::string digits = std::to_string(milli_units);
                digits = "." + std::string(3 - digits.size(), '0') + digits;
                while (digits.back() == '0') {
                    digits.pop_back();
                }
                text += digits;
            }
            return text + " " + unit.name;
        }
    }
    return std::to_string(ns) + " ns";
}

/// An SVG coordinate: one decimal at most, so the bytes are stable and small.
std::string px(double value) {
    const long long tenths = static_cast<long long>(value * 10.0 + (value < 0 ? -0.5 : 0.5));
    std::string text = std::to_string(tenths / 10);
    const long long fraction = tenths % 10;
    if (fraction != 0) {
        if (tenths < 0 && tenths / 10 == 0) {
            text = "-0";
        }
        text += "." + std::to_string(fraction < 0 ? -fraction : fraction);
    }
    return text;
}

/// Rough width of `text` in an 11 px sans-serif font: enough to size note backgrounds and to
/// decide whether a label fits a span.
double text_width(std::string_view text) {
    std::size_t chars = 0;
    for (const char c : text) {
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
            ++chars;
        }
    }
    return static_cast<double>(chars) * 6.3;
}

// ---------------------------------------------------------------------------------------------
// Ordering.

/// Transports in the order a run reports them (sim, then real), then any other.
struct TransportLess {
    static int rank(const std::string& transport) {
        return transport == "sim" ? 0 : transport == "real" ? 1 : 2;
    }
    bool operator()(const std::string& left, const std::string& right) const {
        return std::pair(rank(left), left) < std::pair(rank(right), right);
    }
};

/// A report column: one profile on one transport.
using Column = std::pair<std::string, std::string>;  // profile, transport
struct ColumnLess {
    bool operator()(const Column& left, const Column& right) const {
        if (left.first != right.first) {
            return left.first < right.first;
        }
        return TransportLess{}(left.second, right.second);
    }
};

struct Counts {
    std::uint64_t passed = 0;
    std::uint64_t failed = 0;
    std::uint64_t not_applicable = 0;
    std::uint64_t other = 0;
    void add(const std::string& status) {
        if (status == "passed") {
            ++passed;
        } else if (status == "failed") {
            ++failed;
        } else if (status == "not_applicable") {
            ++not_applicable;
        } else {
            ++other;
        }
    }
    [[nodiscard]] std::uint64_t total() const { return passed + failed + not_applicable + other; }
};

// ---------------------------------------------------------------------------------------------
// Results documents.

constexpr int kResultsVersion = 1;

const char* type_name(const json& value) { return value.type_name(); }

/// Reads one run; returns an error naming the field, or nothing.
std::optional<std::string> read_run(const json& item, const std::string& where, ReportRun& run) {
    if (!item.is_object()) {
        return where + ": expected an object, got " + type_name(item);
    }
    const auto string_field =
        [&](const char* key, std::string& out, bool required) -> std::optional<std::string> {
        if (!item.contains(key)) {
            return required ? std::optional(where + ": missing field \"" + key + "\"")
                            : std::nullopt;
        }
        const json& value = item.at(key);
        if (!value.is_string()) {
            return where + "." + key + ": expected a string, got " + type_name(value);
        }
        out = value.get<std::string>();
        return std::nullopt;
    };
    const auto strings_field = [&](const char* key,
                                   std::vector<std::string>& out) -> std::optional<std::string> {
        if (!item.contains(key)) {
            return std::nullopt;
        }
        const json& value = item.at(key);
        if (!value.is_array()) {
            return where + "." + key + ": expected an array of strings, got " + type_name(value);
        }
        out.reserve(value.size());
        for (std::size_t index = 0; index < value.size(); ++index) {
            if (!value.at(index).is_string()) {
                return where + "." + key + "[" + std::to_string(index) +
                       "]: expected a string, got " + type_name(value.at(index));
            }
            out.push_back(value.at(index).get<std::string>());
        }
        return std::nullopt;
    };
    const auto unsigned_field =
        [&](const char* key, std::uint64_t& out, bool required) -> std::optional<std::string> {
        if (!item.contains(key)) {
            return required ? std::optional(where + ": missing field \"" + key + "\"")
                            : std::nullopt;
        }
        const json& value = item.at(key);
        // Built in memory, a non-negative integer may be stored signed; parsed, it is unsigned.
        if (!value.is_number_integer() ||
            (!value.is_number_unsigned() && value.get<std::int64_t>() < 0)) {
            return where + "." + key + ": expected a non-negative integer, got " +
                   (value.is_number() ? value.dump() : std::string(type_name(value)));
        }
        out = value.get<std::uint64_t>();
        return std::nullopt;
    };

    std::optional<std::string> error;
    if ((error = string_field("scenario", run.scenario, true)) ||
        (error = string_field("path", run.path, true)) ||
        (error = string_field("transport", run.transport, true)) ||
        (error = string_field("profile", run.profile, true)) ||
        (error = unsigned_field("seed", run.seed, true)) ||
        (error = string_field("status", run.status, true)) ||
        (error = string_field("description", run.description, false)) ||
        (error = strings_field("clauses", run.clauses)) ||
        (error = strings_field("failures", run.failures)) ||
        (error = string_field("reason", run.reason, false)) ||
        (error = string_field("replay", run.replay, false)) ||
        (error = string_field("trace_hash", run.trace_hash, false)) ||
        (error = unsigned_field("events", run.events, false)) ||
        (error = strings_field("trace", run.trace))) {
        return error;
    }
    if (run.status != "passed" && run.status != "failed" && run.status != "not_applicable") {
        return where + ".status: expected \"passed\", \"failed\" or \"not_applicable\", got " +
               json(run.status).dump(-1, ' ', true, json::error_handler_t::replace);
    }
    if (item.contains("virtual_ns")) {
        const json& value = item.at("virtual_ns");
        if (!value.is_number_integer() ||
            (value.is_number_unsigned() &&
             value.get<std::uint64_t>() >
                 static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))) {
            return where + ".virtual_ns: expected a 64-bit integer, got " +
                   (value.is_number() ? value.dump() : std::string(type_name(value)));
        }
        run.virtual_ns = value.get<std::int64_t>();
    }
    if (item.contains("wall_ms")) {
        const json& value = item.at("wall_ms");
        if (!value.is_number()) {
            return where + ".wall_ms: expected a number, got " + type_name(value);
        }
        run.wall_ms = value.get<double>();
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Trace events.

/// "k=v k=v" of an event's fields other than the ones every event has.
std::string other_fields(const json& event, std::initializer_list<std::string_view> skip) {
    std::string out;
    for (const auto& item : event.items()) {
        const std::string& key = item.key();
        if (key == "t" || key == "seq" || key == "ev" ||
            std::find(skip.begin(), skip.end(), key) != skip.end()) {
            continue;
        }
        out += (out.empty() ? "" : " ") + key + "=" + text_of(item.value());
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// The sequence diagram.

// A long run keeps 400 rows: its start (setup, the first exchanges), a window around the first
// step a failure points at, and its end (where a liveness failure or a reset shows). 400 rows
// of 22 px is a long page already; more would bury the next failure.
constexpr std::size_t kRowsHead = 100;
constexpr std::size_t kRowsAroundFailure = 150;
constexpr std::size_t kRowsTail = 150;
constexpr std::size_t kRowsMax = kRowsHead + kRowsAroundFailure + kRowsTail;
// About this many columns fit a laptop screen at the narrowest column width; connection ends
// share columns beyond it.
constexpr std::size_t kSeqColumnsWanted = 10;

enum class RowKind : std::uint8_t { arrow, note };

/// One line of the diagram: an arrow between two columns or a note on one.
struct SeqRow {
    RowKind kind = RowKind::note;
    std::int64_t t = 0;
    std::string
        from;        // column key: "t:<thread>", "s:<thread>" (its server work), "c:<conn>", "net"
    std::string to;  // arrows only
    std::string label;
    std::string tooltip;
    std::string style;  // call, step, send, partial, segment, fin, rst, fault, callback, muted, ok,
                        // error, warn
    bool dashed = false;
    bool failed_step = false;  // a step the failure messages point at
    std::string op_begins;     // the operation (activation bar) this row starts
    std::string op_ends;       // the operation this row completes
    std::size_t events = 1;    // trace events this row stands for
};

struct SeqColumn {
    std::string title;
    std::string group;  // "client application", "client sockets", "network", ...
};

/// What a pass over a trace keeps: the rows inside `ranges`, and of each stretch left out
/// (the gap before ranges[i] is gaps[i]) how many events and what time it covered, plus the
/// rows in it that start or end an operation, so activation bars still pair up across it.
struct KeptRows {
    struct Gap {
        std::size_t events = 0;
        std::int64_t t_first = 0;
        std::int64_t t_last = 0;
    };
    struct Marker {
        std::size_t index;
        std::string from;
        std::string op_begins;
        std::string op_ends;
    };
    std::vector<std::pair<std::size_t, std::size_t>> ranges;
    std::vector<std::pair<std::size_t, SeqRow>> rows;  // (row number, row), in order
    std::vector<Gap> gaps;
    std::vector<Marker> markers;
    std::size_t count = 0;  // rows in the whole trace
    std::optional<std::size_t> first_failed;
};

/// The steps failure messages point at ("/threads/0/steps/3: expected ..." names step 3 of
/// thread 0), so the diagram can mark the step where the run went wrong.
std::set<std::string> failing_steps(const std::vector<std::string>& failures) {
    std::set<std::string> steps;
    for (const std::string& failure : failures) {
        if (failure.rfind("/threads/", 0) != 0) {
            continue;
        }
        const std::size_t steps_at = failure.find("/steps/");
        if (steps_at == std::string::npos) {
            continue;
        }
        std::size_t end = steps_at + 7;
        while (end < failure.size() && failure[end] >= '0' && failure[end] <= '9') {
            ++end;
        }
        if (end > steps_at + 7) {
            steps.insert(failure.substr(0, end));
        }
    }
    return steps;
}

/// Turns trace events into diagram rows. Columns are named by key here and laid out later,
/// from the rows that survive the size cap.
class SequenceBuilder {
public:
    explicit SequenceBuilder(std::set<std::string> failing) : failing_(std::move(failing)) {}

    /// First pass: which side each connection end and each thread is on.
    void learn(const json& event) {
        const std::string ev = field(event, "ev");
        const std::string thread = field(event, "thread");
        const std::string conn = field(event, "conn");
        if (ev == "connect") {
            side_[conn] = "client";
            ++client_score_[thread];
        } else if (ev == "established") {
            side_[conn] = field(event, "side");
        } else if (ev == "accept") {
            side_.emplace(conn, "server");
            ++server_score_[thread];
        } else if (ev == "send" || ev == "close" || ev == "abort" || ev == "shutdown") {
            touched_.emplace(thread, conn);
        } else if (ev == "api") {
            const std::string call = field(event, "call");
            const std::string detail = field(event, "detail");
            if (call == "accept_async" || call == "begin_accept" || call == "end_accept") {
                ++server_score_[thread];
                accept_ops_.insert(detail);
            } else if (call == "begin_send" || call == "end_send" || call == "send_async" ||
                       call == "send_mail_async" || call == "begin_receive" ||
                       call == "send_completed") {
                ++client_score_[thread];
            } else if (call == "completed") {
                // A callback is work for the side whose operation completed.
                ++(accept_ops_.contains(detail) ? server_score_ : client_score_)[thread];
            }
        }
    }

    /// After the first pass: a thread is drawn on the server side only when everything it did
    /// was server work (accepting, or using server ends); anything mixed stays on the client
    /// side, where the application under test lives.
    void settle_sides() {
        for (const auto& [thread, conn] : touched_) {
            if (side_of(conn) == "server") {
                ++server_score_[thread];
            } else {
                ++client_score_[thread];
            }
        }
        for (const auto& [thread, score] : server_score_) {
            if (score > 0 && client_score_[thread] == 0) {
                server_threads_.insert(thread);
            }
        }
    }

    /// Second and third passes: `event` (parsed from `line`) becomes a row, or folds into the
    /// row before it.
    void add(const json& event, const std::string& line) {
        const std::string ev = field(event, "ev");
        if (ev == "world" || ev == "scenario" || ev == "end" || ev.empty()) {
            return;
        }
        thread_ = field(event, "thread");
        SeqRow row;
        row.t = integer_field(event, "t", last_t_);
        last_t_ = row.t;
        // Only drawn rows carry their trace line (as the tooltip); the rest would only cost.
        // The held row is number count_; this one will be the next.
        const std::size_t index = count_ + (has_last_ ? 1 : 0);
        line_ = kept(index) || (has_last_ && kept(count_)) ? &line : nullptr;
        if (kept(index)) {
            row.tooltip = truncated(line, 600);
        }
        const std::string conn = field(event, "conn");
        const std::string here = thread_key(thread_);
        const std::string actor = actor_key(conn);
        if (!conn.empty() && (ev == "connect" || ev == "send" || ev == "accept")) {
            (side_of(conn) == "server" ? last_server_conn_ : last_client_conn_) = conn;
        }

        if (ev == "api") {
            api(event, std::move(row));
            return;
        }
        if (ev == "spawn") {
            const std::string name = field(event, "name");
            arrow_or_note(row, here, thread_key(name), "spawn " + name, "muted");
        } else if (ev == "thread_exit") {
            note(row, thread_key(field(event, "name")), "thread exits", "muted");
        } else if (ev == "listen") {
            note(
                row,
                here,
                "listen " + field(event, "endpoint") + " (backlog " + field(event, "backlog") + ")",
                "muted");
        } else if (ev == "close_listener") {
            note(row, here, "close listener " + field(event, "listener"), "muted");
        } else if (ev == "connect") {
            last_conn_[thread_] = conn;
            arrow_or_note(row, here, conn_key(conn), "connect " + field(event, "remote"), "call");
        } else if (ev == "established") {
            note(row, conn_key(conn), "established", "ok");
        } else if (ev == "accept") {
            assign_accept(conn);
            if (here.empty()) {
                note(row,
                     conn_key(conn),
                     "accepted (listener " + field(event, "listener") + ")",
                     "ok");
            } else {
                last_conn_[thread_] = conn;
                // To the thread that asked: an accept answers its AcceptAsync or BeginAccept.
                arrow_or_note(row, conn_key(conn), here, "accept conn " + conn, "ok");
            }
        } else if (ev == "send") {
            const std::string bytes = field(event, "bytes");
            const std::string asked = field(event, "asked");
            last_conn_[thread_] = conn;
            assign_send(conn);
            const bool partial = bytes != asked;
            arrow_or_note(row,
                          actor,
                          conn_key(conn),
                          partial ? "send " + bytes + " of " + asked + " B (partial)"
                                  : "send " + bytes + " B",
                          partial ? "partial" : "send");
        } else if (ev == "receive") {
            note(row, conn_key(conn), "read " + field(event, "bytes") + " B", "muted");
        } else if (ev == "segment") {
            arrow(row,
                  conn_key(field(event, "from")),
                  conn_key(field(event, "to")),
                  field(event, "bytes") + " B",
                  "segment");
        } else if (ev == "fin") {
            arrow(row, conn_key(field(event, "from")), conn_key(field(event, "to")), "FIN", "fin");
        } else if (ev == "rst") {
            if (event.contains("from")) {
                arrow(row,
                      conn_key(field(event, "from")),
                      conn_key(field(event, "to")),
                      "RST",
                      "rst");
            } else {
                note(row, conn_key(field(event, "to")), "RST: " + field(event, "reason"), "error");
            }
        } else if (ev == "reset" || ev == "connect_failed") {
            note(row, conn_key(conn), ev + ": " + field(event, "error"), "error");
        } else if (ev == "close" || ev == "abort" || ev == "shutdown") {
            const std::string how = field(event, "how");
            arrow_or_note(row,
                          actor,
                          conn_key(conn),
                          how.empty() ? ev : ev + " " + how,
                          ev == "abort" ? "rst" : "call");
        } else if (ev == "segment_refused") {
            arrow(row,
                  conn_key(field(event, "from")),
                  "net",
                  "refused " + field(event, "bytes") + " B (peer closed)",
                  "rst");
            row_dashed();
        } else if (ev == "fault") {
            const std::string details = other_fields(event, {"thread", "kind", "conn"});
            note(row,
                 conn.empty() ? "net" : conn_key(conn),
                 "fault " + field(event, "kind") + (details.empty() ? "" : " " + details),
                 "fault");
        } else if (ev == "scan_syn" || ev == "scan_rst" || ev == "syn_dropped" || ev == "swarm" ||
                   ev == "stall_end") {
            const std::string details = other_fields(event, {"thread", "conn"});
            note(row,
                 conn.empty() ? "net" : conn_key(conn),
                 ev + (details.empty() ? "" : " " + details),
                 ev == "stall_end" ? "muted" : "fault");
        } else if (ev == "wait_budget_exhausted") {
            // Traced by the scheduler ("thread" is "sim") for the thread whose wait ran out.
            const std::string waiter = field(event, "waiter");
            note(row, thread_key(waiter.empty() ? thread_ : waiter), "wait budget exhausted", "warn");
        } else {
            const std::string details = other_fields(event, {"thread"});
            note(row,
                 here.empty() ? (conn.empty() ? "net" : conn_key(conn)) : here,
                 ev + (details.empty() ? "" : " " + details),
                 "muted");
        }
    }

    /// Ends a pass: the rows it kept, and what it left out.
    KeptRows finish() {
        flush();
        KeptRows kept = std::move(kept_);
        kept.count = count_;
        kept.first_failed = first_failed_;
        return kept;
    }
    /// Starts the pass that keeps the rows in `ranges` (sorted, disjoint) and summarizes the
    /// rest. What the first pass learned about sides stays.
    void restart(std::vector<std::pair<std::size_t, std::size_t>> ranges) {
        keeping_ = true;
        kept_ = KeptRows{};
        kept_.gaps.resize(ranges.size());
        kept_.ranges = std::move(ranges);
        range_at_ = 0;
        count_ = 0;
        first_failed_.reset();
        has_last_ = false;
        last_ = SeqRow{};
        ops_.clear();
        accept_order_.clear();
        last_accept_.clear();
        last_conn_.clear();
        last_client_conn_.clear();
        last_server_conn_.clear();
        thread_.clear();
        last_t_ = 0;
    }
    [[nodiscard]] bool server_thread(const std::string& key) const {
        return server_threads_.contains(key.substr(2));
    }
    [[nodiscard]] std::string side_of(const std::string& conn) const {
        const auto found = side_.find(conn);
        return found == side_.end() ? std::string("client") : found->second;
    }

private:
    struct Operation {
        std::string thread;
        std::string conn;
        bool accept = false;
    };

    static std::string thread_key(const std::string& thread) {
        return thread.empty() || thread == "sim" ? std::string() : "t:" + thread;
    }
    /// Where the current thread's action on `conn` is drawn from. A thread that works on both
    /// sides (a pool thread running the client and the scripted server) gets a second column on
    /// the server side for its server work, so replies come from the right as they would from
    /// a separate server.
    std::string actor_key(const std::string& conn) const {
        const std::string key = thread_key(thread_);
        if (key.empty() || conn.empty() || server_threads_.contains(thread_) ||
            side_of(conn) != "server") {
            return key;
        }
        return "s:" + thread_;
    }
    static std::string conn_key(const std::string& conn) {
        return conn.empty() ? std::string("net") : "c:" + conn;
    }

    /// Whether the row numbered `index` is drawn (never, in the counting pass).
    [[nodiscard]] bool kept(std::size_t index) const {
        const auto& ranges = kept_.ranges;
        auto at = range_at_;
        while (at < ranges.size() && index >= ranges[at].second) {
            ++at;
        }
        return keeping_ && at < ranges.size() && index >= ranges[at].first;
    }
    /// Hands the previous row on (kept, or summarized into its gap) and holds `row`, which a
    /// step result may still fold into.
    void emit(SeqRow row) {
        flush();
        last_ = std::move(row);
        has_last_ = true;
    }
    void flush() {
        if (!has_last_) {
            return;
        }
        has_last_ = false;
        const std::size_t index = count_++;
        if (last_.failed_step && !first_failed_) {
            first_failed_ = index;
        }
        if (!keeping_) {
            return;
        }
        while (range_at_ < kept_.ranges.size() && index >= kept_.ranges[range_at_].second) {
            ++range_at_;
        }
        if (range_at_ >= kept_.ranges.size()) {
            return;  // past the last range: cannot happen when the counts agree
        }
        if (index >= kept_.ranges[range_at_].first) {
            kept_.rows.emplace_back(index, std::move(last_));
            return;
        }
        KeptRows::Gap& gap = kept_.gaps[range_at_];
        if (gap.events == 0) {
            gap.t_first = last_.t;
        }
        gap.t_last = last_.t;
        gap.events += last_.events;
        if (!last_.op_begins.empty() || !last_.op_ends.empty()) {
            kept_.markers.push_back(
                KeptRows::Marker{index, last_.from, last_.op_begins, last_.op_ends});
        }
    }

    void note(SeqRow& row, std::string column, std::string label, std::string style) {
        row.kind = RowKind::note;
        row.from = column.empty() ? std::string("net") : std::move(column);
        row.label = std::move(label);
        row.style = std::move(style);
        emit(std::move(row));
    }
    void arrow(
        SeqRow& row, std::string from, std::string to, std::string label, std::string style) {
        row.kind = RowKind::arrow;
        row.from = std::move(from);
        row.to = std::move(to);
        row.label = std::move(label);
        row.style = std::move(style);
        emit(std::move(row));
    }
    /// An arrow when both ends are columns; a note on the one that is, when the other end is the
    /// simulator itself (which has no column).
    void arrow_or_note(SeqRow& row,
                       const std::string& from,
                       const std::string& to,
                       std::string label,
                       std::string style) {
        if (from.empty() || to.empty() || from == to) {
            note(row, from.empty() ? to : from, std::move(label), std::move(style));
        } else {
            arrow(row, from, to, std::move(label), std::move(style));
        }
    }
    void row_dashed() { last_.dashed = true; }

    /// A pending send takes the connection of the next send its thread makes.
    void assign_send(const std::string& conn) {
        for (auto& [key, op] : ops_) {
            if (!op.accept && op.conn.empty() && op.thread == thread_) {
                op.conn = conn;
            }
        }
    }
    /// Accepts complete in the order they were started.
    void assign_accept(const std::string& conn) {
        for (const std::string& key : accept_order_) {
            auto found = ops_.find(key);
            if (found != ops_.end() && found->second.conn.empty()) {
                found->second.conn = conn;
                return;
            }
        }
    }

    void api(const json& event, SeqRow row) {
        const std::string call = field(event, "call");
        const std::string detail = field(event, "detail");
        const std::string here = thread_key(thread_);
        const std::string column = here.empty() ? std::string("net") : here;
        if (call == "step_result") {
            step_result(detail, std::move(row));
            return;
        }
        if (call == "completed" || call == "send_completed") {
            const std::string key =
                call == "completed" ? "op " + detail : "smtp " + first_word(detail);
            std::string source;
            const auto found = ops_.find(key);
            if (found != ops_.end()) {
                source = found->second.conn;
                if (source.empty()) {
                    source = last_conn_[found->second.thread];
                }
                if (source.empty()) {
                    // An SMTP client connects from a pool thread, not the caller's: its
                    // completion comes from the client end most recently used.
                    source = found->second.accept ? last_server_conn_ : last_client_conn_;
                }
                ops_.erase(found);
            }
            row.op_ends = key;
            const std::string label =
                call == "completed" ? "callback " + detail : "SendCompleted " + detail;
            if (source.empty()) {
                note(row, column, label, "callback");
            } else {
                arrow(row, conn_key(source), column, label, "callback");
                row_dashed();
            }
            return;
        }
        if (call == "begin_send" || call == "begin_receive" || call == "begin_accept" ||
            call == "accept_async" || call == "send_async" || call == "send_mail_async") {
            const bool smtp = call == "send_async" || call == "send_mail_async";
            const std::string key = smtp ? "smtp " + first_word(detail) : "op " + detail;
            Operation op;
            op.thread = thread_;
            op.accept = call == "accept_async" || call == "begin_accept";
            ops_[key] = op;
            if (op.accept) {
                accept_order_.push_back(key);
            }
            last_accept_[thread_] = call == "accept_async" ? key : std::string();
            row.op_begins = key;
        }
        note(row, column, call + (detail.empty() ? "" : " " + detail), "call");
    }

    /// A step's observed result: folded into the call it reports on when nothing was drawn in
    /// between, so "end_send b → returns=17" reads as one line; its own row otherwise.
    void step_result(const std::string& detail, SeqRow row) {
        const std::string pointer = first_word(detail);
        std::string summary;
        std::size_t at = detail.find(' ');
        while (at != std::string::npos) {
            const std::size_t next = detail.find(' ', at + 1);
            const std::string token =
                detail.substr(at + 1, next == std::string::npos ? next : next - at - 1);
            if (token != "threw=none" && !token.empty()) {
                summary += (summary.empty() ? "" : " ") + token;
            }
            at = next;
        }
        const bool failed = failing_.contains(pointer);
        // AcceptAsync returning pending=false completed synchronously: no Completed follows (A-2).
        std::string completes;
        auto pending = last_accept_.find(thread_);
        if (pending != last_accept_.end() && !pending->second.empty()) {
            if (detail.find("pending=false") != std::string::npos) {
                completes = pending->second;
                ops_.erase(completes);
            }
            pending->second.clear();
        }
        const std::string here = thread_key(thread_);
        const std::string column = here.empty() ? std::string("net") : here;
        if (has_last_ && last_.style == "call" && last_.kind == RowKind::note &&
            last_.from == column && !last_.failed_step &&
            last_.label.find(" \xE2\x86\x92 ") == std::string::npos) {
            SeqRow& call = last_;
            call.label += " \xE2\x86\x92 " + (summary.empty() ? std::string("ok") : summary);
            if (line_ != nullptr && !call.tooltip.empty()) {
                call.tooltip += "\n" + truncated(*line_, 600);
            }
            call.failed_step = failed;
            call.op_ends = completes;
            ++call.events;
            return;
        }
        const std::size_t steps_at = pointer.rfind("/steps/");
        const std::string step =
            steps_at == std::string::npos ? pointer : pointer.substr(steps_at + 7);
        row.failed_step = failed;
        row.op_ends = completes;
        note(row,
             column,
             "step " + step + " \xE2\x86\x92 " + (summary.empty() ? "ok" : summary),
             "step");
    }

    std::set<std::string> failing_;
    // Rows: the one a step result may fold into, how many came before it, what is kept.
    SeqRow last_;
    bool has_last_ = false;
    std::size_t count_ = 0;
    std::optional<std::size_t> first_failed_;
    bool keeping_ = false;
    KeptRows kept_;
    std::size_t range_at_ = 0;
    const std::string* line_ = nullptr;  // the current trace line, when its row is drawn
    // Sides, learned in the first pass.
    std::map<std::string, std::string> side_;  // conn -> client/server
    std::map<std::string, int> client_score_;
    std::map<std::string, int> server_score_;
    std::set<std::pair<std::string, std::string>> touched_;  // thread, conn
    std::set<std::string> server_threads_;
    std::set<std::string> accept_ops_;  // names of AcceptAsync and BeginAccept operations
    // Per pass.
    std::map<std::string, std::string> last_conn_;  // thread -> the connection it last used
    std::string last_client_conn_;
    std::string last_server_conn_;
    std::map<std::string, Operation> ops_;
    std::vector<std::string> accept_order_;
    std::map<std::string, std::string> last_accept_;  // thread -> its AcceptAsync awaiting a result
    std::string thread_;
    std::int64_t last_t_ = 0;
};

/// Which rows to draw when there are too many: the start, a window around the first step the
/// failure messages point at (else nothing extra), and the end. Returns sorted, disjoint
/// [begin, end) ranges.
std::vector<std::pair<std::size_t, std::size_t>> rows_to_draw(
    std::size_t count, std::optional<std::size_t> first_failed) {
    if (count <= kRowsMax) {
        return {{0, count}};
    }
    std::vector<std::pair<std::size_t, std::size_t>> ranges = {{0, kRowsHead}};
    if (first_failed) {
        const std::size_t index = *first_failed;
        const std::size_t begin =
            index > kRowsAroundFailure / 3 ? index - kRowsAroundFailure / 3 : 0;
        ranges.emplace_back(begin, std::min(count, begin + kRowsAroundFailure));
        ranges.emplace_back(count - kRowsTail, count);
    } else {
        ranges.emplace_back(count - kRowsTail - kRowsAroundFailure, count);
    }
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<std::size_t, std::size_t>> merged;
    for (const auto& range : ranges) {
        if (!merged.empty() && range.first <= merged.back().second) {
            merged.back().second = std::max(merged.back().second, range.second);
        } else {
            merged.push_back(range);
        }
    }
    return merged;
}

struct Diagram {
    std::string svg;
    std::string note;  // what was left out, if anything
};

/// Lays out columns for the drawn rows: client threads, client connection ends, network,
/// server connection ends, server threads. Connection ends beyond a few per side share a
/// column, so a run with dozens of connections stays readable.
class ColumnLayout {
public:
    ColumnLayout(const SequenceBuilder& builder,
                 const std::vector<const SeqRow*>& rows,
                 const std::vector<KeptRows::Marker>& markers) {
        std::vector<std::string> client_threads;
        std::vector<std::string> server_threads;
        std::map<std::uint64_t, std::string> client_conns;  // by number
        std::map<std::uint64_t, std::string> server_conns;
        std::set<std::string> seen;
        std::set<std::string> odd_conns;  // conns whose name is not a number
        const auto meet = [&](const std::string& key) {
            if (key.empty() || key == "net" || !seen.insert(key).second) {
                return;
            }
            if (key.rfind("t:", 0) == 0) {
                (builder.server_thread(key) ? server_threads : client_threads).push_back(key);
                return;
            }
            if (key.rfind("s:", 0) == 0) {
                server_threads.push_back(key);
                return;
            }
            const std::string conn = key.substr(2);
            const bool numeric =
                !conn.empty() && conn.size() < 19 &&
                std::all_of(conn.begin(), conn.end(), [](char c) { return c >= '0' && c <= '9'; });
            if (!numeric) {
                odd_conns.insert(key);
                return;
            }
            (builder.side_of(conn) == "server" ? server_conns : client_conns)[std::stoull(conn)] =
                key;
        };
        for (const SeqRow* row : rows) {
            meet(row->from);
            meet(row->to);
        }
        for (const KeptRows::Marker& marker : markers) {
            meet(marker.from);  // an activation bar may start in a stretch left out
        }
        // Threads get their own columns; each side's connection ends get what is left, at
        // least one column each plus one they share.
        const std::size_t threads = client_threads.size() + server_threads.size();
        const std::size_t room =
            kSeqColumnsWanted > threads + 1 ? kSeqColumnsWanted - threads - 1 : 0;
        per_side_ = std::max<std::size_t>(1, room / 2 > 0 ? room / 2 - 1 : 0);
        for (const std::string& key : client_threads) {
            add(key, key.substr(2), "client application");
        }
        add_conns(client_conns, "client");
        for (const std::string& key : odd_conns) {
            add(key, key.substr(2), "client sockets");
        }
        add("net", "network", "network");
        add_conns(server_conns, "server");
        for (const std::string& key : server_threads) {
            add(key, key.substr(2) + (key[0] == 's' ? " (server)" : ""), "server application");
        }
    }

    [[nodiscard]] std::size_t index(const std::string& key) const {
        const auto found = index_.find(key);
        return found == index_.end() ? index_.at("net") : found->second;
    }
    [[nodiscard]] const std::vector<SeqColumn>& columns() const { return columns_; }

private:
    void add(const std::string& key, std::string title, std::string group) {
        index_[key] = columns_.size();
        columns_.push_back(SeqColumn{std::move(title), std::move(group)});
    }
    void add_conns(const std::map<std::uint64_t, std::string>& conns, const std::string& side) {
        std::size_t placed = 0;
        std::string shared;
        for (const auto& [number, key] : conns) {
            if (placed < per_side_ || conns.size() == per_side_ + 1) {
                add(key, "conn " + std::to_string(number), side + " sockets");
            } else if (placed == per_side_) {
                shared = key;
                add(key,
                    "conns " + std::to_string(number) + "\xE2\x80\x93" +
                        std::to_string(conns.rbegin()->first),
                    side + " sockets");
            } else {
                index_[key] = index_.at(shared);
            }
            ++placed;
        }
    }

    std::vector<SeqColumn> columns_;
    std::map<std::string, std::size_t> index_;
    std::size_t per_side_ = 1;  // connection ends with a column of their own, per side
};

constexpr double kSeqGutter = 96;  // the virtual time column
constexpr double column_widthMax = 150;
constexpr double column_widthMin = 112;

/// Columns narrow as they multiply, so that a diagram fits a laptop screen where it can.
double seq_column_width(std::size_t columns) {
    return std::clamp(1150.0 / static_cast<double>(std::max<std::size_t>(columns, 1)),
                      column_widthMin,
                      column_widthMax);
}
constexpr double kSeqTop = 64;  // where the first row starts
constexpr double kSeqRowHeight = 22;
constexpr double kSeqGapHeight = 30;  // the "events omitted" band

void svg_text(std::string& out,
              double x,
              double y,
              const std::string& cls,
              const std::string& anchor,
              std::string_view text) {
    out += "<text x=\"" + px(x) + "\" y=\"" + px(y) + "\" class=\"" + cls + "\"";
    if (!anchor.empty()) {
        out += " text-anchor=\"" + anchor + "\"";
    }
    out += ">";
    append_escaped(out, text);
    out += "</text>";
}

void svg_title(std::string& out, std::string_view text) {
    out += "<title>";
    append_escaped(out, text);
    out += "</title>";
}

/// Draws the column headers (group band and title boxes) with their top at `y`.
void draw_headers(std::string& out, const std::vector<SeqColumn>& columns, double y, bool groups) {
    const double column_width = seq_column_width(columns.size());
    const auto center = [&](std::size_t index) {
        return kSeqGutter + column_width * (static_cast<double>(index) + 0.5);
    };
    if (groups) {
        std::size_t begin = 0;
        while (begin < columns.size()) {
            std::size_t end = begin;
            while (end < columns.size() && columns[end].group == columns[begin].group) {
                ++end;
            }
            const double left = kSeqGutter + column_width * static_cast<double>(begin) + 4;
            const double width = column_width * static_cast<double>(end - begin) - 8;
            out += "<rect x=\"" + px(left) + "\" y=\"" + px(y) + "\" width=\"" + px(width) +
                   "\" height=\"16\" rx=\"3\" class=\"grp\"/>";
            svg_text(out, left + width / 2, y + 12, "grp-t", "middle", columns[begin].group);
            begin = end;
        }
        y += 22;
    }
    for (std::size_t index = 0; index < columns.size(); ++index) {
        const double x = center(index);
        out += "<rect x=\"" + px(x - column_width / 2 + 10) + "\" y=\"" + px(y) + "\" width=\"" +
               px(column_width - 20) + "\" height=\"24\" rx=\"4\" class=\"col\"/>";
        svg_text(
            out,
            x,
            y + 16,
            "col-t",
            "middle",
            truncated(columns[index].title, static_cast<std::size_t>((column_width - 24) / 7.4)));
    }
}

/// Where the diagram's columns are.
struct SeqGeometry {
    const ColumnLayout& layout;
    double column_width;
    [[nodiscard]] double center(std::size_t column) const {
        return kSeqGutter + column_width * (static_cast<double>(column) + 0.5);
    }
};

/// Draws one row centred on `center_y`: an arrow with its label above, or a note beside a
/// lifeline. Returns the rightmost x it drew at, so the diagram can widen to fit.
double draw_row(std::string& out,
                const SeqRow& row,
                double center_y,
                double width,
                const SeqGeometry& geometry) {
    double right_edge = 0;
    out += "<g class=\"r " + row.style + (row.failed_step ? " failed" : "") + "\">";
    svg_title(out,
              (row.failed_step ? "the failure messages point at this step\n" : std::string()) +
                  row.tooltip);
    if (row.failed_step) {
        out += "<rect x=\"" + px(kSeqGutter) + "\" y=\"" + px(center_y - kSeqRowHeight / 2 + 1) +
               "\" width=\"" + px(width - kSeqGutter - 4) + "\" height=\"" + px(kSeqRowHeight - 2) +
               "\" class=\"failrow\"/>";
    }
    const std::size_t from = geometry.layout.index(row.from);
    if (row.kind == RowKind::arrow) {
        const std::size_t to = geometry.layout.index(row.to);
        const double x1 = geometry.center(from);
        double x2 = geometry.center(to);
        const double direction = x2 >= x1 ? 1.0 : -1.0;
        const double line_y = center_y + 5;
        if (from == to) {
            // Two ends merged into one column: a short loop back into it.
            out += "<path d=\"M" + px(x1) + " " + px(line_y - 6) + "h24v10h-20\" class=\"a" +
                   std::string(row.dashed ? " dash" : "") + "\"/>";
            x2 = x1 + 4;
            out += "<path d=\"M" + px(x2) + " " + px(line_y + 4) + "l7 -3.5v7z\" class=\"head\"/>";
            const std::string label = truncated(row.label, 60);
            svg_text(out, x1 + 28, center_y + 3, "lbl", "start", label);
            right_edge = std::max(right_edge, x1 + 36 + text_width(label));
        } else {
            out += "<line x1=\"" + px(x1) + "\" y1=\"" + px(line_y) + "\" x2=\"" +
                   px(x2 - 6 * direction) + "\" y2=\"" + px(line_y) + "\" class=\"a" +
                   std::string(row.dashed ? " dash" : "") + "\"/>";
            out += "<path d=\"M" + px(x2) + " " + px(line_y) + "l" + px(-8 * direction) +
                   " -4v8z\" class=\"head\"/>";
            svg_text(
                out,
                (x1 + x2) / 2,
                center_y,
                "lbl",
                "middle",
                truncated(row.label,
                          static_cast<std::size_t>(std::max(24.0, std::abs(x2 - x1) / 6.0 + 30))));
        }
    } else {
        const double x = geometry.center(from);
        const std::string label = truncated(row.label, 96);
        const double label_width = text_width(label);
        // A note reads to the right of its lifeline, unless it is on the server side
        // and would run off the diagram: then it reads to the left.
        const double room = (static_cast<double>(geometry.layout.columns().size() - from) - 0.5) *
                            geometry.column_width;
        const bool right_half = from > geometry.layout.index("net") && label_width + 12 > room;
        const double text_x = right_half ? x - 10 : x + 10;
        right_edge = std::max(right_edge, right_half ? x : text_x + label_width + 8);
        if (row.style == "fault" || row.style == "error" || row.style == "warn") {
            const double left = right_half ? text_x - label_width - 5 : text_x - 5;
            out += "<rect x=\"" + px(left) + "\" y=\"" + px(center_y - 8) + "\" width=\"" +
                   px(label_width + 10) + "\" height=\"16\" rx=\"3\" class=\"nb\"/>";
        }
        if (row.style == "fault") {
            out += "<path d=\"M" + px(x) + " " + px(center_y - 6) +
                   "l6 6l-6 6l-6 -6z\" class=\"mk\"/>";
        } else if (row.style == "error") {
            out += "<path d=\"M" + px(x - 4) + " " + px(center_y - 4) +
                   "l8 8m0 -8l-8 8\" class=\"mk x\"/>";
        } else {
            out +=
                "<circle cx=\"" + px(x) + "\" cy=\"" + px(center_y) + "\" r=\"3.5\" class=\"mk\"/>";
        }
        svg_text(out, text_x, center_y + 4, "lbl", right_half ? "end" : "start", label);
    }
    out += "</g>";
    return right_edge;
}

Diagram sequence_diagram(const std::vector<std::string>& lines,
                         const std::vector<std::string>& failures) {
    // Two passes over the lines and nothing parsed kept between them, so memory stays bounded
    // however long the trace: the first learns where each thread and connection end belongs,
    // counts the rows and finds the first failing step; the second keeps the rows to draw.
    const auto each_event = [&lines](const auto& visit) {
        for (const std::string& line : lines) {
            const json event = json::parse(line, nullptr, false);
            if (event.is_object()) {
                visit(event, line);
            }
        }
    };
    SequenceBuilder builder(failing_steps(failures));
    std::size_t trace_events = 0;
    each_event([&](const json& event, const std::string& line) {
        builder.learn(event);
        builder.add(event, line);  // counting: which side a thread is on changes no row count
        if (field(event, "ev") != "end") {
            ++trace_events;
        }
    });
    builder.settle_sides();
    const KeptRows counted = builder.finish();
    builder.restart(rows_to_draw(counted.count, counted.first_failed));
    each_event([&](const json& event, const std::string& line) { builder.add(event, line); });
    const KeptRows kept = builder.finish();
    const auto& ranges = kept.ranges;

    std::vector<const SeqRow*> drawn;
    std::size_t drawn_events = 0;
    for (const auto& [index, row] : kept.rows) {
        drawn.push_back(&row);
        drawn_events += row.events;
    }
    const ColumnLayout layout(builder, drawn, kept.markers);
    const auto& columns = layout.columns();
    const SeqGeometry geometry{layout, seq_column_width(columns.size())};
    const double column_width = geometry.column_width;
    const auto center = [&](std::size_t index) { return geometry.center(index); };

    // Vertical positions: rows in order, a band for every stretch left out.
    std::vector<double> row_y(kept.rows.size(), 0);
    std::vector<double> gap_y(ranges.size(), -1);
    double y = kSeqTop;
    std::size_t previous_end = 0;
    std::size_t cursor = 0;
    for (std::size_t range = 0; range < ranges.size(); ++range) {
        if (ranges[range].first > previous_end) {
            gap_y[range] = y + kSeqGapHeight / 2;
            y += kSeqGapHeight;
        }
        while (cursor < kept.rows.size() && kept.rows[cursor].first < ranges[range].second) {
            row_y[cursor++] = y + kSeqRowHeight / 2;
            y += kSeqRowHeight;
        }
        previous_end = ranges[range].second;
    }
    // The gap a row left out falls in: the one before the first range that starts after it.
    const auto gap_of = [&](std::size_t index) {
        const auto after = std::upper_bound(
            ranges.begin(), ranges.end(), index, [](std::size_t value, const auto& range) {
                return value < range.first;
            });
        const auto range = static_cast<std::size_t>(after - ranges.begin());
        return range < gap_y.size() && gap_y[range] >= 0 ? gap_y[range] : kSeqTop;
    };
    const double rows_bottom = y + 8;
    const double width = kSeqGutter + column_width * static_cast<double>(columns.size()) + 12;
    const double height = rows_bottom + 34;

    // The body first: its width is known only once every label is placed.
    double right_edge = width;
    std::string out;
    out.reserve(drawn.size() * 320 + 4096);
    svg_text(out, kSeqGutter - 10, 50, "axis-t", "end", "virtual time");
    draw_headers(out, columns, 8, true);

    // Lifelines, behind everything else; the network's is drawn as a band.
    for (std::size_t index = 0; index < columns.size(); ++index) {
        const double x = center(index);
        if (columns[index].group == "network") {
            out += "<rect x=\"" + px(x - 40) + "\" y=\"" + px(kSeqTop - 6) +
                   "\" width=\"80\" height=\"" + px(rows_bottom - kSeqTop + 6) +
                   "\" class=\"netband\"/>";
        }
        out += "<line x1=\"" + px(x) + "\" y1=\"" + px(kSeqTop - 6) + "\" x2=\"" + px(x) +
               "\" y2=\"" + px(rows_bottom) + "\" class=\"life\"/>";
    }

    // Gaps: what was left out, with its time range.
    for (std::size_t range = 0; range < ranges.size(); ++range) {
        if (gap_y[range] < 0) {
            continue;
        }
        const KeptRows::Gap& gap = kept.gaps[range];
        out += "<rect x=\"0\" y=\"" + px(gap_y[range] - kSeqGapHeight / 2 + 3) + "\" width=\"" +
               px(width) + "\" height=\"" + px(kSeqGapHeight - 6) + "\" class=\"gap\"/>";
        svg_text(out,
                 width / 2,
                 gap_y[range] + 4,
                 "gap-t",
                 "middle",
                 "\xE2\x8B\xAF " + with_commas(gap.events) + " events omitted (" +
                     format_time(gap.t_first) + " to " + format_time(gap.t_last) +
                     ") \xE2\x8B\xAF");
    }

    // Activation bars: an operation from its Begin call to its completion, on the calling
    // thread; still open at the end of the run, it runs to the bottom, dashed.
    {
        std::map<std::size_t, int> depth;  // column -> open bars
        struct Bar {
            std::size_t column;
            double top;
            double bottom;
            int level;
            bool finished;
            std::string label;
        };
        std::vector<Bar> bars;
        std::map<std::string, int> level_of;
        // Where operations start and end, drawn or not, in row order.
        struct Point {
            std::size_t index;
            double y;
            const std::string* from;
            const std::string* begins;
            const std::string* ends;
        };
        std::vector<Point> points;
        for (std::size_t at = 0; at < kept.rows.size(); ++at) {
            const SeqRow& row = kept.rows[at].second;
            if (!row.op_begins.empty() || !row.op_ends.empty()) {
                points.push_back(
                    Point{kept.rows[at].first, row_y[at], &row.from, &row.op_begins, &row.op_ends});
            }
        }
        for (const KeptRows::Marker& marker : kept.markers) {
            points.push_back(Point{marker.index,
                                   gap_of(marker.index),
                                   &marker.from,
                                   &marker.op_begins,
                                   &marker.op_ends});
        }
        std::sort(points.begin(), points.end(), [](const Point& left, const Point& right) {
            return left.index < right.index;
        });
        std::map<std::string, std::pair<double, std::size_t>> opened;  // key -> top, column
        const auto finish = [&](const std::string& key, double bottom) {
            const auto found = opened.find(key);
            if (found == opened.end()) {
                return;
            }
            const auto [top, column] = found->second;
            bars.push_back(Bar{column, top, bottom, level_of[key], true, key});
            --depth[column];
            opened.erase(found);
        };
        for (const Point& point : points) {
            if (!point.begins->empty()) {
                // Starting an operation again under the same name ends the earlier one here,
                // as the timeline does.
                finish(*point.begins, point.y);
                const std::size_t column = layout.index(*point.from);
                opened[*point.begins] = {point.y, column};
                level_of[*point.begins] = std::min(depth[column]++, 3);
            }
            if (!point.ends->empty()) {
                finish(*point.ends, point.y);
            }
        }
        for (const auto& [key, begin] : opened) {
            bars.push_back(Bar{begin.second, begin.first, rows_bottom, level_of[key], false, key});
        }
        std::sort(bars.begin(), bars.end(), [](const Bar& left, const Bar& right) {
            return std::tie(left.top, left.level, left.label) <
                   std::tie(right.top, right.level, right.label);
        });
        for (const Bar& bar : bars) {
            const double x = center(bar.column) - 4 + 5 * bar.level;
            out += "<rect x=\"" + px(x) + "\" y=\"" + px(bar.top - 6) + "\" width=\"8\" height=\"" +
                   px(std::max(12.0, bar.bottom - bar.top + 12)) + "\" class=\"act" +
                   (bar.finished ? "" : " open") + "\">";
            svg_title(out,
                      bar.label.substr(bar.label.find(' ') + 1) +
                          (bar.finished ? ": from its call to its completion"
                                        : ": still pending when the run ended"));
            out += "</rect>";
        }
    }

    // Rows.
    std::int64_t shown_t = -1;
    bool first_drawn = true;
    std::size_t previous_index = 0;
    for (std::size_t at = 0; at < kept.rows.size(); ++at) {
        const std::size_t index = kept.rows[at].first;
        const SeqRow& row = kept.rows[at].second;
        const double center_y = row_y[at];
        const bool after_gap = !first_drawn && index != previous_index + 1;
        if (row.t != shown_t || first_drawn || after_gap) {
            if (!first_drawn && !after_gap) {
                out += "<line x1=\"0\" y1=\"" + px(center_y - kSeqRowHeight / 2) + "\" x2=\"" +
                       px(width) + "\" y2=\"" + px(center_y - kSeqRowHeight / 2) +
                       "\" class=\"tick\"/>";
            }
            svg_text(out, kSeqGutter - 10, center_y + 4, "time", "end", format_time(row.t));
            shown_t = row.t;
        }
        first_drawn = false;
        previous_index = index;
        right_edge = std::max(right_edge, draw_row(out, row, center_y, width, geometry));
    }
    draw_headers(out, columns, rows_bottom + 6, false);
    out += "</svg>";

    const double full_width = std::ceil(std::max(width, right_edge + 4));
    Diagram diagram;
    diagram.svg = "<svg class=\"seq\" role=\"img\" viewBox=\"0 0 " + px(full_width) + " " +
                  px(height) + "\" width=\"" + px(full_width) + "\" height=\"" + px(height) + "\">";
    svg_title(diagram.svg,
              "Sequence diagram: " + with_commas(drawn.size()) + " rows, time flows down");
    diagram.svg += "<rect width=\"100%\" height=\"100%\" class=\"bg\"/>";
    diagram.svg += out;
    if (drawn.size() < kept.count) {
        diagram.note = "Showing " + with_commas(drawn_events) + " of " + with_commas(trace_events) +
                       " events: the first " + with_commas(ranges.front().second) + " rows, " +
                       (ranges.size() > 2 ? with_commas(ranges[1].second - ranges[1].first) +
                                                " rows around the first step a failure points at, "
                                          : std::string()) +
                       "and the last " + with_commas(ranges.back().second - ranges.back().first) +
                       " rows.";
    }
    return diagram;
}

// ---------------------------------------------------------------------------------------------
// The timeline: one swimlane per track, time to the right, proportional.

constexpr double kTimelineGutter = 150;
constexpr double kTimelinePlot = 960;
constexpr double kTimelineAxis = 34;
constexpr double kLaneInstants = 14;  // the strip of a lane that holds instants
constexpr double kLaneSpanRow = 13;
constexpr std::size_t kSpanRowsMax = 4;
constexpr std::size_t kTracksMax = 24;
constexpr std::size_t kMarksMax = 4000;  // instants, spans and flows drawn, all together
constexpr std::size_t kFlowsMax = 1500;

/// Tick spacing: 1, 2 or 5 times a power of ten, giving at most about eight ticks.
std::int64_t tick_step(std::int64_t span) {
    std::int64_t step = 1;
    while (step <= std::numeric_limits<std::int64_t>::max() / 10) {
        for (const std::int64_t factor : {1, 2, 5}) {
            if (span / (step * factor) <= 8) {
                return step * factor;
            }
        }
        step *= 10;
    }
    return step;
}

constexpr double kBreakWidth = 26;
constexpr std::size_t kBreaksMax = 6;

/// Virtual time to x for the timeline: linear, except that long idle stretches (a wait budget
/// running out, a 10 s timeout) shrink to a narrow break, so the busy parts keep their width.
class TimeScale {
public:
    TimeScale(std::vector<std::int64_t> times, std::int64_t end_ns)
        : end_ns_(std::max<std::int64_t>(end_ns, 1)) {
        times.push_back(0);
        times.push_back(end_ns_);
        for (std::int64_t& time : times) {
            time = std::clamp<std::int64_t>(time, 0, end_ns_);
        }
        std::sort(times.begin(), times.end());
        times.erase(std::unique(times.begin(), times.end()), times.end());
        // A stretch with nothing in it longer than a tenth of the run is idle; the longest
        // few become breaks.
        std::vector<std::pair<std::int64_t, std::int64_t>> gaps;
        for (std::size_t index = 1; index < times.size(); ++index) {
            if (times[index] - times[index - 1] > end_ns_ / 10) {
                gaps.emplace_back(times[index - 1], times[index]);
            }
        }
        std::stable_sort(gaps.begin(), gaps.end(), [](const auto& left, const auto& right) {
            return left.second - left.first > right.second - right.first;
        });
        if (gaps.size() > kBreaksMax) {
            gaps.resize(kBreaksMax);
        }
        std::sort(gaps.begin(), gaps.end());
        std::int64_t idle_ns = 0;
        for (const auto& [begin, end] : gaps) {
            idle_ns += end - begin;
        }
        if (idle_ns < end_ns_) {
            breaks_ = std::move(gaps);
            linear_ns_ = end_ns_ - idle_ns;
        }
        scale_ = (kTimelinePlot - kBreakWidth * static_cast<double>(breaks_.size())) /
                 static_cast<double>(linear_ns_);
    }

    [[nodiscard]] double x(std::int64_t ns) const {
        ns = std::clamp<std::int64_t>(ns, 0, end_ns_);
        double x = kTimelineGutter;
        std::int64_t cursor = 0;
        for (const auto& [begin, end] : breaks_) {
            if (ns <= begin) {
                break;
            }
            x += static_cast<double>(begin - cursor) * scale_;
            if (ns < end) {
                return x + kBreakWidth * static_cast<double>(ns - begin) /
                               static_cast<double>(end - begin);
            }
            x += kBreakWidth;
            cursor = end;
        }
        return x + static_cast<double>(ns - cursor) * scale_;
    }
    [[nodiscard]] const std::vector<std::pair<std::int64_t, std::int64_t>>& breaks() const {
        return breaks_;
    }
    /// The stretches drawn to scale, between the breaks.
    [[nodiscard]] std::vector<std::pair<std::int64_t, std::int64_t>> segments() const {
        std::vector<std::pair<std::int64_t, std::int64_t>> segments;
        std::int64_t cursor = 0;
        for (const auto& [begin, end] : breaks_) {
            segments.emplace_back(cursor, begin);
            cursor = end;
        }
        segments.emplace_back(cursor, end_ns_);
        return segments;
    }
    [[nodiscard]] std::int64_t linear_ns() const { return linear_ns_; }

private:
    std::int64_t end_ns_;
    std::int64_t linear_ns_ = end_ns_;
    std::vector<std::pair<std::int64_t, std::int64_t>> breaks_;
    double scale_ = 0;
};

std::string category_class(const std::string& category) {
    static const std::set<std::string> kKnown = {"api", "op", "net", "fault", "conn", "thread"};
    return kKnown.contains(category) ? category : "other";
}

Diagram timeline_diagram(const Timeline& timeline) {
    // Threads first, then the network, then connection ends, each in the order the run met them.
    std::vector<std::size_t> order;
    for (const TrackKind kind : {TrackKind::thread, TrackKind::network, TrackKind::connection}) {
        for (std::size_t index = 0; index < timeline.tracks.size(); ++index) {
            if (timeline.tracks[index].kind == kind) {
                order.push_back(index);
            }
        }
    }
    const std::size_t tracks_total = order.size();
    if (order.size() > kTracksMax) {
        order.resize(kTracksMax);
    }
    std::map<std::size_t, std::size_t> lane_of;  // track -> lane
    for (std::size_t lane = 0; lane < order.size(); ++lane) {
        lane_of[order[lane]] = lane;
    }
    std::vector<std::int64_t> times;
    times.reserve(timeline.events.size() * 2 + timeline.flows.size() * 2);
    for (const TimelineEvent& event : timeline.events) {
        times.push_back(event.start_ns);
        times.push_back(event.end_ns);
    }
    for (const TimelineFlow& flow : timeline.flows) {
        times.push_back(flow.start_ns);
        times.push_back(flow.end_ns);
    }
    const TimeScale scale(std::move(times), timeline.end_ns);
    const auto x_of = [&](std::int64_t ns) { return scale.x(ns); };

    // Spans packed into rows per lane, greedily, so overlapping operations stay visible.
    struct Placed {
        std::size_t event;
        std::size_t row;
    };
    std::vector<std::vector<double>> row_ends(order.size());
    std::vector<Placed> spans;
    std::size_t drawn = 0;
    std::size_t skipped = 0;
    std::set<std::tuple<std::size_t, long long, long long, std::string>> span_seen;
    for (std::size_t index = 0; index < timeline.events.size(); ++index) {
        const TimelineEvent& event = timeline.events[index];
        const auto lane = lane_of.find(event.track);
        if (event.instant || lane == lane_of.end()) {
            continue;
        }
        const double left = x_of(event.start_ns);
        const double right = std::max(left + 2, x_of(event.end_ns));
        // Spans that would draw the same pixels as one already drawn add nothing but bytes.
        const auto key =
            std::tuple(lane->second, std::llround(left), std::llround(right), event.category);
        if (!span_seen.insert(key).second || drawn >= kMarksMax) {
            ++skipped;
            continue;
        }
        auto& ends = row_ends[lane->second];
        std::size_t row = 0;
        while (row < ends.size() && ends[row] > left) {
            ++row;
        }
        if (row == ends.size()) {
            if (ends.size() < kSpanRowsMax) {
                ends.push_back(0);
            } else {
                row = kSpanRowsMax - 1;
            }
        }
        ends[row] = std::max(ends[row], right + 1);
        spans.push_back(Placed{index, row});
        ++drawn;
    }
    std::vector<double> lane_top(order.size() + 1, kTimelineAxis);
    for (std::size_t lane = 0; lane < order.size(); ++lane) {
        const double rows = static_cast<double>(std::max<std::size_t>(1, row_ends[lane].size()));
        lane_top[lane + 1] = lane_top[lane] + kLaneInstants + rows * kLaneSpanRow + 8;
    }
    const double plot_bottom = lane_top[order.size()];
    const double width = kTimelineGutter + kTimelinePlot + 24;
    const double height = plot_bottom + 10;

    std::string out;
    out += "<svg class=\"timeline\" role=\"img\" viewBox=\"0 0 " + px(width) + " " + px(height) +
           "\" width=\"" + px(width) + "\" height=\"" + px(height) + "\">";
    svg_title(out, "Timeline: one lane per track, virtual time to the right");
    out += "<rect width=\"100%\" height=\"100%\" class=\"bg\"/>";

    // Lanes and their names.
    for (std::size_t lane = 0; lane < order.size(); ++lane) {
        const Track& track = timeline.tracks[order[lane]];
        const std::string kind = track.kind == TrackKind::thread    ? "thread"
                                 : track.kind == TrackKind::network ? "network"
                                                                    : "connection";
        out += "<rect x=\"0\" y=\"" + px(lane_top[lane]) + "\" width=\"" + px(width) +
               "\" height=\"" + px(lane_top[lane + 1] - lane_top[lane]) + "\" class=\"lane " +
               kind + (lane % 2 == 1 ? " odd" : "") + "\"/>";
        svg_text(out, 10, lane_top[lane] + 16, "lane-t", "start", truncated(track.name, 22));
    }
    // Time axis with a grid: ticks in each stretch drawn to scale, each break marked with the
    // idle time it hides. Labels that would overlap the one before are left out.
    {
        struct Label {
            double x;
            std::string text;
            bool strong;
        };
        std::vector<Label> labels;
        const std::int64_t step = tick_step(scale.linear_ns());
        for (const auto& [begin, end] : scale.segments()) {
            if (begin > 0) {
                labels.push_back(Label{x_of(begin), format_time(begin), true});
            }
            // The first multiple of step at or after begin, without overflowing near the top
            // of the range (a hostile trace can stamp an event at INT64_MAX).
            std::int64_t first = begin - begin % step;
            if (first < begin) {
                if (first > std::numeric_limits<std::int64_t>::max() - step) {
                    continue;
                }
                first += step;
            }
            for (std::int64_t tick = first; tick <= end; tick += step) {
                labels.push_back(Label{x_of(tick), format_time(tick), false});
                if (tick > end - step) {
                    break;
                }
            }
        }
        std::stable_sort(labels.begin(), labels.end(), [](const Label& left, const Label& right) {
            return left.x < right.x;
        });
        // Greedy from the left; where a label after a break collides with a plain tick's,
        // the break's wins, since it says where time resumes.
        std::vector<std::pair<double, const Label*>> placed;  // (left edge of the next, label)
        for (const Label& label : labels) {
            out += "<line x1=\"" + px(label.x) + "\" y1=\"" + px(kTimelineAxis - 6) + "\" x2=\"" +
                   px(label.x) + "\" y2=\"" + px(plot_bottom) + "\" class=\"grid\"/>";
            const double half = text_width(label.text) / 2 + 4;
            if (!placed.empty() && label.x - half < placed.back().first) {
                if (!label.strong || placed.back().second->strong) {
                    continue;
                }
                placed.pop_back();
            }
            placed.emplace_back(label.x + half, &label);
        }
        for (const auto& [right, label] : placed) {
            const double half = text_width(label->text) / 2 + 4;
            svg_text(
                out,
                std::clamp(label->x, kTimelineGutter + half - 4, kTimelineGutter + kTimelinePlot),
                kTimelineAxis - 10,
                label->strong ? "axis-t strong" : "axis-t",
                "middle",
                label->text);
        }
        for (const auto& [begin, end] : scale.breaks()) {
            const double x = x_of(begin);
            out += "<g class=\"brk\">";
            svg_title(out,
                      "nothing happens for " + format_time(end - begin) + " (" +
                          format_time(begin) + " to " + format_time(end) +
                          "): drawn narrow, not to scale");
            out += "<rect x=\"" + px(x + 3) + "\" y=\"" + px(kTimelineAxis - 4) + "\" width=\"" +
                   px(kBreakWidth - 6) + "\" height=\"" + px(plot_bottom - kTimelineAxis + 4) +
                   "\"/><path d=\"M" + px(x + 3) + " " + px(kTimelineAxis + 2) + "l" +
                   px(kBreakWidth / 2 - 3) + " -6l" + px(kBreakWidth / 2 - 3) + " 6\"/>";
            out += "</g>";
        }
    }

    // Faults as faint lines across every lane, so what they disturbed lines up beneath them.
    std::set<long long> fault_columns;
    for (const TimelineEvent& event : timeline.events) {
        if (event.category == "fault" && fault_columns.size() < 200 &&
            fault_columns.insert(std::llround(x_of(event.start_ns))).second) {
            const double x = x_of(event.start_ns);
            out += "<line x1=\"" + px(x) + "\" y1=\"" + px(kTimelineAxis) + "\" x2=\"" + px(x) +
                   "\" y2=\"" + px(plot_bottom) + "\" class=\"faultline\"/>";
        }
    }

    // Spans.
    for (const Placed& placed : spans) {
        const TimelineEvent& event = timeline.events[placed.event];
        const std::size_t lane = lane_of.at(event.track);
        const double left = x_of(event.start_ns);
        const double right = std::max(left + 2, x_of(event.end_ns));
        const double top =
            lane_top[lane] + kLaneInstants + static_cast<double>(placed.row) * kLaneSpanRow;
        out += "<g class=\"span " + category_class(event.category) +
               (event.unfinished ? " open" : "") + "\">";
        std::string tip = event.name + "\n" + format_time(event.start_ns) + " to " +
                          format_time(event.end_ns) +
                          (event.unfinished ? " (still pending when the run ended)" : "") +
                          "\nseq " + std::to_string(event.seq);
        svg_title(out, tip);
        out += "<rect x=\"" + px(left) + "\" y=\"" + px(top) + "\" width=\"" + px(right - left) +
               "\" height=\"" + px(kLaneSpanRow - 3) + "\" rx=\"2\"/>";
        const std::string label = truncated(event.name, 40);
        if (text_width(label) * 0.9 + 8 < right - left) {
            svg_text(out, left + 4, top + 8.5, "span-t", "start", label);
        }
        out += "</g>";
    }

    // Instants: one mark per lane, pixel and category, counting what it stands for.
    struct Mark {
        std::size_t first;
        std::size_t count = 0;
    };
    std::map<std::tuple<std::size_t, long long, std::string>, Mark> marks;
    std::vector<std::tuple<std::size_t, long long, std::string>> mark_order;
    for (std::size_t index = 0; index < timeline.events.size(); ++index) {
        const TimelineEvent& event = timeline.events[index];
        const auto lane = lane_of.find(event.track);
        if (!event.instant || lane == lane_of.end()) {
            if (event.instant) {
                ++skipped;
            }
            continue;
        }
        const auto key =
            std::tuple(lane->second, std::llround(x_of(event.start_ns)), event.category);
        auto [found, inserted] = marks.try_emplace(key, Mark{index});
        if (inserted) {
            if (drawn >= kMarksMax) {
                marks.erase(found);
                ++skipped;
                continue;
            }
            ++drawn;
            mark_order.push_back(key);
        } else {
            ++skipped;
        }
        ++found->second.count;
    }
    for (const auto& key : mark_order) {
        const Mark& mark = marks.at(key);
        const TimelineEvent& event = timeline.events[mark.first];
        const double x = x_of(event.start_ns);
        const double y = lane_top[std::get<0>(key)] + 7;
        out += "<g class=\"inst " + category_class(event.category) + "\">";
        svg_title(out,
                  event.name + "\n" + format_time(event.start_ns) + ", seq " +
                      std::to_string(event.seq) +
                      (mark.count > 1 ? "\n+" + with_commas(mark.count - 1) + " more here" : ""));
        if (event.category == "fault") {
            out += "<path d=\"M" + px(x) + " " + px(y - 6) + "l5 6l-5 6l-5 -6z\"/>";
        } else {
            out += "<rect x=\"" + px(x - 1.5) + "\" y=\"" + px(y - 5) +
                   "\" width=\"3\" height=\"10\"/>";
        }
        out += "</g>";
    }

    // Flows between connection ends, over the lanes.
    std::set<std::tuple<std::size_t, std::size_t, long long, long long, std::string>> flow_seen;
    std::size_t flows_drawn = 0;
    for (const TimelineFlow& flow : timeline.flows) {
        const auto from = lane_of.find(flow.from_track);
        const auto to = lane_of.find(flow.to_track);
        if (from == lane_of.end() || to == lane_of.end()) {
            ++skipped;
            continue;
        }
        const std::string kind = flow.name == "RST" ? "rst" : flow.name == "FIN" ? "fin" : "bytes";
        const double x1 = x_of(flow.start_ns);
        const double x2 = x_of(flow.end_ns);
        const auto key =
            std::tuple(from->second, to->second, std::llround(x1), std::llround(x2), kind);
        if (!flow_seen.insert(key).second || flows_drawn >= kFlowsMax || drawn >= kMarksMax) {
            ++skipped;
            continue;
        }
        ++flows_drawn;
        ++drawn;
        const double y1 = lane_top[from->second] + 7;
        const double y2 = lane_top[to->second] + 7;
        out += "<line x1=\"" + px(x1) + "\" y1=\"" + px(y1) + "\" x2=\"" + px(x2) + "\" y2=\"" +
               px(y2) + "\" class=\"flow " + kind + "\">";
        svg_title(out,
                  flow.name + ": " + timeline.tracks[flow.from_track].name + " to " +
                      timeline.tracks[flow.to_track].name + ", " + format_time(flow.start_ns) +
                      " to " + format_time(flow.end_ns));
        out += "</line>";
    }
    out += "</svg>";

    Diagram diagram;
    diagram.svg = std::move(out);
    std::string note;
    if (tracks_total > order.size()) {
        note = "Showing " + std::to_string(order.size()) + " of " + std::to_string(tracks_total) +
               " tracks. ";
    }
    if (skipped > 0) {
        note += "Marks that would fall on the same pixel are drawn once: " + with_commas(drawn) +
                " marks for " + with_commas(timeline.events.size() + timeline.flows.size()) +
                " events and flows (hover a mark for how many it stands for).";
    }
    diagram.note = note;
    return diagram;
}

// ---------------------------------------------------------------------------------------------
// The page.

constexpr std::string_view kStyle = R"css(
:root{--pass:#1a7f37;--pass-bg:#dafbe1;--fail:#cf222e;--fail-bg:#ffebe9;--na:#6e7781;
  --na-bg:#eaeef2;--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--panel:#f6f8fa;--accent:#0969da;
  --warn-bg:#fff8c5;--warn:#9a6700}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,"Segoe UI","DejaVu Sans",Helvetica,Arial,sans-serif;
  color:var(--ink);background:#fff}
code,pre,.mono{
  font-family:ui-monospace,SFMono-Regular,"DejaVu Sans Mono",Menlo,Consolas,monospace;
  font-size:12.5px}
header.top{background:#24292f;color:#fff;padding:18px 32px}
header.top h1{margin:0;font-size:20px;font-weight:600}
header.top p{margin:4px 0 0;color:#c9d1d9;font-size:13px}
main{padding:20px 32px 48px;max-width:1500px}
h2{font-size:18px;margin:32px 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:16px;margin:0}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
.verdict{display:flex;align-items:center;gap:12px;padding:12px 16px;border-radius:6px;
  font-weight:600;margin:4px 0 16px}
.verdict.pass{background:var(--pass-bg);color:var(--pass);border:1px solid #aceebb}
.verdict.fail{background:var(--fail-bg);color:var(--fail);border:1px solid #ffcecb}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 16px;min-width:140px;
  background:#fff}
.card .n{font-size:26px;font-weight:600;line-height:1.2}
.card .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card.pass .n{color:var(--pass)}
.card.fail .n{color:var(--fail)}
.card.na .n{color:var(--na)}
table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
thead th{background:var(--panel);font-weight:600;font-size:13px;position:sticky;top:0;z-index:1}
td.c{text-align:center;white-space:nowrap}
td.pass{background:var(--pass-bg)}
td.fail{background:var(--fail-bg)}
td.na{background:var(--na-bg);color:var(--na)}
td.none{color:#afb8c1}
.pill{display:inline-block;min-width:20px;padding:0 6px;border-radius:10px;font-size:12px;
  font-weight:600;margin:0 1px}
.pill.pass{background:var(--pass);color:#fff}
.pill.fail{background:var(--fail);color:#fff}
.pill.na{background:#8c959f;color:#fff}
.badge{display:inline-block;padding:1px 8px;border-radius:4px;font-size:12px;font-weight:700;
  letter-spacing:.03em;vertical-align:middle}
.badge.fail{background:var(--fail);color:#fff}
.badge.pass{background:var(--pass);color:#fff}
.badge.na{background:#8c959f;color:#fff}
.nw{white-space:nowrap}
.muted{color:var(--muted)}
.small{font-size:12px}
.legend{display:flex;gap:16px;flex-wrap:wrap;color:var(--muted);font-size:12px;margin:4px 0}
.tablewrap{overflow:auto;max-height:80vh;border:1px solid var(--line);border-radius:6px}
.tablewrap table{margin:0;border:0}
.tablewrap th,.tablewrap td{border-top:0;border-left:0}
.controls{display:flex;gap:16px;align-items:center;margin:8px 0}
.controls input[type=search]{padding:5px 8px;border:1px solid var(--line);border-radius:6px;
  width:280px;font:inherit}
section.failure{border:1px solid #ffcecb;border-left:4px solid var(--fail);border-radius:6px;
  padding:14px 18px;margin:16px 0;background:#fff}
section.failure .meta{display:flex;flex-wrap:wrap;gap:6px 18px;color:var(--muted);font-size:13px;
  margin:6px 0}
section.failure .meta b{color:var(--ink);font-weight:600}
ul.messages{margin:8px 0;padding:0;list-style:none}
ul.messages li{background:var(--fail-bg);border-radius:4px;padding:6px 10px;margin:4px 0;
  white-space:pre-wrap;word-break:break-word;
  font-family:ui-monospace,SFMono-Regular,"DejaVu Sans Mono",monospace;font-size:12.5px}
pre.replay{background:#24292f;color:#f0f6fc;padding:8px 12px;border-radius:6px;overflow:auto;
  margin:6px 0}
details{margin:10px 0}
details>summary{cursor:pointer;font-weight:600;padding:4px 0}
.diagram{overflow-x:auto;border:1px solid var(--line);border-radius:6px;background:#fff}
.diagram svg{display:block}
.note{font-size:12px;color:var(--warn);background:var(--warn-bg);border-radius:4px;
  padding:3px 8px;display:inline-block;margin:2px 0 6px}
footer{color:var(--muted);font-size:12px;border-top:1px solid var(--line);margin-top:40px;
  padding-top:10px}
svg text{font-family:system-ui,"DejaVu Sans",Helvetica,Arial,sans-serif;font-size:11px;
  fill:var(--ink)}
svg .bg{fill:#fff}
svg .grp{fill:#f6f8fa;stroke:#d1d9e0}
svg .grp-t{fill:var(--muted);font-size:10px;text-transform:uppercase;letter-spacing:.05em}
svg .col{fill:#24292f}
svg .col-t{fill:#fff;font-weight:600}
svg .life{stroke:#afb8c1;stroke-dasharray:4 3}
svg .netband{fill:#f6f8fa}
svg .time{fill:var(--muted);font-family:ui-monospace,"DejaVu Sans Mono",monospace;
  font-size:10.5px}
svg .axis-t{fill:var(--muted);font-size:10px}
svg .tick{stroke:#eaeef2}
svg .gap{fill:#fff8c5;stroke:#d4a72c;stroke-dasharray:3 3}
svg .gap-t{fill:#7d4e00;font-style:italic}
svg .lbl{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
svg .r .a{stroke:#57606a;stroke-width:1.3}
svg .r .head{fill:#57606a}
svg .r .mk{fill:#8c959f}
svg .dash{stroke-dasharray:5 3}
svg .call .a,svg .send .a{stroke:#0550ae}
svg .call .head,svg .send .head,svg .call .mk{fill:#0550ae}
svg .call .lbl{fill:#0550ae}
svg .step .lbl{fill:#424a53}
svg .step .mk{fill:#afb8c1}
svg .partial .a{stroke:#bc4c00;stroke-width:1.8}
svg .partial .head{fill:#bc4c00}
svg .partial .lbl{fill:#953800;font-weight:600}
svg .segment .a{stroke:#6e7781}
svg .segment .lbl{fill:#424a53}
svg .fin .a{stroke:#8250df;stroke-width:1.6}
svg .fin .head{fill:#8250df}
svg .fin .lbl{fill:#6639ba;font-weight:600}
svg .rst .a{stroke:#cf222e;stroke-width:1.8}
svg .rst .head{fill:#cf222e}
svg .rst .lbl{fill:#a40e26;font-weight:600}
svg .callback .a{stroke:#1a7f37;stroke-width:1.4}
svg .callback .head,svg .callback .mk{fill:#1a7f37}
svg .callback .lbl{fill:#116329}
svg .ok .mk{fill:#1a7f37}
svg .ok .lbl{fill:#116329}
svg .ok .a{stroke:#1a7f37}
svg .ok .head{fill:#1a7f37}
svg .muted .lbl{fill:#6e7781}
svg .muted .a{stroke:#8c959f}
svg .muted .head{fill:#8c959f}
svg .fault .nb{fill:#fff8c5;stroke:#d4a72c}
svg .fault .mk{fill:#d4a72c;stroke:#9a6700}
svg .fault .lbl{fill:#7d4e00;stroke:none;font-weight:600}
svg .error .nb{fill:#ffebe9;stroke:#ff8182}
svg .error .mk{stroke:#cf222e;stroke-width:2}
svg .error .lbl{fill:#a40e26;stroke:none;font-weight:600}
svg .warn .nb{fill:#fff8c5;stroke:#d4a72c}
svg .warn .mk{fill:#9a6700}
svg .warn .lbl{fill:#7d4e00;stroke:none}
svg .failrow{fill:#ffebe9;stroke:#ff8182}
svg .failed .lbl{fill:#a40e26;font-weight:700}
svg .act{fill:#ddf4ff;stroke:#54aeff}
svg .act.open{fill:#fff8c5;stroke:#d4a72c;stroke-dasharray:3 2}
svg .lane{fill:#fff}
svg .lane.odd{fill:#f6f8fa}
svg .lane-t{fill:var(--ink);font-weight:600}
svg .lane.network{fill:#f3f0ff}
svg .lane.connection.odd{fill:#eef6ff}
svg .lane.connection{fill:#f8fbff}
svg .grid{stroke:#d8dee4;stroke-width:.6}
svg .axis-t.strong{fill:var(--ink);font-weight:600}
svg .brk rect{fill:#fff;stroke:#afb8c1;stroke-dasharray:2 2;opacity:.9}
svg .brk path{fill:none;stroke:#8c959f}
svg .faultline{stroke:#d4a72c;stroke-width:1;stroke-dasharray:2 2;opacity:.7}
svg .span rect{fill:#b6e3ff;stroke:#0969da;stroke-width:.6}
svg .span-t{font-size:9.5px;fill:#0a3069}
svg .span.conn rect{fill:#d1d9e0;stroke:#8c959f}
svg .span.thread rect{fill:#eaeef2;stroke:#afb8c1}
svg .span.open rect{fill:#fff8c5;stroke:#d4a72c;stroke-dasharray:3 2}
svg .inst rect{fill:#57606a}
svg .inst.api rect{fill:#0550ae}
svg .inst.net rect{fill:#8c959f}
svg .inst.conn rect{fill:#cf222e}
svg .inst.thread rect{fill:#6e7781}
svg .inst.fault path{fill:#d4a72c;stroke:#9a6700}
svg .flow{stroke-width:.9;opacity:.75}
svg .flow.bytes{stroke:#6e7781}
svg .flow.fin{stroke:#8250df;stroke-width:1.4}
svg .flow.rst{stroke:#cf222e;stroke-width:1.6}
.keys{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:var(--muted);margin:4px 0}
.keys i{display:inline-block;width:18px;height:10px;border-radius:2px;margin-right:5px;
  vertical-align:-1px}
@media print{.controls,.tablewrap{max-height:none}
)css";

// The script only adds conveniences (filtering the scenario table, opening and closing every
// diagram). The page reads the same without it. The render check at the end is what the
// headless Chromium test looks for.
constexpr std::string_view kErrorHook = R"js(
window.faultlineErrors=[];
window.onerror=function(message,source,line,column){
  window.faultlineErrors.push(String(message)+" (line "+line+":"+column+")");
  if(document.body){document.body.dataset.errors=window.faultlineErrors.join(" | ");}
  return false;
};
)js";

constexpr std::string_view kScript = R"js(
(function(){
  var body=document.body;
  var controls=document.getElementById("controls");
  var filter=document.getElementById("filter");
  var onlyFailed=document.getElementById("only-failed");
  var rows=document.querySelectorAll("#scenarios tbody tr");
  function apply(){
    var text=filter.value.toLowerCase();
    for(var i=0;i<rows.length;i++){
      var matches=rows[i].textContent.toLowerCase().indexOf(text)>=0;
      var failed=rows[i].classList.contains("has-fail");
      rows[i].hidden=!(matches&&(!onlyFailed.checked||failed));
    }
  }
  if(controls){
    controls.hidden=false;
    filter.addEventListener("input",apply);
    onlyFailed.addEventListener("change",apply);
  }
  var toggle=document.getElementById("toggle-diagrams");
  if(toggle){
    toggle.hidden=false;
    toggle.addEventListener("click",function(){
      var all=document.querySelectorAll("section.failure details");
      var open=toggle.dataset.open!=="no";
      for(var i=0;i<all.length;i++){all[i].open=!open;}
      toggle.dataset.open=open?"no":"yes";
      toggle.textContent=open?"Open all diagrams":"Close all diagrams";
    });
  }
  var failures=document.querySelectorAll("section.failure");
  var missing=[];
  for(var i=0;i<failures.length;i++){
    var f=failures[i];
    if(f.dataset.trace!=="yes"){continue;}
    var seq=f.querySelector("svg.seq"),timeline=f.querySelector("svg.timeline");
    if(!seq||!timeline||!seq.querySelector("line,path,rect")||!timeline.querySelector("rect")){
      missing.push(f.id);
    }
  }
  if(window.faultlineErrors&&window.faultlineErrors.length){
    body.dataset.errors=window.faultlineErrors.join(" | ");
  }
  body.dataset.failures=String(failures.length);
  body.dataset.rendered=missing.length===0?"ok":"missing: "+missing.join(" ");
})();
)js";

struct Page {
    std::string html;
    void text(std::string_view value) { append_escaped(html, value); }
    Page& operator<<(std::string_view markup) {
        html += markup;
        return *this;
    }
};

std::string status_class(const std::string& status) {
    return status == "passed" ? "pass" : status == "failed" ? "fail" : "na";
}
std::string status_word(const std::string& status) {
    return status == "passed"           ? "PASS"
           : status == "failed"         ? "FAIL"
           : status == "not_applicable" ? "N/A"
                                        : "?";
}

std::string count_cell(const Counts& counts, const std::string& link) {
    std::string cls = counts.failed > 0           ? "fail"
                      : counts.passed > 0         ? "pass"
                      : counts.not_applicable > 0 ? "na"
                                                  : "none";
    std::string title = std::to_string(counts.passed) + " passed, " +
                        std::to_string(counts.failed) + " failed, " +
                        std::to_string(counts.not_applicable) + " not applicable";
    std::string cell = "<td class=\"c " + cls + "\" title=\"" + title + "\">";
    if (counts.total() == 0) {
        return cell + "&middot;</td>";
    }
    if (counts.failed > 0) {
        cell += link.empty() ? "" : "<a href=\"#" + link + "\">";
        cell += "<span class=\"pill fail\">" + with_commas(counts.failed) + "</span>";
        cell += link.empty() ? "" : "</a>";
    }
    if (counts.passed > 0) {
        cell += "<span class=\"pill pass\">" + with_commas(counts.passed) + "</span>";
    }
    if (counts.not_applicable > 0) {
        cell += "<span class=\"pill na\">" + with_commas(counts.not_applicable) + "</span>";
    }
    return cell + "</td>";
}

void render_summary(Page& page,
                    const std::vector<const ReportRun*>& runs,
                    const std::vector<Column>& columns) {
    Counts all;
    std::set<std::string> scenarios;
    std::set<std::string, ClauseLess> clauses;
    for (const ReportRun* run : runs) {
        all.add(run->status);
        scenarios.insert(run->path.empty() ? run->scenario : run->path);
        clauses.insert(run->clauses.begin(), run->clauses.end());
    }
    page << "<section id=\"summary\"><h2>Summary</h2>";
    if (all.failed > 0) {
        page << "<div class=\"verdict fail\"><span class=\"badge fail\">FAILED</span>"
             << with_commas(all.failed) << " of " << with_commas(all.total())
             << " runs failed. <a href=\"#failures\">See the failures</a></div>";
    } else if (all.total() == 0) {
        page << "<div class=\"verdict fail\"><span class=\"badge na\">EMPTY</span>The results hold "
                "no runs.</div>";
    } else {
        page << "<div class=\"verdict pass\"><span class=\"badge pass\">PASSED</span>Every "
                "applicable run passed.</div>";
    }
    page << "<div class=\"cards\">";
    const auto card = [&](const std::string& cls, std::uint64_t number, const std::string& label) {
        page << "<div class=\"card " << cls << "\"><div class=\"n\">" << with_commas(number)
             << "</div><div class=\"l\">" << label << "</div></div>";
    };
    card("", scenarios.size(), "scenarios");
    card("", all.total(), "runs");
    card("pass", all.passed, "passed");
    card("fail", all.failed, "failed");
    card("na", all.not_applicable, "not applicable");
    card("", clauses.size(), "clauses cited");
    page << "</div>";
    if (all.other > 0) {
        page << "<p class=\"muted\">" << with_commas(all.other)
             << " runs with an unknown status.</p>";
    }

    // By transport and profile.
    std::map<Column, Counts, ColumnLess> by_column;
    std::map<std::string, Counts, TransportLess> by_transport;
    std::map<std::string, Counts> by_profile;
    for (const ReportRun* run : runs) {
        by_column[{run->profile, run->transport}].add(run->status);
        by_transport[run->transport].add(run->status);
        by_profile[run->profile].add(run->status);
    }
    page << "<table "
            "class=\"breakdown\"><thead><tr><th></th><th>runs</th><th>passed</th><th>failed</th>"
            "<th>not applicable</th></tr></thead><tbody>";
    const auto line = [&](const std::string& name, const Counts& counts, bool strong) {
        page << "<tr><th" << (strong ? "" : " class=\"muted\"") << ">";
        page.text(name);
        page << "</th><td class=\"c\">" << with_commas(counts.total()) << "</td><td class=\"c"
             << (counts.passed > 0 ? " pass" : "") << "\">" << with_commas(counts.passed)
             << "</td><td class=\"c" << (counts.failed > 0 ? " fail" : "") << "\">"
             << with_commas(counts.failed) << "</td><td class=\"c"
             << (counts.not_applicable > 0 ? " na" : "") << "\">"
             << with_commas(counts.not_applicable) << "</td></tr>";
    };
    for (const auto& [transport, counts] : by_transport) {
        line("transport " + transport, counts, true);
    }
    for (const auto& [profile, counts] : by_profile) {
        line("profile " + profile, counts, true);
    }
    for (const Column& column : columns) {
        line(column.first + " on " + column.second, by_column[column], false);
    }
    page << "</tbody></table></section>";
}

void column_headers(Page& page,
                    const std::vector<Column>& columns,
                    const std::string& first,
                    const std::string& last) {
    page << "<thead><tr><th>" << first << "</th>";
    for (const Column& column : columns) {
        page << "<th class=\"c\">";
        page.text(column.first);
        page << "<br><span class=\"muted small\">";
        page.text(column.second);
        page << "</span></th>";
    }
    if (!last.empty()) {
        page << "<th>" << last << "</th>";
    }
    page << "</tr></thead>";
}

void render_clause_table(Page& page,
                         const std::vector<const ReportRun*>& runs,
                         const std::vector<Column>& columns,
                         const std::map<const ReportRun*, std::string>& anchors) {
    static const std::string kNone = "(no clause)";
    std::map<std::string, std::map<Column, Counts, ColumnLess>, ClauseLess> table;
    std::map<std::pair<std::string, Column>, std::string> first_failure;
    for (const ReportRun* run : runs) {
        std::set<std::string> clauses(run->clauses.begin(), run->clauses.end());
        if (clauses.empty()) {
            clauses.insert(kNone);
        }
        const Column column{run->profile, run->transport};
        for (const std::string& clause : clauses) {
            table[clause][column].add(run->status);
            const auto anchor = anchors.find(run);
            if (anchor != anchors.end()) {
                first_failure.emplace(std::pair(clause, column), anchor->second);
            }
        }
    }
    page << "<section id=\"clauses\"><h2>Clauses by profile and transport</h2>"
            "<div class=\"legend\"><span><span class=\"pill fail\">n</span> failed</span>"
            "<span><span class=\"pill pass\">n</span> passed</span>"
            "<span><span class=\"pill na\">n</span> not applicable</span>"
            "<span>Counts are runs citing the clause; a red count links to the first "
            "failure.</span></div>"
            "<div class=\"tablewrap\"><table id=\"clause-table\">";
    column_headers(page, columns, "clause", "");
    page << "<tbody>";
    for (const auto& [clause, cells] : table) {
        page << "<tr><th class=\"mono\">";
        page.text(clause);
        page << "</th>";
        for (const Column& column : columns) {
            const auto cell = cells.find(column);
            const auto link = first_failure.find(std::pair(clause, column));
            page << count_cell(cell == cells.end() ? Counts{} : cell->second,
                               link == first_failure.end() ? std::string() : link->second);
        }
        page << "</tr>";
    }
    page << "</tbody></table></div></section>";
}

void render_scenario_table(Page& page,
                           const std::vector<const ReportRun*>& runs,
                           const std::vector<Column>& columns,
                           const std::map<const ReportRun*, std::string>& anchors) {
    struct Row {
        std::string scenario;
        std::string description;
        std::set<std::string, ClauseLess> clauses;
        std::map<Column, std::vector<const ReportRun*>, ColumnLess> cells;
        bool failed = false;
    };
    std::map<std::string, Row> rows;  // by path
    for (const ReportRun* run : runs) {
        Row& row = rows[run->path.empty() ? run->scenario : run->path];
        row.scenario = run->scenario;
        if (row.description.empty()) {
            row.description = run->description;
        }
        row.clauses.insert(run->clauses.begin(), run->clauses.end());
        row.cells[{run->profile, run->transport}].push_back(run);
        row.failed = row.failed || run->status == "failed";
    }
    page << "<section id=\"scenarios-section\"><h2>Scenarios</h2>"
            "<div class=\"controls\" id=\"controls\" hidden><input type=\"search\" id=\"filter\" "
            "placeholder=\"Filter scenarios, clauses, descriptions\" aria-label=\"Filter "
            "scenarios\">"
            "<label><input type=\"checkbox\" id=\"only-failed\"> failures only</label></div>"
            "<div class=\"tablewrap\"><table id=\"scenarios\">";
    column_headers(page, columns, "scenario", "clauses");
    page << "<tbody>";
    for (const auto& [path, row] : rows) {
        page << "<tr" << (row.failed ? " class=\"has-fail\"" : "") << "><td><span class=\"mono\">";
        page.text(path);
        page << "</span>";
        if (!row.description.empty()) {
            page << "<br><span class=\"muted small\">";
            page.text(truncated(row.description, 240));
            page << "</span>";
        }
        page << "</td>";
        for (const Column& column : columns) {
            const auto cell = row.cells.find(column);
            if (cell == row.cells.end()) {
                page << "<td class=\"c none\">&middot;</td>";
                continue;
            }
            Counts counts;
            std::string reasons;
            std::string link;
            for (const ReportRun* run : cell->second) {
                counts.add(run->status);
                if (!run->reason.empty() && reasons.find(run->reason) == std::string::npos) {
                    reasons += (reasons.empty() ? "" : "; ") + run->reason;
                }
                const auto anchor = anchors.find(run);
                if (link.empty() && anchor != anchors.end()) {
                    link = anchor->second;
                }
            }
            const std::string status = counts.failed > 0   ? "failed"
                                       : counts.passed > 0 ? "passed"
                                                           : "not_applicable";
            page << "<td class=\"c " << status_class(status) << "\"";
            if (!reasons.empty()) {
                page << " title=\"";
                page.text(truncated(reasons, 400));
                page << "\"";
            }
            page << ">";
            if (!link.empty()) {
                page << "<a href=\"#" << link << "\">";
            }
            page << "<span class=\"badge " << status_class(status) << "\">" << status_word(status)
                 << "</span>";
            if (!link.empty()) {
                page << "</a>";
            }
            if (cell->second.size() > 1) {
                page << " <span class=\"muted small\">&times;"
                     << std::to_string(cell->second.size()) << "</span>";
            }
            page << "</td>";
        }
        page << "<td class=\"mono small\">";
        bool first = true;
        for (const std::string& clause : row.clauses) {
            // A clause never breaks at its hyphen.
            page << (first ? "<span class=\"nw\">" : " <span class=\"nw\">");
            page.text(clause);
            page << "</span>";
            first = false;
        }
        page << "</td></tr>";
    }
    page << "</tbody></table></div></section>";
}

constexpr std::size_t kTraceLineBytesMax = 16 * 1024;
constexpr std::size_t kTimelineLinesMax = 50'000;

void render_failure(Page& page, const ReportRun& run, const std::string& anchor) {
    page << "<section class=\"failure\" id=\"" << anchor << "\" data-trace=\""
         << (run.trace.empty() ? "no" : "yes") << "\"><h3><span class=\"badge fail\">FAIL</span> ";
    page.text(run.scenario);
    page << "</h3><div class=\"meta\"><span>transport <b>";
    page.text(run.transport);
    page << "</b></span><span>profile <b>";
    page.text(run.profile);
    page << "</b></span><span>seed <b>" << std::to_string(run.seed) << "</b></span>";
    if (!run.trace_hash.empty()) {
        page << "<span>trace hash <b class=\"mono\">";
        page.text(run.trace_hash);
        page << "</b></span>";
    }
    if (run.events > 0) {
        page << "<span><b>" << with_commas(run.events) << "</b> events</span>";
    }
    page << "<span><b>" << format_time(run.virtual_ns) << "</b> virtual</span>";
    page << "</div><div class=\"meta\"><span class=\"mono\">";
    page.text(run.path);
    page << "</span>";
    if (!run.clauses.empty()) {
        page << "<span>clauses <b class=\"mono\">";
        std::vector<std::string> clauses = run.clauses;
        std::sort(clauses.begin(), clauses.end(), ClauseLess{});
        for (std::size_t at = 0; at < clauses.size(); ++at) {
            page << (at == 0 ? "<span class=\"nw\">" : " <span class=\"nw\">");
            page.text(clauses[at]);
            page << "</span>";
        }
        page << "</b></span>";
    }
    page << "</div>";
    if (!run.description.empty()) {
        page << "<p class=\"muted\">";
        page.text(run.description);
        page << "</p>";
    }
    page << "<ul class=\"messages\">";
    for (const std::string& failure : run.failures) {
        page << "<li>";
        page.text(failure);
        page << "</li>";
    }
    if (run.failures.empty()) {
        page << "<li>(the run failed without a message)</li>";
    }
    page << "</ul>";
    if (!run.replay.empty()) {
        page << "<div class=\"small muted\">Replay it bit for bit:</div><pre "
                "class=\"replay\"><code>";
        page.text(run.replay);
        page << "</code></pre>";
    }
    if (run.trace.empty()) {
        page << "<p class=\"muted\">No trace was recorded for this run, so there are no "
                "diagrams.</p></section>";
        return;
    }
    if (run.transport != "sim") {
        page << "<p class=\"muted small\">The diagrams show the simulated run of the same scenario "
                "and profile; "
                "the failure above was on ";
        page.text(run.transport);
        page << ".</p>";
    }
    // Trace lines are a few hundred bytes. A huge one is not from the simulator, and a deeply
    // nested one could exhaust the stack when printed, so both diagrams leave such lines out.
    const auto too_long = [](const std::string& line) { return line.size() > kTraceLineBytesMax; };
    const auto dropped =
        static_cast<std::size_t>(std::count_if(run.trace.begin(), run.trace.end(), too_long));
    std::vector<std::string> filtered;  // a copy only when there is something to leave out
    if (dropped > 0) {
        std::copy_if(run.trace.begin(),
                     run.trace.end(),
                     std::back_inserter(filtered),
                     [&](const std::string& line) { return !too_long(line); });
    }
    const std::vector<std::string>& trace = dropped > 0 ? filtered : run.trace;
    if (dropped > 0) {
        page << "<div class=\"note\">" << with_commas(dropped)
             << (dropped == 1 ? " trace line longer than " : " trace lines longer than ")
             << with_commas(kTraceLineBytesMax) << (dropped == 1 ? " bytes is" : " bytes are")
             << " left out of the diagrams.</div>";
    }
    const Diagram sequence = sequence_diagram(trace, run.failures);
    page << "<details open id=\"" << anchor << "-sequence\"><summary>Sequence diagram</summary>"
            "<div class=\"keys\"><span><i style=\"background:#0550ae\"></i>application call</span>"
            "<span><i style=\"background:#6e7781\"></i>segment</span>"
            "<span><i style=\"background:#bc4c00\"></i>partial send</span>"
            "<span><i style=\"background:#8250df\"></i>FIN</span><span><i "
            "style=\"background:#cf222e\"></i>RST, reset</span>"
            "<span><i style=\"background:#d4a72c\"></i>fault</span>"
            "<span><i style=\"background:#1a7f37\"></i>callback, completion</span>"
            "<span><i style=\"background:#b6e3ff;border:1px solid #54aeff\"></i>operation "
            "pending</span>"
            "<span><i style=\"background:#ffebe9;border:1px solid #ff8182\"></i>step a failure "
            "points at</span></div>";
    if (!sequence.note.empty()) {
        page << "<div class=\"note\">";
        page.text(sequence.note);
        page << "</div>";
    }
    page << "<div class=\"diagram\">" << sequence.svg << "</div></details>";
    // The timeline holds every event it reads, so a very long trace gives it only its start;
    // the sequence diagram above has the end.
    std::string timeline_cut;
    Diagram timeline;
    if (trace.size() > kTimelineLinesMax) {
        timeline_cut = "The timeline covers the first " + with_commas(kTimelineLinesMax) + " of " +
                       with_commas(trace.size()) + " trace lines. ";
        const auto cut = trace.begin() + static_cast<std::ptrdiff_t>(kTimelineLinesMax);
        timeline =
            timeline_diagram(timeline_from_trace(std::vector<std::string>(trace.begin(), cut)));
    } else {
        timeline = timeline_diagram(timeline_from_trace(trace));
    }
    timeline.note = timeline_cut + timeline.note;
    page << "<details open id=\"" << anchor << "-timeline\"><summary>Timeline</summary>"
            "<div class=\"keys\"><span><i style=\"background:#b6e3ff;border:1px solid "
            "#0969da\"></i>operation</span>"
            "<span><i style=\"background:#fff8c5;border:1px solid #d4a72c\"></i>still pending at "
            "the end</span>"
            "<span><i style=\"background:#d1d9e0\"></i>connection, thread</span>"
            "<span><i style=\"background:#0550ae\"></i>API call</span><span><i "
            "style=\"background:#8c959f\"></i>network</span>"
            "<span><i style=\"background:#d4a72c\"></i>fault</span><span><i "
            "style=\"background:#cf222e\"></i>RST, close</span></div>";
    if (!timeline.note.empty()) {
        page << "<div class=\"note\">";
        page.text(timeline.note);
        page << "</div>";
    }
    page << "<div class=\"diagram\">" << timeline.svg << "</div></details></section>";
}

void render_not_applicable(Page& page, const std::vector<const ReportRun*>& runs) {
    std::map<std::string, std::vector<const ReportRun*>> by_reason;
    for (const ReportRun* run : runs) {
        if (run->status == "not_applicable") {
            by_reason[run->reason.empty() ? std::string("(no reason given)") : run->reason]
                .push_back(run);
        }
    }
    if (by_reason.empty()) {
        return;
    }
    page << "<section id=\"not-applicable\"><h2>Not applicable</h2><p class=\"muted\">Never "
            "counted as passed. "
            "Grouped by reason.</p>";
    for (const auto& [reason, group] : by_reason) {
        page << "<details><summary>";
        page.text(reason);
        page << " <span class=\"muted\">(" << with_commas(group.size())
             << " runs)</span></summary><ul class=\"small\">";
        for (const ReportRun* run : group) {
            page << "<li><span class=\"mono\">";
            page.text(run->path.empty() ? run->scenario : run->path);
            page << "</span> <span class=\"muted\">";
            page.text(run->transport + " \xC2\xB7 " + run->profile);
            page << "</span></li>";
        }
        page << "</ul></details>";
    }
    page << "</section>";
}

}  // namespace

nlohmann::json results_to_json(const std::vector<ReportRun>& runs) {
    json out_runs = json::array();
    for (const ReportRun& run : runs) {
        out_runs.push_back({{"scenario", run.scenario},
                            {"path", run.path},
                            {"description", run.description},
                            {"clauses", run.clauses},
                            {"transport", run.transport},
                            {"profile", run.profile},
                            {"seed", run.seed},
                            {"status", run.status},
                            {"failures", run.failures},
                            {"reason", run.reason},
                            {"replay", run.replay},
                            {"trace_hash", run.trace_hash},
                            {"events", run.events},
                            {"virtual_ns", run.virtual_ns},
                            {"wall_ms", run.wall_ms},
                            {"trace", run.trace}});
    }
    return {{"faultline_results", kResultsVersion}, {"runs", std::move(out_runs)}};
}

std::variant<std::vector<ReportRun>, std::string> results_from_json(
    const nlohmann::json& document) {
    if (!document.is_object()) {
        return std::string("a results document is a JSON object, got ") + type_name(document);
    }
    if (!document.contains("faultline_results")) {
        return std::string(
            "not a results document: missing \"faultline_results\" (write one with run --results)");
    }
    const json& version = document.at("faultline_results");
    if (!version.is_number_integer()) {
        return std::string("\"faultline_results\": expected the version number, got ") +
               type_name(version);
    }
    const bool supported = version.is_number_unsigned()
                               ? version.get<std::uint64_t>() == kResultsVersion
                               : version.get<std::int64_t>() == kResultsVersion;
    if (!supported) {
        return "unsupported results version " + version.dump() + " (this faultline reads version " +
               std::to_string(kResultsVersion) + ")";
    }
    if (!document.contains("runs")) {
        return std::string("missing field \"runs\"");
    }
    const json& items = document.at("runs");
    if (!items.is_array()) {
        return std::string("\"runs\": expected an array, got ") + type_name(items);
    }
    std::vector<ReportRun> runs;
    runs.reserve(items.size());
    for (std::size_t index = 0; index < items.size(); ++index) {
        ReportRun run;
        if (auto error = read_run(items.at(index), "runs[" + std::to_string(index) + "]", run)) {
            return std::move(*error);
        }
        runs.push_back(std::move(run));
    }
    return runs;
}

std::string render_report_html(const std::vector<ReportRun>& runs) {
    // Failures in a fixed order (path, transport, profile, seed) whatever order the results
    // files came in; ties keep their input order.
    std::vector<const ReportRun*> all;
    all.reserve(runs.size());
    for (const ReportRun& run : runs) {
        all.push_back(&run);
    }
    std::stable_sort(all.begin(), all.end(), [](const ReportRun* left, const ReportRun* right) {
        if (left->path != right->path) {
            return left->path < right->path;
        }
        if (left->transport != right->transport) {
            return TransportLess{}(left->transport, right->transport);
        }
        return std::tie(left->profile, left->seed) < std::tie(right->profile, right->seed);
    });
    std::set<Column, ColumnLess> column_set;
    std::vector<const ReportRun*> failed;
    std::map<const ReportRun*, std::string> anchors;
    for (const ReportRun* run : all) {
        column_set.insert({run->profile, run->transport});
        if (run->status == "failed") {
            anchors[run] = "failure-" + std::to_string(failed.size() + 1);
            failed.push_back(run);
        }
    }
    const std::vector<Column> columns(column_set.begin(), column_set.end());

    Page page;
    page.html.reserve(64 * 1024);
    page
        << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           // Nothing on this page may be fetched: the policy backs up the escaping, should
           // hostile text ever slip through as markup.
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
           "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
           "form-action 'none'\">"
           "<link rel=\"icon\" href=\"data:,\">"
           "<title>faultline report</title><style>"
        << kStyle << "</style><script>" << kErrorHook << "</script></head><body>";
    Counts counts;
    for (const ReportRun* run : all) {
        counts.add(run->status);
    }
    page << "<header class=\"top\"><h1>faultline conformance report</h1><p>"
         << with_commas(all.size()) << " runs &middot; " << with_commas(counts.passed)
         << " passed &middot; " << with_commas(counts.failed) << " failed &middot; "
         << with_commas(counts.not_applicable)
         << " not applicable &middot; virtual time from the simulated network</p></header><main>";
    render_summary(page, all, columns);
    page << "<section id=\"failures\"><h2>Failures</h2>";
    if (failed.empty()) {
        page << "<p class=\"muted\">None.</p>";
    } else {
        page << "<p class=\"muted\">" << with_commas(failed.size())
             << (failed.size() == 1 ? " failed run" : " failed runs")
             << ", each with its messages, its replay command, a sequence diagram (event order, "
                "time "
                "flows down) and a timeline (proportional virtual time). Hover any arrow or mark "
                "for its "
                "trace line. <button type=\"button\" id=\"toggle-diagrams\" hidden>Close all "
                "diagrams</button></p>"
                "<ol class=\"small\">";
        for (const ReportRun* run : failed) {
            page << "<li><a href=\"#" << anchors.at(run) << "\">";
            page.text(run->scenario);
            page << "</a> <span class=\"muted\">";
            page.text(run->transport + " \xC2\xB7 " + run->profile + " \xC2\xB7 seed " +
                      std::to_string(run->seed));
            page << "</span></li>";
        }
        page << "</ol>";
        for (std::size_t index = 0; index < failed.size(); ++index) {
            render_failure(page, *failed[index], anchors.at(failed[index]));
        }
    }
    page << "</section>";
    // The tables after the failures: a reader of a failed run wants the failures first.
    render_clause_table(page, all, columns, anchors);
    render_scenario_table(page, all, columns, anchors);
    render_not_applicable(page, all);
    page << "<footer>Written by <span class=\"mono\">faultline report</span>. Self-contained: no "
            "scripts, "
            "styles, fonts or images are fetched. The same results give the same "
            "bytes.</footer></main><script>"
         << kScript << "</script></body></html>\n";
    return std::move(page.html);
}

}  // namespace faultline::views
