#!/usr/bin/env bash
# Runs the whole test suite (after installing what it needs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
swift test --skip-build --parallel
# The allocation check runs the perf binary under the malloc interposer.
scripts/alloc-check.sh
