#include <charconv>

#include "faultline/model/types.h"

namespace faultline::model {

std::string Endpoint::to_string() const {
    std::string text;
    for (int shift = 24; shift >= 0; shift -= 8) {
        text += std::to_string((address >> static_cast<unsigned>(shift)) & 0xffU);
        text += shift == 0 ? ':' : '.';
    }
    return text + std::to_string(port);
}

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
    Endpoint endpoint;
    const char* cursor = text.data();
    const char* const end = text.data() + text.size();
    for (int part = 0; part < 4; ++part) {
        unsigned value = 0;
        const auto [next, error] = std::from_chars(cursor, end, value);
        if (error != std::errc{} || value > 255 || next == end) {
            return std::nullopt;
        }
        if (*next != (part == 3 ? ':' : '.')) {
            return std::nullopt;
        }
        endpoint.address = (endpoint.address << 8U) | value;
        cursor = next + 1;
    }
    unsigned port_value = 0;
    const auto [next, error] = std::from_chars(cursor, end, port_value);
    if (error != std::errc{} || next != end || port_value > 65535) {
        return std::nullopt;
    }
    endpoint.port = static_cast<std::uint16_t>(port_value);
    return endpoint;
}

}  // namespace faultline::model
