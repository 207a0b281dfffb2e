// Internal to faultline::views: reading fields of trace events (hostile input: any type, any
// size) and the order clauses are listed in. Shared by the timeline, the report and coverage.
#pragma once

#include <compare>
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace faultline::views::detail {

/// A field's value as text: strings as they are, anything else as compact JSON (invalid UTF-8
/// replaced, never thrown on).
inline std::string text_of(const nlohmann::json& value) {
    return value.is_string() ? value.get<std::string>()
                             : value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// The field `key` as text; empty when the event has none.
inline std::string field(const nlohmann::json& event, const char* key) {
    const auto found = event.find(key);
    return found == event.end() ? std::string() : text_of(*found);
}

/// The field `key` as a signed integer; `otherwise` when absent, not an integer, or too large.
inline std::int64_t integer_field(const nlohmann::json& event, const char* key,
                                  std::int64_t otherwise) {
    const auto found = event.find(key);
    if (found == event.end() || !found->is_number_integer()) {
        return otherwise;
    }
    if (found->is_number_unsigned() &&
        found->get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return otherwise;
    }
    return found->get<std::int64_t>();
}

inline std::string first_word(const std::string& text) { return text.substr(0, text.find(' ')); }

/// Clauses sort by family in the order of the contract (S, A, M, W, then any other), then
/// numerically (S-9 before S-10), then by the whole text (S-12 before S-12b).
struct ClauseKey {
    int family = 4;
    std::string prefix;
    std::uint64_t number = 0;
    std::string text;
    auto operator<=>(const ClauseKey&) const = default;
};

inline ClauseKey clause_key(const std::string& clause) {
    ClauseKey key;
    key.text = clause;
    const std::size_t dash = clause.find('-');
    key.prefix = clause.substr(0, dash);
    static const std::map<std::string, int> kFamilies = {{"S", 0}, {"A", 1}, {"M", 2}, {"W", 3}};
    const auto family = kFamilies.find(key.prefix);
    // Anything that is not "family-number" (such as the report's "(no clause)") sorts last.
    key.family = dash == std::string::npos ? 5 : family == kFamilies.end() ? 4 : family->second;
    if (dash != std::string::npos) {
        for (std::size_t at = dash + 1;
             at < clause.size() && clause[at] >= '0' && clause[at] <= '9';
             ++at) {
            // Saturate instead of overflowing on a hostile 30-digit clause number.
            const auto digit = static_cast<std::uint64_t>(clause[at] - '0');
            key.number = key.number > (std::numeric_limits<std::uint64_t>::max() - digit) / 10
                             ? std::numeric_limits<std::uint64_t>::max()
                             : key.number * 10 + digit;
        }
    }
    return key;
}

struct ClauseLess {
    bool operator()(const std::string& left, const std::string& right) const {
        return clause_key(left) < clause_key(right);
    }
};

}  // namespace faultline::views::detail
