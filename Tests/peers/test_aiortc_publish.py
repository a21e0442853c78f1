"""aiortc (a real WebRTC stack) publishes VP8 through a RingSFU WebRtcTransport.

The test drives `ringsfu serve` over its JSON-RPC WebSocket API the way a
client library does: it turns aiortc's SDP offer into mediasoup-style
parameters, answers with the transport's ICE/DTLS parameters, and checks that
the media comes out of a PlainTransport consumer as RTP.
"""
import asyncio
import json
import os
import re
import socket
import subprocess
import time
import urllib.request

import aioice.ice
import pytest
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

# aioice never gathers loopback addresses; the tests only use loopback.
aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The tests that read worker-wide counters connect as the admin.
ADMIN_TOKEN = "peers-admin-token-0123456789"


def as_admin(url):
    return url + "?token=" + ADMIN_TOKEN


@pytest.fixture
def server():
    binary = os.environ.get("RINGSFU_BIN") or subprocess.check_output(
        ["swift", "build", "--show-bin-path"], cwd=ROOT, text=True).strip() + "/ringsfu"
    port = free_port()
    # The browser tests' pages come from a page server of their own (another
    # origin), so any origin may open /rpc here.
    proc = subprocess.Popen([binary, "serve", "--port", str(port), "--workers", "1", "--admin-token", ADMIN_TOKEN,
                             "--rtc-min-port", "41000", "--rtc-max-port", "41999", "--log-level", "warning",
                             "--allowed-origin", "*"])
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"ws://127.0.0.1:{port}/rpc"
    proc.terminate()
    proc.wait(timeout=10)


class Rpc:
    def __init__(self, ws):
        self.ws, self.next_id, self.notifications = ws, 1, []

    async def call(self, method, **params):
        rid = self.next_id
        self.next_id += 1
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
        while True:
            msg = json.loads(await self.ws.recv())
            if msg.get("id") == rid:
                assert "error" not in msg, msg
                return msg["result"]
            self.notifications.append(msg)


CODECS = {"video": ("VP8", 90000, None), "audio": ("opus", 48000, 2)}


def media_sections(sdp):
    parts = re.split(r"(?=^m=)", sdp, flags=re.M)
    return [p for p in parts if p.startswith("m=")]


def section_parameters(section):
    """One m-line of aiortc's offer as mediasoup-style rtpParameters."""
    kind = section[2:7].strip()
    name, rate, channels = CODECS[kind]
    pt = int(re.search(rf"a=rtpmap:(\d+) {name}/{rate}", section, re.I).group(1))
    mid = re.search(r"a=mid:(\S+)", section).group(1)
    ssrc = int(re.search(r"a=ssrc:(\d+) cname", section).group(1))
    cname = re.search(r"a=ssrc:\d+ cname:(\S+)", section).group(1)
    mid_ext = re.search(r"a=extmap:(\d+) urn:ietf:params:rtp-hdrext:sdes:mid", section)
    codec = {"mimeType": f"{kind}/{name}", "payloadType": pt, "clockRate": rate}
    if channels:
        codec["channels"] = channels
    rtp = {
        "mid": mid, "codecs": [codec],
        "headerExtensions": [{"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": int(mid_ext.group(1))}] if mid_ext else [],
        "encodings": [{"ssrc": ssrc}], "rtcp": {"cname": cname, "reducedSize": True},
    }
    return kind, mid, pt, rtp


def offer_parameters(sdp):
    """Video-only form used by the publish test: fingerprint, mid, VP8 PT, rtpParameters."""
    fingerprint = re.search(r"a=fingerprint:sha-256 (\S+)", sdp).group(1)
    kind, mid, pt, rtp = next(section_parameters(s) for s in media_sections(sdp) if s.startswith("m=video"))
    return fingerprint, mid, pt, rtp


