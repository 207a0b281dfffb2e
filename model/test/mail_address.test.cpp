// Goal: MailAddress parses and writes addresses as System.Net.Mail.MailAddress does, refuses CR/LF
// injection (M-31), gives the envelope form (M-13) and encodes display names (M-30); MailMessage
// refuses a Subject with CR or LF (M-31) and orders the envelope (M-13); RFC 3492 Punycode and the
// simplified IDNA ToASCII behind the SMTPUTF8-less envelope (M-13); DSN options (M-23).
// Method: table-driven parse cases and literal expected strings worked out by hand; Punycode
// against the RFC 3492 §7.1 samples (cross-checked with Python's punycode codec).
#include "faultline/model/mail_address.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "faultline/model/mail_message.h"

namespace faultline::model {
namespace {

TEST(MailAddress, ParsesBareAddress) {
    const MailAddress address("ben@contoso.com");
    EXPECT_EQ(address.Address(), "ben@contoso.com");
    EXPECT_EQ(address.User(), "ben");
    EXPECT_EQ(address.Host(), "contoso.com");
    EXPECT_EQ(address.DisplayName(), "");
    EXPECT_EQ(address.ToString(), "ben@contoso.com");
}

TEST(MailAddress, ParsesDisplayNameForms) {
    const MailAddress plain("Ben Smith <ben@contoso.com>");
    EXPECT_EQ(plain.DisplayName(), "Ben Smith");
    EXPECT_EQ(plain.Address(), "ben@contoso.com");
    const MailAddress quoted("\"Smith, Ben\" <ben@contoso.com>");
    EXPECT_EQ(quoted.DisplayName(), "Smith, Ben");
    EXPECT_EQ(quoted.ToString(), "\"Smith, Ben\" <ben@contoso.com>");
    const MailAddress angle_only("  <ben@contoso.com>  ");
    EXPECT_EQ(angle_only.DisplayName(), "");
    EXPECT_EQ(angle_only.Address(), "ben@contoso.com");
    const MailAddress escaped("\"Ben \\\"B\\\" Smith\" <ben@contoso.com>");
    EXPECT_EQ(escaped.DisplayName(), "Ben \"B\" Smith");
}

TEST(MailAddress, ExplicitDisplayNameWinsAndLosesItsQuotes) {
    const MailAddress address("Parsed <jane@contoso.com>", "\"Given\"");
    EXPECT_EQ(address.DisplayName(), "Given");
    const MailAddress kept("Parsed <jane@contoso.com>", "");
    EXPECT_EQ(kept.DisplayName(), "Parsed");
}

TEST(MailAddress, AcceptsQuotedLocalPartAndDomainLiteral) {
    const MailAddress quoted_local("\"john smith\"@example.com");
    EXPECT_EQ(quoted_local.User(), "\"john smith\"");
    const MailAddress literal("user@[192.0.2.1]");
    EXPECT_EQ(literal.Host(), "[192.0.2.1]");
}

TEST(MailAddress, EmptyAddressIsArgumentException) {
    try {
        const MailAddress address("");
        FAIL() << "expected ArgumentException";
    } catch (const ArgumentException& error) {
        EXPECT_EQ(error.type_name(), "ArgumentException");
        EXPECT_EQ(error.param_name(), "address");
    }
}

TEST(MailAddress, MalformedAddressesAreFormatException) {
    const std::vector<std::string> malformed = {
        "plainaddress", "@contoso.com", "ben@", "ben@@contoso.com", ".ben@contoso.com",
        "ben.@contoso.com", "b..en@contoso.com", "ben@contoso..com", "ben smith@contoso.com",
        "Ben <ben@contoso.com", "Ben ben@contoso.com>", "\"unterminated <ben@contoso.com>",
        "ben@[192.0.2.1", "   "};
    for (const std::string& text : malformed) {
        EXPECT_THROW(MailAddress{text}, FormatException) << text;
        EXPECT_FALSE(MailAddress::TryCreate(text).has_value()) << text;
    }
    try {
        const MailAddress address("nope");
    } catch (const DotnetException& error) {
        EXPECT_EQ(error.type_name(), "FormatException");
    }
}

TEST(MailAddress, CrOrLfOnlyAsFoldingWhitespace) {  // M-31
    const std::vector<std::string> injected = {
        "ben@contoso.com\r\nRCPT TO:<evil@example.com>",
        "ben@contoso.com\nBcc: evil@example.com",
        "ben@contoso.com\r",
        "Ben\r <ben@contoso.com>",
        "Ben\n <ben@contoso.com>",
        "ben@contoso.com\r\n",
        "foo@[\r\n bar]",  // A domain literal spanning lines (MultiLineDomainLiterals_Disabled).
    };
    for (const std::string& text : injected) {
        EXPECT_THROW(MailAddress{text}, FormatException) << text;
    }
    // Folding whitespace is unfolded.
    const MailAddress folded("Ben\r\n Smith <ben@contoso.com>");
    EXPECT_EQ(folded.DisplayName(), "Ben Smith");
    EXPECT_EQ(folded.Address(), "ben@contoso.com");
    // A display name given separately may not smuggle a line break either.
    EXPECT_THROW(MailAddress("ben@contoso.com", "Ben\r\nBcc: evil@example.com"), FormatException);
}

TEST(MailAddress, SmtpAddressIsAngleBracketed) {  // M-13
    EXPECT_EQ(MailAddress("Ben <ben@contoso.com>").smtp_address(), "<ben@contoso.com>");
    EXPECT_EQ(MailAddress("ben@contoso.com").smtp_address(), "<ben@contoso.com>");
}

TEST(MailAddress, EncodedQuotesAsciiAndQEncodesOthers) {  // M-30
    EXPECT_EQ(MailAddress("ben@contoso.com").encoded(), "ben@contoso.com");
    EXPECT_EQ(MailAddress("ben@contoso.com", "Ben Smith").encoded(),
              "\"Ben Smith\" <ben@contoso.com>");
    // The seed's sender (M-32): U+00D8 is C3 98 in UTF-8.
    const MailAddress jane("jane@contoso.com", "Jane \xC3\x98 Clayton", TextEncoding::utf8);
    EXPECT_EQ(jane.encoded(), "=?utf-8?Q?Jane_=C3=98_Clayton?= <jane@contoso.com>");
    // With ASCII as the display-name encoding the character degrades to '?' (=3F), as .NET does.
    const MailAddress ascii("jane@contoso.com", "Jane \xC3\x98 Clayton", TextEncoding::ascii);
    EXPECT_EQ(ascii.encoded(), "=?us-ascii?Q?Jane_=3F_Clayton?= <jane@contoso.com>");
}

TEST(MailAddress, EqualityIgnoresAsciiCase) {
    EXPECT_EQ(MailAddress("Ben@Contoso.com"), MailAddress("ben@contoso.com"));
    EXPECT_FALSE(MailAddress("ben@contoso.com") == MailAddress("ben@contoso.org"));
}

TEST(MailMessage, SubjectWithCrOrLfIsArgumentException) {  // M-31
    MailMessage message("jane@contoso.com", "ben@contoso.com");
    message.Subject("fine");
    for (const std::string bad : {"a\r\nBcc: evil@example.com", "a\nb", "a\rb"}) {
        try {
            message.Subject(bad);
            FAIL() << "expected ArgumentException";
        } catch (const ArgumentException& error) {
            EXPECT_EQ(error.type_name(), "ArgumentException");
        }
        EXPECT_EQ(message.Subject(), "fine");
    }
}

TEST(MailMessage, HeaderNamesMustBeFieldNames) {
    MailMessage message;
    message.Headers().Add("X-Trace", "1");
    EXPECT_THROW(message.Headers().Add("X-Bad\r\nBcc", "1"), FormatException);
    EXPECT_THROW(message.Headers().Add("X Bad", "1"), FormatException);
    EXPECT_THROW(message.Headers().Add("", "1"), ArgumentException);
    EXPECT_EQ(message.Headers().Count(), 1U);
}

TEST(MailMessage, EnvelopeIsSenderThenToCcBccInOrder) {  // M-13
    MailMessage message("jane@contoso.com", "b@contoso.com");
    message.To().emplace_back("a@contoso.com");
    message.CC().emplace_back("c@contoso.com");
    message.Bcc().emplace_back("d@contoso.com");
    message.CC().emplace_back("b@contoso.com");  // Duplicates are kept.
    std::vector<std::string> order;
    for (const MailAddress& recipient : envelope_recipients(message)) {
        order.push_back(recipient.smtp_address());
    }
    EXPECT_EQ(order, (std::vector<std::string>{"<b@contoso.com>", "<a@contoso.com>",
                                               "<c@contoso.com>", "<b@contoso.com>",
                                               "<d@contoso.com>"}));
    EXPECT_EQ(envelope_sender(message)->Address(), "jane@contoso.com");
    message.Sender(MailAddress("office@contoso.com"));
    EXPECT_EQ(envelope_sender(message)->Address(), "office@contoso.com");
}

// ---- RFC 3492 / IDNA (M-13) ----------------------------------------------------------------

TEST(Punycode, EncodesTheRfc3492Samples) {
    // §7.1 (A) Arabic (Egyptian), (B) Chinese (simplified), (L) 3<nen>B<gumi><kinpachi><sensei>.
    EXPECT_EQ(punycode_encode("\u0644\u064a\u0647\u0645\u0627\u0628\u062a\u0643\u0644\u0645\u0648"
                              "\u0634\u0639\u0631\u0628\u064a\u061f"),
              "egbpdaj6bu4bxfgehfvwxn");
    EXPECT_EQ(punycode_encode("\u4ed6\u4eec\u4e3a\u4ec0\u4e48\u4e0d\u8bf4\u4e2d\u6587"),
              "ihqwcrb4cv8a8dqg056pqjye");
    // Basic code points keep their case and come first, then '-' (§6.3).
    EXPECT_EQ(punycode_encode("3\u5e74B\u7d44\u91d1\u516b\u5148\u751f"), "3B-ww4c5e180e575a65lsy2b");
    EXPECT_EQ(punycode_encode("b\u00fccher"), "bcher-kva");
    EXPECT_EQ(punycode_encode("m\u00fcnchen"), "mnchen-3ya");
    EXPECT_EQ(punycode_encode("abc"), "abc-");
    EXPECT_EQ(punycode_encode(""), "");
}

TEST(Punycode, RefusesInvalidUtf8) {
    EXPECT_FALSE(punycode_encode("\xc3"));          // truncated sequence
    EXPECT_FALSE(punycode_encode("\xc0\xaf"));      // overlong '/'
    EXPECT_FALSE(punycode_encode("\xed\xa0\x80"));  // UTF-16 surrogate
    EXPECT_FALSE(punycode_encode("\xf4\x90\x80\x80"));  // above U+10FFFF
    EXPECT_FALSE(punycode_encode("a\xffz"));
}

TEST(Idna, EncodesNonAsciiLabelsOnly) {
    EXPECT_EQ(idna_to_ascii("b\u00fccher.example"), "xn--bcher-kva.example");
    // Lower-cased before encoding (ASCII, Latin-1, Cyrillic), every label.
    EXPECT_EQ(idna_to_ascii("B\u00dcCHER.Example"), "xn--bcher-kva.example");
    EXPECT_EQ(idna_to_ascii("\u041f\u0420\u0418\u041c\u0415\u0420.\u0438\u0441\u043f\u044b\u0442"
                            "\u0430\u043d\u0438\u0435"),
              "xn--e1afmkfd.xn--80akhbyknj4f");
    // The ideographic full stop separates labels like '.'.
    EXPECT_EQ(idna_to_ascii("m\u00fcnchen\u3002de"), "xn--mnchen-3ya.de");
    EXPECT_EQ(idna_to_ascii("plain.example"), "plain.example");
}

TEST(Idna, RefusesEmptyAndOverlongLabels) {
    EXPECT_FALSE(idna_to_ascii("b\u00fccher..example"));
    EXPECT_FALSE(idna_to_ascii(""));
    EXPECT_FALSE(idna_to_ascii("\xff.example"));
    std::string long_label = "\u00fc";
    for (int i = 0; i < 60; ++i) {
        long_label += 'a';
    }
    EXPECT_FALSE(idna_to_ascii(long_label + ".example"));  // 4 + 60 + 3 octets > 63
}

TEST(MailAddress, SmtpAddressDowngradesOnlyTheDomain) {  // M-13, MailAddress.GetSmtpAddress
    const MailAddress idn("ben@b\u00fccher.example");
    EXPECT_EQ(idn.smtp_address(false), "<ben@xn--bcher-kva.example>");
    EXPECT_EQ(idn.smtp_address(true), "<ben@b\u00fccher.example>");
    EXPECT_EQ(idn.smtp_address(), "<ben@b\u00fccher.example>");  // unchanged: no mapping
    const MailAddress unicode_user("j\u00f6se@x.test");
    EXPECT_FALSE(unicode_user.smtp_address(false));
    EXPECT_EQ(unicode_user.smtp_address(true), "<j\u00f6se@x.test>");
    EXPECT_EQ(MailAddress("ben@x.test").smtp_address(false), "<ben@x.test>");
}

TEST(MailAddress, EncodedFollowsAllowUnicode) {  // M-30, MailAddress.Encode(allowUnicode)
    const MailAddress address("ben@b\u00fccher.example", "Ben \u00d8");
    EXPECT_EQ(address.encoded(true), "\"Ben \u00d8\" <ben@b\u00fccher.example>");
    EXPECT_EQ(address.encoded(false), "=?utf-8?Q?Ben_=C3=98?= <ben@xn--bcher-kva.example>");
    EXPECT_EQ(MailAddress("ann@x.test").encoded(false), "ann@x.test");
    EXPECT_EQ(MailAddress("ann@b\u00fccher.example").encoded(false), "ann@xn--bcher-kva.example");
}

// ---- DSN (M-23) ------------------------------------------------------------------------------

TEST(MailMessage, DeliveryNotificationOptionsAreCheckedAndWritten) {
    MailMessage message;
    EXPECT_EQ(message.DeliveryNotificationOptions(), DeliveryNotificationOptions::None);
    const auto all = DeliveryNotificationOptions::OnSuccess | DeliveryNotificationOptions::OnFailure |
                     DeliveryNotificationOptions::Delay;
    message.DeliveryNotificationOptions(all);
    EXPECT_EQ(message.DeliveryNotificationOptions(), all);
    message.DeliveryNotificationOptions(DeliveryNotificationOptions::Never);
    EXPECT_THROW(message.DeliveryNotificationOptions(DeliveryNotificationOptions::Never |
                                                     DeliveryNotificationOptions::OnSuccess),
                 ArgumentOutOfRangeException);
    EXPECT_THROW(message.DeliveryNotificationOptions(static_cast<DeliveryNotificationOptions>(8)),
                 ArgumentOutOfRangeException);
    EXPECT_EQ(message.DeliveryNotificationOptions(), DeliveryNotificationOptions::Never);

    EXPECT_EQ(delivery_notify_parameter(DeliveryNotificationOptions::None), "");
    EXPECT_EQ(delivery_notify_parameter(DeliveryNotificationOptions::Never), "NOTIFY=NEVER");
    EXPECT_EQ(delivery_notify_parameter(all), "NOTIFY=SUCCESS,FAILURE,DELAY");
    EXPECT_EQ(delivery_notify_parameter(DeliveryNotificationOptions::Delay |
                                        DeliveryNotificationOptions::OnFailure),
              "NOTIFY=FAILURE,DELAY");
    EXPECT_EQ(delivery_notify_parameter(DeliveryNotificationOptions::OnSuccess), "NOTIFY=SUCCESS");
}

}  // namespace
}  // namespace faultline::model
