// Trace: the run as JSON Lines, one event per line stamped with virtual time, sequence and logical
// thread, including every fault decision. The FNV-1a hash over all lines identifies the run: the
// same scenario and seed must give the same hash on every run and build. Mode::off costs one branch.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faultline/model/types.h"

namespace faultline::sim {

class Trace {
public:
    enum class Mode : std::uint8_t { off, hash_only, full };

    /// One key/value of an event. Text values are JSON-escaped when written.
    struct Field {
        Field(std::string_view key_value, std::int64_t number_value)
            : key(key_value), kind(Kind::number), number(number_value) {}
        Field(std::string_view key_value, std::uint64_t number_value)
            : key(key_value), kind(Kind::number), number(static_cast<std::int64_t>(number_value)) {}
        Field(std::string_view key_value, int number_value)
            : key(key_value), kind(Kind::number), number(number_value) {}
        Field(std::string_view key_value, std::uint32_t number_value)
            : key(key_value), kind(Kind::number), number(number_value) {}
        Field(std::string_view key_value, bool flag_value)
            : key(key_value), kind(Kind::flag), number(flag_value ? 1 : 0) {}
        Field(std::string_view key_value, std::string_view text_value)
            : key(key_value), kind(Kind::text), text(text_value) {}
        Field(std::string_view key_value, const char* text_value)
            : key(key_value), kind(Kind::text), text(text_value) {}

        enum class Kind : std::uint8_t { number, flag, text };
        std::string_view key;
        Kind kind;
        std::int64_t number = 0;
        std::string_view text;
    };

    explicit Trace(Mode mode = Mode::full) : mode_(mode) {}

    [[nodiscard]] bool enabled() const noexcept { return mode_ != Mode::off; }
    [[nodiscard]] Mode mode() const noexcept { return mode_; }

    void event(model::TimePoint when, std::string_view thread, std::string_view name,
               std::initializer_list<Field> fields);

    /// The final line: {"ev":"end","events":N,"hash":"<16 hex digits>"}.
    [[nodiscard]] std::string end_line() const;
    [[nodiscard]] std::uint64_t hash() const noexcept { return hash_; }
    [[nodiscard]] std::string hash_hex() const;
    [[nodiscard]] std::uint64_t events() const noexcept { return sequence_; }
    /// Lines recorded in Mode::full (without the end line).
    [[nodiscard]] const std::vector<std::string>& lines() const noexcept { return lines_; }
    /// Moves the lines out (the trace keeps counting and hashing; lines() starts empty).
    [[nodiscard]] std::vector<std::string> take_lines() noexcept { return std::exchange(lines_, {}); }

    static void append_json_string(std::string& out, std::string_view text);

private:
    Mode mode_;
    std::uint64_t sequence_ = 0;
    std::uint64_t hash_ = 0xcbf29ce484222325ULL;  // FNV-1a 64 offset basis
    std::vector<std::string> lines_;
    std::string scratch_;
};

}  // namespace faultline::sim
