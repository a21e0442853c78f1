"""Headless Chromium (Debian's) against `ringsfu serve`: the browser publishes
its fake camera through a WebRtcTransport and receives it back through a
consumer on another, driven over JSON-RPC from the page itself
(chromium_page.html); over UDP, and over ICE-TCP only."""
import asyncio
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import urllib.parse

import pytest
import websockets

from shaping_relay import ShapingRelay
from test_aiortc_publish import server  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))


class PageServer(http.server.ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.result = None
        self.done = threading.Event()
        self.shaper = None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/relay" and self.server.shaper:
            # The page sets the shaping relay's rate and samples its queue.
            query = urllib.parse.parse_qs(url.query)
            if "bps" in query:
                self.server.shaper.set_rate(int(query["bps"][0]))
            body = json.dumps({"kbps": round(self.server.shaper.rate * 8 / 1000),
                               "queueMs": round(self.server.shaper.take_queue_delay() * 1000)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        with open(os.path.join(HERE, "chromium_page.html"), "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.server.result = json.loads(self.rfile.read(length))
        self.server.done.set()
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()

    def log_message(self, *args):
        pass


def assert_no_stall(samples, frames):
    """From the first decoded frame on, at least `frames` decoded in every
    2 s window (samples every 0.5 s)."""
    first = next(i for i, s in enumerate(samples) if s["framesDecoded"] > 0)
    for i in range(first, len(samples) - 4):
        decoded = samples[i + 4]["framesDecoded"] - samples[i]["framesDecoded"]
        assert decoded >= frames, f"{decoded} frames decoded between t={samples[i]['t']} and t={samples[i + 4]['t']}"


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed (scripts/setup.sh installs it)"
    return path


def run_page(server, listen, mode="media", timeout=60, shaper=None, browser_args=(), **extra):  # noqa: F811
    """Opens the test page in headless Chromium; returns what it reported.
    `extra` goes to the page as query parameters (negotiate, width, height,
    samples, sendListen, relay); `shaper` is a ShapingRelay the page drives."""
    pages = PageServer()
    pages.shaper = shaper
    threading.Thread(target=pages.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{pages.server_address[1]}"
    query = {"ws": server, "report": base + "/report", "listen": json.dumps(listen), "mode": mode}
    query.update({k: json.dumps(v) if isinstance(v, (dict, list)) else str(v) for k, v in extra.items()})
    url = base + "/page?" + urllib.parse.urlencode(query)
    profile = tempfile.mkdtemp(prefix="ringsfu-chromium-")
    browser = subprocess.Popen(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
         "--allow-loopback-in-peer-connection", f"--user-data-dir={profile}", *browser_args, url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert pages.done.wait(timeout), "the page did not report"
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
        pages.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    return pages.result


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_chromium_publishes_and_receives(server, protocol):  # noqa: F811
    # Over TCP the subscriber's transport is capped: the estimate must keep to it.
    cap = {"maxOutgoing": 200_000} if protocol == "tcp" else {}
    r = run_page(server, {"listenInfos": [{"protocol": protocol, "ip": "127.0.0.1"}]}, **cap)
    print(f"chromium over {protocol}:", {k: r.get(k) for k in ("framesDecoded", "frameWidth", "packetsSent", "pubIce", "subIce")})
    assert "error" not in r, r
    assert r["framesDecoded"] >= 30, r
    assert r["frameWidth"] == 640, r
    assert r["producerStats"][0]["packetCount"] > 0, r
    assert r["consumerStats"][0]["packetCount"] > 0, r
    assert r["sendStats"][0]["iceSelectedTuple"]["protocol"] == protocol, r
    # The subscriber's transport-wide feedback on our numbering feeds the send-side estimate.
    estimate = r["recvStats"][0].get("availableOutgoingBitrate", 0)
    print("available outgoing bitrate:", estimate)
    assert (30_000 < estimate <= 200_000) if cap else estimate > 250_000, r["recvStats"]
    # The "bwe" trace events of that transport, at most one a second.
    traces = r["bweTraces"]
    assert traces and all(t["trace"]["type"] == "bwe" and t["transportId"] == r["recvStats"][0]["transportId"] for t in traces), traces
    info = traces[-1]["trace"]["info"]
    assert info["availableBitrate"] > 30_000 and info["maxBitrate"] == (200_000 if cap else 30_000_000), info
    print("last bwe trace:", info)


def test_chromium_ice_tcp_through_an_idle_connection_flood(server):  # noqa: F811
    """500 idle TCP connections from another address (127.0.0.2) to one
    transport's ICE-TCP port used to take every ICE-TCP slot of the worker;
    now that source is capped and its idle connections closed, and the
    browser still connects over ICE-TCP and decodes."""
    async def make_victim():
        ws = await websockets.connect(server)
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "worker.createRouter", "params": {}}))
        router = json.loads(await ws.recv())["result"]["id"]
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "router.createWebRtcTransport",
                                  "params": {"routerId": router, "listenInfos": [{"protocol": "tcp", "ip": "127.0.0.1"}]}}))
        transport = json.loads(await ws.recv())["result"]
        return ws, transport["iceCandidates"][0]["port"]

    loop = asyncio.new_event_loop()
    ws, port = loop.run_until_complete(make_victim())
    flood = []
    try:
        for _ in range(500):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", port))
            flood.append(s)
        r = run_page(server, {"listenInfos": [{"protocol": "tcp", "ip": "127.0.0.1"}]})
        assert "error" not in r, r
        assert r["framesDecoded"] >= 30, r
        assert r["sendStats"][0]["iceSelectedTuple"]["protocol"] == "tcp", r
    finally:
        for s in flood:
            s.close()
        loop.run_until_complete(ws.close())
        loop.close()


