#include "faultline/views/coverage.h"

#include <algorithm>
#include <array>
#include <sstream>
#include <string_view>

#include "trace_fields.h"

namespace faultline::views {
namespace {

void add_unique(std::vector<std::string>& list, const std::string& item) {
    if (std::find(list.begin(), list.end(), item) == list.end()) {
        list.push_back(item);
    }
}

std::string cell_escape(const std::string& text) {
    std::string out;
    for (const char character : text) {
        out += character == '|' ? std::string("\\|") : std::string(1, character);
    }
    return out;
}

std::string joined(const std::vector<std::string>& items, const std::string& separator) {
    std::string out;
    for (const std::string& item : items) {
        out += (out.empty() ? "" : separator) + item;
    }
    return out;
}

bool is_family(char character) { return std::string_view("SAMW").find(character) != std::string_view::npos; }
bool is_digit(char character) { return character >= '0' && character <= '9'; }
bool is_word(char character) {
    return is_digit(character) || character == '_' || (character >= 'a' && character <= 'z') ||
           (character >= 'A' && character <= 'Z');
}

/// "S-7": a family letter, a dash, digits, nothing else.
bool is_clause_id(std::string_view text) {
    return text.size() >= 3 && is_family(text[0]) && text[1] == '-' &&
           std::all_of(text.begin() + 2, text.end(), is_digit);
}

/// "S-7" from digits that may carry leading zeros ("07").
std::string clause_id(char family, std::string_view digits) {
    const auto first = digits.find_first_not_of('0');
    return std::string(1, family) + "-" +
           (first == std::string_view::npos ? std::string("0") : std::string(digits.substr(first)));
}

/// Ids written as in prose: "S-7", "M-27/M-28", "A-12b" (a sub-case, counted as A-12); the
/// letter must start a word.
void ids_in_text(std::string_view text, std::vector<std::string>& out) {
    for (std::size_t at = 0; at + 2 < text.size(); ++at) {
        if (!is_family(text[at]) || text[at + 1] != '-' || !is_digit(text[at + 2]) ||
            (at > 0 && is_word(text[at - 1]))) {
            continue;
        }
        std::size_t end = at + 2;
        while (end < text.size() && is_digit(text[end])) {
            ++end;
        }
        add_unique(out, clause_id(text[at], text.substr(at + 2, end - at - 2)));
        at = end - 1;
    }
}

/// Ids in a test's name: underscore-separated parts like "S9", "S07" or "A12b".
void ids_in_name(std::string_view name, std::vector<std::string>& out) {
    std::size_t start = 0;
    while (start <= name.size()) {
        const std::size_t end = std::min(name.find('_', start), name.size());
        std::string_view part = name.substr(start, end - start);
        if (!part.empty() && part.back() >= 'a' && part.back() <= 'z') {
            part.remove_suffix(1);
        }
        if (part.size() >= 2 && is_family(part[0]) &&
            std::all_of(part.begin() + 1, part.end(), is_digit)) {
            add_unique(out, clause_id(part[0], part.substr(1)));
        }
        start = end + 1;
    }
}

/// "TEST(Suite, Name" and the other GoogleTest/RapidCheck test macros at the start of a line:
/// "Suite.Name", or empty.
std::string test_header(std::string_view line) {
    static constexpr std::array<std::string_view, 6> kMacros = {
        "TEST", "TEST_F", "TEST_P", "TYPED_TEST", "RC_GTEST_PROP", "RC_GTEST_FIXTURE_PROP"};
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos) {
        return {};
    }
    line.remove_prefix(first);
    std::size_t macro_end = 0;
    while (macro_end < line.size() && is_word(line[macro_end])) {
        ++macro_end;
    }
    if (std::find(kMacros.begin(), kMacros.end(), line.substr(0, macro_end)) == kMacros.end()) {
        return {};
    }
    auto word_after = [&](std::size_t& at, char separator) -> std::string_view {
        while (at < line.size() && line[at] == ' ') {
            ++at;
        }
        if (at >= line.size() || line[at] != separator) {
            return {};
        }
        ++at;
        while (at < line.size() && line[at] == ' ') {
            ++at;
        }
        const std::size_t begin = at;
        while (at < line.size() && is_word(line[at])) {
            ++at;
        }
        return line.substr(begin, at - begin);
    };
    std::size_t at = macro_end;
    const std::string_view suite = word_after(at, '(');
    const std::string_view name = suite.empty() ? std::string_view() : word_after(at, ',');
    if (name.empty()) {
        return {};
    }
    return std::string(suite) + "." + std::string(name);
}

std::string file_stem(const std::string& path) {
    const auto slash = path.find_last_of('/');
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    const auto dot = name.rfind(".json");
    return dot == std::string::npos ? name : name.substr(0, dot);
}

}  // namespace

