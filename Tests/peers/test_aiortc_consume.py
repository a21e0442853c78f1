"""aiortc publishes VP8 and two aiortc consumers decode it, all through
RingSFU WebRtcTransports driven over JSON-RPC (the flow of mediasoup-client:
for receiving, the SFU side is the SDP offerer)."""
import asyncio
import re

import pytest
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from test_aiortc_publish import Rpc, answer_sdp, offer_parameters, server  # noqa: F401  (fixture)


def consumer_offer(transport, consumer):
    """An SDP offer describing one consumer (sendonly from the SFU)."""
    ice, dtls = transport["iceParameters"], transport["dtlsParameters"]
    fp = next(f["value"] for f in dtls["fingerprints"] if f["algorithm"] == "sha-256")
    c = transport["iceCandidates"][0]
    rtp = consumer["rtpParameters"]
    codec = next(x for x in rtp["codecs"] if x["mimeType"].lower() == "video/vp8")
    pt, ssrc, mid = codec["payloadType"], rtp["encodings"][0]["ssrc"], rtp["mid"]
    return "\r\n".join([
        "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=ice-lite", f"a=group:BUNDLE {mid}",
        f"m=video 9 UDP/TLS/RTP/SAVPF {pt}", "c=IN IP4 127.0.0.1", f"a=mid:{mid}", "a=sendonly", "a=rtcp-mux",
        f"a=ice-ufrag:{ice['usernameFragment']}", f"a=ice-pwd:{ice['password']}",
        f"a=fingerprint:sha-256 {fp}", "a=setup:actpass", f"a=rtpmap:{pt} VP8/90000",
        f"a=ssrc:{ssrc} cname:{rtp['rtcp']['cname']}",
        f"a=candidate:{c['foundation']} 1 udp {c['priority']} {c['address']} {c['port']} typ host",
        "a=end-of-candidates", "",
    ])


async def subscribe(rpc, router, producer_id):
    transport = await rpc.call("router.createWebRtcTransport", routerId=router["id"],
                               listenInfos=[{"protocol": "udp", "ip": "127.0.0.1"}])
    # The receiving endpoint's capabilities: VP8 only, no extensions.
    caps = {"codecs": [{"kind": "video", "mimeType": "video/VP8", "clockRate": 90000,
                        "preferredPayloadType": next(c["preferredPayloadType"] for c in router["rtpCapabilities"]["codecs"]
                                                     if c["mimeType"] == "video/VP8")}],
            "headerExtensions": []}
    consumer = await rpc.call("transport.consume", transportId=transport["id"], producerId=producer_id,
                              rtpCapabilities=caps, paused=False)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    frames = []
    done = asyncio.Event()

    @pc.on("track")
    def on_track(track):
        async def read():
            while len(frames) < 10:
                frames.append(await track.recv())
            done.set()
        asyncio.ensure_future(read())

    await pc.setRemoteDescription(RTCSessionDescription(sdp=consumer_offer(transport, consumer), type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    answer = pc.localDescription.sdp
    fingerprint = re.search(r"a=fingerprint:sha-256 (\S+)", answer).group(1)
    setup = re.search(r"a=setup:(\S+)", answer).group(1)
    role = "client" if setup == "active" else "server"
    await rpc.call("transport.connect", transportId=transport["id"],
                   dtlsParameters={"role": role, "fingerprints": [{"algorithm": "sha-256", "value": fingerprint}]})
    return pc, frames, done, consumer


@pytest.mark.asyncio
async def test_two_aiortc_consumers_decode(server):  # noqa: F811
    async with websockets.connect(server) as ws:
        rpc = Rpc(ws)
        router = await rpc.call("worker.createRouter", mediaCodecs=[
            {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2},
            {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000}])
        send_transport = await rpc.call("router.createWebRtcTransport", routerId=router["id"],
                                        listenInfos=[{"protocol": "udp", "ip": "127.0.0.1"}])
        publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        publisher.addTransceiver(VideoStreamTrack(), direction="sendonly")
        await publisher.setLocalDescription(await publisher.createOffer())
        fingerprint, mid, vp8, rtp = offer_parameters(publisher.localDescription.sdp)
        await rpc.call("transport.connect", transportId=send_transport["id"],
                       dtlsParameters={"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": fingerprint}]})
        producer = await rpc.call("transport.produce", transportId=send_transport["id"], kind="video", rtpParameters=rtp)
        await publisher.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp(send_transport, mid, vp8), type="answer"))

        subscribers = [await subscribe(rpc, router, producer["id"]) for _ in range(2)]
        await asyncio.wait_for(asyncio.gather(*(s[2].wait() for s in subscribers)), timeout=20)
        for _, frames, _, _ in subscribers:
            assert len(frames) >= 10
            assert frames[-1].width == 640 and frames[-1].height == 480

        # Closing the producer's transport mid-call: consumers get producerclose.
        await rpc.call("transport.close", transportId=send_transport["id"])
        await rpc.call("worker.list")
        closed = {n["params"]["consumerId"] for n in rpc.notifications if n["method"] == "consumer.producerclose"}
        assert closed == {s[3]["id"] for s in subscribers}
        for pc, _, _, _ in subscribers:
            await pc.close()
        await publisher.close()
