// A sim run's trace (JSON Lines, as `replay --trace` writes it) read back as a timeline: one
// track per logical thread and per connection, operations as spans from their Begin call to
// their completion, faults and network events as instants, virtual time as the clock. The same
// timeline feeds the Trace Event file (Perfetto, chrome://tracing) and the HTML report.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace faultline::views {

enum class TrackKind : std::uint8_t { thread, connection, network };

struct Track {
    TrackKind kind = TrackKind::thread;
    std::string name;  // "main", "pool-1", "conn 1 (client)", "network"
};

struct TimelineEvent {
    std::size_t track = 0;  // index into Timeline::tracks
    std::string name;       // "begin_send a", "segment 39 B", "fault reset"
    /// api (calls and their results), op (an operation from Begin to completion), net (segments,
    /// FIN, RST, handshakes), fault, conn (a connection's life), thread (spawn and exit).
    std::string category;
    std::int64_t start_ns = 0;
    std::int64_t end_ns = 0;   // == start_ns for an instant
    bool instant = true;
    bool unfinished = false;   // an op span still open when the run ended
    std::uint64_t seq = 0;     // the trace line this event starts at
    std::map<std::string, std::string> args;
};

/// A message between two connection ends: from the sending end's track at `start_ns` (its
/// send call) to the receiving end's track at `end_ns` (the segment's arrival).
struct TimelineFlow {
    std::size_t from_track = 0;
    std::size_t to_track = 0;
    std::int64_t start_ns = 0;
    std::int64_t end_ns = 0;
    std::string name;  // "39 B", "FIN", "RST"
};

struct Timeline {
    std::string scenario;
    std::string profile;
    std::vector<Track> tracks;
    std::vector<TimelineEvent> events;  // in trace order
    std::vector<TimelineFlow> flows;    // in arrival order
    std::int64_t end_ns = 0;
    std::string hash;                   // the trace's hash (its end line)
};

/// Reads the trace lines. Lines that are not JSON objects are skipped; a trace with none is an
/// empty timeline.
[[nodiscard]] Timeline timeline_from_trace(const std::vector<std::string>& lines);

/// The timeline as a Trace Event Format document (JSON object with "traceEvents"): complete
/// events ("X") for spans, instants ("i") for the rest, flow arrows for segments, thread and
/// process names as metadata. Timestamps are virtual microseconds. Deterministic bytes.
[[nodiscard]] std::string chrome_trace_json(const Timeline& timeline);

}  // namespace faultline::views
