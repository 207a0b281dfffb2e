#!/usr/bin/env bash
# Checks `faultline replay --pcap` captures with Wireshark's own dissectors (tshark): no malformed
# packet, no checksum or other expert error, no sequence-analysis complaint, the SMTP dialogue of
# scenarios/smtp/m32_seed_example.json decoded as the scenario expects it, and for fault-heavy
# runs (half-open scans, a reset fault) SYN, SYN-ACK and RST counts that match the run's trace.
# Usage: tools/test_pcap.sh BUILD_DIR SOURCE_DIR. Exit 0 pass, 1 fail, 77 skipped (no tshark,
# outside CI; under CI=true a missing tshark is a failure).
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
build=$1
source=$2
faultline=$build/tools/cli/faultline

if ! command -v tshark >/dev/null 2>&1; then
    if [[ "${CI:-}" == "true" ]]; then
        echo "test_pcap: tshark is missing (tools/setup installs it); CI must run this check" >&2
        exit 1
    fi
    echo "test_pcap: SKIP, tshark is not installed (tools/setup installs it)"
    exit 77
fi
if [[ ! -x $faultline ]]; then
    echo "test_pcap: $faultline is missing: build the faultline_cli target first" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Failures are lines in a file, so that checks inside $(...) subshells count too.
fail() {
    echo "FAIL  $*" >&2
    echo "$*" >>"$tmp/failures"
}

# tshark without its warning about running as root, which is harmless here (it only reads
# files); any other complaint or a non-zero exit (a damaged file) fails the check.
shark() {
    local status=0
    tshark "$@" 2>"$tmp/tshark.err" || status=$?
    grep -v 'Running as user "root"' "$tmp/tshark.err" >&2 || true
    if [[ $status -ne 0 ]]; then
        fail "tshark $* exited with $status"
    fi
}

# Lines of a trace that are the event `$2` (and contain `$3`, when given).
count_events() {
    local trace=$1 event=$2 containing=${3:-}
    grep -F "\"ev\":\"$event\"" "$trace" | grep -cF -- "$containing" || true
}

count_packets() {
    shark -r "$1" -Y "$2" -T fields -e frame.number | grep -c . || true
}

# Runs scenario $1 (relative to scenarios/) with a capture; sets pcap and trace.
capture() {
    local name
    name=$(basename "$1" .json)
    pcap=$tmp/$name.pcap
    trace=$tmp/$name.jsonl
    if ! "$faultline" replay "$source/scenarios/$1" --pcap "$pcap" --trace "$trace" \
        >"$tmp/$name.out" 2>&1; then
        cat "$tmp/$name.out" >&2
        fail "$1: replay did not pass"
    fi
    if [[ ! -s $pcap ]]; then
        fail "$1: no capture written"
        return 1
    fi
}

# (a) Checksums verified (off by default in Wireshark), nothing malformed, no expert error, and
# no sequence-analysis flag: no lost, duplicate, out-of-order or unseen-ACK segments.
check_clean() {
    local label=$1 allowed_analysis=${2:-0} bad analysis
    bad=$(shark -r "$pcap" -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE \
        -Y '_ws.malformed || _ws.expert.severity >= error')
    if [[ -n $bad ]]; then
        echo "$bad" >&2
        fail "$label: malformed packets or expert errors"
    fi
    analysis=$(count_packets "$pcap" 'tcp.analysis.flags && !tcp.analysis.window_update')
    if [[ $analysis -ne $allowed_analysis ]]; then
        shark -r "$pcap" -Y 'tcp.analysis.flags' >&2
        fail "$label: $analysis packets flagged by TCP sequence analysis"
    fi
}

# SYN, SYN-ACK and RST counts from the trace: every connect sends a SYN and every dropped SYN
# that did not end the attempt is sent again; each scan (scan_syn, or scan_dropped when the
# backlog was full) sends a SYN, is answered with SYN-ACK unless dropped, and sends an RST; an
# end that resets its connection is an "rst" event; a reset fault is an RST to each end (the
# scenarios checked here have both ends alive when it fires).
check_counts() {
    local label=$1 connects dropped timed_out scans scans_dropped established rsts scan_rsts
    local reset_faults syn syn_ack rst
    connects=$(count_events "$trace" connect)
    dropped=$(count_events "$trace" syn_dropped)
    timed_out=$(count_events "$trace" connect_failed '"timed out"')
    scans=$(count_events "$trace" scan_syn)
    scans_dropped=$(count_events "$trace" scan_dropped)
    established=$(count_events "$trace" established '"side":"client"')
    rsts=$(count_events "$trace" rst)
    scan_rsts=$(count_events "$trace" scan_rst)
    reset_faults=$(count_events "$trace" fault '"kind":"reset"')
    syn=$(count_packets "$pcap" 'tcp.flags.syn == 1 && tcp.flags.ack == 0')
    syn_ack=$(count_packets "$pcap" 'tcp.flags.syn == 1 && tcp.flags.ack == 1')
    rst=$(count_packets "$pcap" 'tcp.flags.reset == 1')
    local want_syn=$((connects + dropped - timed_out + scans + scans_dropped))
    local want_syn_ack=$((established + scans))
    local want_rst=$((rsts + scan_rsts + 2 * reset_faults))
    echo "$label: SYN $syn (trace $want_syn), SYN-ACK $syn_ack (trace $want_syn_ack)," \
        "RST $rst (trace $want_rst)"
    [[ $syn -eq $want_syn ]] || fail "$label: $syn SYNs, the trace says $want_syn"
    [[ $syn_ack -eq $want_syn_ack ]] ||
        fail "$label: $syn_ack SYN-ACKs, the trace says $want_syn_ack"
    [[ $rst -eq $want_rst ]] || fail "$label: $rst RSTs, the trace says $want_rst"
}