def test_chromium_data_channels(server):  # noqa: F811
    """The browser's own SCTP stack against RingSFU's: negotiated channels,
    a text and a 100 kB binary message echoed, a stream reset closing one."""
    r = run_page(server, {"listenInfos": [{"protocol": "udp", "ip": "127.0.0.1"}]}, mode="data")
    assert "error" not in r, r
    assert r["text"] == "hello" and r["bigMatches"], r
    assert r["stats"][0]["messagesReceived"] == 2, r
    assert r["transportStats"][0]["sctpState"] == "connected", r
    assert r["echoState"] == "closed" and r["chatState"] == "open", r


def show(samples):
    for s in samples:
        print(f"  t={s['t']:2d}s sent {s['sentKbps']:5d} kbps, estimate {s['estimateKbps']:5d} kbps, "
              f"{s['sentWidth']}x{s['sentHeight']} ({s['limitation']}), received {s['recvWidth']} wide, {s['framesDecoded']} frames")


def test_chromium_publisher_ramps_up_with_transport_cc(server):  # noqa: F811
    """Negotiated as mediasoup-client does (transport-wide-cc extension,
    transport-cc and goog-remb feedback): the publisher's estimate grows on
    our feedback instead of collapsing to its 30 kbps floor, it sends at
    least 960x540 of its 1280x720 camera, and the subscriber decodes that."""
    r = run_page(server, {"listenInfos": [{"protocol": "udp", "ip": "127.0.0.1"}]}, timeout=90,
                 width=1280, height=720, samples=25)
    assert "error" not in r, r
    samples = r["samples"]
    show(samples)
    late = samples[-3:]
    assert max(s["estimateKbps"] for s in late) > 1500, samples
    assert max(s["sentWidth"] for s in late) >= 960, samples
    assert max(s["recvWidth"] for s in late) >= 960, samples
    # Nowhere near the floor at any point after the start.
    assert min(s["estimateKbps"] for s in samples[5:]) > 300, samples


def test_chromium_publisher_ramps_up_with_remb_only(server):  # noqa: F811
    """An endpoint that offers goog-remb but not transport-wide CC gets our
    receive-side estimate as REMB: its estimate grows instead of starving."""
    r = run_page(server, {"listenInfos": [{"protocol": "udp", "ip": "127.0.0.1"}]}, timeout=90,
                 width=1280, height=720, samples=15, negotiate="remb", degradation="maintain-resolution")
    assert "error" not in r, r
    samples = r["samples"]
    show(samples)
    assert max(s["estimateKbps"] for s in samples[-3:]) > 1000, samples
    assert min(s["sentKbps"] for s in samples[-3:]) > 500, samples
    assert r["framesDecoded"] >= 30, r


