// Goal: SmtpClient<T>.SendAsync behaves as clause list C says under both profiles: the M-1 check
// order and M-2 wrapping, M-3, exactly one SendCompleted (M-5, M-7), the envelope and content on
// the wire (M-13, M-32), recipient failures (M-15/16/17), HELO fallback (M-19), server close
// (M-25), a drop after the final dot (M-26, unknown), cancel (M-9), timeout (M-8), reuse (M-12);
// AUTH with Credentials (M-21), EnableSsl refused up front (M-20 not yet), SMTPUTF8 and DSN
// parameters (M-23) with raw UTF-8 headers (M-30), IDNA domains and ASCII local parts (M-13);
// and SendMailAsync's task (M-10): cancelled tokens, mid-flight cancel, faults, no SendCompleted.
// Method: one typed suite for sim::World ("Sim") and real::RealTransport ("Real"); each body runs
// on a logical thread against SmtpServer<T> with a script, and waits for SendCompleted through an
// event with a budget. Nothing sleeps on real; tests that must wait out silence run on sim only.
#include "transport_env.h"
#include "faultline/model/smtp_client.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "faultline/model/cancellation.h"
#include "faultline/model/mime.h"
#include "faultline/model/smtp_server.h"
#include "faultline/real/transport.h"
#include "faultline/sim/world.h"

namespace faultline {
namespace {

using model::AsyncCompletedEventArgs;
using model::DeliveryOutcome;
using model::Duration;
using model::Endpoint;
using model::MailAddress;
using model::DeliveryNotificationOptions;
using model::MailMessage;
using model::NetworkCredential;
using model::Profile;
using model::SmtpAction;
using model::SmtpClient;
using model::SmtpDeliveryFormat;
using model::SmtpException;
using model::SmtpScript;
using model::SmtpServer;
using model::SmtpStatusCode;
using model::SmtpStep;
using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kDate = "Sat, 21 Nov 2026 10:00:00 +0000";

SmtpScript default_script() {
    SmtpScript script;
    return script;
}

const std::vector<Profile>& profiles() {
    static const std::vector<Profile> all = {model::kDocumented, model::kDotnetUnix};
    return all;
}

/// Every SendCompleted, in order; the i-th completion signals done[i].
template <typename T>
struct Completions {
    typename T::Mutex mutex;
    std::array<typename T::Event, 4> done{};
    std::vector<AsyncCompletedEventArgs> seen;

    /// Waits for the `index`-th completion (0-based); false if the budget ran out.
    bool wait(T& transport, std::size_t index, Duration budget = seconds(20)) {
        std::unique_lock lock(mutex);
        return transport.wait(done.at(index), lock, budget);
    }
    std::size_t count() {
        std::unique_lock lock(mutex);
        return seen.size();
    }
    AsyncCompletedEventArgs at(std::size_t index) {
        std::unique_lock lock(mutex);
        return seen.at(index);
    }
};

template <typename T>
void record_completions(T& transport,
                        SmtpClient<T>& client,
                        const std::shared_ptr<Completions<T>>& completions) {
    client.add_SendCompleted(
        [&transport, completions](SmtpClient<T>* /*sender*/, const AsyncCompletedEventArgs& args) {
            std::unique_lock lock(completions->mutex);
            completions->seen.push_back(args);
            if (completions->seen.size() <= completions->done.size()) {
                transport.signal(completions->done.at(completions->seen.size() - 1));
            }
        });
}

std::shared_ptr<const MailMessage> simple_message(std::vector<std::string> to = {"ben@x.test"}) {
    auto message = std::make_shared<MailMessage>();
    message->From(MailAddress("jane@x.test"));
    for (const auto& address : to) {
        message->To().emplace_back(address);
    }
    message->Subject("hi");
    message->Body(".starts with a dot\r\nbody");
    return message;
}

/// The exception in `error`, rethrown and caught as E; nullptr if it is not an E.
template <typename E>
std::shared_ptr<E> as(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const E& e) {
        return std::make_shared<E>(e);
    } catch (...) {
        return nullptr;
    }
}

/// The .NET type name of the exception in `error`; "" if it is not a DotnetException.
std::string type_name_of(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const model::DotnetException& e) {
        return std::string(e.type_name());
    } catch (...) {
        return "";
    }
}

template <typename Env>
class SmtpClientTest : public testing::Test {
public:
    using T = typename Env::T;
    Env env;

    /// Runs `body(server, client, completions)` against a started server with `script`.
    void with_client(
        const Profile& profile,
        SmtpScript script,
        const std::function<void(SmtpServer<T>&, SmtpClient<T>&, Completions<T>&)>& body) {
        env.run([&] {
            SmtpServer<T> server(env.transport, std::move(script));
            auto endpoint = server.start(Endpoint::loopback(0));
            ASSERT_TRUE(endpoint);
            auto completions = std::make_shared<Completions<T>>();
            {
                SmtpClient<T> client(env.transport, profile, "127.0.0.1", endpoint.value().port);
                client.DateHeader(kDate);
                record_completions(env.transport, client, completions);
                body(server, client, *completions);
            }
            server.stop();
        });
    }

    /// Re-checks every millisecond of transport time (virtual on sim) until the server has
    /// received `count` commands in all; false if `budget` ran out first.
    bool wait_for_commands(SmtpServer<T>& server, std::size_t count, Duration budget) {
        typename T::Mutex mutex;
        typename T::Event never;
        for (Duration waited{}; waited < budget; waited += milliseconds(1)) {
            std::size_t seen = 0;
            for (const auto& session : server.sessions()) {
                seen += session.commands.size();
            }
            if (seen >= count) {
                return true;
            }
            std::unique_lock lock(mutex);
            static_cast<void>(this->env.transport.wait(never, lock, milliseconds(1)));
        }
        return false;
    }

    void wait_silence(Duration budget) {
        typename T::Mutex mutex;
        typename T::Event never;
        std::unique_lock lock(mutex);
        EXPECT_FALSE(env.transport.wait(never, lock, budget));
    }
};

TYPED_TEST_SUITE(SmtpClientTest, test::Environments, test::EnvNames);

// M-5, M-13, M-22, M-27/28: envelope and dot-unstuffed content exactly as written.
TYPED_TEST(SmtpClientTest, SuccessfulSendRecordsEnvelopeAndContent) {
    for (const Profile& profile : profiles()) {
        auto message = simple_message({"ben@x.test", "ann@x.test"});
        this->with_client(profile, default_script(), [&](auto& server, auto& client, auto& done) {
            client.SendAsync(message, std::any(std::string("token")));
            ASSERT_TRUE(done.wait(this->env.transport, 0));
            const auto args = done.at(0);
            EXPECT_FALSE(args.Cancelled);
            EXPECT_EQ(args.Error, nullptr);
            EXPECT_EQ(std::any_cast<std::string>(args.UserState), "token");
            EXPECT_EQ(args.delivery, DeliveryOutcome::delivered);
            EXPECT_FALSE(client.send_in_progress());
            const auto sessions = server.sessions();
            ASSERT_EQ(sessions.size(), 1U);
            EXPECT_EQ(sessions[0].commands,
                      (std::vector<std::string>{"EHLO client.faultline.test",
                                                "MAIL FROM:<jane@x.test>",
                                                "RCPT TO:<ben@x.test>",
                                                "RCPT TO:<ann@x.test>",
                                                "DATA"}));
            ASSERT_EQ(sessions[0].transactions.size(), 1U);
            const auto& transaction = sessions[0].transactions[0];
            const std::string written =
                model::write_message(*message, model::MimeOptions{.date = kDate});
            EXPECT_EQ(transaction.data_raw,
                      model::dot_stuff(written) + std::string(model::data_terminator()));
            EXPECT_EQ(transaction.content + ".\r\n", written + "\r\n.\r\n");
            EXPECT_EQ(transaction.final_reply_code, 250);
            EXPECT_FALSE(sessions[0].closed);  // M-12: kept for reuse
        });
    }
}

