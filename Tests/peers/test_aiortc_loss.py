"""Loss recovery with real peers: a userspace lossy relay (this test's own UDP
proxy; the kernel here has no netem) sits between RingSFU and an aiortc
subscriber and drops 5 % of the video packets on the way to it. The
subscriber's NACKs are answered with RTX from the SFU's packet store and its
decoder sees a complete frame sequence; a subscriber whose consumer did not
negotiate NACK, behind the same loss, stalls (aiortc's jitter buffer waits
at every gap until it overflows and asks for a key frame)."""
import asyncio
import re

import pytest
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from test_aiortc_consume import create_transport, video_publisher
from test_aiortc_publish import Rpc, section_parameters, server, session_sdp  # noqa: F401


class LossyRelay(asyncio.DatagramProtocol):
    """Forwards between one client and the SFU; drops every 20th media
    packet of `ssrc` (by the RTP header, which SRTP leaves in clear) on one
    leg: SFU -> client, or client -> SFU with `upstream`. RTX packets have
    another SSRC and pass."""

    def __init__(self, sfu, upstream=False):
        self.sfu, self.client, self.ssrc, self.upstream = sfu, None, None, upstream
        self.dropped = self.rtx_seen = 0
        self.rtx_ssrc = None

    def connection_made(self, transport):
        self.transport = transport

    def lose(self, data):
        if len(data) >= 12 and 128 <= data[0] <= 191 and not 64 <= (data[1] & 0x7F) <= 95:
            ssrc = int.from_bytes(data[8:12], "big")
            seq = int.from_bytes(data[2:4], "big")
            if ssrc == self.ssrc and seq % 20 == 7:
                self.dropped += 1
                return True
            if ssrc == self.rtx_ssrc:
                self.rtx_seen += 1
        return False

    def datagram_received(self, data, addr):
        if addr != self.sfu:
            self.client = addr
            if not (self.upstream and self.lose(data)):
                self.transport.sendto(data, self.sfu)
            return
        if self.client is not None and not (not self.upstream and self.lose(data)):
            self.transport.sendto(data, self.client)


def subscriber_sdp(transport, consumer, relay_port):
    rtp = consumer["rtpParameters"]
    media = next(c for c in rtp["codecs"] if c["mimeType"].lower() == "video/vp8")
    rtx = next((c for c in rtp["codecs"] if c["mimeType"].lower() == "video/rtx"), None)
    enc = rtp["encodings"][0]
    ice, dtls = transport["iceParameters"], transport["dtlsParameters"]
    fp = next(f["value"] for f in dtls["fingerprints"] if f["algorithm"] == "sha-256")
    pts = [media["payloadType"]] + ([rtx["payloadType"]] if rtx else [])
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=ice-lite", f"a=group:BUNDLE {rtp['mid']}",
             f"m=video 9 UDP/TLS/RTP/SAVPF {' '.join(map(str, pts))}", "c=IN IP4 127.0.0.1", f"a=mid:{rtp['mid']}",
             "a=sendonly", "a=rtcp-mux", f"a=ice-ufrag:{ice['usernameFragment']}", f"a=ice-pwd:{ice['password']}",
             f"a=fingerprint:sha-256 {fp}", "a=setup:actpass", "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
             f"a=rtpmap:{media['payloadType']} VP8/90000"]
    for fb in media.get("rtcpFeedback", []):
        lines.append(f"a=rtcp-fb:{media['payloadType']} {fb['type']}" + (f" {fb['parameter']}" if fb.get("parameter") else ""))
    cname = rtp["rtcp"]["cname"]
    if rtx:
        lines += [f"a=rtpmap:{rtx['payloadType']} rtx/90000", f"a=fmtp:{rtx['payloadType']} apt={media['payloadType']}",
                  f"a=ssrc-group:FID {enc['ssrc']} {enc['rtx']['ssrc']}", f"a=ssrc:{enc['ssrc']} cname:{cname}",
                  f"a=ssrc:{enc['rtx']['ssrc']} cname:{cname}"]
    else:
        lines.append(f"a=ssrc:{enc['ssrc']} cname:{cname}")
    # The relay, not the SFU, is the candidate the subscriber checks.
    lines += [f"a=candidate:1 1 udp 2130706431 127.0.0.1 {relay_port} typ host", "a=end-of-candidates"]
    return "\r\n".join(lines + [""])


