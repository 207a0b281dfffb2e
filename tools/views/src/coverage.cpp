#include "faultline/views/coverage.h"

#include <algorithm>
#include <regex>
#include <sstream>

namespace faultline::views {
namespace {

/// "S-7" -> ('S', 7) for ordering S, A, M, W by number.
std::pair<int, int> clause_order(const std::string& id) {
    static const std::string families = "SAMW";
    const auto family = families.find(id.empty() ? '?' : id.front());
    int number = 0;
    for (std::size_t i = 2; i < id.size() && id[i] >= '0' && id[i] <= '9'; ++i) {
        number = number * 10 + (id[i] - '0');
    }
    return {family == std::string::npos ? 4 : static_cast<int>(family), number};
}

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

std::string file_stem(const std::string& path) {
    const auto slash = path.find_last_of('/');
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    const auto dot = name.rfind(".json");
    return dot == std::string::npos ? name : name.substr(0, dot);
}

}  // namespace

std::variant<std::vector<Clause>, std::string> parse_clauses(const std::string& text) {
    static const std::regex id_pattern("[SAMW]-[0-9]+");
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
        if (!std::regex_match(clause.id, id_pattern)) {
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
    static const std::regex header(
        R"(^\s*(?:TEST|TEST_F|TEST_P|TYPED_TEST|RC_GTEST_PROP|RC_GTEST_FIXTURE_PROP)\s*\(\s*(\w+)\s*,\s*(\w+))");
    static const std::regex in_text(R"(\b([SAMW])-([0-9]+)\b)");
    static const std::regex in_name(R"((?:^|_)([SAMW])0*([0-9]+)[a-z]?(?=_|$))");
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
        std::smatch match;
        if (!std::regex_search(lines[index], match, header)) {
            continue;
        }
        std::size_t begin = index;
        while (begin > 0 && lines[begin - 1].find("//") != std::string::npos &&
               lines[begin - 1].find_first_not_of(" \t") == lines[begin - 1].find("//")) {
            --begin;
        }
        starts.emplace_back(begin, match[1].str() + "." + match[2].str());
    }
    std::vector<TestCitation> citations;
    for (std::size_t test = 0; test < starts.size(); ++test) {
        const std::size_t end = test + 1 < starts.size() ? starts[test + 1].first : lines.size();
        TestCitation citation;
        citation.test = starts[test].second;
        const std::string name = citation.test.substr(citation.test.find('.') + 1);
        for (auto it = std::sregex_iterator(name.begin(), name.end(), in_name);
             it != std::sregex_iterator(); ++it) {
            add_unique(citation.clauses, (*it)[1].str() + "-" + (*it)[2].str());
        }
        for (std::size_t index = starts[test].first; index < end; ++index) {
            const std::string& line = lines[index];
            for (auto it = std::sregex_iterator(line.begin(), line.end(), in_text);
                 it != std::sregex_iterator(); ++it) {
                add_unique(citation.clauses, (*it)[1].str() + "-" + (*it)[2].str());
            }
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
                         return clause_order(a.clause.id) < clause_order(b.clause.id);
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
