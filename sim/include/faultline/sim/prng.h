// Prng: SplitMix64 with our own bounded draws. One seeded stream per run; components take
// independent streams from fork(). No std distributions: their algorithms differ per library.
#pragma once

#include <cstdint>

namespace faultline::sim {

class Prng {
public:
    explicit Prng(std::uint64_t seed) : state_(seed) {}

    std::uint64_t next() {
        state_ += 0x9e3779b97f4a7c15ULL;
        std::uint64_t mixed = state_;
        mixed = (mixed ^ (mixed >> 30U)) * 0xbf58476d1ce4e5b9ULL;
        mixed = (mixed ^ (mixed >> 27U)) * 0x94d049bb133111ebULL;
        return mixed ^ (mixed >> 31U);
    }

    /// Uniform in [0, bound) by rejection sampling; bound 0 returns 0.
    std::uint64_t below(std::uint64_t bound) {
        if (bound == 0) {
            return 0;
        }
        const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
        std::uint64_t draw = next();
        while (draw >= limit) {
            draw = next();
        }
        return draw % bound;
    }

    /// Uniform in [low, high].
    std::uint64_t between(std::uint64_t low, std::uint64_t high) {
        return low + below(high - low + 1);
    }

    /// True with probability numerator / denominator.
    bool chance(std::uint64_t numerator, std::uint64_t denominator) {
        return below(denominator) < numerator;
    }

    /// An independent stream; advances this one by one draw.
    Prng fork() { return Prng(next()); }

private:
    std::uint64_t state_;
};

}  // namespace faultline::sim
