// libFuzzer target: the scenario loader (conformance::load_scenario_text) on arbitrary text,
// seeded with every file under scenarios/. The loader must turn any input into either a
// Scenario or one error string naming the file and a position ("fuzz.json:line:col: ..."):
// no crash, no sanitizer report, no exception escaping (libFuzzer reports an escaped exception
// as a crash), and loading is a pure function of the text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "faultline/conformance/scenario.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);  // NOLINT: octets
    const auto first = faultline::conformance::load_scenario_text("fuzz.json", text);
    if (const auto* error = std::get_if<std::string>(&first)) {
        FAULTLINE_FUZZ_CHECK(error->starts_with("fuzz.json"));
        FAULTLINE_FUZZ_CHECK(error->size() > std::string("fuzz.json").size());
        const auto again = faultline::conformance::load_scenario_text("fuzz.json", text);
        FAULTLINE_FUZZ_CHECK(std::holds_alternative<std::string>(again) &&
                             std::get<std::string>(again) == *error);
        return 0;
    }
    const auto& scenario = std::get<faultline::conformance::Scenario>(first);
    FAULTLINE_FUZZ_CHECK(scenario.path == "fuzz.json");
    return 0;
}
