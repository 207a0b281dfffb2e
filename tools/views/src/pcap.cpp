#include "faultline/views/pcap.h"

#include <algorithm>
#include <array>
#include <chrono>

namespace faultline::views {
namespace {

// pcap (not pcapng): the nanosecond-resolution magic, version 2.4, and LINKTYPE_RAW, whose
// records start at the IPv4 header (tshark decodes it on every version we meet; LINKTYPE_IPV4
// needs a newer one). The snapshot length is the one tcpdump and Wireshark default to.
constexpr std::uint32_t kMagicNanoseconds = 0xa1b23c4dU;
constexpr std::uint16_t kVersionMajor = 2;
constexpr std::uint16_t kVersionMinor = 4;
constexpr std::uint32_t kSnapshotBytes = 262144;
constexpr std::uint32_t kLinkTypeRaw = 101;

constexpr std::size_t kIpv4HeaderBytes = 20;
constexpr std::size_t kTcpHeaderBytes = 20;
// An IPv4 total length is 16 bits, and the simulated MSS may be configured up to 65535.
constexpr std::size_t kPayloadBytesMax = 65535 - kIpv4HeaderBytes - kTcpHeaderBytes;
static_assert(kIpv4HeaderBytes + kTcpHeaderBytes + kPayloadBytesMax <= kSnapshotBytes);

constexpr std::uint8_t kProtocolTcp = 6;
constexpr std::uint8_t kTimeToLive = 64;  // Linux's default
constexpr std::uint16_t kDontFragment = 0x4000;
// The simulation models its receive windows itself; the capture shows a constant open window
// so that tshark's window analysis has nothing to report that the model did not do.
constexpr std::uint16_t kWindow = 65535;

// The pcap header and record headers are little-endian, as an x86 host writes them; readers
// tell the byte order from the magic, so the file is the same whichever host wrote it.
void put_little16(std::string& out, std::uint16_t value) {
    out.push_back(static_cast<char>(value & 0xffU));
    out.push_back(static_cast<char>(value >> 8U));
}

void put_little32(std::string& out, std::uint32_t value) {
    for (unsigned shift = 0; shift < 32; shift += 8) {
        out.push_back(static_cast<char>((value >> shift) & 0xffU));
    }
}

// IPv4 and TCP headers are in network byte order (big-endian).
void put_big16(std::string& out, std::uint16_t value) {
    out.push_back(static_cast<char>(value >> 8U));
    out.push_back(static_cast<char>(value & 0xffU));
}

void put_big32(std::string& out, std::uint32_t value) {
    for (unsigned shift = 32; shift > 0; shift -= 8) {
        out.push_back(static_cast<char>((value >> (shift - 8)) & 0xffU));
    }
}

void set_big16(std::string& out, std::size_t at, std::uint16_t value) {
    out[at] = static_cast<char>(value >> 8U);
    out[at + 1] = static_cast<char>(value & 0xffU);
}

/// The Internet checksum's running sum (RFC 1071) over `bytes`, which start on an even offset
/// of the checksummed data.
std::uint32_t sum16(std::uint32_t sum, const char* bytes, std::size_t count) {
    for (std::size_t i = 0; i + 1 < count; i += 2) {
        sum += (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 8U) |
               static_cast<unsigned char>(bytes[i + 1]);
    }
    if (count % 2 == 1) {
        sum += static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[count - 1])) << 8U;
    }
    return sum;
}

std::uint16_t fold(std::uint32_t sum) {
    while ((sum >> 16U) != 0) {
        sum = (sum & 0xffffU) + (sum >> 16U);
    }
    return static_cast<std::uint16_t>(~sum & 0xffffU);
}

