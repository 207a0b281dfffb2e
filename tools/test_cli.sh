#!/usr/bin/env bash
# Goal: the CLI's exit codes and error format, end to end. Bad input exits 2 with
# "file:line:col: /pointer: message"; a passing run exits 0 and writes JUnit; determinism agrees.
# Usage: tools/test_cli.sh BUILD_DIR SOURCE_DIR
set -u
cli=$1/tools/cli/faultline
src=$2
data=$src/tools/test_data
failures=0
check() {  # check NAME EXPECTED_EXIT PATTERN -- COMMAND...
    local name=$1 expected=$2 pattern=$3; shift 4
    local output; output=$("$@" 2>&1); local code=$?
    if [ "$code" -ne "$expected" ]; then
        echo "FAIL $name: exit $code, expected $expected"; echo "$output" | head -20; failures=$((failures + 1)); return
    fi
    if ! grep -qE -- "$pattern" <<<"$output"; then
        echo "FAIL $name: output lacks /$pattern/"; echo "$output" | head -20; failures=$((failures + 1)); return
    fi
    echo "ok   $name"
}
check unknown_key 2 'malformed_unknown_key.json:5:68: /threads/0/steps/0/colour: unknown key "colour" in step' -- "$cli" validate "$data/malformed_unknown_key.json"
check negative_size 2 'malformed_negative_size.json:5:36: /network/send_buffer_bytes: must be at least 1' -- "$cli" validate "$data/malformed_negative_size.json"
check bad_json 2 'malformed_syntax.json:4:1: \(syntax\): syntax error' -- "$cli" run "$data/malformed_syntax.json"
check wrong_type 2 'malformed_wrong_type.json:4:14: /clauses: expected an array' -- "$cli" validate "$data/malformed_wrong_type.json"
check usage 2 'usage: faultline' -- "$cli" frobnicate
check bad_option 2 'unknown option --nope' -- "$cli" run "$src/scenarios" --nope
check missing_file 2 'cannot read' -- "$cli" validate "$data/does_not_exist.json"
junit=$(mktemp)
check run_pass 0 ' passed, 0 failed' -- "$cli" run "$src/scenarios/send/s09_partial_completion.json" --junit "$junit"
if grep -q '<testcase' "$junit" && grep -q 'tests="4"' "$junit"; then echo "ok   junit"; else echo "FAIL junit"; cat "$junit"; failures=$((failures + 1)); fi
rm -f "$junit"
check determinism 0 '1 identical|2 identical' -- "$cli" determinism "$src/scenarios/send/s09_partial_completion.json" --runs 3
check replay 0 'end: [0-9]+ events, hash [0-9a-f]{16}' -- "$cli" replay "$src/scenarios/send/s09_partial_completion.json"
fuzz_out=$(mktemp -d)
check fuzz_clean 0 'fuzz: shard 0/1, 2 job\(s\), seeds from 7: 60 runs.*0 failed' -- "$cli" fuzz --runs 60 --seed 7 --jobs 2 --out "$fuzz_out"
check fuzz_report 0 'never fired: faults .*; paths ' -- "$cli" fuzz --runs 20 --family smtp --profile documented --out "$fuzz_out"
check fuzz_bad_shard 2 '--shard I/N needs 0 <= I < N' -- "$cli" fuzz --shard 4/4
check fuzz_bad_family 2 'unknown family "mail"' -- "$cli" fuzz --runs 1 --family mail --out "$fuzz_out"
check fuzz_both_budgets 2 'not both' -- "$cli" fuzz --runs 1 --seconds 1
if [ -z "$(ls -A "$fuzz_out")" ]; then echo "ok   fuzz_no_findings"; else echo "FAIL fuzz wrote findings"; ls "$fuzz_out"; failures=$((failures + 1)); fi
rm -rf "$fuzz_out"
record_out=$(mktemp -d)
check record_one 0 'replay on sim observed the same.*' -- "$cli" run "$src/scenarios/smtp/m32_seed_example.json" --transport real --record "$record_out/m32_rec.json"
check record_replays 0 ' passed, 0 failed' -- "$cli" run "$record_out/m32_rec.json" --transport sim
check record_folder 0 '2 recorded: 2 replay the same on sim' -- "$cli" run "$src/scenarios/send/s09_partial_completion.json" "$src/scenarios/accept/a04_success_result_fields.json" --transport real --record "$record_out/folder"
check record_needs_real 2 '--record records real runs' -- "$cli" run "$src/scenarios/send/s09_partial_completion.json" --record "$record_out/x.json"
check record_one_file 2 'names one file' -- "$cli" run "$src/scenarios/send" --transport real --record "$record_out/x.json"
rm -rf "$record_out"
check smtp_bad_script 2 'smtp_script_bad.json: /steps/RCPT/colour: unknown key "colour"' -- "$cli" smtp-server --listen 127.0.0.1:0 --script "$data/smtp_script_bad.json" --max-seconds 1

