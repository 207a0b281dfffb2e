// libFuzzer target: the SMTP server's input side on a hostile client's bytes.
// Header byte: bits 0-1 pick the bare-LF policy (reject, normalize, legacy_accept; 3 = reject),
// bit 2 runs a whole SmtpServer session on the simulated network instead of the parsers alone,
// bit 3 turns on AUTH (advertised, required, one user), the rest seeds the chunk sizes.
//
// Parsers alone (CommandParser, and DataReader after every DATA line, as SmtpServer drives
// them): no crash or sanitizer report; what they report (commands, per-line errors, each
// message's raw bytes, content and reply code) does not depend on how the bytes were split;
// DataReader never takes more than it was given, its raw() is exactly the bytes it took, and
// finished data ends in a line break.
// Whole session (sim::World): the server records exactly the bytes the client sent, everything
// it sends parses as well-formed replies, and the run goes idle within its event budget.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faultline/model/smtp_codec.h"
#include "faultline/model/smtp_server.h"
#include "faultline/sim/world.h"
#include "fuzz_support.h"

namespace {

using faultline::model::BareLineFeedPolicy;
using faultline::model::CommandParser;
using faultline::model::DataOptions;
using faultline::model::DataReader;

BareLineFeedPolicy policy_of(std::uint8_t header) {
    switch (header & 3U) {
        case 1:
            return BareLineFeedPolicy::normalize;
        case 2:
            return BareLineFeedPolicy::legacy_accept;
        default:
            return BareLineFeedPolicy::reject;
    }
}

/// Everything the parsers reported, in order, as text to compare.
class ParserDriver {
public:
    explicit ParserDriver(BareLineFeedPolicy policy) : policy_(policy), commands_(policy) {}

    void feed(std::string_view chunk) {
        if (data_) {
            const std::size_t consumed = take_data(chunk);
            commands_.feed(chunk.substr(consumed));
        } else {
            commands_.feed(chunk);
        }
        process();
    }

    [[nodiscard]] std::vector<std::string> finish() {
        events_.push_back(data_ ? "in data, raw " + data_->raw() : "idle");
        return std::move(events_);
    }

private:
    std::size_t take_data(std::string_view bytes) {
        const std::size_t before = data_->raw().size();
        const std::size_t consumed = data_->feed(bytes);
        FAULTLINE_FUZZ_CHECK(consumed <= bytes.size());
        FAULTLINE_FUZZ_CHECK(data_->raw().size() == before + consumed);
        FAULTLINE_FUZZ_CHECK(data_->raw().substr(before) == bytes.substr(0, consumed));
        return consumed;
    }

    void process() {
        while (true) {
            if (data_) {
                if (!data_->finished()) {
                    return;
                }
                const std::string& raw = data_->raw();
                FAULTLINE_FUZZ_CHECK(!raw.empty() && raw.back() == '\n');
                // Un-stuffing only shrinks; normalize turns each bare LF into CRLF.
                const auto line_feeds =
                    static_cast<std::size_t>(std::count(raw.begin(), raw.end(), '\n'));
                FAULTLINE_FUZZ_CHECK(
                    data_->content().size() <=
                    raw.size() + (policy_ == BareLineFeedPolicy::normalize ? line_feeds : 0));
                const int code = data_->reply_code();
                FAULTLINE_FUZZ_CHECK(code == 250 || code == 500 || code == 550 || code == 552);
                events_.push_back("data " + std::to_string(code) + " raw " + raw + " content " +
                                  data_->content());
                data_.reset();
                continue;
            }
            auto next = commands_.next();
            if (!next) {
                events_.push_back("error " + next.error().message());
                continue;  // not sticky: the next line follows
            }
            if (!next.value()) {
                return;
            }
            const auto& command = *next.value();
            // No LF survives into a command under any policy (a bare CR may: like Postfix, the
            // server leaves it to the command's own syntax).
            FAULTLINE_FUZZ_CHECK(command.line.find('\n') == std::string::npos);
            events_.push_back("command " + command.verb + " | " + command.argument);
            if (command.verb == "DATA") {
                data_.emplace(DataOptions{.bare_line_feed = policy_, .message_bytes_max = 4096});
                const std::string early = commands_.take_buffered();
                const std::size_t consumed = take_data(early);
                commands_.feed(std::string_view(early).substr(consumed));
            }
        }
    }