// M-32: the DOC-SendAsync example message.
TYPED_TEST(SmtpClientTest, SeedExampleMessageIsDelivered) {
    const std::string arrows = "\u2190\u2191\u2192\u2193";
    auto message = std::make_shared<MailMessage>(
        MailAddress("jane@contoso.com", "Jane \u00d8 Clayton", model::TextEncoding::utf8),
        MailAddress("ben@contoso.com"));
    message->Body("This is a test e-mail message sent by an application. \n" + arrows);
    message->BodyEncoding(model::TextEncoding::utf8);
    message->Subject("test message 1" + arrows);
    message->SubjectEncoding(model::TextEncoding::utf8);
    this->with_client(
        model::kDotnetUnix, default_script(), [&](auto& server, auto& client, auto& done) {
            client.SendAsync(message, std::any(std::string("test message1")));
            ASSERT_TRUE(done.wait(this->env.transport, 0));
            EXPECT_EQ(done.at(0).Error, nullptr);
            EXPECT_EQ(std::any_cast<std::string>(done.at(0).UserState), "test message1");
            const auto transaction = server.sessions().at(0).transactions.at(0);
            EXPECT_EQ(transaction.mail_from, "jane@contoso.com");
            EXPECT_EQ(transaction.recipients,
                      (std::vector<model::SmtpRecipientRecord>{{"ben@contoso.com", 250}}));
            EXPECT_NE(transaction.content.find("From: =?utf-8?Q?"), std::string::npos);
            EXPECT_NE(transaction.content.find("Subject: =?utf-8?B?"), std::string::npos);
            EXPECT_NE(transaction.content.find("Content-Transfer-Encoding: base64"),
                      std::string::npos);
        });
}

// M-1 order, M-2 shapes per profile; no SendCompleted for a synchronous failure.
TYPED_TEST(SmtpClientTest, ValidationOrderAndWrappingFollowTheProfile) {
    for (const Profile& profile : profiles()) {
        const bool wraps = profile.smtp_send_async_wraps_validation_errors;
        this->env.run([&] {
            using TransportType = typename TypeParam::T;
            auto completions = std::make_shared<Completions<TransportType>>();
            SmtpClient<TransportType> client(this->env.transport, profile);
            record_completions(this->env.transport, client, completions);
            // Expects SendAsync(message) to throw type `name` (wrapped under dotnet-unix).
            auto expect = [&](std::shared_ptr<const MailMessage> message, std::string_view name) {
                try {
                    client.SendAsync(std::move(message), std::any());
                    ADD_FAILURE() << "no exception, expected " << name;
                } catch (const SmtpException& e) {
                    ASSERT_TRUE(wraps) << e.what();
                    EXPECT_EQ(e.StatusCode(), SmtpStatusCode::GeneralFailure);
                    EXPECT_STREQ(e.what(), "Failure sending mail.");
                    EXPECT_EQ(type_name_of(e.InnerException()), name);
                } catch (const model::DotnetException& e) {
                    EXPECT_FALSE(wraps);
                    EXPECT_EQ(e.type_name(), name);
                }
                EXPECT_FALSE(client.send_in_progress());
            };
            auto no_from = std::make_shared<MailMessage>();
            no_from->To().emplace_back("ben@x.test");
            auto no_recipients = std::make_shared<MailMessage>();
            no_recipients->From(MailAddress("jane@x.test"));
            auto none = std::make_shared<MailMessage>();
            // Host null: the null message is found first, then the host.
            expect(nullptr, "ArgumentNullException");
            expect(none, "InvalidOperationException");
            client.Host("   ");  // trimmed to "" (M-4): still fails at send time
            expect(none, "InvalidOperationException");
            client.Host("127.0.0.1");
            client.Port(70000);  // accepted by the setter, refused at send time (M-4)
            expect(none, "InvalidOperationException");
            client.Port(25);
            expect(none, wraps ? "InvalidOperationException" : "ArgumentNullException");
            expect(no_from, wraps ? "InvalidOperationException" : "ArgumentNullException");
            expect(no_recipients,
                   wraps ? "InvalidOperationException" : "ArgumentOutOfRangeException");
            EXPECT_THROW(client.Port(0), model::ArgumentOutOfRangeException);
            // Send never wraps (M-2).
            EXPECT_THROW(client.Send(*no_from), model::DotnetException);
            try {
                client.Send(*no_from);
            } catch (const SmtpException&) {
                ADD_FAILURE() << "Send wrapped a validation failure";
            } catch (const model::DotnetException&) {
            }
            client.Dispose();
            // Disposed comes first, before the null message (M-1).
            EXPECT_THROW(client.SendAsync(nullptr, std::any()), model::ObjectDisposedException);
            EXPECT_THROW(client.SendAsyncCancel(), model::ObjectDisposedException);
            EXPECT_EQ(completions->count(), 0U);
        });
    }
}

// M-3: a second SendAsync during a send is a bare InvalidOperationException (even for a null
// message: in-progress is checked first, M-1), and the running send goes on; M-9 then cancels.
TYPED_TEST(SmtpClientTest, SendInProgressThrowsAndCancelCompletesOnce) {
    SmtpScript script;
    script.steps["MAIL"] = SmtpStep{.action = SmtpAction::stall};
    for (const Profile& profile : profiles()) {
        this->with_client(profile, script, [&](auto& server, auto& client, auto& done) {
            client.SendAsync(simple_message(), std::any(1));
            EXPECT_THROW(client.SendAsync(nullptr, std::any(2)), model::InvalidOperationException);
            try {
                client.SendAsync(simple_message(), std::any(3));
            } catch (const SmtpException&) {
                ADD_FAILURE() << "M-3 must not wrap";
            } catch (const model::InvalidOperationException&) {
            }
            EXPECT_THROW(client.Port(26), model::InvalidOperationException);  // M-4
            if (TypeParam::is_sim) {
                // The stalled send runs on, untouched, for a virtual minute.
                EXPECT_FALSE(done.wait(this->env.transport, 0, seconds(60)));
                EXPECT_TRUE(client.send_in_progress());
                EXPECT_EQ(server.sessions().at(0).commands.back(), "MAIL FROM:<jane@x.test>");
            }
            client.SendAsyncCancel();
            client.SendAsyncCancel();  // repeated calls are harmless
            ASSERT_TRUE(done.wait(this->env.transport, 0));
            const auto args = done.at(0);
            EXPECT_TRUE(args.Cancelled);
            EXPECT_EQ(args.Error, nullptr);
            EXPECT_EQ(std::any_cast<int>(args.UserState), 1);
            EXPECT_FALSE(client.send_in_progress());
            client.SendAsyncCancel();  // idle: no-op
            EXPECT_EQ(done.count(), 1U);
        });
    }
}

// M-5, M-7, M-12: several handlers; a handler starts the next send (flag already clear); both
// sends share one connection; Dispose sends QUIT.
TYPED_TEST(SmtpClientTest, HandlerStartsNextSendOnTheSameConnection) {
    using TransportType = typename TypeParam::T;
    this->with_client(
        model::kDotnetUnix, default_script(), [&](auto& server, auto& client, auto& done) {
            client.add_SendCompleted(
                [&](SmtpClient<TransportType>* sender, const AsyncCompletedEventArgs& args) {
                    if (std::any_cast<std::string>(args.UserState) == "first") {
                        EXPECT_EQ(sender, &client);
                        EXPECT_FALSE(sender->send_in_progress());  // M-7
                        sender->SendAsync(simple_message({"ann@x.test"}),
                                          std::any(std::string("second")));
                    }
                });
            client.SendAsync(simple_message(), std::any(std::string("first")));
            ASSERT_TRUE(done.wait(this->env.transport, 1));
            EXPECT_EQ(done.count(), 2U);
            EXPECT_EQ(std::any_cast<std::string>(done.at(0).UserState), "first");
            EXPECT_EQ(std::any_cast<std::string>(done.at(1).UserState), "second");
            EXPECT_EQ(done.at(0).Error, nullptr);
            EXPECT_EQ(done.at(1).Error, nullptr);
            auto sessions = server.sessions();
            ASSERT_EQ(sessions.size(), 1U);
            ASSERT_EQ(sessions[0].transactions.size(), 2U);
            EXPECT_EQ(sessions[0].transactions[1].recipients.at(0).address, "ann@x.test");
            client.Dispose();
            if (TypeParam::is_sim) {
                this->wait_silence(seconds(1));
                EXPECT_EQ(server.sessions().at(0).commands.back(), "QUIT");  // M-11
            }
        });
}

