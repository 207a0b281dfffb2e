// Goal: the MIME writer produces the bytes the clauses describe: the seed example (M-32) byte for
// byte, header encoding (M-30, M-31), body encodings without bare LF (M-29, W-1), dot-stuffing
// keyed to CRLF (M-28, W-6) and the end-of-data sequence (M-27, W-7).
// Method: literal expected strings; the base64 and encoded words for the seed were computed
// independently (Python's base64 module), and quoted-printable output is checked by a small
// reference decoder written here from RFC 2045 §6.7.
#include "faultline/model/mime.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "faultline/model/mail_message.h"

namespace faultline::model {
namespace {

constexpr std::string_view kArrows = "\xE2\x86\x90\xE2\x86\x91\xE2\x86\x92\xE2\x86\x93";  // U+2190..3
const MimeOptions kOptions{.date = "21 Nov 2026 10:46:05 +0000", .pass_bare_line_ends = false};

std::vector<std::string_view> lines_of(std::string_view text) {
    std::vector<std::string_view> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = text.find("\r\n", start);
        if (end == std::string_view::npos) {
            lines.push_back(text.substr(start));
            break;
        }
        lines.push_back(text.substr(start, end - start));
        start = end + 2;
    }
    return lines;
}

// RFC 2045 §6.7 decoding: "=XX" is a byte, "=" CRLF is a soft break, everything else literal.
std::string qp_decode(std::string_view encoded) {
    std::string decoded;
    for (std::size_t i = 0; i < encoded.size(); ++i) {
        if (encoded[i] != '=') {
            decoded += encoded[i];
        } else if (encoded.substr(i + 1, 2) == "\r\n") {
            i += 2;
        } else {
            decoded += static_cast<char>(std::stoi(std::string(encoded.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        }
    }
    return decoded;
}

std::string body_of(std::string_view message) {
    const std::size_t blank = message.find("\r\n\r\n");
    std::string_view body = message.substr(blank + 4);
    body.remove_suffix(2);  // The CRLF MailWriter.Close adds (M-27).
    return std::string(body);
}

TEST(Mime, SeedExampleBytes) {  // M-32, with M-30 and M-29
    MailMessage message(MailAddress("jane@contoso.com", "Jane \xC3\x98 Clayton", TextEncoding::utf8),
                        MailAddress("ben@contoso.com"));
    // The seed's text; Environment.NewLine is "\n" on Unix (M-29).
    message.Body("This is a test e-mail message sent by an application. ");
    message.Body(message.Body() + "\n" + std::string(kArrows));
    message.BodyEncoding(TextEncoding::utf8);
    message.Subject("test message 1" + std::string(kArrows));
    message.SubjectEncoding(TextEncoding::utf8);

    const std::string expected =
        "MIME-Version: 1.0\r\n"
        "From: =?utf-8?Q?Jane_=C3=98_Clayton?= <jane@contoso.com>\r\n"
        "To: ben@contoso.com\r\n"
        "Date: 21 Nov 2026 10:46:05 +0000\r\n"
        "Subject: =?utf-8?B?dGVzdCBtZXNzYWdlIDHihpDihpHihpLihpM=?=\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "VGhpcyBpcyBhIHRlc3QgZS1tYWlsIG1lc3NhZ2Ugc2VudCBieSBhbiBhcHBsaWNhdGlvbi4gCuKG\r\n"
        "kOKGkeKGkuKGkw==\r\n";
    const std::string written = write_message(message, kOptions);
    EXPECT_EQ(written, expected);
    EXPECT_FALSE(contains_bare_line_feed(written));  // W-1
    EXPECT_FALSE(contains_bare_carriage_return(written));
    // What the SmtpClient sends after the 354: nothing to stuff here, then the terminator (M-27).
    EXPECT_EQ(dot_stuff(written) + std::string(data_terminator()),
              expected + "\r\n.\r\n");
    EXPECT_TRUE((dot_stuff(written) + std::string(data_terminator())).ends_with("==\r\n\r\n.\r\n"));
}

TEST(Mime, Base64MatchesRfc4648Vectors) {
    EXPECT_EQ(encode_base64("", 0), "");
    EXPECT_EQ(encode_base64("f", 0), "Zg==");
    EXPECT_EQ(encode_base64("fo", 0), "Zm8=");
    EXPECT_EQ(encode_base64("foo", 0), "Zm9v");
    EXPECT_EQ(encode_base64("foobar", 0), "Zm9vYmFy");
    EXPECT_EQ(encode_base64("foobar", 4), "Zm9v\r\nYmFy");
}

TEST(Mime, AsciiBodyDefaultsToQuotedPrintableWithEscapedLoneLineEnds) {  // M-29
    MailMessage message("jane@contoso.com", "ben@contoso.com");
    message.Body("one\ntwo\rthree\r\nfour\n.\nfive = six \r\nend\t");
    const std::string written = write_message(message, kOptions);
    EXPECT_NE(written.find("Content-Type: text/plain; charset=us-ascii\r\n"), std::string::npos);
    EXPECT_NE(written.find("Content-Transfer-Encoding: quoted-printable\r\n"), std::string::npos);
    EXPECT_EQ(body_of(written), "one=0Atwo=0Dthree\r\nfour=0A.=0Afive =3D six=20\r\nend=09");
    EXPECT_FALSE(contains_bare_line_feed(written));  // No LF "." LF reaches the wire (W-12).
    EXPECT_EQ(qp_decode(body_of(written)), message.Body());
}

TEST(Mime, QuotedPrintableLinesStayWithin76AndRoundTrip) {  // RFC 2045 §6.7(5), M-29
    const std::vector<std::string> bodies = {
        std::string(200, 'a'),
        std::string(75, 'b') + "\r\n" + std::string(76, 'c') + "\r\n" + std::string(77, 'd'),
        std::string(74, 'x') + "====" + std::string(100, ' ') + "y",
        std::string(300, '\n'),
        "caf\xC3\xA9 " + std::string(120, '\xE2') + "\r\n.leading dot\r\n",
        std::string(80, ' '),
    };
    for (const std::string& body : bodies) {
        const std::string encoded = encode_quoted_printable(body);
        for (const std::string_view line : lines_of(encoded)) {
            EXPECT_LE(line.size(), kBodyLineLengthMax) << line;
            EXPECT_FALSE(line.ends_with(" ") || line.ends_with("\t")) << line;
        }
        EXPECT_FALSE(contains_bare_line_feed(encoded));
        EXPECT_FALSE(contains_bare_carriage_return(encoded));
        EXPECT_EQ(qp_decode(encoded), body);
    }
    // A 200-character line is broken by soft line breaks.
    EXPECT_EQ(encode_quoted_printable(std::string(200, 'a')),
              std::string(75, 'a') + "=\r\n" + std::string(75, 'a') + "=\r\n" +
                  std::string(50, 'a'));
}

TEST(Mime, Utf8BodyIsBase64In76CharacterLines) {  // M-29
    MailMessage message("jane@contoso.com", "ben@contoso.com");
    message.BodyEncoding(TextEncoding::utf8);
    message.Body(std::string(100, '\n') + std::string(kArrows));
    const std::string written = write_message(message, kOptions);
    EXPECT_NE(written.find("Content-Transfer-Encoding: base64\r\n"), std::string::npos);
    for (const std::string_view line : lines_of(body_of(written))) {
        EXPECT_LE(line.size(), 76U);
    }
    EXPECT_FALSE(contains_bare_line_feed(written));
    // A non-ASCII body with no BodyEncoding set is UTF-8 too (.NET's Body setter).
    MailMessage unset("jane@contoso.com", "ben@contoso.com");
    unset.Body(std::string(kArrows));
    EXPECT_NE(write_message(unset, kOptions).find("charset=utf-8\r\nContent-Transfer-Encoding: base64"),
              std::string::npos);
}

TEST(Mime, ExplicitSevenBitNormalisesUnlessReproducingDotnet) {  // M-29, W-12, W-16
    MailMessage message("jane@contoso.com", "ben@contoso.com");
    message.BodyTransferEncoding(TransferEncoding::seven_bit);
    message.Body("a\n.\nb\rc\r\nd");
    const std::string safe = write_message(message, kOptions);
    EXPECT_NE(safe.find("Content-Transfer-Encoding: 7bit\r\n"), std::string::npos);
    EXPECT_EQ(body_of(safe), "a\r\n.\r\nb\r\nc\r\nd");
    EXPECT_FALSE(contains_bare_line_feed(safe));
    EXPECT_EQ(dot_stuff(body_of(safe)), "a\r\n..\r\nb\r\nc\r\nd");

    const std::string exposed = write_message(message, MimeOptions{.date = kOptions.date, .pass_bare_line_ends = true});
    EXPECT_EQ(body_of(exposed), "a\n.\nb\rc\r\nd");
    EXPECT_TRUE(contains_bare_line_feed(exposed));
    // M-28: .NET does not stuff the '.' after a bare LF, so LF "." LF reaches the wire.
    EXPECT_NE(dot_stuff(exposed).find("\n.\n"), std::string::npos);

    message.BodyTransferEncoding(TransferEncoding::eight_bit);
    EXPECT_NE(write_message(message, kOptions).find("Content-Transfer-Encoding: 8bit\r\n"),
              std::string::npos);
}

TEST(Mime, DotStuffing) {  // W-6, M-28
    EXPECT_EQ(dot_stuff("."), "..");
    EXPECT_EQ(dot_stuff(".."), "...");
    EXPECT_EQ(dot_stuff("a\r\n.b"), "a\r\n..b");
    EXPECT_EQ(dot_stuff("a\r\n.\r\n.\r\n"), "a\r\n..\r\n..\r\n");
    EXPECT_EQ(dot_stuff("a.b\r\nc."), "a.b\r\nc.");
    EXPECT_EQ(dot_stuff("a\n.b"), "a\n.b");  // Bare LF: not a line start for .NET (M-28).
    EXPECT_EQ(dot_stuff("a\r.b"), "a\r.b");
    EXPECT_EQ(dot_stuff(""), "");
}

TEST(Mime, DataTerminatorFollowsTheFinalCrlf) {  // M-27, W-7
    EXPECT_EQ(data_terminator(), "\r\n.\r\n");
    MailMessage message("jane@contoso.com", "ben@contoso.com");
    message.Body("hello");
    const std::string data = dot_stuff(write_message(message, kOptions)) +
                             std::string(data_terminator());
    EXPECT_TRUE(data.ends_with("hello\r\n\r\n.\r\n"));  // One empty line before the dot.
}

TEST(Mime, BareLineFeedDetection) {  // W-1
    EXPECT_FALSE(contains_bare_line_feed("a\r\nb\r\n"));
    EXPECT_TRUE(contains_bare_line_feed("\n"));
    EXPECT_TRUE(contains_bare_line_feed("a\r\nb\n"));
    EXPECT_TRUE(contains_bare_line_feed("a\n\r"));
    EXPECT_FALSE(contains_bare_carriage_return("a\r\n"));
    EXPECT_TRUE(contains_bare_carriage_return("a\r"));
}

TEST(Mime, SubjectAsciiAsIsAndNonAsciiEncoded) {  // M-30
    MailMessage message("jane@contoso.com", "ben@contoso.com");
    message.Subject("plain subject");
    EXPECT_NE(write_message(message, kOptions).find("\r\nSubject: plain subject\r\n"),
              std::string::npos);
    message.Subject("caf\xC3\xA9");
    EXPECT_NE(write_message(message, kOptions).find("\r\nSubject: =?utf-8?B?Y2Fmw6k=?=\r\n"),
              std::string::npos);  // SubjectEncoding null → UTF-8 → B.
    message.SubjectEncoding(TextEncoding::ascii);
    EXPECT_NE(write_message(message, kOptions).find("\r\nSubject: =?us-ascii?Q?caf=3F?=\r\n"),
              std::string::npos);
    message.Subject("");
    EXPECT_EQ(write_message(message, kOptions).find("Subject:"), std::string::npos);
}

TEST(Mime, AllowUnicodeWritesRawUtf8Headers) {  // M-30 (SMTPUTF8 + International), M-13
    MailMessage message(MailAddress("j\u00f6se@b\u00fccher.example", "J\u00f6se"),
                        MailAddress("ben@b\u00fccher.example"));
    message.Subject("Gr\u00fc\u00dfe");
    message.Headers().Add("X-Name", "M\u00fcller");
    message.Headers().Add("X-Note", "a\r\nBcc: evil@example.com");
    MimeOptions unicode = kOptions;
    unicode.allow_unicode = true;
    const std::string raw = write_message(message, unicode);
    EXPECT_TRUE(raw.starts_with("X-Name: M\u00fcller\r\n"
                                "X-Note: =?utf-8?B?YQ0KQmNjOiBldmlsQGV4YW1wbGUuY29t?=\r\n"
                                "MIME-Version: 1.0\r\n"
                                "From: \"J\u00f6se\" <j\u00f6se@b\u00fccher.example>\r\n"
                                "To: ben@b\u00fccher.example\r\n"))
        << raw;
    EXPECT_NE(raw.find("\r\nSubject: Gr\u00fc\u00dfe\r\n"), std::string::npos) << raw;
    // Without it: encoded words, and the domain IDNA-encoded as in the envelope.
    const std::string seven_bit = write_message(message, kOptions);
    EXPECT_TRUE(seven_bit.starts_with("X-Name: =?utf-8?B?TcO8bGxlcg==?=\r\n")) << seven_bit;
    EXPECT_NE(seven_bit.find("\r\nFrom: =?utf-8?Q?J=C3=B6se?= <j\u00f6se@xn--bcher-kva.example>\r\n"
                             "To: ben@xn--bcher-kva.example\r\n"),
              std::string::npos)
        << seven_bit;
    EXPECT_NE(seven_bit.find("\r\nSubject: =?utf-8?B?R3LDvMOfZQ==?=\r\n"), std::string::npos)
        << seven_bit;
}

TEST(Mime, HeaderValueWithCrlfBecomesEncodedWord) {  // M-31
    MailMessage message("jane@contoso.com", "ben@contoso.com");
    message.Headers().Add("X-Note", "a\r\nBcc: evil@example.com");
    message.Headers().Add("X-Plain", "kept as is");
    const std::string written = write_message(message, kOptions);
    // Base64 of "a" CR LF "Bcc: evil@example.com", computed independently.
    EXPECT_TRUE(written.starts_with("X-Note: =?utf-8?B?YQ0KQmNjOiBldmlsQGV4YW1wbGUuY29t?=\r\n"
                                    "X-Plain: kept as is\r\n"
                                    "MIME-Version: 1.0\r\n"))
        << written;
    EXPECT_EQ(written.find("\r\nBcc:"), std::string::npos);
    EXPECT_FALSE(contains_bare_line_feed(written));
}

TEST(Mime, BccNeverInHeadersAndCcListed) {  // M-13
    MailMessage message("jane@contoso.com", "ben@contoso.com");
    message.CC().emplace_back("Carl <carl@contoso.com>");
    message.Bcc().emplace_back("hidden@contoso.com");
    message.Sender(MailAddress("office@contoso.com"));
    message.IsBodyHtml(true);
    const std::string written = write_message(message, kOptions);
    EXPECT_EQ(written.find("hidden"), std::string::npos);
    EXPECT_TRUE(written.starts_with("MIME-Version: 1.0\r\nSender: office@contoso.com\r\n"
                                    "From: jane@contoso.com\r\nTo: ben@contoso.com\r\n"
                                    "Cc: \"Carl\" <carl@contoso.com>\r\nDate: "))
        << written;
    EXPECT_NE(written.find("Content-Type: text/html; charset=us-ascii\r\n"), std::string::npos);
    // A user header that names a writer header is dropped (.NET overwrites it).
    message.Headers().Add("bcc", "leak@example.com");
    EXPECT_EQ(write_message(message, kOptions).find("leak"), std::string::npos);
}

TEST(Mime, LongHeadersFoldAtSpacesAndEncodedWordBoundaries) {  // M-30
    MailMessage message("jane@contoso.com", "ben@contoso.com");
    for (int i = 0; i < 6; ++i) {
        message.To().emplace_back("Recipient Number " + std::to_string(i) + " <r" +
                                  std::to_string(i) + "@contoso.com>");
    }
    std::string long_subject;
    for (int i = 0; i < 20; ++i) {
        long_subject += std::string(kArrows) + " word ";
    }
    message.Subject(long_subject);
    const std::string written = write_message(message, kOptions);
    const std::string headers = written.substr(0, written.find("\r\n\r\n") + 2);
    for (const std::string_view line : lines_of(headers)) {
        EXPECT_LE(line.size(), kHeaderLineLengthMax) << line;
        EXPECT_FALSE(line.empty());
    }
    // Continuation lines start with whitespace; encoded words stay whole.
    EXPECT_NE(headers.find("\r\n =?utf-8?B?"), std::string::npos);
    EXPECT_FALSE(contains_bare_line_feed(written));
    // Unfolding restores the To list exactly.
    const std::size_t to_begin = headers.find("To: ");
    std::string to_field = headers.substr(to_begin, headers.find("\r\nDate:") - to_begin);
    std::string unfolded;
    for (std::size_t i = 0; i < to_field.size(); ++i) {
        if (to_field.compare(i, 2, "\r\n") == 0) {
            ++i;
        } else {
            unfolded += to_field[i];
        }
    }
    EXPECT_TRUE(unfolded.starts_with("To: ben@contoso.com, \"Recipient Number 0\" <r0@contoso.com>"));
    EXPECT_TRUE(unfolded.ends_with("\"Recipient Number 5\" <r5@contoso.com>"));
}

TEST(Mime, EncodedWordsRespectLengthAndCharacterBoundaries) {  // M-30, RFC 2047 §2 and §5
    std::string text;
    for (int i = 0; i < 40; ++i) {
        text += std::string(kArrows);
    }
    for (const bool base64 : {true, false}) {
        const std::string words = encode_words(text, TextEncoding::utf8, base64);
        std::size_t start = 0;
        std::size_t count = 0;
        while (start < words.size()) {
            std::size_t end = words.find(' ', start);
            if (end == std::string::npos) {
                end = words.size();
            }
            const std::string_view word = std::string_view(words).substr(start, end - start);
            EXPECT_LE(word.size(), kEncodedWordLengthMax);
            EXPECT_TRUE(word.starts_with(base64 ? "=?utf-8?B?" : "=?utf-8?Q?")) << word;
            EXPECT_TRUE(word.ends_with("?=")) << word;
            if (!base64) {
                // Whole characters only: each Q word's payload is a multiple of one arrow (9 chars).
                EXPECT_EQ((word.size() - 12) % 9, 0U) << word;
            }
            start = end + 1;
            ++count;
        }
        EXPECT_GT(count, 1U);
    }
    EXPECT_EQ(encode_words("", TextEncoding::utf8, true), "");
}

}  // namespace
}  // namespace faultline::model
