// Goal: the oracle catches each violation it exists for (a mutation check of the checker itself):
// interleaved or reordered bytes, a callback run twice or never, a callback that ran inline on an
// operation not marked CompletedSynchronously, a clean stream shorter than what EndSend reported.
// Method: hand check_oracle small views, one defect at a time, next to the healthy version.
#include "faultline/conformance/oracle.h"

#include <gtest/gtest.h>

namespace faultline::conformance {
namespace {

std::vector<std::byte> bytes(std::initializer_list<int> values) {
    std::vector<std::byte> out;
    for (int value : values) {
        out.push_back(static_cast<std::byte>(value));
    }
    return out;
}

OpView send(const std::string& id, std::uint64_t order, std::vector<std::byte> data,
            std::uint64_t reported) {
    OpView op;
    op.id = id;
    op.socket = "client";
    op.began = true;
    op.callbacks = 1;
    op.completed = true;
    op.bytes = reported;
    op.begin_order = order;
    op.data = std::move(data);
    return op;
}

PeerView peer(std::vector<std::byte> received) {
    PeerView view;
    view.received = std::move(received);
    view.saw = "eof";
    return view;
}

TEST(Oracle, AcceptsInOrderFullAndPartialSends) {  // S-9, S-20
    const std::vector<OpView> ops = {send("a", 0, bytes({1, 2, 3}), 3),
                                     send("b", 1, bytes({4, 5, 6}), 2)};
    EXPECT_TRUE(check_oracle(ops, {{"client", peer(bytes({1, 2, 3, 4, 5}))}}).empty());
}

TEST(Oracle, CatchesInterleavedSends) {  // S-20
    const std::vector<OpView> ops = {send("a", 0, bytes({1, 2, 3}), 3),
                                     send("b", 1, bytes({4, 5, 6}), 3)};
    EXPECT_FALSE(check_oracle(ops, {{"client", peer(bytes({1, 4, 2, 5, 3, 6}))}}).empty());
    EXPECT_FALSE(check_oracle(ops, {{"client", peer(bytes({4, 5, 6, 1, 2, 3}))}}).empty());
}

TEST(Oracle, CatchesUnreportedAndMissingBytes) {
    const std::vector<OpView> ops = {send("a", 0, bytes({1, 2, 3}), 2)};
    EXPECT_FALSE(check_oracle(ops, {{"client", peer(bytes({1, 2, 3}))}}).empty());
    EXPECT_FALSE(check_oracle(ops, {{"client", peer(bytes({1}))}}).empty());
}

TEST(Oracle, ToleratesAPrefixOfTheFailedSend) {  // S-11
    OpView failed = send("b", 1, bytes({4, 5, 6}), 0);
    failed.failed = true;
    const std::vector<OpView> ops = {send("a", 0, bytes({1, 2}), 2), failed};
    PeerView reset = peer(bytes({1, 2, 4}));
    reset.saw = "reset";
    EXPECT_TRUE(check_oracle(ops, {{"client", reset}}).empty());
    reset.received = bytes({1, 2, 9});
    EXPECT_FALSE(check_oracle(ops, {{"client", reset}}).empty());
}

TEST(Oracle, AcceptsSendsThatFollowACancelledOne) {  // thread exit cancels one send only
    OpView cancelled = send("b", 1, bytes({4, 5, 6}), 0);
    cancelled.failed = true;
    const std::vector<OpView> ops = {send("a", 0, bytes({1, 2}), 2), cancelled,
                                     send("c", 2, bytes({7, 8}), 2)};
    EXPECT_TRUE(check_oracle(ops, {{"client", peer(bytes({1, 2, 7, 8}))}}).empty());
    EXPECT_TRUE(check_oracle(ops, {{"client", peer(bytes({1, 2, 4, 7, 8}))}}).empty());
    EXPECT_FALSE(check_oracle(ops, {{"client", peer(bytes({1, 2, 7, 4, 8}))}}).empty());
    EXPECT_FALSE(check_oracle(ops, {{"client", peer(bytes({1, 2, 8}))}}).empty());
}

TEST(Oracle, CatchesCallbackCountsAndInlineMismatch) {  // S-4
    OpView twice = send("a", 0, bytes({1}), 1);
    twice.callbacks = 2;
    EXPECT_FALSE(check_oracle({twice}, {}).empty());
    OpView never = send("a", 0, bytes({1}), 1);
    never.callbacks = 0;
    EXPECT_FALSE(check_oracle({never}, {}).empty());
    OpView inline_but_pending = send("a", 0, bytes({1}), 1);
    inline_but_pending.callback_before_return = true;
    inline_but_pending.completed_synchronously = false;
    EXPECT_FALSE(check_oracle({inline_but_pending}, {}).empty());
    inline_but_pending.completed_synchronously = true;
    EXPECT_TRUE(check_oracle({inline_but_pending}, {}).empty());
}

TEST(Oracle, MatchTreatsMissingThrowsAsNone) {
    Observation threw;
    threw.threw = "SocketException";
    EXPECT_NE(mismatch(Expectation{}, threw), "");
    Expectation expect;
    expect.throws = "SocketException";
    expect.socket_error = model::SocketError::ConnectionReset;
    threw.socket_error = model::SocketError::Shutdown;
    EXPECT_NE(mismatch(expect, threw), "");
    threw.socket_error = model::SocketError::ConnectionReset;
    EXPECT_EQ(mismatch(expect, threw), "");
}

}  // namespace
}  // namespace faultline::conformance