// M-16: one of two recipients refused → DATA sent, SmtpFailedRecipientException, kept.
TYPED_TEST(SmtpClientTest, OneRecipientRefusedStillDelivers) {
    SmtpScript script;
    script.recipient_steps["bad@x.test"] = SmtpStep{.reply = {"550 5.1.1 unknown"}};
    this->with_client(model::kDotnetUnix, script, [&](auto& server, auto& client, auto& done) {
        client.SendAsync(simple_message({"bad@x.test", "ben@x.test"}), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 0));
        const auto args = done.at(0);
        EXPECT_EQ(args.delivery, DeliveryOutcome::delivered);
        EXPECT_EQ(as<model::SmtpFailedRecipientsException>(args.Error), nullptr);
        auto error = as<model::SmtpFailedRecipientException>(args.Error);
        ASSERT_NE(error, nullptr);
        EXPECT_EQ(error->StatusCode(), SmtpStatusCode::MailboxUnavailable);
        EXPECT_EQ(error->FailedRecipient(), "<bad@x.test>");
        const auto session = server.sessions().at(0);
        EXPECT_EQ(session.transactions.at(0).final_reply_code, 250);
        EXPECT_FALSE(session.closed);
    });
}

// M-16: two of three refused → SmtpFailedRecipientsException in RCPT order.
TYPED_TEST(SmtpClientTest, ManyRecipientsRefusedAggregateInOrder) {
    SmtpScript script;
    script.recipient_steps["a@x.test"] = SmtpStep{.reply = {"452 4.2.2 full"}};
    script.recipient_steps["c@x.test"] = SmtpStep{.reply = {"553 5.1.3 bad"}};
    this->with_client(model::kDocumented, script, [&](auto& server, auto& client, auto& done) {
        client.SendAsync(simple_message({"a@x.test", "b@x.test", "c@x.test"}), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 0));
        auto error = as<model::SmtpFailedRecipientsException>(done.at(0).Error);
        ASSERT_NE(error, nullptr);
        EXPECT_EQ(error->StatusCode(), SmtpStatusCode::GeneralFailure);
        EXPECT_STREQ(error->what(), "Unable to send to a recipient.");
        ASSERT_EQ(error->InnerExceptions().size(), 2U);
        EXPECT_EQ(error->InnerExceptions()[0].FailedRecipient(), "<a@x.test>");
        EXPECT_EQ(error->InnerExceptions()[0].StatusCode(), SmtpStatusCode::InsufficientStorage);
        EXPECT_EQ(error->InnerExceptions()[1].FailedRecipient(), "<c@x.test>");
        EXPECT_EQ(error->FailedRecipient(), "<a@x.test>");
        EXPECT_EQ(server.sessions().at(0).transactions.at(0).final_reply_code, 250);
    });
}

// M-17: all refused → no DATA, connection aborted; single recipient → the single exception.
TYPED_TEST(SmtpClientTest, AllRecipientsRefusedSendsNoData) {
    SmtpScript script;
    script.steps["RCPT"] = SmtpStep{.reply = {"550 5.1.1 no"}};
    this->with_client(model::kDotnetUnix, script, [&](auto& server, auto& client, auto& done) {
        client.SendAsync(simple_message({"a@x.test", "b@x.test"}), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 0));
        auto error = as<model::SmtpFailedRecipientsException>(done.at(0).Error);
        ASSERT_NE(error, nullptr);
        EXPECT_STREQ(error->what(), "Unable to send to all recipients.");
        EXPECT_EQ(done.at(0).delivery, DeliveryOutcome::not_delivered);
        client.SendAsync(simple_message({"a@x.test"}), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 1));
        EXPECT_EQ(as<model::SmtpFailedRecipientsException>(done.at(1).Error), nullptr);
        EXPECT_NE(as<model::SmtpFailedRecipientException>(done.at(1).Error), nullptr);
        const auto sessions = server.sessions();
        ASSERT_EQ(sessions.size(), 2U);  // the failure aborted the first connection
        for (const auto& session : sessions) {
            for (const auto& command : session.commands) {
                EXPECT_NE(command, "DATA");
            }
        }
    });
}

// M-15: a RCPT code outside the per-recipient set aborts the whole send with that code.
TYPED_TEST(SmtpClientTest, OtherRecipientCodeIsFatal) {
    SmtpScript script;
    script.recipient_steps["b@x.test"] = SmtpStep{.reply = {"554 5.7.1 relay denied"}};
    this->with_client(model::kDotnetUnix, script, [&](auto& server, auto& client, auto& done) {
        client.SendAsync(simple_message({"a@x.test", "b@x.test"}), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 0));
        auto error = as<SmtpException>(done.at(0).Error);
        ASSERT_NE(error, nullptr);
        EXPECT_EQ(as<model::SmtpFailedRecipientException>(done.at(0).Error), nullptr);
        EXPECT_EQ(error->StatusCode(), SmtpStatusCode::TransactionFailed);
        EXPECT_EQ(server.sessions().at(0).commands.back(), "RCPT TO:<b@x.test>");
    });
}

// M-19: EHLO 502 → HELO, and the send succeeds.
TYPED_TEST(SmtpClientTest, EhloRefusedFallsBackToHelo) {
    SmtpScript script;
    script.steps["EHLO"] = SmtpStep{.reply = {"502 5.5.1 not implemented"}};
    this->with_client(model::kDotnetUnix, script, [&](auto& server, auto& client, auto& done) {
        client.SendAsync(simple_message(), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 0));
        EXPECT_EQ(done.at(0).Error, nullptr);
        const auto commands = server.sessions().at(0).commands;
        ASSERT_GE(commands.size(), 3U);
        EXPECT_EQ(commands[0], "EHLO client.faultline.test");
        EXPECT_EQ(commands[1], "HELO client.faultline.test");
        EXPECT_EQ(commands[2], "MAIL FROM:<jane@x.test>");
    });
}

// M-25: the server closes instead of answering MAIL → wrapped IOException, GeneralFailure.
TYPED_TEST(SmtpClientTest, ServerCloseIsWrappedIOException) {
    SmtpScript script;
    script.steps["MAIL"] = SmtpStep{.action = SmtpAction::close_without_reply};
    this->with_client(model::kDocumented, script, [&](auto&, auto& client, auto& done) {
        client.SendAsync(simple_message(), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 0));
        auto error = as<SmtpException>(done.at(0).Error);
        ASSERT_NE(error, nullptr);
        EXPECT_EQ(error->StatusCode(), SmtpStatusCode::GeneralFailure);
        EXPECT_NE(as<model::IOException>(error->InnerException()), nullptr);
        EXPECT_FALSE(done.at(0).Cancelled);
        EXPECT_EQ(done.at(0).delivery, DeliveryOutcome::not_delivered);
    });
}