# smtp-server end to end: a scripted per-recipient 550, the message recorded with dot-stuffing
# undone. The server's stdout comes through a FIFO; every read has a deadline.
work=$(mktemp -d)
mkfifo "$work/out"
"$cli" smtp-server --listen 127.0.0.1:0 --script "$data/smtp_script_reject_one.json" --record "$work/rec" --max-sessions 1 --max-seconds 20 > "$work/out" 2>&1 &
server=$!
exec 4<"$work/out"
smtp_ok=1
IFS= read -r -t 10 first <&4 || smtp_ok=0
port=${first##*:}
replies=""
if [ "$smtp_ok" = 1 ] && exec 3<>"/dev/tcp/127.0.0.1/$port"; then
    reply() { local line; IFS= read -r -t 10 line <&3 || return 1; replies+="${line%$'\r'} | "
              while [ "${line:3:1}" = "-" ]; do IFS= read -r -t 10 line <&3 || return 1; done; }
    reply && printf 'EHLO me\r\n' >&3 && reply && printf 'MAIL FROM:<a@example.test>\r\n' >&3 && reply &&
    printf 'RCPT TO:<nobody@example.test>\r\n' >&3 && reply && printf 'RCPT TO:<b@example.test>\r\n' >&3 && reply &&
    printf 'DATA\r\n' >&3 && reply && printf 'Subject: hi\r\n\r\n..dot\r\n.\r\n' >&3 && reply &&
    printf 'QUIT\r\n' >&3 && reply || smtp_ok=0
    exec 3>&-
else
    smtp_ok=0
fi
wait "$server"; server_status=$?
exec 4<&-
expected_replies='220 scripted.test ready | 250-mx.faultline.test | 250 2.1.0 Ok | 550 5.1.1 no such user | 250 2.1.5 Ok | 354 End data with <CR><LF>.<CR><LF> | 250 2.0.0 Ok: queued | 221 2.0.0 Bye | '
if [ "$smtp_ok" = 1 ] && [ "$server_status" = 0 ] && [ "$replies" = "$expected_replies" ] &&
   [ "$(printf 'Subject: hi\r\n\r\n.dot\r\n')" = "$(cat "$work/rec/session-1-message-1.eml")" ] &&
   grep -q '"reply_code": 550' "$work/rec/session-1.json"; then
    echo "ok   smtp_server"
else
    echo "FAIL smtp_server: status $server_status, replies: $replies"; failures=$((failures + 1))
fi
rm -rf "$work"

# send-mail against smtp-server: one recipient refused (M-16: the message still goes to the other,
# SendCompleted reports SmtpFailedRecipientException), the body's bare LFs escaped (M-29).
work=$(mktemp -d)
mkfifo "$work/out"
printf 'Hello.\n.leading dot\n' > "$work/body.txt"
"$cli" smtp-server --listen 127.0.0.1:0 --script "$data/smtp_script_reject_one.json" --record "$work/rec" --max-sessions 1 --max-seconds 20 > "$work/out" 2>&1 &
server=$!
exec 4<"$work/out"
port=""
IFS= read -r -t 10 first <&4 && port=${first##*:}
sent=$("$cli" send-mail --host 127.0.0.1 --port "${port:-1}" --from a@example.test --to nobody@example.test --to b@example.test --subject hi --body-file "$work/body.txt" --timeout 10000 2>&1); sent_status=$?
wait "$server"
exec 4<&-
if [ "$sent_status" = 1 ] && grep -q '"type":"SmtpFailedRecipientException"' <<<"$sent" &&
   grep -q '"delivery":"delivered"' <<<"$sent" && grep -q '"recipient":"<nobody@example.test>"' <<<"$sent" &&
   grep -q 'Hello.=0A.leading dot=0A' "$work/rec/session-1-message-1.eml"; then
    echo "ok   send_mail"
else
    echo "FAIL send_mail: exit $sent_status: $sent"; failures=$((failures + 1))
fi
rm -rf "$work"
# The views (issue #6): diff, the Trace Event timeline, results and the report, JUnit from run and
# fuzz, clause coverage. tools/test_pcap.sh and tools/test_report.sh check the pcap with tshark
# and the report in Chromium.
work=$(mktemp -d)
failing=$src/tools/examples/failing
m32=$src/scenarios/smtp/m32_seed_example.json
check replay_views 0 'timeline: .*m32.json' -- "$cli" replay "$m32" --trace "$work/a.jsonl" --chrome-trace "$work/m32.json"
"$cli" replay "$m32" --trace "$work/b.jsonl" > /dev/null
# A failing run still writes its views (and exits 1): the failing regression example.
check replay_views_failing 1 'capture: .*m11.pcap \([1-9][0-9]* packets' -- "$cli" replay "$failing/m11_quit_cut_expected_undelivered.json" --chrome-trace "$work/m11.json" --pcap "$work/m11.pcap"
if /usr/bin/python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["traceEvents"]; assert any(x["ph"]=="X" and x["name"].startswith("thread main") for x in e); assert sum(1 for x in e if x["name"].startswith("partial send"))>10' "$work/m11.json" &&
   [ "$(head -c 4 "$work/m11.pcap" | od -An -tx1 | tr -d ' ')" = "4d3cb2a1" ]; then
    echo "ok   failing_views_written"
else
    echo "FAIL failing_views_written"; failures=$((failures + 1))
fi
"$cli" replay "$m32" --seed 2 --trace "$work/seed2.jsonl" > /dev/null
check diff_same 0 '^identical: [0-9]+ events compared' -- "$cli" diff "$work/a.jsonl" "$work/b.jsonl"
check diff_seed 1 'fields that differ: seed$' -- "$cli" diff "$work/a.jsonl" "$work/seed2.jsonl"
check diff_api_only 0 '^identical' -- "$cli" diff "$work/a.jsonl" "$work/seed2.jsonl" --only api --ignore t,seq
# Sim against real: the same scenario's API events (calls, results, callbacks) agree in order.
s09=$src/scenarios/send/s09_partial_completion.json
"$cli" run "$s09" --transport sim --profile documented --trace "$work/s09_sim.jsonl" > /dev/null
"$cli" run "$s09" --transport real --profile documented --trace "$work/s09_real.jsonl" > /dev/null
check diff_sim_real 0 '^identical: [1-9][0-9]* events compared' -- "$cli" diff "$work/s09_sim.jsonl" "$work/s09_real.jsonl" --only api --ignore t,seq,thread
check diff_missing 2 'cannot read' -- "$cli" diff "$work/a.jsonl" "$work/nope.jsonl"
check diff_usage 2 'diff needs two trace files' -- "$cli" diff "$work/a.jsonl"
if /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); e=d["traceEvents"]; assert any(x["ph"]=="X" and x["name"]=="send_async client m" for x in e); assert any(x["ph"]=="s" for x in e)' "$work/m32.json"; then
    echo "ok   chrome_trace_json"
else
    echo "FAIL chrome_trace_json"; failures=$((failures + 1))
fi
check failing_examples 1 '2 scenarios, 4 runs: 0 passed, 4 failed' -- "$cli" run "$failing" --transport sim --junit "$work/failing.xml" --results "$work/r.json"
if grep -q 'tests="4" failures="4"' "$work/failing.xml" && grep -q 'replay: ./faultline replay .*m11_quit_cut_expected_undelivered.json --profile documented --seed 2336' "$work/failing.xml" &&
   /usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["runs"]; assert len(r)==4 and all(x["status"]=="failed" and x["trace"] for x in r)' "$work/r.json"; then
    echo "ok   failing_junit_and_results"
else
    echo "FAIL failing_junit_and_results"; failures=$((failures + 1))
fi
check report_html 0 'report: .*report.html \(4 runs, 4 failed\)' -- "$cli" report "$work/r.json" --html "$work/report.html"
printf '{"faultline_results": 1, "runs": [{"scenario": 5}]}' > "$work/bad.json"
check report_bad_results 2 'bad.json: ' -- "$cli" report "$work/bad.json" --html "$work/x.html"
printf 'not json' > "$work/bad.json"
check report_not_json 2 'bad.json: not JSON' -- "$cli" report "$work/bad.json" --html "$work/x.html"
check report_usage 2 'report needs RESULTS... and --html' -- "$cli" report "$work/r.json"
check fuzz_junit 0 '0 failed' -- "$cli" fuzz --runs 30 --seed 3 --out "$work/fuzz" --junit "$work/fuzz.xml"
if grep -q '<testsuite name="faultline fuzz" tests="6" failures="0"' "$work/fuzz.xml" && grep -q 'classname="fuzz.smtp"' "$work/fuzz.xml"; then
    echo "ok   fuzz_junit_file"
else
    echo "FAIL fuzz_junit_file"; cat "$work/fuzz.xml"; failures=$((failures + 1))
fi
check coverage 0 '^[0-9]+ clauses: [0-9]+ covered, 0 uncovered' -- bash -c "cd '$src' && '$cli' coverage"
check coverage_no_unknown_ids 0 '^\| S-1 \|' -- bash -c "cd '$src' && '$cli' coverage | grep -v '^cited but not in'"
if (cd "$src" && "$cli" coverage | grep -q '^cited but not in'); then
    echo "FAIL coverage: a test or scenario cites an id the clause list lacks"; (cd "$src" && "$cli" coverage | grep '^cited'); failures=$((failures + 1))
else
    echo "ok   coverage_ids_known"
fi
check coverage_no_list 2 'cannot read' -- bash -c "cd '$work' && '$cli' coverage"
check readme_coverage 0 'current' -- /usr/bin/python3 "$src/tools/readme_coverage" "$cli" --check
rm -rf "$work"
echo "$failures failed"
[ "$failures" -eq 0 ]