std::variant<std::vector<Clause>, std::string> parse_clauses(const std::string& text) {
    std::vector<Clause> clauses;
    std::istringstream lines(text);
    std::string line;
    for (std::size_t number = 1; std::getline(lines, line); ++number) {
        if (line.empty() || line.front() == '#') {
            continue;
        }
        const auto first = line.find('\t');
        const auto second = first == std::string::npos ? first : line.find('\t', first + 1);
        if (second == std::string::npos) {
            return "line " + std::to_string(number) + ": expected id, differs and summary separated by tabs";
        }
        Clause clause;
        clause.id = line.substr(0, first);
        const std::string differs = line.substr(first + 1, second - first - 1);
        clause.summary = line.substr(second + 1);
        if (!is_clause_id(clause.id)) {
            return "line " + std::to_string(number) + ": \"" + clause.id + "\" is not a clause id (S-1, A-2, M-3, W-4)";
        }
        if (differs != "0" && differs != "1") {
            return "line " + std::to_string(number) + ": differs is 0 or 1";
        }
        clause.differs = differs == "1";
        for (const Clause& known : clauses) {
            if (known.id == clause.id) {
                return "line " + std::to_string(number) + ": " + clause.id + " listed twice";
            }
        }
        clauses.push_back(std::move(clause));
    }
    if (clauses.empty()) {
        return std::string("no clauses listed");
    }
    return clauses;
}

std::vector<TestCitation> cited_in_test_source(const std::string& file_name,
                                               const std::string& source) {
    // A test starts at its TEST-like macro; the comment lines right above it are its own. Ids
    // cited outside every test (a file's header comment) pin nothing.
    std::vector<std::string> lines;
    {
        std::istringstream stream(source);
        std::string line;
        while (std::getline(stream, line)) {
            lines.push_back(line);
        }
    }
    // Where each test's region starts (its leading comment block) and its name.
    std::vector<std::pair<std::size_t, std::string>> starts;
    for (std::size_t index = 0; index < lines.size(); ++index) {
        std::string test = test_header(lines[index]);
        if (test.empty()) {
            continue;
        }
        std::size_t begin = index;
        while (begin > 0 && lines[begin - 1].find("//") != std::string::npos &&
               lines[begin - 1].find_first_not_of(" \t") == lines[begin - 1].find("//")) {
            --begin;
        }
        starts.emplace_back(begin, std::move(test));
    }
    std::vector<TestCitation> citations;
    for (std::size_t test = 0; test < starts.size(); ++test) {
        const std::size_t end = test + 1 < starts.size() ? starts[test + 1].first : lines.size();
        TestCitation citation;
        citation.test = starts[test].second;
        ids_in_name(std::string_view(citation.test).substr(citation.test.find('.') + 1),
                    citation.clauses);
        for (std::size_t index = starts[test].first; index < end; ++index) {
            ids_in_text(lines[index], citation.clauses);
        }
        if (!citation.clauses.empty()) {
            citations.push_back(std::move(citation));
        }
    }
    static_cast<void>(file_name);
    return citations;
}

