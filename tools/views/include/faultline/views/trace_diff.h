// The first place two traces (JSON Lines) part ways, with context: what `faultline diff` prints,
// and what `determinism` reports when two runs of one scenario differ.
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace faultline::views {

struct DiffOptions {
    /// Fields left out of the comparison (e.g. "t" and "seq" to compare a sim trace with a real
    /// one, whose clocks differ).
    std::set<std::string> ignore_fields;
    /// Only events whose "ev" is in this set take part (empty: all).
    std::set<std::string> only_events;
    std::size_t context = 3;  // matching events shown before the divergence
};

struct TraceDiff {
    bool identical = true;
    std::size_t index_a = 0;            // line number (0-based) of the divergent event in A
    std::size_t index_b = 0;            // and in B
    std::optional<std::string> line_a;  // empty: A ended here
    std::optional<std::string> line_b;  // empty: B ended here
    std::vector<std::string> fields;    // fields that differ (both lines present)
    std::vector<std::string> context;   // the last matching lines (from A) before it
    std::size_t compared = 0;           // events compared equal before the divergence
};

[[nodiscard]] TraceDiff diff_traces(const std::vector<std::string>& a,
                                    const std::vector<std::string>& b,
                                    const DiffOptions& options = {});

/// The diff as text for a terminal: context lines, then the two divergent lines and the fields
/// that differ.
[[nodiscard]] std::string format_trace_diff(const TraceDiff& diff, const std::string& name_a,
                                            const std::string& name_b);

}  // namespace faultline::views
