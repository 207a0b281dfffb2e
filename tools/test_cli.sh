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
echo "$failures failed"
[ "$failures" -eq 0 ]