/// A fixed function of the two endpoints and the incarnation, so that a capture is the same on
/// every run, directions differ, and a new connection on reused ports does not look like a
/// retransmission of the old one (SplitMix64's finaliser mixes the bits).
std::uint32_t initial_sequence(const model::Endpoint& source,
                               const model::Endpoint& destination,
                               std::uint32_t incarnation) {
    std::uint64_t mixed = (std::uint64_t{source.address} << 32U) | destination.address;
    mixed ^= (std::uint64_t{source.port} << 48U) | (std::uint64_t{destination.port} << 32U) |
             incarnation;
    mixed += 0x9e3779b97f4a7c15ULL;
    mixed = (mixed ^ (mixed >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    mixed = (mixed ^ (mixed >> 27U)) * 0x94d049bb133111ebULL;
    mixed ^= mixed >> 31U;
    return static_cast<std::uint32_t>(mixed);
}

std::uint32_t consumed(std::size_t payload_bytes, std::uint8_t flags) {
    std::uint32_t sequence_space = static_cast<std::uint32_t>(payload_bytes);
    sequence_space += (flags & sim::WirePacket::syn) != 0 ? 1U : 0U;
    sequence_space += (flags & sim::WirePacket::fin) != 0 ? 1U : 0U;
    return sequence_space;
}

}  // namespace

void PcapWriter::add(const sim::WirePacket& packet) {
    Direction& out = directions_[{packet.source, packet.destination}];
    Direction& in = directions_[{packet.destination, packet.source}];  // map references stay valid
    const bool syn = (packet.flags & sim::WirePacket::syn) != 0;
    const bool ack = (packet.flags & sim::WirePacket::ack) != 0;
    if (syn) {
        // A SYN sent again before anything came back (the simulated SYN was dropped) is a
        // retransmission and keeps its number; any other SYN opens a new incarnation.
        const bool repeated = out.syn_seen && !out.reset_seen && !in.reset_seen &&
                              out.next_sequence == out.initial_sequence + 1 &&
                              (ack || !in.syn_seen);
        if (!repeated) {
            if (!ack) {
                // A client's SYN opens a new connection: forget the old one's reverse side.
                const std::uint32_t reverse_incarnation = in.incarnation;
                in = Direction{};
                in.incarnation = reverse_incarnation;
            }
            const std::uint32_t incarnation = out.incarnation + 1;
            out = Direction{};
            out.incarnation = incarnation;
            out.initial_sequence =
                initial_sequence(packet.source, packet.destination, out.incarnation);
            out.syn_seen = true;
        }
        out.next_sequence = out.initial_sequence;
    }
    // RFC 793 §3.4: an RST answering a SYN that carried no ACK has sequence number 0 and
    // acknowledges the SYN; the direction's zero state gives exactly that.
    const std::uint32_t acknowledgement = ack ? in.next_sequence : 0;
    // The simulated receiver acknowledges each segment one latency after it arrived, but the
    // capture's acknowledgement numbers are cumulative over what it shows: when a second
    // segment arrived within that latency, the first ACK already covers it and the second
    // would repeat it, which Wireshark reads as a duplicate ACK (a sign of loss that never
    // happened). Such an ACK carries nothing, so it is not written.
    if (packet.flags == sim::WirePacket::ack && packet.payload.empty() &&
        out.acknowledgement_last == acknowledgement) {
        return;
    }
    if (ack) {
        out.acknowledgement_last = acknowledgement;
    }
    std::uint32_t sequence = out.next_sequence;
    std::size_t offset = 0;
    do {
        const std::size_t chunk = std::min(packet.payload.size() - offset, kPayloadBytesMax);
        const bool first = offset == 0;
        const bool last = offset + chunk == packet.payload.size();
        // SYN belongs to the first packet of a split payload, FIN and PSH to the last.
        std::uint8_t flags = packet.flags;
        if (!first) {
            flags = static_cast<std::uint8_t>(flags & ~sim::WirePacket::syn);
        }
        if (!last) {
            flags =
                static_cast<std::uint8_t>(flags & ~(sim::WirePacket::fin | sim::WirePacket::psh));
        }
        add_record(packet, flags, sequence, acknowledgement, offset, chunk);
        sequence += consumed(chunk, flags);
        offset += chunk;
    } while (offset < packet.payload.size());
    out.next_sequence = sequence;
    if ((packet.flags & sim::WirePacket::rst) != 0) {
        out.reset_seen = true;
    }
}

void PcapWriter::add_record(const sim::WirePacket& packet,
                            std::uint8_t flags,
                            std::uint32_t sequence,
                            std::uint32_t acknowledgement,
                            std::size_t payload_offset,
                            std::size_t payload_bytes) {
    const std::size_t total_bytes = kIpv4HeaderBytes + kTcpHeaderBytes + payload_bytes;
    const auto ns = static_cast<std::uint64_t>(packet.at.time_since_epoch().count());
    put_little32(records_, static_cast<std::uint32_t>(ns / 1'000'000'000U));
    put_little32(records_, static_cast<std::uint32_t>(ns % 1'000'000'000U));
    put_little32(records_, static_cast<std::uint32_t>(total_bytes));  // captured
    put_little32(records_, static_cast<std::uint32_t>(total_bytes));  // on the wire

    const std::size_t ip_at = records_.size();
    records_.push_back(static_cast<char>(0x45));  // version 4, header 5 words
    records_.push_back(0);                        // DSCP and ECN
    put_big16(records_, static_cast<std::uint16_t>(total_bytes));
    put_big16(records_, ip_identification_++);
    put_big16(records_, kDontFragment);
    records_.push_back(static_cast<char>(kTimeToLive));
    records_.push_back(static_cast<char>(kProtocolTcp));
    put_big16(records_, 0);  // header checksum, filled in below
    put_big32(records_, packet.source.address);
    put_big32(records_, packet.destination.address);
    set_big16(records_, ip_at + 10, fold(sum16(0, records_.data() + ip_at, kIpv4HeaderBytes)));

    const std::size_t tcp_at = records_.size();
    put_big16(records_, packet.source.port);
    put_big16(records_, packet.destination.port);
    put_big32(records_, sequence);
    put_big32(records_, acknowledgement);
    records_.push_back(static_cast<char>((kTcpHeaderBytes / 4) << 4U));  // data offset
    records_.push_back(static_cast<char>(flags));
    put_big16(records_, kWindow);
    put_big16(records_, 0);  // checksum, filled in below
    put_big16(records_, 0);  // urgent pointer
    if (payload_bytes > 0) {
        const auto* payload = reinterpret_cast<const char*>(packet.payload.data());
        records_.append(payload + payload_offset, payload_bytes);
    }

    // The TCP checksum covers a pseudo header (RFC 793 §3.1): addresses, protocol, TCP length.
    std::string pseudo;
    put_big32(pseudo, packet.source.address);
    put_big32(pseudo, packet.destination.address);
    put_big16(pseudo, kProtocolTcp);
    put_big16(pseudo, static_cast<std::uint16_t>(kTcpHeaderBytes + payload_bytes));
    std::uint32_t sum = sum16(0, pseudo.data(), pseudo.size());
    sum = sum16(sum, records_.data() + tcp_at, kTcpHeaderBytes + payload_bytes);
    set_big16(records_, tcp_at + 16, fold(sum));
    ++packets_;
}

std::string PcapWriter::bytes() const {
    std::string file;
    file.reserve(24 + records_.size());
    put_little32(file, kMagicNanoseconds);
    put_little16(file, kVersionMajor);
    put_little16(file, kVersionMinor);
    put_little32(file, 0);  // this zone: timestamps are UTC (virtual time from the epoch)
    put_little32(file, 0);  // significant figures
    put_little32(file, kSnapshotBytes);
    put_little32(file, kLinkTypeRaw);
    file += records_;
    return file;
}

std::size_t PcapWriter::packets() const noexcept { return packets_; }

}  // namespace faultline::views