// M-26, W-10: the server has the whole message but drops before its reply → failure, unknown.
TYPED_TEST(SmtpClientTest, DropAfterTheFinalDotIsFailureWithUnknownDelivery) {
    SmtpScript script;
    script.steps["."] = SmtpStep{.action = SmtpAction::close_without_reply};
    this->with_client(model::kDotnetUnix, script, [&](auto& server, auto& client, auto& done) {
        client.SendAsync(simple_message(), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 0));
        auto error = as<SmtpException>(done.at(0).Error);
        ASSERT_NE(error, nullptr);
        EXPECT_EQ(error->StatusCode(), SmtpStatusCode::GeneralFailure);
        EXPECT_EQ(done.at(0).delivery, DeliveryOutcome::unknown);
        EXPECT_TRUE(server.sessions().at(0).transactions.at(0).data_complete);
    });
}

// M-26: a 554 after the dot is SmtpException(554), not delivered.
TYPED_TEST(SmtpClientTest, RefusalAfterTheDotIsNotDelivered) {
    SmtpScript script;
    script.steps["."] = SmtpStep{.reply = {"554 5.7.1 rejected"}};
    this->with_client(model::kDotnetUnix, script, [&](auto&, auto& client, auto& done) {
        client.SendAsync(simple_message(), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 0));
        auto error = as<SmtpException>(done.at(0).Error);
        ASSERT_NE(error, nullptr);
        EXPECT_EQ(error->StatusCode(), SmtpStatusCode::TransactionFailed);
        EXPECT_EQ(done.at(0).delivery, DeliveryOutcome::not_delivered);
    });
}

// M-8: with a stalled server, dotnet-unix times out after Timeout (virtual time); documented
// SendAsync has no timer and waits until cancelled.
TYPED_TEST(SmtpClientTest, TimeoutDiffersByProfile) {
    if (!TypeParam::is_sim) {
        GTEST_SKIP() << "waiting out a stall needs virtual time";
    }
    SmtpScript script;
    script.steps["RCPT"] = SmtpStep{.action = SmtpAction::stall};
    for (const Profile& profile : profiles()) {
        this->with_client(profile, script, [&](auto&, auto& client, auto& done) {
            client.Timeout(5000);
            const auto start = this->env.transport.now();
            client.SendAsync(simple_message(), std::any());
            const bool completed = done.wait(this->env.transport, 0, seconds(600));
            if (profile.smtp_send_async_timeout) {
                ASSERT_TRUE(completed);
                EXPECT_GE(this->env.transport.now() - start, milliseconds(5000));
                EXPECT_LT(this->env.transport.now() - start, milliseconds(6000));
                auto error = as<SmtpException>(done.at(0).Error);
                ASSERT_NE(error, nullptr);
                EXPECT_STREQ(error->what(), "The operation has timed out.");
                EXPECT_FALSE(done.at(0).Cancelled);
            } else {
                EXPECT_FALSE(completed);
                client.SendAsyncCancel();
                ASSERT_TRUE(done.wait(this->env.transport, 0));
                EXPECT_TRUE(done.at(0).Cancelled);
            }
            EXPECT_EQ(done.count(), 1U);
        });
    }
}

// Send: synchronous success, and a synchronous failure is thrown as the event would report it.
TYPED_TEST(SmtpClientTest, SynchronousSendDeliversAndThrows) {
    SmtpScript script;
    script.recipient_steps["bad@x.test"] = SmtpStep{.reply = {"550 5.1.1 unknown"}};
    this->with_client(model::kDotnetUnix, script, [&](auto& server, auto& client, auto& done) {
        EXPECT_EQ(client.Send(*simple_message()), DeliveryOutcome::delivered);
        EXPECT_THROW(client.Send(*simple_message({"bad@x.test"})),
                     model::SmtpFailedRecipientException);
        EXPECT_EQ(done.count(), 0U);
        EXPECT_EQ(server.sessions().size(), 1U);
    });
}

// M-24: a code-only reply line is malformed for the dotnet parser (wrapped FormatException) and
// allowed by RFC 5321 §4.2 (documented).
TYPED_TEST(SmtpClientTest, CodeOnlyReplyFollowsTheProfileParser) {
    SmtpScript script;
    script.steps["MAIL"] = SmtpStep{.raw_reply = "250\r\n"};
    for (const Profile& profile : profiles()) {
        this->with_client(profile, script, [&](auto&, auto& client, auto& done) {
            client.SendAsync(simple_message(), std::any());
            ASSERT_TRUE(done.wait(this->env.transport, 0));
            if (profile.smtp_reply_strict_dotnet) {
                auto error = as<SmtpException>(done.at(0).Error);
                ASSERT_NE(error, nullptr);
                EXPECT_EQ(error->StatusCode(), SmtpStatusCode::GeneralFailure);
                EXPECT_EQ(type_name_of(error->InnerException()), "FormatException");
            } else {
                EXPECT_EQ(done.at(0).Error, nullptr);
            }
        });
    }
}

// M-11: Dispose during a send cancels it; the completion still comes, once.
TYPED_TEST(SmtpClientTest, DisposeDuringSendCancels) {
    SmtpScript script;
    script.steps["DATA"] = SmtpStep{.action = SmtpAction::stall};
    this->with_client(model::kDotnetUnix, script, [&](auto&, auto& client, auto& done) {
        client.SendAsync(simple_message(), std::any());
        client.Dispose();
        ASSERT_TRUE(done.wait(this->env.transport, 0));
        EXPECT_TRUE(done.at(0).Cancelled);
        EXPECT_EQ(done.at(0).Error, nullptr);
        EXPECT_THROW(client.SendAsync(simple_message(), std::any()),
                     model::ObjectDisposedException);
        EXPECT_EQ(done.count(), 1U);
    });
}

// M-25: nothing listening → SmtpException GeneralFailure through SendCompleted.
TYPED_TEST(SmtpClientTest, ConnectFailureCompletesWithSmtpException) {
    this->env.run([&] {
        using TransportType = typename TypeParam::T;
        auto completions = std::make_shared<Completions<TransportType>>();
        // Take an ephemeral port and release it, so nothing listens there.
        std::uint16_t port = 0;
        {
            SmtpServer<TransportType> server(this->env.transport, default_script());
            auto endpoint = server.start(Endpoint::loopback(0));
            ASSERT_TRUE(endpoint);
            port = endpoint.value().port;
        }
        SmtpClient<TransportType> client(
            this->env.transport, model::kDocumented, "localhost", port);
        record_completions(this->env.transport, client, completions);
        client.SendAsync(simple_message(), std::any());
        ASSERT_TRUE(completions->wait(this->env.transport, 0));
        auto error = as<SmtpException>(completions->at(0).Error);
        ASSERT_NE(error, nullptr);
        EXPECT_EQ(error->StatusCode(), SmtpStatusCode::GeneralFailure);
        EXPECT_FALSE(completions->at(0).Cancelled);
    });
}

// ---- M-21 AUTH ---------------------------------------------------------------------------------

/// "EHLO …", then `middle`, then the envelope of simple_message() and DATA.
std::vector<std::string> commands_around(const std::vector<std::string>& middle) {
    std::vector<std::string> commands = {"EHLO client.faultline.test"};
    commands.insert(commands.end(), middle.begin(), middle.end());
    commands.insert(commands.end(), {"MAIL FROM:<jane@x.test>", "RCPT TO:<ben@x.test>", "DATA"});
    return commands;
}

SmtpScript auth_script() {
    SmtpScript script;
    script.advertise_auth = true;
    script.require_auth = true;
    script.auth_users = {{"alice", "wonderland"}};
    return script;
}

