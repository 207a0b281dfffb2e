#include "faultline/views/trace_diff.h"

#include <deque>
#include <nlohmann/json.hpp>

namespace faultline::views {
namespace {

using nlohmann::json;

/// One line as compared: its parsed object with the ignored fields removed (or the raw text
/// when it is not a JSON object), and where it was.
struct Compared {
    std::size_t index = 0;
    json object;      // null when the line is not a JSON object
    std::string raw;  // the line as written
};

std::vector<Compared> comparable(const std::vector<std::string>& lines, const DiffOptions& options) {
    std::vector<Compared> kept;
    kept.reserve(lines.size());
    for (std::size_t index = 0; index < lines.size(); ++index) {
        json object = json::parse(lines[index], nullptr, false);
        if (!object.is_object()) {
            if (options.only_events.empty()) {
                kept.push_back({index, json(), lines[index]});
            }
            continue;
        }
        if (!options.only_events.empty()) {
            const auto ev = object.find("ev");
            if (ev == object.end() || !ev->is_string() ||
                options.only_events.count(ev->get<std::string>()) == 0) {
                continue;
            }
        }
        for (const std::string& ignored : options.ignore_fields) {
            object.erase(ignored);
        }
        kept.push_back({index, std::move(object), lines[index]});
    }
    return kept;
}

bool same(const Compared& a, const Compared& b) {
    if (a.object.is_null() || b.object.is_null()) {
        return a.object.is_null() && b.object.is_null() && a.raw == b.raw;
    }
    return a.object == b.object;
}

std::vector<std::string> differing_fields(const Compared& a, const Compared& b) {
    std::vector<std::string> fields;
    if (a.object.is_null() || b.object.is_null()) {
        return fields;
    }
    for (const auto& item : a.object.items()) {
        const auto other = b.object.find(item.key());
        if (other == b.object.end() || *other != item.value()) {
            fields.push_back(item.key());
        }
    }
    for (const auto& item : b.object.items()) {
        if (!a.object.contains(item.key())) {
            fields.push_back(item.key());
        }
    }
    return fields;  // a's keys in order (std::map), then b's extra ones
}

}  // namespace

TraceDiff diff_traces(const std::vector<std::string>& a, const std::vector<std::string>& b,
                      const DiffOptions& options) {
    const std::vector<Compared> left = comparable(a, options);
    const std::vector<Compared> right = comparable(b, options);
    TraceDiff diff;
    std::deque<std::string> context;
    std::size_t at = 0;
    while (at < left.size() && at < right.size() && same(left[at], right[at])) {
        context.push_back(left[at].raw);
        if (context.size() > options.context) {
            context.pop_front();
        }
        ++at;
    }
    diff.compared = at;
    if (at == left.size() && at == right.size()) {
        return diff;
    }
    diff.identical = false;
    diff.context.assign(context.begin(), context.end());
    diff.index_a = at < left.size() ? left[at].index : a.size();
    diff.index_b = at < right.size() ? right[at].index : b.size();
    if (at < left.size()) {
        diff.line_a = left[at].raw;
    }
    if (at < right.size()) {
        diff.line_b = right[at].raw;
    }
    if (diff.line_a && diff.line_b) {
        diff.fields = differing_fields(left[at], right[at]);
    }
    return diff;
}

std::string format_trace_diff(const TraceDiff& diff, const std::string& name_a,
                              const std::string& name_b) {
    if (diff.identical) {
        return "identical: " + std::to_string(diff.compared) + " events compared\n";
    }
    std::string text = "first divergent event after " + std::to_string(diff.compared) +
                       " equal ones (line " + std::to_string(diff.index_a + 1) + " of " + name_a +
                       ", line " + std::to_string(diff.index_b + 1) + " of " + name_b + ")\n";
    for (const std::string& line : diff.context) {
        text += "    " + line + "\n";
    }
    text += "  - " + name_a + ": " + diff.line_a.value_or("(ends here)") + "\n";
    text += "  + " + name_b + ": " + diff.line_b.value_or("(ends here)") + "\n";
    if (!diff.fields.empty()) {
        text += "  fields that differ:";
        for (const std::string& field : diff.fields) {
            text += " " + field;
        }
        text += "\n";
    }
    return text;
}

}  // namespace faultline::views
