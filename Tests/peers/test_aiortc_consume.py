"""aiortc publishes Opus + VP8 and two aiortc consumers decode both (on
their own ports, and all on one WebRtcServer port), all through
RingSFU WebRtcTransports driven over JSON-RPC (the flow of mediasoup-client:
for receiving, the SFU side is the SDP offerer)."""
import asyncio
import re

import pytest
import websockets
from aiortc import AudioStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from test_aiortc_publish import CODECS, Rpc, media_sections, section_parameters, server, session_sdp  # noqa: F401


async def create_transport(rpc, router, server_id, ip="127.0.0.1"):
    if server_id:
        return await rpc.call("router.createWebRtcTransport", routerId=router["id"], webRtcServerId=server_id)
    return await rpc.call("router.createWebRtcTransport", routerId=router["id"],
                          listenInfos=[{"protocol": "udp", "ip": ip}])


async def video_publisher(rpc, router, parameters=section_parameters, ip="127.0.0.1"):
    """An aiortc publisher of one VP8 track on its own WebRtcTransport,
    connected and produced; the caller gives it the answer when ready.
    Returns the peer connection, the transport, the producer and what
    `parameters` read from the offer's m-line."""
    send_transport = await create_transport(rpc, router, None, ip)
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    publisher.addTransceiver(VideoStreamTrack(), direction="sendonly")
    await publisher.setLocalDescription(await publisher.createOffer())
    offer = publisher.localDescription.sdp
    fingerprint = re.search(r"a=fingerprint:sha-256 (\S+)", offer).group(1)
    await rpc.call("transport.connect", transportId=send_transport["id"],
                   dtlsParameters={"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": fingerprint}]})
    parsed = parameters(media_sections(offer)[0])
    producer = await rpc.call("transport.produce", transportId=send_transport["id"], kind="video", rtpParameters=parsed[-1])
    return publisher, send_transport, producer, parsed


