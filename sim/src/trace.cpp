#include "faultline/sim/trace.h"

#include <cstdio>

namespace faultline::sim {

void Trace::append_json_string(std::string& out, std::string_view text) {
    out += '"';
    for (const char character : text) {
        const auto byte = static_cast<unsigned char>(character);
        switch (character) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (byte < 0x20) {
                    char escaped[8];
                    std::snprintf(escaped, sizeof escaped, "\\u%04x", byte);
                    out += escaped;
                } else {
                    out += character;
                }
        }
    }
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
    line += std::to_string(when.time_since_epoch().count());
    line += ",\"seq\":";
    line += std::to_string(sequence_++);
    line += ",\"thread\":";
    append_json_string(line, thread);
    line += ",\"ev\":";
    append_json_string(line, name);
    for (const Field& field : fields) {
        line += ',';
        append_json_string(line, field.key);
        line += ':';
        switch (field.kind) {
            case Field::Kind::number: line += std::to_string(field.number); break;
            case Field::Kind::flag: line += field.number != 0 ? "true" : "false"; break;
            case Field::Kind::text: append_json_string(line, field.text); break;
        }
    }
    line += '}';
    for (const char character : line) {
        hash_ ^= static_cast<unsigned char>(character);
        hash_ *= 0x100000001b3ULL;
    }
    hash_ ^= '\n';
    hash_ *= 0x100000001b3ULL;
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
