#!/usr/bin/env bash
# Fails if the forwarder thread allocates while forwarding in steady state:
# runs ringsfu-perf alloc-check with the malloc interposer preloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product ringsfu-perf >/dev/null
bin="$(swift build --show-bin-path)"
# One scenario per path: plain fan-out with transport-wide CC, SRTP on both
# legs, NACKs answered with RTX, simulcast consumers, WebRTC transports (ICE,
# DTLS, SRTP as negotiated) and WebRTC consumers over ICE-TCP.
for scenario in "" "--srtp" "--loss 2" "--simulcast" "--webrtc" "--ice-tcp"; do
    # shellcheck disable=SC2086
    LD_PRELOAD="$bin/libMallocInterposerSwift.so" "$bin/ringsfu-perf" alloc-check --packets 50000 $scenario
done