async def subscribe(rpc, router, producer_ids, first_mid, server_id=None, ip="127.0.0.1"):
    """A receiving aiortc endpoint with one consumer per producer on one transport."""
    transport = await create_transport(rpc, router, server_id, ip)
    # The receiving endpoint's capabilities: Opus and VP8 with the MID extension
    # (BUNDLE demultiplexing, as mediasoup-client negotiates it).
    caps = {"codecs": [dict(c) for c in router["rtpCapabilities"]["codecs"] if c["mimeType"] in ("audio/opus", "video/VP8")],
            "headerExtensions": [{"kind": k, "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "preferredId": 1,
                                  "preferredEncrypt": False, "direction": "sendrecv"} for k in ("audio", "video")]}
    sections, consumers = [], []
    for producer_id in producer_ids:
        # MIDs unlike the publisher's, so the SFU must rewrite them per consumer.
        consumer = await rpc.call("transport.consume", transportId=transport["id"], producerId=producer_id,
                                  rtpCapabilities=caps, paused=False, mid=str(first_mid + len(consumers)))
        rtp = consumer["rtpParameters"]
        kind = consumer["kind"]
        pt = rtp["codecs"][0]["payloadType"]
        sections.append((kind, rtp["mid"], pt, "sendonly", ["a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
                                                            f"a=ssrc:{rtp['encodings'][0]['ssrc']} cname:{rtp['rtcp']['cname']}"]))
        consumers.append(consumer)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    frames = {"audio": [], "video": []}
    done = asyncio.Event()

    @pc.on("track")
    def on_track(track):
        async def read():
            while len(frames[track.kind]) < 10:
                frames[track.kind].append(await track.recv())
            if all(len(f) >= 10 for f in frames.values()):
                done.set()
        asyncio.ensure_future(read())

    await pc.setRemoteDescription(RTCSessionDescription(sdp=session_sdp(transport, sections, "actpass"), type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    answer = pc.localDescription.sdp
    fingerprint = re.search(r"a=fingerprint:sha-256 (\S+)", answer).group(1)
    setup = re.search(r"a=setup:(\S+)", answer).group(1)
    role = "client" if setup == "active" else "server"
    await rpc.call("transport.connect", transportId=transport["id"],
                   dtlsParameters={"role": role, "fingerprints": [{"algorithm": "sha-256", "value": fingerprint}]})
    return pc, frames, done, consumers


@pytest.mark.asyncio
@pytest.mark.parametrize("use_server", [False, True], ids=["own-ports", "webrtc-server"])
async def test_two_aiortc_consumers_decode(server, use_server):  # noqa: F811
    async with websockets.connect(server) as ws:
        rpc = Rpc(ws)
        router = await rpc.call("worker.createRouter", mediaCodecs=[
            {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2},
            {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000}])
        server_id = None
        if use_server:
            # Every transport of this test on one UDP port.
            server_id = (await rpc.call("worker.createWebRtcServer",
                                        listenInfos=[{"protocol": "udp", "ip": "127.0.0.1"}]))["id"]
        send_transport = await create_transport(rpc, router, server_id)
        publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        publisher.addTransceiver(AudioStreamTrack(), direction="sendonly")
        publisher.addTransceiver(VideoStreamTrack(), direction="sendonly")
        await publisher.setLocalDescription(await publisher.createOffer())
        offer = publisher.localDescription.sdp
        fingerprint = re.search(r"a=fingerprint:sha-256 (\S+)", offer).group(1)
        await rpc.call("transport.connect", transportId=send_transport["id"],
                       dtlsParameters={"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": fingerprint}]})
        producers, answer = [], []
        for section in media_sections(offer):
            kind, mid, pt, rtp = section_parameters(section)
            producers.append(await rpc.call("transport.produce", transportId=send_transport["id"], kind=kind, rtpParameters=rtp))
            answer.append((kind, mid, pt, "recvonly", []))
        # Subscribers first here; the late-joiner test covers the other order.
        subscribers = [await subscribe(rpc, router, [p["id"] for p in producers], first_mid=5 + 2 * n, server_id=server_id)
                       for n in range(2)]
        await publisher.setRemoteDescription(RTCSessionDescription(sdp=session_sdp(send_transport, answer, "passive"), type="answer"))
        if use_server:
            ports = {send_transport["iceCandidates"][0]["port"]}
            assert len(ports) == 1
        await asyncio.wait_for(asyncio.gather(*(s[2].wait() for s in subscribers)), timeout=20)
        for _, frames, _, _ in subscribers:
            assert len(frames["video"]) >= 10 and len(frames["audio"]) >= 10
            assert frames["video"][-1].width == 640 and frames["video"][-1].height == 480
            assert frames["audio"][-1].sample_rate == 48000

        # Closing the producer's transport mid-call: consumers get producerclose.
        await rpc.call("transport.close", transportId=send_transport["id"])
        await rpc.call("worker.list")
        closed = {n["params"]["consumerId"] for n in rpc.notifications if n["method"] == "consumer.producerclose"}
        assert closed == {c["id"] for s in subscribers for c in s[3]}
        for pc, _, _, _ in subscribers:
            await pc.close()
        await publisher.close()


@pytest.mark.asyncio
async def test_late_joiner_gets_a_key_frame(server):  # noqa: F811
    """A subscriber joining seconds into a call decodes video promptly: its
    consumer's key frame request (PLI) reaches the aiortc publisher, whose
    encoder would otherwise not send another key frame for minutes."""
    async with websockets.connect(server) as ws:
        rpc = Rpc(ws)
        router = await rpc.call("worker.createRouter", mediaCodecs=[
            {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2},
            {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000}])
        publisher, send_transport, producer, (kind, mid, pt, rtp) = await video_publisher(rpc, router)
        await publisher.setRemoteDescription(RTCSessionDescription(
            sdp=session_sdp(send_transport, [(kind, mid, pt, "recvonly", [])], "passive"), type="answer"))
        # Let the call run well past the publisher's first key frame.
        deadline = asyncio.get_event_loop().time() + 15
        while asyncio.get_event_loop().time() < deadline:
            stats = await rpc.call("producer.getStats", producerId=producer["id"])
            if stats and stats[0]["packetCount"] > 100:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)
        joined = asyncio.get_event_loop().time()
        pc, frames, _, consumers = await subscribe(rpc, router, [producer["id"]], first_mid=3)
        while len(frames["video"]) < 10 and asyncio.get_event_loop().time() - joined < 10:
            await asyncio.sleep(0.1)
        waited = asyncio.get_event_loop().time() - joined
        pstats = await rpc.call("producer.getStats", producerId=producer["id"])
        await pc.close()
        await publisher.close()
        assert len(frames["video"]) >= 10, (len(frames["video"]), pstats)
        assert frames["video"][-1].width == 640
        assert pstats[0]["pliCount"] >= 1, pstats
        assert waited < 10
