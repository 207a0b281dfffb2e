// Goal: SmtpClient<T>.SendAsync behaves as clause list C says under both profiles: the M-1 check
// order and M-2 wrapping, M-3, exactly one SendCompleted (M-5, M-7), the envelope and content on
// the wire (M-13, M-32), recipient failures (M-15/16/17), HELO fallback (M-19), server close
// (M-25), a drop after the final dot (M-26, unknown), cancel (M-9), timeout (M-8), reuse (M-12).
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
using model::MailMessage;
using model::Profile;
using model::SmtpAction;
using model::SmtpClient;
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

}  // namespace
}  // namespace faultline