// M-21: with Credentials, AUTH LOGIN after EHLO (user, then password, base64), then the mail;
// LOGIN succeeding means PLAIN is never tried, under either profile.
TYPED_TEST(SmtpClientTest, M21_CredentialsAuthenticateWithLogin) {
    for (const Profile& profile : profiles()) {
        this->with_client(profile, auth_script(), [&](auto& server, auto& client, auto& done) {
            EXPECT_FALSE(client.Credentials().has_value());
            client.Credentials(NetworkCredential{.UserName = "alice", .Password = "wonderland"});
            ASSERT_TRUE(client.Credentials().has_value());
            EXPECT_EQ(client.Credentials()->UserName, "alice");
            client.SendAsync(simple_message(), std::any());
            ASSERT_TRUE(done.wait(this->env.transport, 0));
            EXPECT_EQ(done.at(0).Error, nullptr) << profile.name;
            const auto session = server.sessions().at(0);
            EXPECT_EQ(session.commands,
                      commands_around({"AUTH LOGIN", "YWxpY2U=", "d29uZGVybGFuZA=="}))
                << profile.name;
            EXPECT_EQ(session.authenticated_user, "alice");
        });
    }
}

// M-21: no Credentials → no AUTH even where it is advertised; the server's 530 on MAIL is the
// error (SmtpException 530), not anything about AUTH.
TYPED_TEST(SmtpClientTest, M21_NoCredentialsNoAuthAndMail530IsTheError) {
    this->with_client(model::kDotnetUnix, auth_script(), [&](auto& server, auto& client, auto& done) {
        client.SendAsync(simple_message(), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 0));
        auto error = as<SmtpException>(done.at(0).Error);
        ASSERT_NE(error, nullptr);
        EXPECT_EQ(error->StatusCode(), SmtpStatusCode::MustIssueStartTlsFirst);
        EXPECT_EQ(server.sessions().at(0).commands,
                  (std::vector<std::string>{"EHLO client.faultline.test",
                                            "MAIL FROM:<jane@x.test>"}));
    });
}

// M-21: wrong credentials → LOGIN refused (535), then PLAIN where the profile allows it
// (documented) or nothing (dotnet-unix: .NET has no PLAIN); either way the send carries on
// unauthenticated and MAIL's 530 is the error.
TYPED_TEST(SmtpClientTest, M21_RefusedLoginFallsToPlainPerProfileThenMail530) {
    for (const Profile& profile : profiles()) {
        this->with_client(profile, auth_script(), [&](auto& server, auto& client, auto& done) {
            client.Credentials(NetworkCredential{.UserName = "alice", .Password = "wrong"});
            client.SendAsync(simple_message(), std::any());
            ASSERT_TRUE(done.wait(this->env.transport, 0));
            auto error = as<SmtpException>(done.at(0).Error);
            ASSERT_NE(error, nullptr);
            EXPECT_EQ(error->StatusCode(), SmtpStatusCode::MustIssueStartTlsFirst);
            std::vector<std::string> expected = {
                "EHLO client.faultline.test", "AUTH LOGIN", "YWxpY2U=", "d3Jvbmc="};
            if (profile.smtp_auth_plain) {
                expected.emplace_back("AUTH PLAIN AGFsaWNlAHdyb25n");  // \0alice\0wrong
            }
            expected.emplace_back("MAIL FROM:<jane@x.test>");
            const auto session = server.sessions().at(0);
            EXPECT_EQ(session.commands, expected) << profile.name;
            EXPECT_TRUE(session.authenticated_user.empty());
        });
    }
}

// M-21: only PLAIN advertised → documented authenticates with PLAIN; dotnet-unix skips AUTH
// ("AUTH PLAIN" alone offers nothing .NET can use) and fails on MAIL's 530.
TYPED_TEST(SmtpClientTest, M21_PlainOnlyServerFollowsTheProfile) {
    SmtpScript script = auth_script();
    script.advertise_auth = false;
    script.capabilities = {"8BITMIME", "auth=plain"};  // keyword case and '=' as .NET parses them
    for (const Profile& profile : profiles()) {
        this->with_client(profile, script, [&](auto& server, auto& client, auto& done) {
            client.Credentials(NetworkCredential{.UserName = "alice", .Password = "wonderland"});
            client.SendAsync(simple_message(), std::any());
            ASSERT_TRUE(done.wait(this->env.transport, 0));
            const auto session = server.sessions().at(0);
            if (profile.smtp_auth_plain) {
                EXPECT_EQ(done.at(0).Error, nullptr);
                EXPECT_EQ(session.commands,
                          commands_around({"AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ="}));
                EXPECT_EQ(session.authenticated_user, "alice");
            } else {
                EXPECT_NE(as<SmtpException>(done.at(0).Error), nullptr);
                EXPECT_EQ(session.commands,
                          (std::vector<std::string>{"EHLO client.faultline.test",
                                                    "MAIL FROM:<jane@x.test>"}));
            }
        });
    }
}

// M-19, M-21: after the HELO fallback nothing is advertised, and LOGIN is assumed.
TYPED_TEST(SmtpClientTest, M21_AfterHeloFallbackLoginIsAssumed) {
    SmtpScript script = auth_script();
    script.steps["EHLO"] = SmtpStep{.reply = {"500 5.5.1 what?"}};
    this->with_client(model::kDocumented, script, [&](auto& server, auto& client, auto& done) {
        client.Credentials(NetworkCredential{.UserName = "alice", .Password = "wonderland"});
        client.SendAsync(simple_message(), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 0));
        EXPECT_EQ(done.at(0).Error, nullptr);
        auto expected = commands_around({"HELO client.faultline.test", "AUTH LOGIN", "YWxpY2U=",
                                         "d29uZGVybGFuZA=="});
        EXPECT_EQ(server.sessions().at(0).commands, expected);
    });
}

// M-4, M-12: Credentials, EnableSsl and DeliveryFormat setters throw during a send; changing
// Credentials or EnableSsl drops the cached connection (setting the same value does not).
TYPED_TEST(SmtpClientTest, M12_CredentialsAndEnableSslChangesDropTheConnection) {
    SmtpScript script;
    script.advertise_auth = true;
    this->with_client(model::kDotnetUnix, script, [&](auto& server, auto& client, auto& done) {
        client.SendAsync(simple_message(), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 0));
        client.Credentials(std::nullopt);  // unchanged: the connection stays
        client.EnableSsl(false);
        client.SendAsync(simple_message(), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 1));
        EXPECT_EQ(server.sessions().size(), 1U);
        client.Credentials(NetworkCredential{.UserName = "u", .Password = "p"});
        client.SendAsync(simple_message(), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 2));
        EXPECT_EQ(server.sessions().size(), 2U);
        EXPECT_EQ(server.sessions().at(1).authenticated_user, "u");
        client.EnableSsl(true);
        client.EnableSsl(false);
        client.SendAsync(simple_message(), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 3));
        const auto sessions = server.sessions();
        ASSERT_EQ(sessions.size(), 3U);
        EXPECT_TRUE(sessions[0].closed);
        EXPECT_TRUE(sessions[1].closed);
        for (std::size_t i = 0; i < 4; ++i) {
            EXPECT_EQ(done.at(i).Error, nullptr) << i;
        }
    });
    SmtpScript stalled;
    stalled.steps["MAIL"] = SmtpStep{.action = SmtpAction::stall};
    this->with_client(model::kDocumented, stalled, [&](auto&, auto& client, auto& done) {
        client.SendAsync(simple_message(), std::any());
        EXPECT_THROW(client.Credentials(NetworkCredential{}), model::InvalidOperationException);
        EXPECT_THROW(client.EnableSsl(true), model::InvalidOperationException);
        EXPECT_THROW(client.DeliveryFormat(SmtpDeliveryFormat::International),
                     model::InvalidOperationException);
        client.SendAsyncCancel();
        ASSERT_TRUE(done.wait(this->env.transport, 0));
        EXPECT_FALSE(client.Credentials().has_value());
        EXPECT_FALSE(client.EnableSsl());
        EXPECT_EQ(client.DeliveryFormat(), SmtpDeliveryFormat::SevenBit);
    });
}

// ---- EnableSsl (M-20 is a later issue) -----------------------------------------------------------

