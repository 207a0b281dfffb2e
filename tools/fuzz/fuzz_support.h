// Shared by the libFuzzer targets: a check that aborts (libFuzzer reports it as a crash with the
// input that caused it) and the split points a target derives from its input.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace faultline::fuzz {

/// A broken invariant: print what and where, then abort so libFuzzer saves the input.
[[noreturn]] inline void fail(const char* what, const char* file, int line) {
    std::fprintf(stderr, "fuzz invariant broken: %s at %s:%d\n", what, file, line);
    std::abort();
}

#define FAULTLINE_FUZZ_CHECK(condition)                              \
    do {                                                             \
        if (!(condition)) {                                          \
            ::faultline::fuzz::fail(#condition, __FILE__, __LINE__); \
        }                                                            \
    } while (false)

/// The input as bytes after a one-byte header the target reads its settings from.
struct Framed {
    std::uint8_t header = 0;
    std::string_view body;
};

inline Framed frame(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return {};
    }
    return {.header = data[0],
            .body = std::string_view(reinterpret_cast<const char*>(data + 1), size - 1)};  // NOLINT
}

/// Chunk sizes 1..16 cycling from `seed`, so one input is also tried fed in pieces.
inline std::size_t chunk_size(std::uint8_t seed, std::size_t index) {
    return 1 + ((seed + index * 7U) % 16U);
}

/// Calls `feed(piece)` with `bytes` whole, or (chunked) in pieces of chunk_size(seed, i) bytes.
template <typename Feed>
void feed_pieces(std::string_view bytes, std::uint8_t seed, bool chunked, Feed&& feed) {
    std::size_t offset = 0;
    for (std::size_t index = 0; offset < bytes.size(); ++index) {
        const std::size_t rest = bytes.size() - offset;
        const std::size_t take = chunked ? std::min(chunk_size(seed, index), rest) : rest;
        feed(bytes.substr(offset, take));
        offset += take;
    }
}

}  // namespace faultline::fuzz
