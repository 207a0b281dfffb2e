// Raw POSIX sockets for the real-transport benchmarks: the baseline that faultline's
// RealTransport is compared against, with nothing of faultline in between.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

#include "faultline/model/assert.h"

namespace faultline::bench {

/// A blocking listening socket on 127.0.0.1 with an ephemeral port.
class RawListener {
public:
    explicit RawListener(int backlog) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        FAULTLINE_ASSERT(fd_ >= 0);
        const int reuse = 1;
        static_cast<void>(::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse));
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = 0;
        const int bound = ::bind(fd_,
                                 reinterpret_cast<const sockaddr*>(&address),  // NOLINT
                                 sizeof address);
        FAULTLINE_ASSERT(bound == 0);
        const int listening = ::listen(fd_, backlog);
        FAULTLINE_ASSERT(listening == 0);
        socklen_t length = sizeof address;
        const int named =
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);  // NOLINT
        FAULTLINE_ASSERT(named == 0);
        port_ = ntohs(address.sin_port);
    }
    RawListener(const RawListener&) = delete;
    RawListener& operator=(const RawListener&) = delete;
    ~RawListener() { ::close(fd_); }

    [[nodiscard]] int fd() const { return fd_; }
    [[nodiscard]] std::uint16_t port() const { return port_; }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

}  // namespace faultline::bench
