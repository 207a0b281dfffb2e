// Planted bugs ("mutants") that measure the fuzzer (issue #5): each is a bug a real
// implementation could have, switched on at run time in a build configured with
// FAULTLINE_MUTANTS=ON (preset `mutants`). In every other build `mutant(m)` is a constant false
// and the planted code is compiled out: never in a release build.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#if defined(FAULTLINE_MUTANTS)
#include <atomic>
#endif

namespace faultline::model {

enum class Mutant : std::uint8_t {
    none,
    /// SmtpClient's send loop treats a partial send as complete (the rest of the bytes is lost).
    send_all_ignores_partial,
    /// EndSend accepts an IAsyncResult from another socket under the documented profile (S-7).
    end_send_accepts_foreign,
    /// SendCompleted fires twice when a cancel races the reply to the final dot (M-5, M-9).
    send_completed_twice_on_cancel_race,
    /// Dot-stuffing skips lines that start with "." (M-27, W-6).
    dot_stuffing_skips_dot_lines,
    /// A refused recipient (M-15) is counted as accepted: the send reports plain success.
    recipient_failure_reported_as_success,
    /// AcceptAsync raises Completed after returning false (a synchronous completion, A-2).
    accept_completed_after_sync_return,
};

struct MutantName {
    Mutant mutant;
    std::string_view name;
};

inline constexpr std::array<MutantName, 6> kMutants = {{
    {Mutant::send_all_ignores_partial, "send_all_ignores_partial"},
    {Mutant::end_send_accepts_foreign, "end_send_accepts_foreign"},
    {Mutant::send_completed_twice_on_cancel_race, "send_completed_twice_on_cancel_race"},
    {Mutant::dot_stuffing_skips_dot_lines, "dot_stuffing_skips_dot_lines"},
    {Mutant::recipient_failure_reported_as_success, "recipient_failure_reported_as_success"},
    {Mutant::accept_completed_after_sync_return, "accept_completed_after_sync_return"},
}};

[[nodiscard]] inline std::optional<Mutant> mutant_by_name(std::string_view name) {
    for (const MutantName& entry : kMutants) {
        if (entry.name == name) {
            return entry.mutant;
        }
    }
    return std::nullopt;
}

#if defined(FAULTLINE_MUTANTS)
inline constexpr bool kMutantsBuilt = true;
inline std::atomic<Mutant>& active_mutant() {
    static std::atomic<Mutant> active{Mutant::none};
    return active;
}
/// Switches one mutant on (none: all off) for the whole process.
inline void set_active_mutant(Mutant mutant) {
    active_mutant().store(mutant, std::memory_order_relaxed);
}
[[nodiscard]] inline bool mutant(Mutant which) {
    return active_mutant().load(std::memory_order_relaxed) == which;
}
#else
inline constexpr bool kMutantsBuilt = false;
inline void set_active_mutant(Mutant /*mutant*/) {}
[[nodiscard]] constexpr bool mutant(Mutant /*which*/) { return false; }
#endif

}  // namespace faultline::model
