// Goal: bad scenario files get one clear error naming file, line, column and JSON pointer, and
// never crash; the JSON Schema and the loader accept exactly the same keys.
// Method: load small hostile texts and compare the error; read the schema and compare key sets.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "faultline/conformance/scenario.h"

namespace faultline::conformance {
namespace {

const char* const kMinimal = R"({
  "schema_version": 1,
  "name": "t",
  "clauses": ["S-1"],
  "threads": [{"name": "main", "steps": [{"op": "check"}]}]
})";

std::string error_of(const std::string& text) {
    auto loaded = load_scenario_text("dir/t.json", text);
    if (auto* error = std::get_if<std::string>(&loaded)) {
        return *error;
    }
    return "";
}

std::string with(const std::string& from, const std::string& to) {
    std::string text = kMinimal;
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos);
    return text.replace(at, from.size(), to);
}

TEST(ScenarioLoader, AcceptsTheMinimalScenario) { EXPECT_EQ(error_of(kMinimal), ""); }

TEST(ScenarioLoader, SyntaxErrorNamesLineAndColumn) {
    EXPECT_EQ(error_of("{\n  \"name\": ,\n}").substr(0, 25), "dir/t.json:2:11: (syntax)");
}

TEST(ScenarioLoader, UnknownKeyNamesItsPointerAndPosition) {
    const std::string error = error_of(with(R"({"op": "check"})", R"({"op": "check", "colour": 1})"));
    EXPECT_EQ(error, "dir/t.json:5:68: /threads/0/steps/0/colour: unknown key \"colour\" in step");
}

TEST(ScenarioLoader, WrongTypeIsReported) {
    const std::string error = error_of(with(R"("schema_version": 1)", R"("schema_version": "1")"));
    EXPECT_EQ(error, "dir/t.json:2:21: /schema_version: expected an integer");
}

TEST(ScenarioLoader, NegativeAndAbsurdSizesAreRejected) {
    EXPECT_EQ(error_of(with(R"({"op": "check"})", R"({"op": "send_all", "bytes": -5})")),
              "dir/t.json:5:70: /threads/0/steps/0/bytes: must be at least 0");
    EXPECT_EQ(error_of(with(R"({"op": "check"})", R"({"op": "begin_send", "id": "a", "size": 99999999999})")),
              "dir/t.json:5:82: /threads/0/steps/0/size: must be at most 67108864");
    EXPECT_NE(error_of(with(R"("clauses": ["S-1"])",
                            R"("clauses": ["S-1"], "network": {"send_buffer_bytes": 0})")),
              "");
}

TEST(ScenarioLoader, DanglingReferencesAndNameMismatchAreRejected) {
    EXPECT_NE(error_of(with(R"({"op": "check"})", R"({"op": "end_send", "target": "nope"})"))
                  .find("/threads/0/steps/0/target: no operation with id \"nope\""),
              std::string::npos);
    EXPECT_NE(error_of(with(R"("name": "t")", R"("name": "u")")).find("/name: must equal"),
              std::string::npos);
}

TEST(ScenarioLoader, HostileInputNeverCrashes) {
    // Deep nesting, huge numbers, odd types and truncation: each gets an error, none a crash.
    EXPECT_NE(error_of(std::string(100000, '[')), "");
    EXPECT_NE(error_of("{\"schema_version\": 1e400}"), "");
    EXPECT_NE(error_of("[]"), "");
    EXPECT_NE(error_of(std::string(kMinimal).substr(0, 40)), "");
    EXPECT_NE(error_of(with(R"("threads": [)", R"("threads": 7, "x": [)")), "");
}

TEST(ScenarioLoader, SchemaAndLoaderAcceptTheSameKeys) {
    std::ifstream file(std::string(FAULTLINE_SCENARIO_DIR) + "/schema/scenario.schema.json");
    ASSERT_TRUE(file);
    const auto schema = nlohmann::json::parse(file);
    const std::map<std::string, nlohmann::json> objects = {
        {"scenario", schema},
        {"transports", schema["properties"]["transports"]},
        {"network", schema["$defs"]["network"]},
        {"peer", schema["$defs"]["peer"]},
        {"fault", schema["$defs"]["fault"]},
        {"thread", schema["$defs"]["thread"]},
        {"step", schema["$defs"]["step"]},
        {"segment", schema["$defs"]["segment"]},
        {"expectation", schema["$defs"]["expectation"]},
        {"global_expectation", schema["$defs"]["global_expectation"]},
        {"smtp", schema["$defs"]["smtp"]},
        {"smtp_client", schema["$defs"]["smtp_client"]},
        {"credentials", schema["$defs"]["credentials"]},
        {"mail", schema["$defs"]["mail"]},
        {"mail_header", schema["$defs"]["mail_header"]},
        {"smtp_script", schema["$defs"]["smtp_script"]},
        {"smtp_reply_step", schema["$defs"]["smtp_reply_step"]},
        {"smtp_script_steps", schema["$defs"]["smtp_script_steps"]},
        {"recorded", schema["$defs"]["recorded"]},
    };
    for (const auto& [kind, keys] : accepted_keys()) {
        ASSERT_TRUE(objects.count(kind) != 0) << kind;
        std::set<std::string> in_schema;
        for (const auto& item : objects.at(kind)["properties"].items()) {
            in_schema.insert(item.key());
        }
        EXPECT_EQ(in_schema, std::set<std::string>(keys.begin(), keys.end())) << kind;
        EXPECT_EQ(objects.at(kind)["additionalProperties"], false) << kind;
    }
}

}  // namespace
}  // namespace faultline::conformance
