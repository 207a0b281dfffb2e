#include "faultline/sim/trace.h"

#include <charconv>
#include <cstdio>
#include <iterator>

namespace faultline::sim {

namespace {

bool needs_escape(char character) {
    return character == '"' || character == '\\' || static_cast<unsigned char>(character) < 0x20;
}

void append_number(std::string& out, std::int64_t value) {
    char digits[24];
    const auto [end, error] = std::to_chars(std::begin(digits), std::end(digits), value);
    (void)error;  // 24 characters hold any 64-bit integer
    out.append(digits, end);
}

}  // namespace

void Trace::append_json_string(std::string& out, std::string_view text) {
    out += '"';
    std::size_t clean_from = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char character = text[i];
        if (!needs_escape(character)) {
            continue;
        }
        out.append(text.substr(clean_from, i - clean_from));
        clean_from = i + 1;
        switch (character) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default: {
                char escaped[8];
                std::snprintf(escaped, sizeof escaped, "\\u%04x",
                              static_cast<unsigned char>(character));
                out += escaped;
            }
        }
    }
    out.append(text.substr(clean_from));
    out += '"';
}

void Trace::event(model::TimePoint when, std::string_view thread, std::string_view name,
                  std::initializer_list<Field> fields) {
    if (mode_ == Mode::off) {
        return;
    }
    std::string& line = scratch_;
    line.clear();
    line += "{\"t\":";
    append_number(line, when.time_since_epoch().count());
    line += ",\"seq\":";
    append_number(line, static_cast<std::int64_t>(sequence_++));
    line += ",\"thread\":";
    append_json_string(line, thread);
    line += ",\"ev\":";
    append_json_string(line, name);
    for (const Field& field : fields) {
        line += ',';
        append_json_string(line, field.key);
        line += ':';
        switch (field.kind) {
            case Field::Kind::number: append_number(line, field.number); break;
            case Field::Kind::flag: line += field.number != 0 ? "true" : "false"; break;
            case Field::Kind::text: append_json_string(line, field.text); break;
        }
    }
    line += '}';
    std::uint64_t hash = hash_;
    for (const char character : line) {
        hash ^= static_cast<unsigned char>(character);
        hash *= 0x100000001b3ULL;
    }
    hash ^= '\n';
    hash *= 0x100000001b3ULL;
    hash_ = hash;
    if (mode_ == Mode::full) {
        lines_.push_back(line);
    }
}

std::string Trace::hash_hex() const {
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash_));
    return text;
}

std::string Trace::end_line() const {
    return "{\"ev\":\"end\",\"events\":" + std::to_string(sequence_) + ",\"hash\":\"" + hash_hex() +
           "\"}";
}

}  // namespace faultline::sim
