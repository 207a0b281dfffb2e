// The simulated network's packets as a pcap file (nanosecond timestamps, raw IPv4 link type):
// TCP handshakes, data, ACKs, FIN, RST and half-open scans, with sequence and acknowledgement
// numbers kept per direction and real IPv4 and TCP checksums, so Wireshark and tshark decode
// the streams (and the SMTP dialogue) as they would a capture from a real network.
// Invariant: the same packets give the same file, byte for byte (no clock, no randomness).
// It writes TCP only: ICMP (host unreachable) is not part of the simulated wire.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "faultline/sim/world.h"

namespace faultline::views {

class PcapWriter {
public:
    /// Adds one packet the simulated network put on the wire (sim::World::Options::packet_tap).
    /// Packets must come in time order, as the tap delivers them. Sequence numbers are derived
    /// here, per direction: a deterministic initial number from the endpoints, SYN and FIN
    /// count one, data its length; a SYN repeated before anything else was said reuses its
    /// number. A payload larger than one IPv4 packet holds becomes several packets. A pure
    /// ACK that acknowledges nothing new is left out (see pcap.cpp).
    void add(const sim::WirePacket& packet);
    /// The whole capture file: header, then every packet added, in order.
    [[nodiscard]] std::string bytes() const;
    /// Packets in the file (a split payload counts each of its packets).
    [[nodiscard]] std::size_t packets() const noexcept;

private:
    /// What one direction (source to destination) of a connection has put on the wire.
    struct Direction {
        std::uint32_t initial_sequence = 0;
        std::uint32_t next_sequence = 0;  // 0 until a SYN: an RST answering a SYN starts at 0
        std::uint32_t incarnation = 0;    // bumped by each new connection on the same ports
        std::optional<std::uint32_t> acknowledgement_last;  // of the last packet with ACK
        bool syn_seen = false;
        bool reset_seen = false;
    };
    using DirectionKey = std::pair<model::Endpoint, model::Endpoint>;

    void add_record(const sim::WirePacket& packet,
                    std::uint8_t flags,
                    std::uint32_t sequence,
                    std::uint32_t acknowledgement,
                    std::size_t payload_offset,
                    std::size_t payload_bytes);

    std::map<DirectionKey, Direction> directions_;
    std::string records_;
    std::size_t packets_ = 0;
    std::uint16_t ip_identification_ = 0;
};

}  // namespace faultline::views