def session_sdp(transport, sections, setup):
    """An SDP (offer or answer) for one transport; `sections` are
    (kind, mid, pt, direction, ssrc-lines) tuples, BUNDLEd."""
    ice, dtls = transport["iceParameters"], transport["dtlsParameters"]
    fp = next(f["value"] for f in dtls["fingerprints"] if f["algorithm"] == "sha-256")
    c = transport["iceCandidates"][0]
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=ice-lite",
             "a=group:BUNDLE " + " ".join(s[1] for s in sections)]
    for kind, mid, pt, direction, extra in sections:
        name, rate, channels = CODECS[kind]
        lines += [f"m={kind} 9 UDP/TLS/RTP/SAVPF {pt}", "c=IN IP4 127.0.0.1", f"a=mid:{mid}", f"a={direction}", "a=rtcp-mux",
                  f"a=ice-ufrag:{ice['usernameFragment']}", f"a=ice-pwd:{ice['password']}",
                  f"a=fingerprint:sha-256 {fp}", f"a=setup:{setup}",
                  f"a=rtpmap:{pt} {name}/{rate}" + (f"/{channels}" if channels else "")] + extra
        lines += [f"a=candidate:{c['foundation']} 1 udp {c['priority']} {c['address']} {c['port']} typ host",
                  "a=end-of-candidates"]
    return "\r\n".join(lines + [""])


def answer_sdp(transport, mid, vp8):
    return session_sdp(transport, [("video", mid, vp8, "recvonly", [])], "passive")


@pytest.mark.asyncio
async def test_aiortc_publishes_vp8(server):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    async with websockets.connect(as_admin(server)) as ws:
        rpc = Rpc(ws)
        router = await rpc.call("worker.createRouter", mediaCodecs=[
            {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2},
            {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000}])
        transport = await rpc.call("router.createWebRtcTransport", routerId=router["id"],
                                   listenInfos=[{"protocol": "udp", "ip": "127.0.0.1"}])

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        fingerprint, mid, vp8, rtp = offer_parameters(pc.localDescription.sdp)
        # Our answer says setup:passive, so aiortc is the DTLS client.
        await rpc.call("transport.connect", transportId=transport["id"],
                       dtlsParameters={"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": fingerprint}]})
        producer = await rpc.call("transport.produce", transportId=transport["id"], kind="video", rtpParameters=rtp)
        egress = await rpc.call("router.createPlainTransport", routerId=router["id"],
                                listenInfo={"protocol": "udp", "ip": "127.0.0.1"}, comedia=False)
        await rpc.call("transport.connect", transportId=egress["id"], ip="127.0.0.1", port=sink.getsockname()[1])
        await rpc.call("transport.consume", transportId=egress["id"], producerId=producer["id"],
                       rtpCapabilities=router["rtpCapabilities"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp(transport, mid, vp8), type="answer"))

        received = 0
        deadline = time.time() + 15
        while received < 30 and time.time() < deadline:
            await asyncio.sleep(0.05)
            while True:
                try:
                    data = sink.recv(2048)
                except BlockingIOError:
                    break
                if len(data) >= 12 and data[0] >> 6 == 2:
                    received += 1
        await rpc.call("worker.list")  # collects the notifications sent meanwhile
        states = [n["params"].get("dtlsState") for n in rpc.notifications if n["method"] == "transport.dtlsstatechange"]
        usage = await rpc.call("worker.getResourceUsage")
        # The Prometheus endpoint of the same server: worker and transport series.
        metrics_url = server.replace("ws://", "http://").replace("/rpc", "/metrics")
        text = await asyncio.get_event_loop().run_in_executor(None, lambda: urllib.request.urlopen(metrics_url, timeout=5).read().decode())
        await pc.close()
        assert received >= 30, (received, usage, rpc.notifications)
        assert "connected" in states, rpc.notifications
        received_total = [float(l.split()[-1]) for l in text.splitlines() if l.startswith("ringsfu_packets_received_total{")]
        assert received_total and received_total[0] >= received, text[:2000]
        assert f'transport="{transport["id"]}",type="webrtc-transport"' in text, text[:2000]
        assert "ringsfu_forwarder_cpu_seconds_total{" in text