    BareLineFeedPolicy policy_;
    CommandParser commands_;
    std::optional<DataReader> data_;
    std::vector<std::string> events_;
};

std::vector<std::string> run_parsers(BareLineFeedPolicy policy,
                                     std::string_view bytes,
                                     std::uint8_t seed,
                                     bool chunked) {
    ParserDriver driver(policy);
    faultline::fuzz::feed_pieces(
        bytes, seed, chunked, [&driver](std::string_view piece) { driver.feed(piece); });
    return driver.finish();
}

/// One client connection to an SmtpServer on sim: writes `bytes` in chunks, half-closes, reads
/// every reply until the server closes.
void run_session(std::uint8_t header, std::string_view bytes) {
    namespace model = faultline::model;
    namespace sim = faultline::sim;
    sim::World::Options options;
    options.seed = header;
    options.trace_mode = sim::Trace::Mode::off;
    sim::World world(options);
    model::SmtpScript script;
    script.bare_line_feed = policy_of(header);
    script.message_bytes_max = 4096;
    script.session_bytes_max = 1U << 16U;
    if ((header & 8U) != 0) {
        script.advertise_auth = true;
        script.require_auth = true;
        script.auth_users = {{"user", "secret"}};
    }
    model::SmtpServer<sim::World> server(world, script);
    const auto endpoint = server.start(*model::Endpoint::parse("10.0.0.1:25"));
    FAULTLINE_FUZZ_CHECK(endpoint.has_value());
    std::string sent;  // what the client handed to the network
    world.spawn("client", [&] {
        sim::World::Mutex mutex;
        struct Step {
            sim::World::Event done;
            std::error_code error;
            std::size_t bytes = 0;
            model::ConnectionId connection{};
        };
        auto await = [&](Step& step) {
            std::unique_lock lock(mutex);
            return world.wait(step.done, lock, std::chrono::minutes(10));
        };
        Step connected;
        world.async_connect(endpoint.value(), [&](std::error_code error, model::ConnectionId id) {
            connected.error = error;
            connected.connection = id;
            world.signal(connected.done);
        });
        FAULTLINE_FUZZ_CHECK(await(connected));
        if (connected.error) {
            return;
        }
        const model::ConnectionId connection = connected.connection;
        std::size_t offset = 0;
        for (std::size_t index = 0; offset < bytes.size(); ++index) {
            const std::size_t take =
                std::min(faultline::fuzz::chunk_size(header, index) * 64, bytes.size() - offset);
            Step step;
            world.async_send(connection,
                             std::as_bytes(std::span(bytes.data() + offset, take)),
                             [&](std::error_code error, std::size_t n) {
                                 step.error = error;
                                 step.bytes = n;
                                 world.signal(step.done);
                             });
            FAULTLINE_FUZZ_CHECK(await(step));
            if (step.error) {
                break;  // the server closed (421, QUIT, too much input): fine
            }
            sent.append(bytes.substr(offset, step.bytes));
            offset += step.bytes;
        }
        world.shutdown(connection, model::ShutdownHow::send);
        std::array<std::byte, 4096> buffer{};
        while (true) {
            Step step;
            world.async_receive(connection, buffer, [&](std::error_code error, std::size_t n) {
                step.error = error;
                step.bytes = n;
                world.signal(step.done);
            });
            FAULTLINE_FUZZ_CHECK(await(step));
            if (step.error) {
                break;
            }
        }
        world.close(connection);
    });
    FAULTLINE_FUZZ_CHECK(world.run_until_idle(5'000'000));
    const auto sessions = server.sessions();
    FAULTLINE_FUZZ_CHECK(sessions.size() <= 1);
    if (sessions.empty()) {
        return;
    }
    const auto& session = sessions.front();
    // The server records what arrived: a prefix of what the client sent (it may close early).
    FAULTLINE_FUZZ_CHECK(session.received.size() <= script.session_bytes_max);
    FAULTLINE_FUZZ_CHECK(std::string_view(sent).substr(0, session.received.size()) ==
                         session.received);
    model::ReplyParser replies(model::ReplyMode::rfc5321);
    replies.feed(session.sent);
    while (true) {
        auto next = replies.next();
        FAULTLINE_FUZZ_CHECK(next.has_value());  // the server never sends a malformed reply
        if (!next.value()) {
            break;
        }
    }
    FAULTLINE_FUZZ_CHECK(replies.buffered_bytes() == 0);  // and never half a reply
    server.stop();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = faultline::fuzz::frame(data, size);
    if ((input.header & 4U) != 0) {
        run_session(input.header, input.body);
        return 0;
    }
    const BareLineFeedPolicy policy = policy_of(input.header);
    const auto whole = run_parsers(policy, input.body, input.header, /*chunked=*/false);
    const auto pieces = run_parsers(policy, input.body, input.header, /*chunked=*/true);
    FAULTLINE_FUZZ_CHECK(whole == pieces);
    return 0;
}