def free_rtc_port():
    """A UDP port inside the server's RTC range that nobody holds."""
    for port in range(41999, 41900, -1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free port in 41900..41999")


def test_chromium_publisher_on_a_500_kbps_link(server):  # noqa: F811
    """The publisher reaches the SFU through a 500 kbps bottleneck (token
    bucket, bounded queue): with our transport-wide feedback its estimator
    settles near the link rate, neither collapsing nor overrunning it."""
    port = free_rtc_port()
    with ShapingRelay(("127.0.0.1", port), rate_bps=500_000) as relay:
        r = run_page(server, {"listenInfos": [{"protocol": "udp", "ip": "127.0.0.1"}]}, timeout=90,
                     width=1280, height=720, samples=20, degradation="maintain-resolution",
                     sendListen={"listenInfos": [{"protocol": "udp", "ip": "127.0.0.1", "port": port}]},
                     relay=f"127.0.0.1:{relay.port}")
        print(f"relay: {relay.forwarded} forwarded, {relay.dropped} dropped, max queue delay {relay.max_queue_delay * 1000:.0f} ms")
    assert "error" not in r, r
    samples = r["samples"]
    show(samples)
    late = samples[-10:]
    sent = sum(s["sentKbps"] for s in late) / len(late)
    assert 300 <= sent <= 560, samples
    assert all(200 <= s["estimateKbps"] <= 800 for s in late), samples
    assert r["log"] == [], r["log"]
    assert r["framesDecoded"] >= 30, r


SWITCHES = [[6, 0], [11, 2], [16, 1], [21, 0]]


@pytest.mark.parametrize("protocol,negotiate,codec", [("udp", "mediasoup", "VP8"), ("tcp", "mediasoup", "VP8"), ("udp", "rr", "VP8"),
                                                      ("udp", "mediasoup", "H264")])
def test_chromium_simulcast_switches_without_freezing(server, protocol, negotiate, codec):  # noqa: F811
    """Chromium publishes 3-layer VP8 simulcast (rids q/h/f); a second peer
    connection receives it through a simulcast consumer whose preferred
    layer is switched down and up several times. What the subscriber
    decodes follows the layer, and it never stalls: every 2 s window
    decodes at least 10 frames (switches used to freeze it for ~3 s, until
    its own PLI, whenever the new layer's VP8 picture ids and TL0PICIDX
    looked old to its frame reference finder). Without congestion control
    ("rr") the publisher starts with fewer layers and adds them as its
    estimate grows, so the consumer also moves up by itself. H264 simulcast
    (constrained baseline) where this Chromium can encode it."""
    # The preference alone decides here: the estimate's floor is above what
    # every layer needs (test_chromium_bwe.py covers layers by bandwidth).
    r = run_page(server, {"listenInfos": [{"protocol": protocol, "ip": "127.0.0.1"}]}, mode="simulcast", timeout=120,
                 switches=SWITCHES, duration=26, negotiate=negotiate, codec=codec, minOutgoing=5_000_000)
    if codec != "VP8" and f"no {codec} in the browser's offer" in r.get("error", ""):
        pytest.skip(f"this Chromium offers no {codec}")
    assert "error" not in r, r
    samples = r["samples"]
    for s in samples:
        print(f"  t={s['t']:4.1f} preferred {s['preferred']} decoded {s['framesDecoded']:4d} {s['frameWidth']:4d} wide"
              f" (sent {s['sentWidths']} {s.get('sentFrames')}), pli {s['pliCount']}, freezes {s['freezeCount']}")
    print("layerschange:", r["layers"])
    # No stall: from the first decoded frame on, >= 10 frames in every 2 s.
    assert_no_stall(samples, 10)
    # The decoded size follows the layer: from 2.5 s after each switch until
    # the next, the subscriber's frames have the width of the highest
    # encoding the publisher sends up to the preferred one.
    rids = ["q", "h", "f"]

    def expected(s):
        sending = [rid for rid in rids[:s["preferred"] + 1] if s["sentWidths"].get(rid)]
        return s["sentWidths"][sending[-1]] if sending else None

    bounds = [at for at, _ in SWITCHES] + [samples[-1]["t"] + 0.5]
    for (at, layer), end in zip(SWITCHES, bounds[1:]):
        window = [s for s in samples if at + 2.5 <= s["t"] < end]
        matching = [s for s in window if s["frameWidth"] == expected(s)]
        assert len(matching) >= len(window) - 1, (at, layer, window)
    # Freezes (as the browser counts them) stay rare. Without congestion
    # control ("rr") the publisher pauses and resumes its middle layer by
    # itself in the first seconds, and the consumer follows (a key frame
    # wait each time): those start-up moves are not the switches under test.
    counted_from = next((s["freezeCount"] for s in samples if s["t"] >= 5), 0) if negotiate == "rr" else 0
    assert samples[-1]["freezeCount"] - counted_from <= 1, samples[-1]
