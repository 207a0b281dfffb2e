#!/usr/bin/env bash
# Goal: the HTML report renders in a real browser: the page loads with no script error, its own
# render check finds a sequence diagram and a timeline for every failure, and a screenshot of it
# is a full-size, non-blank PNG.
# Method: run a passing SMTP scenario and the deliberately failing examples on sim with
# --results, turn the results into the report, then open it in headless Chromium twice (DOM
# dump, screenshot). Chromium gets no network: the page must need none.
# Usage: tools/test_report.sh BUILD_DIR SOURCE_DIR. Exit 77 (skipped) without Chromium, except
# under CI=true, where that is a failure. FAULTLINE_SCREENSHOT_DIR, if set, receives report.png.
set -euo pipefail
cli=$1/tools/cli/faultline
src=$2
width=1400
height=2000

chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
    if [ "${CI:-}" = "true" ]; then
        echo "FAIL chromium is not installed (tools/setup installs it); CI must run this test"
        exit 1
    fi
    echo "skip: chromium is not installed"
    exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The failing examples make the run exit 1; 2 would mean bad input, and 0 that nothing failed,
# which would leave the report without diagrams to check.
status=0
"$cli" run "$src/scenarios/smtp/m32_seed_example.json" "$src/tools/examples/failing" --transport sim \
    --results "$tmp/r.json" >"$tmp/run.log" 2>&1 || status=$?
if [ "$status" -ne 1 ]; then
    echo "FAIL run exited $status, expected 1 (the failing examples fail)"
    cat "$tmp/run.log"
    exit 1
fi
"$cli" report "$tmp/r.json" --html "$tmp/report.html"
echo "ok   report written ($(wc -c <"$tmp/report.html") bytes)"

# A user-data dir of our own and every background service off: nothing but the file is loaded.
browse() {
    timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$tmp/profile" "$@" "file://$tmp/report.html" 2>>"$tmp/chromium.log"
}

if ! browse --dump-dom >"$tmp/dom.html"; then
    echo "FAIL chromium --dump-dom failed"
    tail -20 "$tmp/chromium.log"
    exit 1
fi
if ! grep -q 'data-rendered="ok"' "$tmp/dom.html"; then
    echo "FAIL the page's render check did not pass: $(grep -o 'data-rendered="[^"]*"' "$tmp/dom.html" || echo 'no data-rendered')"
    exit 1
fi
if grep -q 'data-errors=' "$tmp/dom.html"; then
    echo "FAIL script errors: $(grep -o 'data-errors="[^"]*"' "$tmp/dom.html")"
    exit 1
fi
if grep -q 'data-failures="0"' "$tmp/dom.html" || ! grep -q '<svg class="seq"' "$tmp/dom.html"; then
    echo "FAIL the report shows no failure with its diagrams"
    exit 1
fi
echo "ok   rendered with no script errors ($(grep -o 'data-failures="[0-9]*"' "$tmp/dom.html"))"

if ! browse --hide-scrollbars --screenshot="$tmp/report.png" --window-size="$width,$height" >/dev/null; then
    echo "FAIL chromium --screenshot failed"
    tail -20 "$tmp/chromium.log"
    exit 1
fi
# PNG: an 8-byte signature, then the IHDR chunk whose data starts with width and height as
# big-endian 32-bit integers (bytes 16 to 23).
signature=$(od -An -tx1 -N8 "$tmp/report.png" | tr -d ' \n')
if [ "$signature" != "89504e470d0a1a0a" ]; then
    echo "FAIL the screenshot is not a PNG (signature $signature)"
    exit 1
fi
png_width=$((16#$(od -An -tx1 -j16 -N4 "$tmp/report.png" | tr -d ' \n')))
png_height=$((16#$(od -An -tx1 -j20 -N4 "$tmp/report.png" | tr -d ' \n')))
if [ "$png_width" -ne "$width" ] || [ "$png_height" -ne "$height" ]; then
    echo "FAIL the screenshot is ${png_width}x${png_height}, expected ${width}x${height}"
    exit 1
fi
# A blank page of this size compresses to a few kilobytes; the report is text, tables and
# diagrams, over a hundred.
bytes=$(wc -c <"$tmp/report.png")
if [ "$bytes" -lt 40000 ]; then
    echo "FAIL the screenshot is only $bytes bytes: a blank or unstyled page?"
    exit 1
fi
echo "ok   screenshot ${png_width}x${png_height}, $bytes bytes"

if [ -n "${FAULTLINE_SCREENSHOT_DIR:-}" ]; then
    mkdir -p "$FAULTLINE_SCREENSHOT_DIR"
    cp "$tmp/report.png" "$FAULTLINE_SCREENSHOT_DIR/report.png"
    echo "ok   copied to $FAULTLINE_SCREENSHOT_DIR/report.png"
fi
