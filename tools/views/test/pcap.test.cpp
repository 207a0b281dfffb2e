// Goal: the capture PcapWriter writes is a valid pcap a packet analyser accepts: a correct global
// header and record lengths, IPv4 and TCP checksums that verify, sequence and acknowledgement
// numbers continuous per direction, handshakes in order, and each direction's payloads
// reassembling to the bytes the application sent; and tapping a run changes nothing in it.
// Method: a small independent pcap parser in this file reads the bytes back; it is fed both
// hand-made packets and real scenario runs on sim (SMTP, sends with a reset, half-open scans).
#include "faultline/views/pcap.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "faultline/conformance/run.h"
#include "faultline/conformance/scenario.h"

namespace faultline::views {
namespace {

using model::Endpoint;
using sim::WirePacket;

constexpr std::uint8_t kFin = WirePacket::fin;
constexpr std::uint8_t kSyn = WirePacket::syn;
constexpr std::uint8_t kRst = WirePacket::rst;
constexpr std::uint8_t kAck = WirePacket::ack;
constexpr std::uint8_t kPsh = WirePacket::psh;

// ---- the parser -------------------------------------------------------------------------------

std::uint32_t little32(std::string_view bytes, std::size_t at) {
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        value |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
    }
    return value;
}

std::uint16_t little16(std::string_view bytes, std::size_t at) {
    return static_cast<std::uint16_t>(static_cast<unsigned char>(bytes[at]) |
                                      (static_cast<unsigned char>(bytes[at + 1]) << 8));
}

std::uint32_t big(std::string_view bytes, std::size_t at, std::size_t count) {
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < count; ++i) {
        value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
    }
    return value;
}

/// The RFC 1071 sum over `bytes`, folded; 0xffff when a checksum inside them is right.
std::uint32_t ones_complement_sum(std::string_view bytes, std::uint32_t sum = 0) {
    for (std::size_t i = 0; i < bytes.size(); i += 2) {
        sum += big(bytes, i, 1) << 8;
        if (i + 1 < bytes.size()) {
            sum += big(bytes, i + 1, 1);
        }
    }
    while ((sum >> 16) != 0) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return sum;
}

struct Segment {
    std::uint64_t at_ns = 0;
    Endpoint source;
    Endpoint destination;
    std::uint32_t sequence = 0;
    std::uint32_t acknowledgement = 0;
    std::uint8_t flags = 0;
    std::string payload;
};

