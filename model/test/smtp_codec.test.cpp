// Goal: the SMTP codec reads replies as .NET does (M-24) or as RFC 5321 allows (W-4), writes only
// CRLF-terminated commands and refuses CR/LF in arguments (W-1), and reads message content with
// the end-of-data rules of W-6/W-7 and the bare-LF policies of W-12/W-13/W-16.
// Method: feed fixed byte strings, whole and split at every position, and compare the results.
#include "faultline/model/smtp_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace faultline::model {
namespace {

/// Feeds `bytes` in two pieces split at `split` and collects every reply until none is ready.
Result<std::vector<Reply>> parse_all(ReplyMode mode, std::string_view bytes, std::size_t split) {
    ReplyParser parser(mode);
    std::vector<Reply> replies;
    for (const std::string_view piece : {bytes.substr(0, split), bytes.substr(split)}) {
        parser.feed(piece);
        while (true) {
            auto next = parser.next();
            if (!next) {
                return next.error();
            }
            if (!next.value()) {
                break;
            }
            replies.push_back(std::move(*next.value()));
        }
    }
    return replies;
}

TEST(SmtpReplyParser, MultiLineReplyAtEverySplit) {
    const std::string bytes = "250-mx.test hello\r\n250-PIPELINING\r\n250 SIZE 100\r\n220 x\r\n";
    for (const ReplyMode mode : {ReplyMode::strict_dotnet, ReplyMode::rfc5321}) {
        for (std::size_t split = 0; split <= bytes.size(); ++split) {
            auto replies = parse_all(mode, bytes, split);
            ASSERT_TRUE(replies) << split;
            ASSERT_EQ(replies.value().size(), 2U);
            const Reply& first = replies.value()[0];
            EXPECT_EQ(first.code, 250);
            EXPECT_EQ(first.lines,
                      (std::vector<std::string>{"mx.test hello", "PIPELINING", "SIZE 100"}));
            EXPECT_EQ(first.raw, "250-mx.test hello\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
            EXPECT_EQ(replies.value()[1].code, 220);
        }
    }
}

TEST(SmtpReplyParser, CodeOnlyLineIsMalformedForDotnetButLegalForRfc) {
    // M-24 vs W-4.
    auto strict = parse_all(ReplyMode::strict_dotnet, "250\r\n", 2);
    EXPECT_EQ(strict.error(), SmtpErrc::malformed_reply);
    auto rfc = parse_all(ReplyMode::rfc5321, "250\r\n", 2);
    ASSERT_TRUE(rfc);
    ASSERT_EQ(rfc.value().size(), 1U);
    EXPECT_EQ(rfc.value()[0].code, 250);
    EXPECT_EQ(rfc.value()[0].lines, std::vector<std::string>{""});
    auto rfc_multi = parse_all(ReplyMode::rfc5321, "250-a\r\n250\r\n", 0);
    ASSERT_TRUE(rfc_multi);
    EXPECT_EQ(rfc_multi.value()[0].lines, (std::vector<std::string>{"a", ""}));
}

TEST(SmtpReplyParser, OtherSeparatorsAreMalformedAndErrorsAreSticky) {
    for (const ReplyMode mode : {ReplyMode::strict_dotnet, ReplyMode::rfc5321}) {
        ReplyParser parser(mode);
        parser.feed("250_ok\r\n");
        EXPECT_EQ(parser.next().error(), SmtpErrc::malformed_reply);
        parser.feed("250 ok\r\n");
        EXPECT_EQ(parser.next().error(), SmtpErrc::malformed_reply);
    }
}

TEST(SmtpReplyParser, DigitsAreCheckedOnlyUnderRfc) {
    // M-24: the .NET reader does not check digits; W-4 does (first digit 2–5, second 0–5).
    auto strict = parse_all(ReplyMode::strict_dotnet, "2x0 odd\r\n", 0);
    ASSERT_TRUE(strict);
    EXPECT_EQ(strict.value()[0].code, 200 + ('x' - '0') * 10);
    EXPECT_EQ(parse_all(ReplyMode::rfc5321, "2x0 odd\r\n", 0).error(), SmtpErrc::malformed_reply);
    EXPECT_EQ(parse_all(ReplyMode::rfc5321, "160 odd\r\n", 0).error(), SmtpErrc::malformed_reply);
    EXPECT_EQ(parse_all(ReplyMode::rfc5321, "260 odd\r\n", 0).error(), SmtpErrc::malformed_reply);
}

TEST(SmtpReplyParser, DotnetDigitsAreOctetsNotSignedChars) {
    // M-24: .NET computes the code from bytes (0..255); found by tools/fuzz (fuzz_smtp_reply),
    // where a signed char made "\xC3" count as -61 instead of 195.
    auto strict = parse_all(ReplyMode::strict_dotnet, "2\xC3" "0 odd\r\n", 0);
    ASSERT_TRUE(strict);
    EXPECT_EQ(strict.value()[0].code, 200 + (0xC3 - '0') * 10);
}

TEST(SmtpReplyParser, MixedCodesInOneReply) {
    // RFC: every line carries the same code. .NET takes the first line's code (M-24).
    EXPECT_EQ(parse_all(ReplyMode::rfc5321, "250-a\r\n251 b\r\n", 0).error(),
              SmtpErrc::malformed_reply);
    auto strict = parse_all(ReplyMode::strict_dotnet, "250-a\r\n251 b\r\n", 0);
    ASSERT_TRUE(strict);
    EXPECT_EQ(strict.value()[0].code, 250);
}

TEST(SmtpReplyParser, BareLineFeedIsNeverALineEnd) {
    // M-24: a reply ending in bare LF is not recognised; the reader keeps waiting.
    for (const ReplyMode mode : {ReplyMode::strict_dotnet, ReplyMode::rfc5321}) {
        ReplyParser parser(mode);
        parser.feed("250 ok\n");
        auto next = parser.next();
        ASSERT_TRUE(next);
        EXPECT_FALSE(next.value().has_value());
        EXPECT_EQ(parser.buffered_bytes(), 7U);
    }
}

TEST(SmtpReplyParser, ReplyLinesLongerThan512BytesAreRefused) {
    const std::string ok = "250 " + std::string(506, 'a') + "\r\n";  // 512 bytes with CRLF
    ASSERT_EQ(ok.size(), 512U);
    auto fits = parse_all(ReplyMode::rfc5321, ok, 100);
    ASSERT_TRUE(fits);
    EXPECT_EQ(fits.value().size(), 1U);
    const std::string too_long = "250 " + std::string(507, 'a') + "\r\n";
    EXPECT_EQ(parse_all(ReplyMode::rfc5321, too_long, 300).error(), SmtpErrc::line_too_long);
    // Refused before the CRLF arrives: the buffer cannot grow without bound.
    ReplyParser parser(ReplyMode::strict_dotnet);
    parser.feed(std::string(600, 'a'));
    EXPECT_EQ(parser.next().error(), SmtpErrc::line_too_long);
    // A 511-byte prefix ending in CR may still be a 512-byte line.
    ReplyParser waiting(ReplyMode::strict_dotnet);
    waiting.feed(ok.substr(0, 511));
    auto pending = waiting.next();
    ASSERT_TRUE(pending);
    EXPECT_FALSE(pending.value().has_value());
}

TEST(SmtpCommandWriter, CommandsEndInCrlf) {
    EXPECT_EQ(CommandWriter::ehlo("client.test").value(), "EHLO client.test\r\n");
    EXPECT_EQ(CommandWriter::helo("client.test").value(), "HELO client.test\r\n");
    EXPECT_EQ(CommandWriter::mail_from("a@b.test").value(), "MAIL FROM:<a@b.test>\r\n");
    EXPECT_EQ(CommandWriter::mail_from("a@b.test", "BODY=8BITMIME SMTPUTF8").value(),
              "MAIL FROM:<a@b.test> BODY=8BITMIME SMTPUTF8\r\n");
    EXPECT_EQ(CommandWriter::mail_from("").value(), "MAIL FROM:<>\r\n");
    EXPECT_EQ(CommandWriter::rcpt_to("c@d.test").value(), "RCPT TO:<c@d.test>\r\n");
    EXPECT_EQ(CommandWriter::data(), "DATA\r\n");
    EXPECT_EQ(CommandWriter::quit(), "QUIT\r\n");
    EXPECT_EQ(CommandWriter::rset(), "RSET\r\n");
    EXPECT_EQ(CommandWriter::noop(), "NOOP\r\n");
    EXPECT_EQ(CommandWriter::starttls(), "STARTTLS\r\n");
    EXPECT_EQ(CommandWriter::auth_login(), "AUTH LOGIN\r\n");
    EXPECT_EQ(CommandWriter::auth_response("user"), "dXNlcg==\r\n");
    EXPECT_EQ(CommandWriter::auth_plain("tim", "tanstaaftanstaaf").value(),
              "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n");  // RFC 4616 §4 example
}

TEST(SmtpCommandWriter, RefusesLineBreaksInArguments) {
    // W-1: no bare CR or LF may leave the client; a CRLF inside an argument would inject a command.
    EXPECT_EQ(CommandWriter::ehlo("a\r\nRSET").error(), SmtpErrc::invalid_argument);
    EXPECT_EQ(CommandWriter::helo("a\n").error(), SmtpErrc::invalid_argument);
    EXPECT_EQ(CommandWriter::mail_from("a@b\r").error(), SmtpErrc::invalid_argument);
    EXPECT_EQ(CommandWriter::mail_from("a@b", "X=1\r\nRCPT TO:<e@v>").error(),
              SmtpErrc::invalid_argument);
    EXPECT_EQ(CommandWriter::rcpt_to("x\ny").error(), SmtpErrc::invalid_argument);
    EXPECT_EQ(CommandWriter::rcpt_to(std::string(600, 'a')).error(), SmtpErrc::invalid_argument);
}

TEST(SmtpBase64, Rfc4648Vectors) {
    EXPECT_EQ(base64_encode(""), "");
    EXPECT_EQ(base64_encode("f"), "Zg==");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(base64_encode("foo"), "Zm9v");
    EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
    EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(SmtpCommandParser, VerbArgumentAndBufferedInput) {
    CommandParser parser(BareLineFeedPolicy::reject);
    parser.feed("ehlo client.test\r\nMAIL FROM:<a@b> SIZE=10\r\nDA");
    auto first = parser.next();
    ASSERT_TRUE(first && first.value());
    EXPECT_EQ(first.value()->verb, "EHLO");
    EXPECT_EQ(first.value()->argument, "client.test");
    EXPECT_TRUE(parser.has_buffered());
    auto second = parser.next();
    ASSERT_TRUE(second && second.value());
    EXPECT_EQ(second.value()->verb, "MAIL");
    EXPECT_EQ(second.value()->argument, "FROM:<a@b> SIZE=10");
    auto third = parser.next();
    ASSERT_TRUE(third);
    EXPECT_FALSE(third.value());
    parser.feed("TA\r\n");
    auto data = parser.next();
    ASSERT_TRUE(data && data.value());
    EXPECT_EQ(data.value()->verb, "DATA");
    EXPECT_EQ(data.value()->line, "DATA");
    EXPECT_FALSE(parser.has_buffered());
}

TEST(SmtpCommandParser, CommandsLongerThan512BytesAreSkipped) {
    CommandParser parser(BareLineFeedPolicy::reject);
    parser.feed("NOOP " + std::string(505, 'a') + "\r\n");  // 512 bytes: fits
    auto fits = parser.next();
    ASSERT_TRUE(fits && fits.value());
    parser.feed("NOOP " + std::string(506, 'a') + "\r\nQUIT\r\n");
    EXPECT_EQ(parser.next().error(), SmtpErrc::command_too_long);
    auto quit = parser.next();
    ASSERT_TRUE(quit && quit.value());
    EXPECT_EQ(quit.value()->verb, "QUIT");
    // Refused before the line ends; the rest of the line is dropped as it arrives.
    parser.feed(std::string(700, 'b'));
    EXPECT_EQ(parser.next().error(), SmtpErrc::command_too_long);
    parser.feed(std::string(700, 'b') + "\r\nRSET\r\n");
    auto rset = parser.next();
    ASSERT_TRUE(rset && rset.value());
    EXPECT_EQ(rset.value()->verb, "RSET");
}

TEST(SmtpCommandParser, AnOverLongLineEndsOnlyAtCrlfUnderReject) {
    // W-8 with W-13 reject: the rest of an over-long line is dropped up to its CRLF, so a bare
    // LF inside it cannot start a command, however the bytes are split (found by tools/fuzz).
    const std::string hidden = std::string(600, 'x') + "\nMAIL FROM:<evil@x.test>\r\nRSET\r\n";
    for (const std::size_t split : {std::size_t{0}, std::size_t{520}, std::size_t{601},
                                     hidden.find("\r\nRSET") + 1}) {
        CommandParser parser(BareLineFeedPolicy::reject);
        std::vector<std::string> seen;
        const auto drain = [&] {
            while (true) {
                auto next = parser.next();
                if (!next) {
                    seen.push_back("error");
                    continue;
                }
                if (!next.value()) {
                    return;
                }
                seen.push_back(next.value()->verb);
            }
        };
        parser.feed(std::string_view(hidden).substr(0, split));
        drain();
        parser.feed(std::string_view(hidden).substr(split));
        drain();
        EXPECT_EQ(seen, (std::vector<std::string>{"error", "RSET"})) << "split at " << split;
    }
}

TEST(SmtpCommandParser, BareLineFeedPerPolicy) {
    CommandParser reject(BareLineFeedPolicy::reject);
    reject.feed("NOOP\nRSET\r\n");
    EXPECT_EQ(reject.next().error(), SmtpErrc::bare_line_feed);
    for (const auto policy : {BareLineFeedPolicy::normalize, BareLineFeedPolicy::legacy_accept}) {
        CommandParser parser(policy);
        parser.feed("NOOP\nRSET\r\n");
        auto noop = parser.next();
        ASSERT_TRUE(noop && noop.value());
        EXPECT_EQ(noop.value()->verb, "NOOP");
        auto rset = parser.next();
        ASSERT_TRUE(rset && rset.value());
        EXPECT_EQ(rset.value()->line, "RSET");
    }
}

struct DataResult {
    std::size_t consumed = 0;
    bool finished = false;
    std::string content;
    int reply_code = 0;
};

DataResult read_data(std::string_view bytes, DataOptions options, std::size_t split) {
    DataReader reader(options);
    DataResult result;
    result.consumed = reader.feed(bytes.substr(0, split));
    result.consumed += reader.feed(bytes.substr(split));
    result.finished = reader.finished();
    result.content = reader.content();
    result.reply_code = reader.reply_code();
    EXPECT_EQ(reader.raw(), bytes.substr(0, result.consumed));
    return result;
}

TEST(SmtpDataReader, UndoesDotStuffingAndStopsAtCrlfDotCrlf) {
    const std::string bytes = "Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n";
    for (std::size_t split = 0; split <= bytes.size(); ++split) {
        const DataResult result = read_data(bytes, DataOptions{}, split);
        EXPECT_TRUE(result.finished);
        EXPECT_EQ(result.consumed, bytes.size() - 6) << split;  // "QUIT\r\n" is left
        EXPECT_EQ(result.content, "Subject: x\r\n\r\n.leading dot\r\n");
        EXPECT_EQ(result.reply_code, 250);
    }
    // The terminator may be the very first line: an empty message.
    const DataResult empty = read_data(".\r\n", DataOptions{}, 1);
    EXPECT_TRUE(empty.finished);
    EXPECT_EQ(empty.content, "");
    // A dot inside a line, or a line of two dots, is not the end.
    const DataResult not_end = read_data("a.\r\n..\r\n", DataOptions{}, 0);
    EXPECT_FALSE(not_end.finished);
    EXPECT_EQ(not_end.content, "a.\r\n.\r\n");
}

/// The smuggling payloads of W-12/W-13: a fake end-of-data, then a second "message".
struct Smuggle {
    const char* name;
    std::string bytes;
};

std::vector<Smuggle> smuggling_payloads() {
    const std::string tail = "MAIL FROM:<spoof@bank.test>\r\n.\r\n";
    return {
        {"LF.LF", "hi\r\n\n.\nMAIL FROM:<spoof@bank.test>\r\n.\r\n"},
        {"LF.CRLF", "hi\r\n\n.\r\n" + tail},
        {"CRLF.LF", "hi\r\n.\n" + tail},
    };
}

TEST(SmtpDataReader, SmugglingPayloadsDoNotEndDataUnderRejectOrNormalize) {
    for (const auto& smuggle : smuggling_payloads()) {
        for (const auto policy : {BareLineFeedPolicy::reject, BareLineFeedPolicy::normalize}) {
            const DataResult result =
                read_data(smuggle.bytes, DataOptions{.bare_line_feed = policy}, 3);
            EXPECT_TRUE(result.finished) << smuggle.name;
            EXPECT_EQ(result.consumed, smuggle.bytes.size()) << smuggle.name;
            EXPECT_NE(result.content.find("MAIL FROM:<spoof@bank.test>"), std::string::npos)
                << smuggle.name;
            EXPECT_EQ(result.reply_code, policy == BareLineFeedPolicy::reject ? 550 : 250)
                << smuggle.name;
            if (policy == BareLineFeedPolicy::normalize) {
                for (std::size_t i = 0; i < result.content.size(); ++i) {
                    if (result.content[i] == '\n') {
                        EXPECT_TRUE(i > 0 && result.content[i - 1] == '\r') << smuggle.name;
                    }
                }
            }
        }
    }
}

TEST(SmtpDataReader, SmugglingPayloadsEndDataUnderLegacyAccept) {
    for (const auto& smuggle : smuggling_payloads()) {
        const DataResult result = read_data(
            smuggle.bytes, DataOptions{.bare_line_feed = BareLineFeedPolicy::legacy_accept}, 0);
        EXPECT_TRUE(result.finished) << smuggle.name;
        EXPECT_LT(result.consumed, smuggle.bytes.size()) << smuggle.name;
        EXPECT_EQ(std::string_view(smuggle.bytes).substr(result.consumed).substr(0, 10),
                  "MAIL FROM:")
            << smuggle.name;
        EXPECT_EQ(result.content.find("spoof"), std::string::npos) << smuggle.name;
    }
}

TEST(SmtpDataReader, TextLinesLongerThan1000BytesGet500) {
    const std::string fits = std::string(998, 'a') + "\r\n.\r\n";
    EXPECT_EQ(read_data(fits, DataOptions{}, 500).reply_code, 250);
    const std::string too_long = std::string(999, 'a') + "\r\n.\r\n";
    const DataResult result = read_data(too_long, DataOptions{}, 500);
    EXPECT_TRUE(result.finished);
    EXPECT_EQ(result.reply_code, 500);
}

TEST(SmtpDataReader, SizeLimitGets552AndContentStopsGrowing) {
    const DataOptions options{.message_bytes_max = 10};
    EXPECT_EQ(read_data("12345678\r\n.\r\n", options, 0).reply_code, 250);
    const DataResult result = read_data("12345678\r\nabc\r\n.\r\n", options, 0);
    EXPECT_TRUE(result.finished);
    EXPECT_EQ(result.reply_code, 552);
    EXPECT_EQ(result.content, "12345678\r\n");
}

}  // namespace
}  // namespace faultline::model
