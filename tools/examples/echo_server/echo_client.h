// run_echo_client: the other side of EchoServer, a blocking client written against Socket<T>. It
// connects, sends a payload in chunks, ends its stream, and reads the echo until the server ends
// its own. Every blocking call has a budget (a LivenessFailure, never a hang). It does not check
// the echo: the outcome says what came back and how the exchange ended.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "faultline/model/async_result.h"
#include "faultline/model/exceptions.h"
#include "faultline/model/profile.h"
#include "faultline/model/socket.h"
#include "faultline/model/transport.h"

namespace faultline::examples {

/// How one echo exchange ended.
struct EchoClientOutcome {
    std::vector<std::byte> received;          // everything read, in order
    bool connected = false;                   // Connect succeeded
    bool end_of_stream = false;               // the server ended its stream cleanly
    std::optional<model::SocketError> error;  // the SocketException that ended the exchange
    std::string failure;  // a wait ran out of budget or something unexpected was thrown: a bug

    /// The whole payload came back, then a clean end of stream.
    [[nodiscard]] bool echoed(const std::vector<std::byte>& payload) const {
        return end_of_stream && !error && failure.empty() && received == payload;
    }
    /// What came back is a prefix of `payload`: nothing wrong, nothing invented.
    [[nodiscard]] bool is_prefix_of(const std::vector<std::byte>& payload) const {
        return received.size() <= payload.size() &&
               std::equal(received.begin(), received.end(), payload.begin());
    }
};

/// Sends `payload` to the echo server at `server` in sends of at most `chunk_bytes` (≥ 1), then
/// Shutdown(Send), then receives until end of stream. Blocks the calling thread (on sim: a
/// logical thread), each wait bounded by `wait_budget`. Socket errors end the exchange and are
/// reported in the outcome, not thrown.
template <model::Transport T>
[[nodiscard]] EchoClientOutcome run_echo_client(T& transport,
                                                const model::Profile& profile,
                                                const model::Endpoint& server,
                                                const model::Buffer& payload,
                                                int chunk_bytes,
                                                model::Duration wait_budget) {
    EchoClientOutcome outcome;
    auto socket = model::Socket<T>::Create(transport, profile);
    socket->SetWaitBudget(wait_budget);
    try {
        socket->Connect(server);
        outcome.connected = true;
        const int total = static_cast<int>(payload->size());
        for (int offset = 0; offset < total;) {
            const int size = std::min(chunk_bytes, total - offset);
            // S-9: under the documented profile EndSend may report fewer bytes than asked.
            offset += socket->EndSend(
                socket->BeginSend(payload, offset, size, model::SocketFlags::None, nullptr, {}));
        }
        socket->Shutdown(model::SocketShutdown::Send);
        auto buffer = std::make_shared<std::vector<std::byte>>(16 * 1024);
        // More bytes than were sent can only be wrong; stop reading rather than read forever.
        while (outcome.received.size() <= payload->size()) {
            const int bytes =
                socket->EndReceive(socket->BeginReceive(buffer,
                                                        0,
                                                        static_cast<int>(buffer->size()),
                                                        model::SocketFlags::None,
                                                        nullptr,
                                                        {}));
            if (bytes == 0) {
                outcome.end_of_stream = true;
                break;
            }
            outcome.received.insert(
                outcome.received.end(), buffer->begin(), buffer->begin() + bytes);
        }
    } catch (const model::SocketException& exception) {
        outcome.error = exception.SocketErrorCode();
    } catch (const model::LivenessFailure& exception) {
        outcome.failure = exception.what();
    } catch (const model::DotnetException& exception) {
        outcome.failure = std::string(exception.type_name()) + ": " + exception.what();
    }
    socket->Dispose();
    return outcome;
}

}  // namespace faultline::examples