// EnableSsl = true: Send and SendAsync throw NotSupportedException after the M-1 checks (which
// keep their shapes, M-2), unwrapped under both profiles, no SendCompleted, no connection: the
// only session the server ever sees is the one made after EnableSsl is switched off again.
TYPED_TEST(SmtpClientTest, EnableSslIsNotSupportedAndNeverConnects) {
    for (const Profile& profile : profiles()) {
        this->with_client(profile, default_script(), [&](auto& server, auto& client, auto& done) {
            EXPECT_FALSE(client.EnableSsl());
            client.EnableSsl(true);
            EXPECT_TRUE(client.EnableSsl());
            // M-1 order: the null message is still found first.
            try {
                client.SendAsync(nullptr, std::any());
                ADD_FAILURE() << "no exception";
            } catch (const model::NotSupportedException&) {
                ADD_FAILURE() << "EnableSsl checked before the message";
            } catch (const model::DotnetException&) {
            }
            for (int sync = 0; sync < 2; ++sync) {
                try {
                    if (sync == 1) {
                        client.Send(*simple_message());
                    } else {
                        client.SendAsync(simple_message(), std::any());
                    }
                    ADD_FAILURE() << "no exception";
                } catch (const SmtpException& e) {
                    ADD_FAILURE() << "wrapped: " << e.what();
                } catch (const model::NotSupportedException& e) {
                    EXPECT_STREQ(e.what(), std::string(model::kEnableSslNotSupported).c_str());
                }
                EXPECT_FALSE(client.send_in_progress());
            }
            EXPECT_EQ(done.count(), 0U);
            client.EnableSsl(false);
            EXPECT_EQ(client.Send(*simple_message()), DeliveryOutcome::delivered);
            EXPECT_EQ(server.session_count(), 1U);
            EXPECT_EQ(server.sessions().at(0).commands.front(), "EHLO client.faultline.test");
            EXPECT_EQ(done.count(), 0U);
        });
    }
}

// ---- M-23 SMTPUTF8 and DSN, M-30 raw headers, M-13 addresses -----------------------------------

std::shared_ptr<MailMessage> international_message() {
    auto message = std::make_shared<MailMessage>();
    message->From(MailAddress("j\u00f6se@b\u00fccher.example", "J\u00f6se"));
    message->To().emplace_back("ben@x.test");
    message->To().emplace_back("ann@m\u00fcnchen.example");
    message->Subject("Gr\u00fc\u00dfe");
    message->Body("hi");
    return message;
}

SmtpScript eai_script(std::vector<std::string> capabilities) {
    SmtpScript script;
    script.capabilities = std::move(capabilities);
    return script;
}

// M-23, M-30: SMTPUTF8 advertised + International → MAIL gets " BODY=8BITMIME SMTPUTF8", the
// addresses and headers go raw; DSN advertised → each RCPT gets the NOTIFY subset.
TYPED_TEST(SmtpClientTest, M23_SmtpUtf8AndDsnParameters) {
    for (const Profile& profile : profiles()) {
        auto message = international_message();
        message->DeliveryNotificationOptions(DeliveryNotificationOptions::OnFailure |
                                             DeliveryNotificationOptions::Delay |
                                             DeliveryNotificationOptions::OnSuccess);
        this->with_client(profile,
                          eai_script({"8BITMIME", "smtputf8", "DSN"}),
                          [&](auto& server, auto& client, auto& done) {
                              EXPECT_EQ(client.DeliveryFormat(), SmtpDeliveryFormat::SevenBit);
                              client.DeliveryFormat(SmtpDeliveryFormat::International);
                              client.SendAsync(message, std::any());
                              ASSERT_TRUE(done.wait(this->env.transport, 0));
                              EXPECT_EQ(done.at(0).Error, nullptr);
                              const auto session = server.sessions().at(0);
                              EXPECT_EQ(
                                  session.commands,
                                  (std::vector<std::string>{
                                      "EHLO client.faultline.test",
                                      "MAIL FROM:<j\u00f6se@b\u00fccher.example> BODY=8BITMIME "
                                      "SMTPUTF8",
                                      "RCPT TO:<ben@x.test> NOTIFY=SUCCESS,FAILURE,DELAY",
                                      "RCPT TO:<ann@m\u00fcnchen.example> "
                                      "NOTIFY=SUCCESS,FAILURE,DELAY",
                                      "DATA"}));
                              const std::string content =
                                  session.transactions.at(0).content;
                              EXPECT_NE(content.find("\r\nFrom: \"J\u00f6se\" "
                                                     "<j\u00f6se@b\u00fccher.example>\r\n"),
                                        std::string::npos)
                                  << content;
                              EXPECT_NE(content.find("\r\nSubject: Gr\u00fc\u00dfe\r\n"),
                                        std::string::npos)
                                  << content;
                          });
    }
}

// M-23: each condition alone is not enough. SevenBit with SMTPUTF8 advertised, or International
// without it → no SMTPUTF8 parameter and punycoded domains (M-13); no DSN advertised → no NOTIFY;
// Never → NOTIFY=NEVER; None → nothing.
TYPED_TEST(SmtpClientTest, M23_ParametersNeedBothSides) {
    struct Case {
        std::vector<std::string> capabilities;
        SmtpDeliveryFormat format;
        DeliveryNotificationOptions notify;
        std::string rcpt;
    };
    const std::vector<Case> cases = {
        {{"SMTPUTF8", "DSN"},
         SmtpDeliveryFormat::SevenBit,
         DeliveryNotificationOptions::Never,
         "RCPT TO:<ann@xn--mnchen-3ya.example> NOTIFY=NEVER"},
        {{"8BITMIME"},
         SmtpDeliveryFormat::International,
         DeliveryNotificationOptions::OnFailure,
         "RCPT TO:<ann@xn--mnchen-3ya.example>"},
        {{"DSN"},
         SmtpDeliveryFormat::International,
         DeliveryNotificationOptions::None,
         "RCPT TO:<ann@xn--mnchen-3ya.example>"},
    };
    for (const Case& test_case : cases) {
        auto message = std::make_shared<MailMessage>(MailAddress("jane@x.test", "J\u00f6"),
                                                     MailAddress("ann@m\u00fcnchen.example"));
        message->Subject("Gr\u00fc\u00dfe");
        message->DeliveryNotificationOptions(test_case.notify);
        this->with_client(model::kDotnetUnix,
                          eai_script(test_case.capabilities),
                          [&](auto& server, auto& client, auto& done) {
                              client.DeliveryFormat(test_case.format);
                              client.SendAsync(message, std::any());
                              ASSERT_TRUE(done.wait(this->env.transport, 0));
                              EXPECT_EQ(done.at(0).Error, nullptr);
                              const auto session = server.sessions().at(0);
                              EXPECT_EQ(session.commands,
                                        (std::vector<std::string>{"EHLO client.faultline.test",
                                                                  "MAIL FROM:<jane@x.test>",
                                                                  test_case.rcpt,
                                                                  "DATA"}));
                              const auto& transaction = session.transactions.at(0);
                              EXPECT_EQ(transaction.recipients.at(0).address,
                                        "ann@xn--mnchen-3ya.example");
                              // M-30: encoded words, and the IDN domain downgraded in To too.
                              EXPECT_NE(transaction.content.find("\r\nTo: "
                                                                 "ann@xn--mnchen-3ya.example\r\n"),
                                        std::string::npos);
                              EXPECT_NE(transaction.content.find("\r\nSubject: =?utf-8?B?"),
                                        std::string::npos);
                          });
    }
}