# Sets port (the server's: where the first SYN went) and commands (the SMTP commands tshark
# decodes in $pcap, in order, each followed by a space).
smtp_commands() {
    port=$(shark -r "$pcap" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' -T fields \
        -e tcp.dstport | head -n 1)
    commands=$(shark -r "$pcap" -d "tcp.port==$port,smtp" -Y 'smtp.req.command' -T fields \
        -e smtp.req.command | tr '\n' ' ')
}

# ---- the SMTP dialogue --------------------------------------------------------------------
m32=smtp/m32_seed_example.json
if capture "$m32"; then
    check_clean m32
    check_counts m32
    smtp_commands
    # What the scenario expects the server to have received: the verbs of smtp_commands.
    expected=$(python3 -c '
import json, sys
with open(sys.argv[1]) as f:
    sessions = json.load(f)["expect"]["smtp_commands"]
print(" ".join(line.split()[0].upper() for line in sessions[0]), end=" ")
' "$source/scenarios/$m32")
    echo "m32: SMTP commands decoded: $commands(expected: $expected)"
    [[ "$commands" == "$expected" ]] ||
        fail "m32: decoded commands '$commands', expected '$expected'"
    [[ "$expected" == "EHLO MAIL RCPT DATA QUIT " ]] || fail "m32: the scenario's commands changed"
    codes=$(shark -r "$pcap" -d "tcp.port==$port,smtp" -Y 'smtp.response.code' -T fields \
        -e smtp.response.code | tr ',' '\n' | sort -u | tr '\n' ' ')
    echo "m32: SMTP reply codes decoded: $codes"
    for code in 220 250 354 221; do
        [[ " $codes" == *" $code "* ]] || fail "m32: reply code $code not decoded"
    done
    first_reply=$(shark -r "$pcap" -d "tcp.port==$port,smtp" -Y 'smtp.response.code' -T fields \
        -e smtp.response.code | head -n 1)
    [[ "$first_reply" == 220 ]] ||
        fail "m32: the first reply is '$first_reply', not the 220 greeting"
fi

# ---- fault-heavy runs ---------------------------------------------------------------------
if capture accept/a20_half_open_scans_interleaved.json; then
    check_clean a20
    check_counts a20
    scanner_rsts=$(count_packets "$pcap" 'tcp.flags.reset == 1 && ip.src == 127.0.0.2')
    [[ $scanner_rsts -ge 3 ]] || fail "a20: $scanner_rsts RSTs from the scanner, expected 3 or more"
fi
if capture send/s32_reset_during_pending_send.json; then
    check_clean s32
    check_counts s32
fi
# A silent host: the SYN and its retransmissions, which Wireshark rightly flags as such.
if capture send/s12d_connect_timeout_unreachable.json; then
    retransmissions=$(($(count_events "$trace" syn_dropped) - 1))
    check_clean s12d "$retransmissions"
    check_counts s12d
fi

# The failing regression example (tools/examples/failing: its replay exits 1): every client send
# cut to 5 bytes, yet tshark reassembles the dialogue, and the capture is as clean as any.
m11=$source/tools/examples/failing/m11_quit_cut_expected_undelivered.json
pcap=$tmp/m11.pcap
trace=$tmp/m11.jsonl
status=0
"$faultline" replay "$m11" --pcap "$pcap" --trace "$trace" >"$tmp/m11.out" 2>&1 || status=$?
if [[ $status -ne 1 || ! -s $pcap ]]; then
    fail "m11 (failing example): replay exited $status, expected 1, or wrote no capture"
else
    check_clean m11
    check_counts m11
    smtp_commands
    echo "m11: SMTP commands decoded from 5-byte segments: $commands"
    # tshark's SMTP dissector does not see an end of data split across segments ("\r\n" and
    # ".\r\n" arrive apart here), so it reads the QUIT after it as message text: the commands
    # up to DATA must decode, and the reassembled client stream must end with QUIT.
    [[ "$commands" == "EHLO MAIL RCPT DATA "* ]] ||
        fail "m11: decoded commands '$commands', expected 'EHLO MAIL RCPT DATA ...'"
    client_stream=$(shark -r "$pcap" -qz follow,tcp,raw,0 | grep -E '^[0-9a-f]+$' | tr -d '\n')
    [[ "$client_stream" == *0d0a2e0d0a515549540d0a ]] ||
        fail "m11: the client's stream does not end with the end of data and QUIT"
fi

if [[ -s $tmp/failures ]]; then
    echo "test_pcap: $(wc -l <"$tmp/failures") check(s) failed" >&2
    exit 1
fi
echo "test_pcap: all captures decode cleanly"