std::vector<ClauseCoverage> clause_coverage(const std::vector<Clause>& clauses,
                                            const std::vector<ScenarioCitation>& scenarios,
                                            const std::vector<TestCitation>& tests,
                                            const std::vector<std::string>& profiles) {
    std::vector<ClauseCoverage> coverage;
    for (const Clause& clause : clauses) {
        ClauseCoverage row;
        row.clause = clause;
        for (const ScenarioCitation& scenario : scenarios) {
            if (std::find(scenario.clauses.begin(), scenario.clauses.end(), clause.id) ==
                scenario.clauses.end()) {
                continue;
            }
            for (const std::string& profile : scenario.profiles) {
                if (std::find(profiles.begin(), profiles.end(), profile) != profiles.end()) {
                    add_unique(row.scenarios_by_profile[profile], scenario.path);
                }
            }
        }
        for (const TestCitation& test : tests) {
            if (std::find(test.clauses.begin(), test.clauses.end(), clause.id) != test.clauses.end()) {
                add_unique(row.tests, test.test);
            }
        }
        for (auto& [profile, paths] : row.scenarios_by_profile) {
            static_cast<void>(profile);
            std::sort(paths.begin(), paths.end());
        }
        std::sort(row.tests.begin(), row.tests.end());
        coverage.push_back(std::move(row));
    }
    std::stable_sort(coverage.begin(), coverage.end(),
                     [](const ClauseCoverage& a, const ClauseCoverage& b) {
                         return detail::ClauseLess{}(a.clause.id, b.clause.id);
                     });
    return coverage;
}

std::string coverage_markdown(const std::vector<ClauseCoverage>& coverage,
                              const std::vector<std::string>& profiles) {
    std::string out = "| clause | Δ | scenarios (" + joined(profiles, " / ") +
                      ") | scenario files | tests | |\n|---|---|---|---|---|---|\n";
    std::size_t covered = 0;
    std::size_t by_scenario_in_every_profile = 0;
    std::vector<std::string> uncovered;
    std::vector<std::string> one_profile_only;
    for (const ClauseCoverage& row : coverage) {
        // Counts per profile, then the scenario files: plain when they run under every profile,
        // marked with the profile otherwise.
        std::string counts;
        std::map<std::string, std::vector<std::string>> profiles_of;
        bool every_profile = true;
        for (const std::string& profile : profiles) {
            const auto found = row.scenarios_by_profile.find(profile);
            const std::size_t count = found == row.scenarios_by_profile.end() ? 0 : found->second.size();
            counts += (counts.empty() ? "" : " / ") + std::to_string(count);
            every_profile = every_profile && count > 0;
            if (found != row.scenarios_by_profile.end()) {
                for (const std::string& path : found->second) {
                    profiles_of[path].push_back(profile);
                }
            }
        }
        std::vector<std::string> names;
        for (const auto& [path, in] : profiles_of) {
            names.push_back(file_stem(path) +
                            (in.size() == profiles.size() ? "" : " (" + joined(in, ", ") + " only)"));
        }
        const bool is_covered = row.covered();
        covered += is_covered ? 1U : 0U;
        by_scenario_in_every_profile += every_profile ? 1U : 0U;
        if (!is_covered) {
            uncovered.push_back(row.clause.id);
        } else if (!every_profile) {
            one_profile_only.push_back(row.clause.id);
        }
        out += "| " + row.clause.id + " | " + (row.clause.differs ? "Δ" : "") + " | " + counts +
               " | " + cell_escape(joined(names, ", ")) + " | " +
               cell_escape(joined(row.tests, ", ")) + " | " +
               (is_covered ? (every_profile ? "" : "**no scenario in every profile**")
                           : "**UNCOVERED**") +
               " |\n";
    }
    out += "\n" + std::to_string(coverage.size()) + " clauses: " + std::to_string(covered) +
           " covered, " + std::to_string(coverage.size() - covered) + " uncovered" +
           (uncovered.empty() ? "" : " (" + joined(uncovered, ", ") + ")") + "; " +
           std::to_string(by_scenario_in_every_profile) + " pinned by a scenario under every profile" +
           (one_profile_only.empty() ? "" : "; not under every profile: " + joined(one_profile_only, ", ")) +
           "\n";
    return out;
}

}  // namespace faultline::views
