// RapidCheck generators for whole scenario files (needs RapidCheck; the library itself does not).
//
// A generated scenario is the fuzzer's: the file generate_scenario writes for a seed that
// RapidCheck draws, so it is valid against the schema and can be written out as it is. It
// shrinks the way the fuzzer shrinks, on the file (shrink_candidates: drop a thread, step,
// fault, script entry, recipient or optional key; halve a number or string), so the
// counterexample RapidCheck reports is a small scenario file, not a seed.
//
//   RC_GTEST_PROP(Mine, Holds, ()) {
//       const nlohmann::json scenario = *faultline::conformance::rc_gen::scenario("smtp");
//       const std::string profile = *faultline::conformance::rc_gen::profile();
//       ...
//   }
#pragma once

#include <rapidcheck.h>

#include <cstdint>
#include <ostream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "faultline/conformance/fuzz.h"

// RapidCheck shows a counterexample with showValue when one is found for its type; without this
// it takes a JSON object for a map of pairs and throws while printing. A scenario is shown as
// its file text.
namespace nlohmann {
inline void showValue(const json& value, std::ostream& os) { os << value.dump(2); }
}  // namespace nlohmann

namespace faultline::conformance::rc_gen {

/// A scenario of `family` ("send", "accept" or "smtp"; see fuzz_families()).
inline rc::Gen<nlohmann::json> scenario(std::string family) {
    return rc::Gen<nlohmann::json>([family = std::move(family)](const rc::Random& random, int) {
        rc::Random draw = random;
        const std::uint64_t seed = draw.next() % 1'000'000'000U + 1;
        return rc::shrinkable::shrinkRecur(
            generate_scenario(family, seed),
            [](const nlohmann::json& from) { return rc::seq::fromContainer(shrink_candidates(from)); });
    });
}

/// A scenario of any family.
inline rc::Gen<nlohmann::json> any_scenario() {
    return rc::gen::mapcat(rc::gen::elementOf(fuzz_families()),
                           [](const std::string& family) { return scenario(family); });
}

/// A behaviour profile: "documented" or "dotnet-unix".
inline rc::Gen<std::string> profile() {
    return rc::gen::element<std::string>("documented", "dotnet-unix");
}

}  // namespace faultline::conformance::rc_gen
