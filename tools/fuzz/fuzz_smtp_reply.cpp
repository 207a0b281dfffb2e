// libFuzzer target: the SMTP reply parser (model::ReplyParser, M-24) on hostile server bytes.
// Header byte: bit 0 picks the mode (rfc5321 / strict_dotnet), the rest seeds the chunk sizes.
// Invariants: no crash or sanitizer report; the replies and the final error do not depend on
// how the bytes were split across reads; every reply's raw bytes are the next bytes of the
// input, end in CRLF, and start with its three-digit code; fed bytes are never lost (replies +
// buffered = fed, until an error); the code is the first line's three octets, read as .NET
// reads them under strict_dotnet (no digit check) and within W-4's 200..559 under rfc5321.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "faultline/model/smtp_codec.h"
#include "fuzz_support.h"

namespace {

using faultline::model::Reply;
using faultline::model::ReplyMode;
using faultline::model::ReplyParser;

struct Parsed {
    std::vector<Reply> replies;
    std::error_code error;
    std::size_t buffered = 0;
};

void drain(ReplyParser& parser, Parsed& parsed) {
    while (!parsed.error) {
        auto next = parser.next();
        if (!next) {
            parsed.error = next.error();
            return;
        }
        if (!next.value()) {
            return;
        }
        parsed.replies.push_back(std::move(*next.value()));
    }
}

Parsed parse(ReplyMode mode, std::string_view bytes, std::uint8_t seed, bool chunked) {
    ReplyParser parser(mode);
    Parsed parsed;
    faultline::fuzz::feed_pieces(bytes, seed, chunked, [&](std::string_view piece) {
        parser.feed(piece);
        drain(parser, parsed);
    });
    drain(parser, parsed);
    parsed.buffered = parser.buffered_bytes();
    return parsed;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = faultline::fuzz::frame(data, size);
    const ReplyMode mode = (input.header & 1U) != 0 ? ReplyMode::strict_dotnet : ReplyMode::rfc5321;
    const Parsed whole = parse(mode, input.body, input.header, /*chunked=*/false);
    const Parsed pieces = parse(mode, input.body, input.header, /*chunked=*/true);
    FAULTLINE_FUZZ_CHECK(whole.replies == pieces.replies);
    FAULTLINE_FUZZ_CHECK(whole.error == pieces.error);

    std::size_t offset = 0;
    for (const Reply& reply : whole.replies) {
        FAULTLINE_FUZZ_CHECK(input.body.substr(offset, reply.raw.size()) == reply.raw);
        FAULTLINE_FUZZ_CHECK(reply.raw.size() >= 5 && reply.raw.ends_with("\r\n"));
        const auto octet = [&reply](std::size_t index) {
            return static_cast<int>(static_cast<unsigned char>(reply.raw[index])) - '0';
        };
        FAULTLINE_FUZZ_CHECK(reply.code == octet(0) * 100 + octet(1) * 10 + octet(2));
        if (mode == ReplyMode::rfc5321) {
            FAULTLINE_FUZZ_CHECK(reply.code >= 200 && reply.code <= 559);
        }
        FAULTLINE_FUZZ_CHECK(!reply.lines.empty());
        offset += reply.raw.size();
    }
    if (!whole.error) {
        FAULTLINE_FUZZ_CHECK(offset + whole.buffered == input.body.size());
        FAULTLINE_FUZZ_CHECK(whole.buffered == pieces.buffered);
    }
    return 0;
}