// M-13: a non-ASCII local part without SMTPUTF8 in use → SmtpException with .NET's text, found
// when that command is built: the earlier RCPT went out, no DATA; the connection is aborted.
// For the sender nothing after EHLO is sent. Send throws the same exception.
TYPED_TEST(SmtpClientTest, M13_NonAsciiLocalPartNeedsSmtpUtf8) {
    const std::string expected_text =
        "The client or server is only configured for E-mail addresses with ASCII local-parts: "
        "j\u00f6rg@x.test.";
    // International, but the server does not offer SMTPUTF8.
    this->with_client(model::kDotnetUnix,
                      eai_script({"8BITMIME"}),
                      [&](auto& server, auto& client, auto& done) {
                          client.DeliveryFormat(SmtpDeliveryFormat::International);
                          client.SendAsync(simple_message({"ben@x.test", "j\u00f6rg@x.test"}),
                                           std::any());
                          ASSERT_TRUE(done.wait(this->env.transport, 0));
                          auto error = as<SmtpException>(done.at(0).Error);
                          ASSERT_NE(error, nullptr);
                          EXPECT_EQ(as<model::SmtpFailedRecipientException>(done.at(0).Error),
                                    nullptr);
                          EXPECT_EQ(error->StatusCode(), SmtpStatusCode::GeneralFailure);
                          EXPECT_EQ(error->what(), expected_text);
                          EXPECT_EQ(error->InnerException(), nullptr);
                          EXPECT_EQ(done.at(0).delivery, DeliveryOutcome::not_delivered);
                          const auto session = server.sessions().at(0);
                          EXPECT_EQ(session.commands,
                                    (std::vector<std::string>{"EHLO client.faultline.test",
                                                              "MAIL FROM:<jane@x.test>",
                                                              "RCPT TO:<ben@x.test>"}));
                          // Sender: SMTPUTF8 offered but DeliveryFormat SevenBit.
                          client.DeliveryFormat(SmtpDeliveryFormat::SevenBit);
                          MailMessage from_unicode("j\u00f6rg@x.test", "ben@x.test");
                          try {
                              client.Send(from_unicode);
                              ADD_FAILURE() << "no exception";
                          } catch (const model::SmtpFailedRecipientException&) {
                              ADD_FAILURE() << "not a recipient failure";
                          } catch (const SmtpException& e) {
                              EXPECT_EQ(e.what(), expected_text);
                          }
                          const auto sessions = server.sessions();
                          ASSERT_EQ(sessions.size(), 2U);  // the failure aborted the first
                          EXPECT_EQ(sessions[1].commands,
                                    (std::vector<std::string>{"EHLO client.faultline.test"}));
                      });
    // With SMTPUTF8 in use the same address is sent raw.
    this->with_client(model::kDotnetUnix,
                      eai_script({"SMTPUTF8"}),
                      [&](auto& server, auto& client, auto& done) {
                          client.DeliveryFormat(SmtpDeliveryFormat::International);
                          client.SendAsync(simple_message({"j\u00f6rg@x.test"}), std::any());
                          ASSERT_TRUE(done.wait(this->env.transport, 0));
                          EXPECT_EQ(done.at(0).Error, nullptr);
                          EXPECT_EQ(server.sessions().at(0).commands.at(2),
                                    "RCPT TO:<j\u00f6rg@x.test>");
                      });
}

// M-13, M-15: a refused IDN recipient is reported in its envelope (punycoded) form.
TYPED_TEST(SmtpClientTest, M13_FailedIdnRecipientIsReportedAsSent) {
    SmtpScript script;
    script.recipient_steps["ann@xn--mnchen-3ya.example"] = SmtpStep{.reply = {"550 5.1.1 no"}};
    this->with_client(model::kDocumented, script, [&](auto&, auto& client, auto& done) {
        client.SendAsync(simple_message({"ann@m\u00fcnchen.example", "ben@x.test"}), std::any());
        ASSERT_TRUE(done.wait(this->env.transport, 0));
        auto error = as<model::SmtpFailedRecipientException>(done.at(0).Error);
        ASSERT_NE(error, nullptr);
        EXPECT_EQ(error->FailedRecipient(), "<ann@xn--mnchen-3ya.example>");
        EXPECT_EQ(done.at(0).delivery, DeliveryOutcome::delivered);
    });
}


// ---- M-10: SendMailAsync(MailMessage, CancellationToken) ------------------------------------

/// The task's status as text, for readable failures.
template <typename Task>
std::string status_of(const Task& task) {
    switch (task->Status()) {
        case model::TaskStatus::Running: return "Running";
        case model::TaskStatus::RanToCompletion: return "RanToCompletion";
        case model::TaskStatus::Canceled: return "Canceled";
        case model::TaskStatus::Faulted: return "Faulted";
    }
    return "?";
}

// M-10: an already-cancelled token gives a Canceled task (TaskCanceledException) at once, before
// every other check (null message, send in progress, disposed: both .NET versions test the token
// first), and nothing reaches the network. No SendCompleted.
TYPED_TEST(SmtpClientTest, M10_AlreadyCancelledTokenIsCanceledWithoutTheNetwork) {
    using TransportType = typename TypeParam::T;
    for (const Profile& profile : profiles()) {
        this->with_client(profile, default_script(), [&](auto& server, auto& client, auto& done) {
            model::CancellationTokenSource<TransportType> source;
            source.Cancel();
            EXPECT_TRUE(source.Token().IsCancellationRequested());
            auto task = client.SendMailAsync(simple_message(), source.Token());
            EXPECT_EQ(status_of(task), "Canceled");
            EXPECT_EQ(type_name_of(task->Exception()), "TaskCanceledException");
            EXPECT_NE(as<model::OperationCanceledException>(task->Exception()), nullptr);
            EXPECT_FALSE(client.send_in_progress());
            EXPECT_EQ(status_of(client.SendMailAsync(nullptr, source.Token())), "Canceled");
            if (TypeParam::is_sim) {
                this->wait_silence(seconds(5));  // anything posted would have run by now
            }
            EXPECT_EQ(server.sessions().size(), 0U);  // no connection at all
            client.Dispose();
            EXPECT_EQ(status_of(client.SendMailAsync(simple_message(), source.Token())),
                      "Canceled");
            EXPECT_THROW((void)client.SendMailAsync(simple_message()),
                         model::ObjectDisposedException);
            EXPECT_EQ(done.count(), 0U);
        });
    }
}

// M-10, M-12: success is RanToCompletion with no Exception, delivered, and raises no SendCompleted
// (the rewrite passes invokeSendCompleted: false); the connection is kept and reused.
TYPED_TEST(SmtpClientTest, M10_SuccessRanToCompletionWithoutSendCompleted) {
    for (const Profile& profile : profiles()) {
        this->with_client(profile, default_script(), [&](auto& server, auto& client, auto& done) {
            auto first = client.SendMailAsync(simple_message());  // CancellationToken.None
            ASSERT_TRUE(first->Wait(seconds(20)));
            EXPECT_EQ(status_of(first), "RanToCompletion");
            EXPECT_EQ(first->Exception(), nullptr);
            EXPECT_EQ(first->delivery(), DeliveryOutcome::delivered);
            EXPECT_FALSE(client.send_in_progress());
            auto second = client.SendMailAsync(simple_message({"ann@x.test"}));
            ASSERT_TRUE(second->Wait(seconds(20)));
            EXPECT_EQ(status_of(second), "RanToCompletion");
            const auto sessions = server.sessions();
            ASSERT_EQ(sessions.size(), 1U);  // M-12: reused
            EXPECT_EQ(sessions[0].transactions.size(), 2U);
            EXPECT_EQ(done.count(), 0U);
        });
    }
}

