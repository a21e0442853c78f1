#!/usr/bin/env bash
# Installs the system packages RingSFU needs to build and test on Debian 12.
# Idempotent and non-interactive: only missing packages are installed.
set -euo pipefail

# chromium: the headless browser peer of the end-to-end tests; prometheus: promtool checks /metrics;
# openssl: the tool makes the DTLS certificate files of a test; simple-whip-client: a GStreamer
# WHIP publisher (pulls in GStreamer's WebRTC plugins); coturn: the TURN server of a test;
# redis-server: the cluster tests' coordination store (started by the tests themselves).
packages=(liburing-dev libsrtp2-dev libssl-dev libusrsctp-dev pkg-config iproute2 ffmpeg python3-venv chromium prometheus openssl
          simple-whip-client coturn redis-server)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Python peers for the end-to-end tests (aiortc from PyPI), in .venv.
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$root/.venv/bin/python" ]; then
    python3 -m venv "$root/.venv"
fi
if ! "$root/.venv/bin/python" -c "import aiortc, websockets, pytest, pytest_asyncio" 2>/dev/null; then
    echo "setup: installing the Python test peers (aiortc)"
    "$root/.venv/bin/pip" install -q --disable-pip-version-check -r "$root/Tests/peers/requirements.txt"
fi
if ! command -v swift >/dev/null; then
    echo "setup: a Swift 6.2+ toolchain is required (swift not found on PATH)" >&2
    exit 1
fi