async def lossy_subscriber(rpc, router, producer_id, nack):
    transport = await create_transport(rpc, router, None)
    codecs = []
    for c in router["rtpCapabilities"]["codecs"]:
        if c["mimeType"] == "video/VP8":
            c = dict(c)
            if not nack:
                c["rtcpFeedback"] = [f for f in c.get("rtcpFeedback", []) if f["type"] != "nack" or f.get("parameter")]
            codecs.append(c)
        elif c["mimeType"] == "video/rtx" and nack:
            codecs.append(dict(c))
    caps = {"codecs": codecs, "headerExtensions": [{"kind": "video", "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
                                                     "preferredId": 1, "preferredEncrypt": False, "direction": "sendrecv"}]}
    consumer = await rpc.call("transport.consume", transportId=transport["id"], producerId=producer_id,
                              rtpCapabilities=caps, paused=False, mid="0")
    loop = asyncio.get_event_loop()
    relay = LossyRelay(("127.0.0.1", transport["iceCandidates"][0]["port"]))
    relay.ssrc = consumer["rtpParameters"]["encodings"][0]["ssrc"]
    relay.rtx_ssrc = (consumer["rtpParameters"]["encodings"][0].get("rtx") or {}).get("ssrc")
    relay_transport, _ = await loop.create_datagram_endpoint(lambda: relay, local_addr=("127.0.0.1", 0))
    relay_port = relay_transport.get_extra_info("sockname")[1]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    frames = []

    @pc.on("track")
    def on_track(track):
        async def read():
            while True:
                try:
                    frames.append(await track.recv())
                except Exception:
                    return
        asyncio.ensure_future(read())

    await pc.setRemoteDescription(RTCSessionDescription(sdp=subscriber_sdp(transport, consumer, relay_port), type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    answer = pc.localDescription.sdp
    fingerprint = re.search(r"a=fingerprint:sha-256 (\S+)", answer).group(1)
    role = "client" if re.search(r"a=setup:(\S+)", answer).group(1) == "active" else "server"
    await rpc.call("transport.connect", transportId=transport["id"],
                   dtlsParameters={"role": role, "fingerprints": [{"algorithm": "sha-256", "value": fingerprint}]})
    return pc, frames, relay, relay_transport, consumer


@pytest.mark.asyncio
async def test_nack_rtx_recovers_subscriber_loss(server):  # noqa: F811
    async with websockets.connect(server) as ws:
        rpc = Rpc(ws)
        router = await rpc.call("worker.createRouter", mediaCodecs=[
            {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000}])
        publisher, send_transport, producer, (kind, mid, pt, rtp) = await video_publisher(rpc, router)
        with_nack = await lossy_subscriber(rpc, router, producer["id"], nack=True)
        without = await lossy_subscriber(rpc, router, producer["id"], nack=False)
        await publisher.setRemoteDescription(RTCSessionDescription(
            sdp=session_sdp(send_transport, [(kind, mid, pt, "recvonly", [])], "passive"), type="answer"))
        await asyncio.sleep(8)
        stats = await rpc.call("consumer.getStats", consumerId=with_nack[4]["id"])
        frames, relay = with_nack[1], with_nack[2]
        other_frames, other_relay = without[1], without[2]
        for pc, _, _, relay_transport, _ in (with_nack, without):
            await pc.close()
            relay_transport.close()
        await publisher.close()
        assert relay.dropped >= 5 and other_relay.dropped >= 5, (relay.dropped, other_relay.dropped)
        assert stats[0]["nackCount"] >= 1 and stats[0]["packetsRetransmitted"] >= relay.dropped * 0.8, (stats, relay.dropped)
        assert relay.rtx_seen >= relay.dropped * 0.8, (relay.rtx_seen, relay.dropped)
        # A complete sequence: consecutive frames, no gaps (30 fps -> 3000 ticks).
        pts = [f.pts for f in frames]
        assert len(pts) >= 150, len(pts)
        gaps = [b - a for a, b in zip(pts, pts[1:]) if abs(b - a - 3000) > 10]
        assert not gaps, gaps[:10]
        print("recovery:", len(pts), "frames with NACK,", len(other_frames), "without;", relay.dropped, "dropped,", stats[0]["packetsRetransmitted"], "retransmitted")
        # The same loss without NACK: the subscriber stalls at the gaps.
        assert len(other_frames) < len(pts) * 0.7, (len(other_frames), len(pts))


def publisher_parameters(section):
    """aiortc's VP8 m-line with its RTX stream and NACK feedback."""
    kind, mid, pt, rtp = section_parameters(section)
    rtx_pt = int(re.search(rf"a=fmtp:(\d+) apt={pt}", section).group(1))
    media_ssrc, rtx_ssrc = map(int, re.search(r"a=ssrc-group:FID (\d+) (\d+)", section).groups())
    rtp["codecs"][0]["rtcpFeedback"] = [{"type": "nack"}, {"type": "nack", "parameter": "pli"}]
    rtp["codecs"].append({"mimeType": "video/rtx", "payloadType": rtx_pt, "clockRate": 90000, "parameters": {"apt": pt}})
    rtp["encodings"] = [{"ssrc": media_ssrc, "rtx": {"ssrc": rtx_ssrc}}]
    return kind, mid, pt, rtx_pt, rtp


@pytest.mark.asyncio
async def test_sfu_nacks_a_lossy_publisher(server):  # noqa: F811
    """The producer leg: 5 % of the publisher's video is lost on the way to
    RingSFU, which NACKs it; aiortc answers with RTX, RingSFU restores the
    packets and a subscriber decodes every frame in order."""
    async with websockets.connect(server) as ws:
        rpc = Rpc(ws)
        router = await rpc.call("worker.createRouter", mediaCodecs=[
            {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000}])
        publisher, send_transport, producer, (kind, mid, pt, rtx_pt, rtp) = await video_publisher(rpc, router, publisher_parameters)
        loop = asyncio.get_event_loop()
        relay = LossyRelay(("127.0.0.1", send_transport["iceCandidates"][0]["port"]), upstream=True)
        relay.ssrc, relay.rtx_ssrc = rtp["encodings"][0]["ssrc"], rtp["encodings"][0]["rtx"]["ssrc"]
        relay_transport, _ = await loop.create_datagram_endpoint(lambda: relay, local_addr=("127.0.0.1", 0))
        relay_port = relay_transport.get_extra_info("sockname")[1]
        subscriber = await lossy_subscriber(rpc, router, producer["id"], nack=True)
        subscriber[2].ssrc = None  # no loss on the subscriber leg
        answer = session_sdp(send_transport, [(kind, mid, pt, "recvonly", [
            f"a=rtcp-fb:{pt} nack", f"a=rtcp-fb:{pt} nack pli",
            f"a=rtpmap:{rtx_pt} rtx/90000", f"a=fmtp:{rtx_pt} apt={pt}"])], "passive")
        answer = re.sub(r"(m=video 9 UDP/TLS/RTP/SAVPF \d+)", rf"\1 {rtx_pt}", answer)
        answer = re.sub(r"(a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1) \d+", rf"\1 {relay_port}", answer)
        await publisher.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.sleep(8)
        pstats = await rpc.call("producer.getStats", producerId=producer["id"])
        frames = subscriber[1]
        await subscriber[0].close()
        subscriber[3].close()
        await publisher.close()
        relay_transport.close()
        print("publisher leg:", len(frames), "frames,", relay.dropped, "dropped,", relay.rtx_seen, "RTX,", pstats[0]["nackCount"], "NACKs")
        assert relay.dropped >= 5, relay.dropped
        assert pstats[0]["nackCount"] >= 1, pstats
        assert relay.rtx_seen >= relay.dropped * 0.8, (relay.rtx_seen, relay.dropped)
        pts = [f.pts for f in frames]
        assert len(pts) >= 150, len(pts)
        gaps = [b - a for a, b in zip(pts, pts[1:]) if abs(b - a - 3000) > 10]
        assert not gaps, gaps[:10]
