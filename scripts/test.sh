#!/usr/bin/env bash
# Runs the whole test suite (after installing what it needs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# All suites use Swift Testing; skipping the XCTest pass avoids an empty report.
swift test --skip-build --disable-xctest 2>&1 | tee "$log"
# The allocation check runs the perf binary under the malloc interposer.
scripts/alloc-check.sh
# Real WebRTC peers (aiortc) against the real server.
RINGSFU_BIN="$(swift build --show-bin-path)/ringsfu" .venv/bin/python -m pytest -q Tests/peers 2>&1 | tee -a "$log"
count="$(sed -n 's/.*Test run with \([0-9]*\) tests\{0,1\} .*passed.*/\1/p' "$log" | tail -1)"
peers="$(sed -n 's/^\([0-9]*\) passed.*/\1/p' "$log" | tail -1)"
echo "tests: $((${count:-0} + ${peers:-0} + 1)) passed, 0 failed"
