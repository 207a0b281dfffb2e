// Goal: the profile table and the S-12 error mapping are what the README and the clauses say.
// Method: look the profiles up by name and map each operating error.
#include "faultline/model/profile.h"

#include <gtest/gtest.h>

namespace faultline::model {
namespace {

TEST(Profile, NamesResolveAndUnknownNamesDoNot) {
    ASSERT_TRUE(profile_by_name("documented"));
    ASSERT_TRUE(profile_by_name("dotnet-unix"));
    EXPECT_FALSE(profile_by_name("windows"));
    EXPECT_TRUE(profile_by_name("documented")->stream_send_may_be_partial);   // S-9
    EXPECT_FALSE(profile_by_name("dotnet-unix")->stream_send_may_be_partial);
    EXPECT_TRUE(profile_by_name("documented")->smtp_auth_plain);  // M-21
    EXPECT_FALSE(profile_by_name("dotnet-unix")->smtp_auth_plain);
}

TEST(Profile, OperatingErrorsMapAsTheUnixEngineDoes) {  // S-12
    EXPECT_EQ(to_socket_error(make_error_code(NetErrc::connection_reset)), SocketError::ConnectionReset);
    EXPECT_EQ(to_socket_error(make_error_code(NetErrc::broken_pipe)), SocketError::Shutdown);
    EXPECT_EQ(to_socket_error(make_error_code(NetErrc::connection_refused)), SocketError::ConnectionRefused);
    EXPECT_EQ(to_socket_error(make_error_code(NetErrc::timed_out)), SocketError::TimedOut);
    EXPECT_EQ(to_socket_error(make_error_code(NetErrc::host_unreachable)), SocketError::HostUnreachable);
    EXPECT_EQ(to_socket_error(make_error_code(NetErrc::operation_aborted)), SocketError::OperationAborted);
    EXPECT_EQ(to_socket_error({}), SocketError::Success);
    EXPECT_EQ(error_code_for(SocketError::ConnectionReset, kDocumented), 10054);
    EXPECT_EQ(error_code_for(SocketError::ConnectionReset, kDotnetUnix), 104);
}

}  // namespace
}  // namespace faultline::model
