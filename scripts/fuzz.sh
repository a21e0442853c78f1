#!/usr/bin/env bash
# Coverage-guided fuzzing of the forwarder's parsers (RTP and header
# extensions, RTCP, STUN, key frame detection) with libFuzzer and ASan.
#   scripts/fuzz.sh [seconds per job] [jobs]
# New inputs that reach new code are kept in .build-fuzz/corpus; a crash
# leaves crash-* in the current directory: copy it to Tests/Fuzz/corpus so
# that the regular test run replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-120}"
jobs="${2:-1}"
swift build -c release --scratch-path .build-fuzz --product RingSFUFuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld -Xlinker --allow-multiple-definition
mkdir -p .build-fuzz/corpus
cp Tests/Fuzz/corpus/* .build-fuzz/corpus/
.build-fuzz/release/RingSFUFuzz .build-fuzz/corpus -max_total_time="$seconds" -max_len=1500 \
    -jobs="$jobs" -workers="$jobs" -print_final_stats=1