/// Parses a whole capture with gtest assertions on every structural property; returns its
/// segments (empty after a fatal format error).
std::vector<Segment> parse(std::string_view file) {
    std::vector<Segment> segments;
    EXPECT_GE(file.size(), 24U);
    if (file.size() < 24) {
        return segments;
    }
    EXPECT_EQ(little32(file, 0), 0xa1b23c4dU);  // nanosecond timestamps
    EXPECT_EQ(little16(file, 4), 2);
    EXPECT_EQ(little16(file, 6), 4);
    EXPECT_EQ(little32(file, 16), 262144U);
    EXPECT_EQ(little32(file, 20), 101U);  // LINKTYPE_RAW
    std::size_t at = 24;
    std::uint64_t previous_ns = 0;
    while (at < file.size()) {
        if (file.size() - at < 16) {
            ADD_FAILURE() << "truncated record header at " << at;
            return {};
        }
        const std::uint64_t seconds = little32(file, at);
        const std::uint32_t nanoseconds = little32(file, at + 4);
        const std::uint32_t captured = little32(file, at + 8);
        EXPECT_EQ(little32(file, at + 12), captured) << "snapped record at " << at;
        EXPECT_LT(nanoseconds, 1'000'000'000U);
        EXPECT_LE(captured, 262144U);
        at += 16;
        if (file.size() - at < captured || captured < 40) {
            ADD_FAILURE() << "bad record length " << captured << " at " << at;
            return {};
        }
        const std::string_view ip = file.substr(at, captured);
        at += captured;
        Segment segment;
        segment.at_ns = seconds * 1'000'000'000U + nanoseconds;
        EXPECT_GE(segment.at_ns, previous_ns) << "records out of time order";
        previous_ns = segment.at_ns;
        EXPECT_EQ(big(ip, 0, 1), 0x45U);
        EXPECT_EQ(big(ip, 2, 2), captured) << "IPv4 total length";
        EXPECT_EQ(big(ip, 6, 2), 0x4000U) << "DF, no fragment offset";
        EXPECT_EQ(big(ip, 8, 1), 64U);
        EXPECT_EQ(big(ip, 9, 1), 6U);
        EXPECT_EQ(ones_complement_sum(ip.substr(0, 20)), 0xffffU) << "IPv4 header checksum";
        segment.source = Endpoint{big(ip, 12, 4), static_cast<std::uint16_t>(big(ip, 20, 2))};
        segment.destination = Endpoint{big(ip, 16, 4), static_cast<std::uint16_t>(big(ip, 22, 2))};
        const std::string_view tcp = ip.substr(20);
        segment.sequence = big(tcp, 4, 4);
        segment.acknowledgement = big(tcp, 8, 4);
        const std::size_t header = (big(tcp, 12, 1) >> 4) * 4;
        EXPECT_EQ(header, 20U);
        segment.flags = static_cast<std::uint8_t>(big(tcp, 13, 1));
        segment.payload = std::string(tcp.substr(header));
        std::string pseudo = std::string(ip.substr(12, 8));
        pseudo += '\0';
        pseudo += '\x06';
        pseudo += static_cast<char>(tcp.size() >> 8);
        pseudo += static_cast<char>(tcp.size() & 0xff);
        EXPECT_EQ(ones_complement_sum(tcp, ones_complement_sum(pseudo)), 0xffffU)
            << "TCP checksum of record " << segments.size();
        segments.push_back(std::move(segment));
    }
    return segments;
}

/// What one direction of one connection carried, as the checks below rebuild it.
struct Stream {
    std::optional<std::uint32_t> initial_sequence;
    std::uint32_t next_sequence = 0;
    std::string payload;
    std::vector<std::uint8_t> flags;
};

using StreamKey = std::pair<Endpoint, Endpoint>;

/// Checks sequence and acknowledgement numbers across the capture and reassembles each
/// direction. Connections on reused ports are not expected in the runs checked here.
std::map<StreamKey, Stream> streams_of(const std::vector<Segment>& segments) {
    std::map<StreamKey, Stream> streams;
    for (std::size_t i = 0; i < segments.size(); ++i) {
        const Segment& segment = segments[i];
        Stream& out = streams[{segment.source, segment.destination}];
        const Stream& in = streams[{segment.destination, segment.source}];
        out.flags.push_back(segment.flags);
        if ((segment.flags & kSyn) != 0) {
            // A first SYN sets the number; a retransmitted one must repeat it.
            if (out.initial_sequence) {
                EXPECT_EQ(segment.sequence, *out.initial_sequence) << "SYN again, record " << i;
                EXPECT_EQ(out.next_sequence, *out.initial_sequence + 1);
            }
            out.initial_sequence = segment.sequence;
            out.next_sequence = segment.sequence;
        } else if (out.initial_sequence) {
            EXPECT_EQ(segment.sequence, out.next_sequence) << "sequence gap, record " << i;
        } else {
            // Only an RST answering a SYN speaks before its own SYN (RFC 793 §3.4).
            EXPECT_NE(segment.flags & kRst, 0) << "no SYN before record " << i;
            EXPECT_EQ(segment.sequence, 0U);
        }
        if ((segment.flags & kAck) != 0) {
            EXPECT_TRUE(in.initial_sequence.has_value()) << "ACK before the peer's SYN, " << i;
            EXPECT_EQ(segment.acknowledgement, in.next_sequence) << "ack, record " << i;
        }
        out.payload += segment.payload;
        out.next_sequence += static_cast<std::uint32_t>(segment.payload.size());
        out.next_sequence += (segment.flags & kSyn) != 0 ? 1 : 0;
        out.next_sequence += (segment.flags & kFin) != 0 ? 1 : 0;
    }
    return streams;
}

// ---- hand-made packets ------------------------------------------------------------------------

const Endpoint kClient{0x7f000001U, 32768};
const Endpoint kServer{0x7f000001U, 25};

WirePacket packet(std::int64_t at_ns,
                  Endpoint source,
                  Endpoint destination,
                  std::uint8_t flags,
                  std::string_view payload = {}) {
    WirePacket made;
    made.at = model::TimePoint(model::Duration(at_ns));
    made.source = source;
    made.destination = destination;
    made.flags = flags;
    made.payload = std::as_bytes(std::span(payload.data(), payload.size()));
    return made;
}

PcapWriter dialogue() {
    PcapWriter writer;
    writer.add(packet(1'000, kClient, kServer, kSyn));
    writer.add(packet(2'000, kServer, kClient, kSyn | kAck));
    writer.add(packet(3'000, kClient, kServer, kAck));
    writer.add(packet(4'000, kServer, kClient, kPsh | kAck, "220 ready\r\n"));
    writer.add(packet(5'000, kClient, kServer, kAck));
    writer.add(packet(1'000'000'006'000, kClient, kServer, kPsh | kAck, "QUIT\r\n"));
    writer.add(packet(1'000'000'007'000, kClient, kServer, kFin | kAck));
    writer.add(packet(1'000'000'008'000, kServer, kClient, kFin | kAck));
    return writer;
}

TEST(Pcap, WritesAHeaderAndOneVerifiedRecordPerPacket) {
    const PcapWriter writer = dialogue();
    EXPECT_EQ(writer.packets(), 8U);
    const std::string file = writer.bytes();
    // The global header, byte for byte: magic, 2.4, zone, figures, snaplen, LINKTYPE_RAW.
    EXPECT_EQ(file.substr(0, 24),
              std::string("\x4d\x3c\xb2\xa1\x02\x00\x04\x00"
                          "\x00\x00\x00\x00\x00\x00\x00\x00"
                          "\x00\x00\x04\x00\x65\x00\x00\x00",
                          24));
    const std::vector<Segment> segments = parse(file);
    ASSERT_EQ(segments.size(), 8U);
    EXPECT_EQ(segments[5].at_ns, 1'000'000'006'000U);
    EXPECT_EQ(segments[0].source, kClient);
    EXPECT_EQ(segments[0].destination, kServer);
    EXPECT_EQ(segments[0].acknowledgement, 0U);  // a first SYN acknowledges nothing
    const auto streams = streams_of(segments);
    EXPECT_EQ(streams.at({kServer, kClient}).payload, "220 ready\r\n");
    EXPECT_EQ(streams.at({kClient, kServer}).payload, "QUIT\r\n");
    // The two directions start from different numbers.
    EXPECT_NE(segments[0].sequence, segments[1].sequence);
}

TEST(Pcap, SamePacketsGiveTheSameFile) {
    EXPECT_EQ(dialogue().bytes(), dialogue().bytes());
    EXPECT_EQ(PcapWriter().bytes().size(), 24U);
}

TEST(Pcap, SplitsAPayloadLargerThanOneIpv4Packet) {
    std::string big_payload(150'000, 'x');
    for (std::size_t i = 0; i < big_payload.size(); ++i) {
        big_payload[i] = static_cast<char>('a' + i % 26);
    }
    PcapWriter writer;
    writer.add(packet(1, kClient, kServer, kSyn));
    writer.add(packet(2, kServer, kClient, kSyn | kAck));
    writer.add(packet(3, kClient, kServer, kAck));
    writer.add(packet(4, kClient, kServer, kFin | kPsh | kAck, big_payload));
    writer.add(packet(5, kServer, kClient, kAck));
    const std::vector<Segment> segments = parse(writer.bytes());
    ASSERT_EQ(segments.size(), 7U);  // 65495 + 65495 + 19010 bytes
    EXPECT_EQ(writer.packets(), 7U);
    EXPECT_EQ(segments[3].payload.size(), 65495U);
    EXPECT_EQ(segments[3].flags, kAck);  // FIN and PSH only on the last piece
    EXPECT_EQ(segments[4].flags, kAck);
    EXPECT_EQ(segments[5].flags, kFin | kPsh | kAck);
    const auto streams = streams_of(segments);
    EXPECT_EQ(streams.at({kClient, kServer}).payload, big_payload);
}

TEST(Pcap, RetransmittedSynKeepsItsNumberAndANewConnectionGetsANewOne) {
    PcapWriter writer;
    writer.add(packet(1, kClient, kServer, kSyn));
    writer.add(packet(2, kClient, kServer, kSyn));  // retransmission
    writer.add(packet(3, kServer, kClient, kSyn | kAck));
    writer.add(packet(4, kClient, kServer, kAck));
    writer.add(packet(5, kClient, kServer, kRst | kAck));
    writer.add(packet(6, kClient, kServer, kSyn));  // the same ports again, a new connection
    writer.add(packet(7, kServer, kClient, kRst | kAck));
    const std::vector<Segment> segments = parse(writer.bytes());
    ASSERT_EQ(segments.size(), 7U);
    EXPECT_EQ(segments[1].sequence, segments[0].sequence);
    EXPECT_EQ(segments[2].acknowledgement, segments[0].sequence + 1);
    EXPECT_NE(segments[5].sequence, segments[0].sequence);
    // The refusal of the new SYN: sequence 0 and the new SYN acknowledged (RFC 793 §3.4).
    EXPECT_EQ(segments[6].sequence, 0U);
    EXPECT_EQ(segments[6].acknowledgement, segments[5].sequence + 1);
}

TEST(Pcap, LeavesOutAnAckThatAcknowledgesNothingNew) {
    PcapWriter writer;
    writer.add(packet(1, kClient, kServer, kSyn));
    writer.add(packet(2, kServer, kClient, kSyn | kAck));
    writer.add(packet(3, kClient, kServer, kAck));
    writer.add(packet(4, kClient, kServer, kPsh | kAck, "one"));
    writer.add(packet(5, kClient, kServer, kPsh | kAck, "two"));
    writer.add(packet(6, kServer, kClient, kAck));  // for "one", but covers "two" as well
    writer.add(packet(7, kServer, kClient, kAck));  // for "two": nothing new, left out
    writer.add(packet(8, kServer, kClient, kFin | kAck));
    const std::vector<Segment> segments = parse(writer.bytes());
    EXPECT_EQ(writer.packets(), 7U);
    ASSERT_EQ(segments.size(), 7U);
    EXPECT_EQ(segments[5].at_ns, 6U);
    EXPECT_EQ(segments[6].flags, kFin | kAck);
    static_cast<void>(streams_of(segments));
}

// Goal: the parser above would notice a damaged capture, so its silence means something.
TEST(Pcap, TheCheckingParserNoticesACorruptedByte) {
    const std::string file = dialogue().bytes();
    std::string damaged = file;
    damaged[damaged.size() - 1] ^= 0x01;  // the last record's urgent pointer
    EXPECT_NONFATAL_FAILURE(static_cast<void>(parse(damaged)), "TCP checksum");
    damaged = file;
    damaged[24 + 16 + 4] ^= 0x01;  // the first record's IPv4 identification
    EXPECT_NONFATAL_FAILURE(static_cast<void>(parse(damaged)), "IPv4 header checksum");
}

// ---- real runs on sim -------------------------------------------------------------------------

struct Captured {
    conformance::RunOutcome outcome;
    std::string file;
    std::size_t packets = 0;
};

std::optional<conformance::Scenario> scenario_at(const std::string& relative) {
    const auto path =
        std::filesystem::path(__FILE__).parent_path() / "../../../scenarios" / relative;
    auto loaded = conformance::load_scenario_file(path.string());
    if (const auto* error = std::get_if<std::string>(&loaded)) {
        ADD_FAILURE() << relative << ": " << *error;
        return std::nullopt;
    }
    return std::get<conformance::Scenario>(std::move(loaded));
}

/// Runs `relative` on sim under its first profile with a PcapWriter on the tap.
std::optional<Captured> capture(const std::string& relative) {
    const auto scenario = scenario_at(relative);
    if (!scenario) {
        return std::nullopt;
    }
    PcapWriter writer;
    conformance::SimRunOptions options;
    options.packet_tap = [&writer](const WirePacket& wire) { writer.add(wire); };
    Captured captured;
    captured.outcome = conformance::run_on_sim(*scenario, scenario->profiles.front(), options);
    EXPECT_EQ(captured.outcome.status, conformance::RunStatus::passed) << relative;
    captured.file = writer.bytes();
    captured.packets = writer.packets();
    return captured;
}

std::size_t count_events(const conformance::RunOutcome& outcome, std::string_view name) {
    const std::string needle = "\"ev\":\"" + std::string(name) + "\"";
    std::size_t count = 0;
    for (const std::string& line : outcome.trace) {
        count += line.find(needle) != std::string::npos ? 1U : 0U;
    }
    return count;
}

std::size_t count_flags(const std::vector<Segment>& segments, std::uint8_t flags) {
    std::size_t count = 0;
    for (const Segment& segment : segments) {
        count += (segment.flags & flags) == flags ? 1U : 0U;
    }
    return count;
}

TEST(Pcap, SmtpSessionReassemblesToTheDialogue) {
    const auto captured = capture("smtp/m32_seed_example.json");
    ASSERT_TRUE(captured);
    const std::vector<Segment> segments = parse(captured->file);
    ASSERT_EQ(segments.size(), captured->packets);
    ASSERT_GE(segments.size(), 3U);
    // The handshake opens the capture.
    EXPECT_EQ(segments[0].flags, kSyn);
    EXPECT_EQ(segments[1].flags, kSyn | kAck);
    EXPECT_EQ(segments[2].flags, kAck);
    const Endpoint client = segments[0].source;
    const Endpoint server = segments[0].destination;
    const auto streams = streams_of(segments);
    const std::string& commands = streams.at({client, server}).payload;
    const std::string& replies = streams.at({server, client}).payload;
    EXPECT_EQ(replies.substr(0, 4), "220 ");
    std::size_t from = 0;
    for (const std::string_view line : {"EHLO client.faultline.test\r\n",
                                        "MAIL FROM:<jane@contoso.com>\r\n",
                                        "RCPT TO:<ben@contoso.com>\r\n",
                                        "DATA\r\n",
                                        "QUIT\r\n"}) {
        const std::size_t found = commands.find(line, from);
        EXPECT_NE(found, std::string::npos) << line;
        from = found == std::string::npos ? from : found + line.size();
    }
    EXPECT_NE(commands.find("Subject: =?utf-8?B?dGVzdCBtZXNzYWdlIDHihpDihpHihpLihpM=?="),
              std::string::npos);
    for (const std::string_view code : {"\r\n250", "\r\n354 ", "\r\n221 "}) {
        EXPECT_NE(replies.find(code), std::string::npos) << code.substr(2);
    }
    EXPECT_EQ(count_flags(segments, kSyn), 2U);  // SYN and SYN-ACK, one connection
    // The client closes after QUIT without reading the 221, so that reply meets a closed
    // socket, which answers with an RST, as the trace says.
    EXPECT_EQ(count_flags(segments, kRst), count_events(captured->outcome, "rst"));
    EXPECT_EQ(count_flags(segments, kFin | kAck), 2U);
}

TEST(Pcap, SendScenariosWithPartialSendsAndResetsStayConsistent) {
    const std::pair<std::string, std::size_t> cases[] = {
        {"send/s32_reset_during_pending_send.json", 1},
        {"send/s28_reset_after_bytes_send_all.json", 1},
        {"send/s09b_every_send_partial.json", 0},
    };
    for (const auto& [relative, reset_faults_expected] : cases) {
        SCOPED_TRACE(relative);
        const auto captured = capture(relative);
        ASSERT_TRUE(captured);
        const std::vector<Segment> segments = parse(captured->file);
        const auto streams = streams_of(segments);
        // A reset fault is an RST to each end (both are alive when it fires in these runs);
        // each RST an end sends itself is traced as "rst".
        std::size_t reset_faults = 0;
        for (const std::string& line : captured->outcome.trace) {
            reset_faults += line.find("\"ev\":\"fault\"") != std::string::npos &&
                                    line.find("\"kind\":\"reset\"") != std::string::npos
                                ? 1U
                                : 0U;
        }
        EXPECT_EQ(reset_faults, reset_faults_expected);
        const std::size_t rst_sent = count_events(captured->outcome, "rst");
        EXPECT_EQ(count_flags(segments, kRst), 2 * reset_faults + rst_sent);
        // What reached each receiver, as the trace counts its segments' bytes.
        std::uint64_t traced_bytes = 0;
        for (const std::string& line : captured->outcome.trace) {
            if (line.find("\"ev\":\"segment\"") != std::string::npos ||
                line.find("\"ev\":\"segment_refused\"") != std::string::npos) {
                const std::size_t at = line.find("\"bytes\":");
                traced_bytes += std::stoull(line.substr(at + 8));
            }
        }
        std::uint64_t captured_bytes = 0;
        for (const auto& [key, stream] : streams) {
            captured_bytes += stream.payload.size();
        }
        EXPECT_EQ(captured_bytes, traced_bytes);
    }
}

TEST(Pcap, HalfOpenScansAreSynSynAckRstFromTheScanner) {
    const auto captured = capture("accept/a20_half_open_scans_interleaved.json");
    ASSERT_TRUE(captured);
    const std::vector<Segment> segments = parse(captured->file);
    const auto streams = streams_of(segments);
    std::size_t scans = 0;
    std::size_t connections = 0;
    for (const auto& [key, stream] : streams) {
        if (key.first.address == 0x7f000002U) {
            ++scans;
            EXPECT_EQ(stream.flags, (std::vector<std::uint8_t>{kSyn, kRst}));
            EXPECT_EQ(streams.at({key.second, key.first}).flags,
                      (std::vector<std::uint8_t>{kSyn | kAck}));
        } else if (!stream.flags.empty() && stream.flags.front() == kSyn) {
            ++connections;
        }
    }
    // Each of the three scans meets every open listener (the harness has two).
    EXPECT_EQ(scans, count_events(captured->outcome, "scan_syn"));
    EXPECT_GE(scans, 3U);
    EXPECT_EQ(connections, 3U);
}

// Goal: the tap only watches: the same scenario gives the same trace hash with a capture and
// without one, under every profile it names.
TEST(Pcap, CapturingLeavesTheTraceHashUnchanged) {
    for (const std::string relative : {"smtp/m32_seed_example.json",
                                       "send/s32_reset_during_pending_send.json",
                                       "send/s28_reset_after_bytes_send_all.json",
                                       "accept/a20_half_open_scans_interleaved.json"}) {
        const auto scenario = scenario_at(relative);
        ASSERT_TRUE(scenario);
        for (const std::string& profile : scenario->profiles) {
            SCOPED_TRACE(relative + " " + profile);
            PcapWriter writer;
            conformance::SimRunOptions tapped;
            tapped.packet_tap = [&writer](const WirePacket& wire) { writer.add(wire); };
            const auto with_tap = conformance::run_on_sim(*scenario, profile, tapped);
            const auto without =
                conformance::run_on_sim(*scenario, profile, conformance::SimRunOptions{});
            EXPECT_FALSE(without.trace_hash.empty());
            EXPECT_EQ(with_tap.trace_hash, without.trace_hash);
            EXPECT_EQ(with_tap.virtual_ns, without.virtual_ns);
            EXPECT_GT(writer.packets(), 0U);
        }
    }
}

}  // namespace
}  // namespace faultline::views