// M-10, M-15, M-6: a refused recipient faults the task with SmtpFailedRecipientException, as
// SendCompleted.Error would carry it; the next send reconnects (M-12, M-17 aborted it).
TYPED_TEST(SmtpClientTest, M10_RecipientRefusedFaultsTheTask) {
    SmtpScript script;
    script.recipient_steps["bad@x.test"] = SmtpStep{.reply = {"550 5.1.1 unknown"}};
    this->with_client(model::kDotnetUnix, script, [&](auto& server, auto& client, auto& done) {
        auto task = client.SendMailAsync(simple_message({"bad@x.test"}));
        ASSERT_TRUE(task->Wait(seconds(20)));
        EXPECT_EQ(status_of(task), "Faulted");
        auto error = as<model::SmtpFailedRecipientException>(task->Exception());
        ASSERT_NE(error, nullptr);
        EXPECT_EQ(type_name_of(task->Exception()), "SmtpFailedRecipientException");
        EXPECT_EQ(error->FailedRecipient(), "<bad@x.test>");
        EXPECT_EQ(error->StatusCode(), SmtpStatusCode::MailboxUnavailable);
        EXPECT_EQ(task->delivery(), DeliveryOutcome::not_delivered);
        auto next = client.SendMailAsync(simple_message());
        ASSERT_TRUE(next->Wait(seconds(20)));
        EXPECT_EQ(status_of(next), "RanToCompletion");
        EXPECT_EQ(server.sessions().size(), 2U);
        EXPECT_EQ(done.count(), 0U);
    });
}

// M-10, M-9, M-12: cancelling the token mid-flight aborts the connection (no QUIT) and the task
// ends Canceled with TaskCanceledException; the client stays usable and the next send
// reconnects.
TYPED_TEST(SmtpClientTest, M10_CancelMidFlightThenTheNextSendReconnects) {
    using TransportType = typename TypeParam::T;
    SmtpScript script;
    script.recipient_steps["slow@x.test"] = SmtpStep{.action = SmtpAction::stall};
    for (const Profile& profile : profiles()) {
        this->with_client(profile, script, [&](auto& server, auto& client, auto& done) {
            model::CancellationTokenSource<TransportType> source;
            auto task = client.SendMailAsync(simple_message({"slow@x.test"}), source.Token());
            EXPECT_TRUE(client.send_in_progress());
            // Mid-flight: the server has the RCPT and stalls (EHLO, MAIL, RCPT).
            ASSERT_TRUE(this->wait_for_commands(server, 3, seconds(20)));
            EXPECT_EQ(server.sessions().at(0).commands.back(), "RCPT TO:<slow@x.test>");
            EXPECT_EQ(status_of(task), "Running");
            // M-3 holds for SendMailAsync as for SendAsync: bare InvalidOperationException.
            EXPECT_THROW((void)client.SendMailAsync(simple_message()),
                         model::InvalidOperationException);
            source.Cancel();
            ASSERT_TRUE(task->Wait(seconds(20)));
            EXPECT_EQ(status_of(task), "Canceled");
            EXPECT_EQ(type_name_of(task->Exception()), "TaskCanceledException");
            EXPECT_FALSE(client.send_in_progress());
            auto next = client.SendMailAsync(simple_message());
            ASSERT_TRUE(next->Wait(seconds(20)));
            EXPECT_EQ(status_of(next), "RanToCompletion");
            EXPECT_EQ(next->delivery(), DeliveryOutcome::delivered);
            const auto sessions = server.sessions();
            ASSERT_EQ(sessions.size(), 2U);
            for (const auto& command : sessions[0].commands) {
                EXPECT_NE(command, "QUIT");  // aborted, not closed politely (M-9)
            }
            EXPECT_EQ(done.count(), 0U);
        });
    }
}

// M-10, M-9, M-11: SendAsyncCancel and Dispose cancel a SendMailAsync too (the rewrite links the
// caller's token to the client's pending-send source; the APM version's SendCompleted handler
// turns Cancelled into a canceled task).
TYPED_TEST(SmtpClientTest, M10_SendAsyncCancelAndDisposeCancelTheTask) {
    SmtpScript script;
    script.recipient_steps["slow@x.test"] = SmtpStep{.action = SmtpAction::stall};
    this->with_client(model::kDotnetUnix, script, [&](auto&, auto& client, auto& done) {
        auto first = client.SendMailAsync(simple_message({"slow@x.test"}));
        client.SendAsyncCancel();
        ASSERT_TRUE(first->Wait(seconds(20)));
        EXPECT_EQ(status_of(first), "Canceled");
        auto second = client.SendMailAsync(simple_message({"slow@x.test"}));
        client.Dispose();
        ASSERT_TRUE(second->Wait(seconds(20)));
        EXPECT_EQ(status_of(second), "Canceled");
        EXPECT_EQ(done.count(), 0U);
    });
}

// M-10, M-1, M-2: the synchronous checks are SendAsync's, thrown from the call and wrapped per
// profile (SmtpException "Failure sending mail." under dotnet-unix); no task, no connection.
TYPED_TEST(SmtpClientTest, M10_ValidationIsThrownAndWrappedPerProfile) {
    for (const Profile& profile : profiles()) {
        const bool wraps = profile.smtp_send_async_wraps_validation_errors;
        this->with_client(profile, default_script(), [&](auto& server, auto& client, auto& done) {
            auto expect = [&](std::shared_ptr<const MailMessage> message, std::string_view name) {
                try {
                    (void)client.SendMailAsync(std::move(message));
                    ADD_FAILURE() << "no exception, expected " << name;
                } catch (const SmtpException& e) {
                    ASSERT_TRUE(wraps) << e.what();
                    EXPECT_EQ(e.StatusCode(), SmtpStatusCode::GeneralFailure);
                    EXPECT_STREQ(e.what(), "Failure sending mail.");
                    EXPECT_EQ(type_name_of(e.InnerException()), name);
                } catch (const model::DotnetException& e) {
                    EXPECT_FALSE(wraps);
                    EXPECT_EQ(e.type_name(), name);
                }
                EXPECT_FALSE(client.send_in_progress());
            };
            auto no_from = std::make_shared<MailMessage>();
            no_from->To().emplace_back("ben@x.test");
            auto no_recipients = std::make_shared<MailMessage>();
            no_recipients->From(MailAddress("jane@x.test"));
            expect(nullptr, "ArgumentNullException");
            expect(no_from, wraps ? "InvalidOperationException" : "ArgumentNullException");
            expect(no_recipients,
                   wraps ? "InvalidOperationException" : "ArgumentOutOfRangeException");
            client.Port(70000);
            expect(simple_message(), "InvalidOperationException");
            EXPECT_EQ(server.sessions().size(), 0U);
            EXPECT_EQ(done.count(), 0U);
        });
    }
}

// M-10, M-8: the SendAsync timer rule applies: dotnet-unix faults the task after Timeout
// ("The operation has timed out."), documented has no timer and waits until cancelled.
TYPED_TEST(SmtpClientTest, M10_TimeoutFollowsTheSendAsyncRule) {
    if (!TypeParam::is_sim) {
        GTEST_SKIP() << "waiting out a stall needs virtual time";
    }
    using TransportType = typename TypeParam::T;
    SmtpScript script;
    script.steps["RCPT"] = SmtpStep{.action = SmtpAction::stall};
    for (const Profile& profile : profiles()) {
        this->with_client(profile, script, [&](auto&, auto& client, auto& done) {
            client.Timeout(5000);
            model::CancellationTokenSource<TransportType> source;
            auto task = client.SendMailAsync(simple_message(), source.Token());
            const bool completed = task->Wait(seconds(600));
            if (profile.smtp_send_async_timeout) {
                ASSERT_TRUE(completed);
                EXPECT_EQ(status_of(task), "Faulted");
                auto error = as<SmtpException>(task->Exception());
                ASSERT_NE(error, nullptr);
                EXPECT_STREQ(error->what(), "The operation has timed out.");
            } else {
                EXPECT_FALSE(completed);
                source.Cancel();
                ASSERT_TRUE(task->Wait(seconds(20)));
                EXPECT_EQ(status_of(task), "Canceled");
            }
            EXPECT_EQ(done.count(), 0U);
        });
    }
}

}  // namespace
}  // namespace faultline
