"""What a misconfigured or hostile peer gets: aiortc with a wrong DTLS
fingerprint (the handshake fails, nothing is forwarded), aiortc with a wrong
ICE password (no answer, ICE never connects), and a STUN flood from an unknown
ufrag (dropped without an answer and counted), all against `ringsfu serve`."""
import asyncio
import os
import socket
import time

import pytest
import websockets
from aioice import stun
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from test_aiortc_publish import Rpc, answer_sdp, as_admin, offer_parameters, server  # noqa: F401

CODECS = [{"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2},
          {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000}]


async def publish_setup(rpc, sink_port, fingerprint_mangle=None, password_mangle=None):
    """An aiortc publisher wired to a WebRtcTransport whose producer feeds a
    PlainTransport consumer towards `sink_port`; the mangles break one
    parameter on the way."""
    router = await rpc.call("worker.createRouter", mediaCodecs=CODECS)
    transport = await rpc.call("router.createWebRtcTransport", routerId=router["id"],
                               listenInfos=[{"protocol": "udp", "ip": "127.0.0.1"}])
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    fingerprint, mid, vp8, rtp = offer_parameters(pc.localDescription.sdp)
    if fingerprint_mangle:
        fingerprint = fingerprint_mangle(fingerprint)
    await rpc.call("transport.connect", transportId=transport["id"],
                   dtlsParameters={"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": fingerprint}]})
    producer = await rpc.call("transport.produce", transportId=transport["id"], kind="video", rtpParameters=rtp)
    egress = await rpc.call("router.createPlainTransport", routerId=router["id"],
                            listenInfo={"protocol": "udp", "ip": "127.0.0.1"}, comedia=False)
    await rpc.call("transport.connect", transportId=egress["id"], ip="127.0.0.1", port=sink_port)
    await rpc.call("transport.consume", transportId=egress["id"], producerId=producer["id"],
                   rtpCapabilities=router["rtpCapabilities"])
    answer_for = dict(transport)
    if password_mangle:
        answer_for["iceParameters"] = dict(transport["iceParameters"], password=password_mangle(transport["iceParameters"]["password"]))
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp(answer_for, mid, vp8), type="answer"))
    return pc, transport


def count_rtp(sink):
    n = 0
    while True:
        try:
            data = sink.recv(2048)
        except BlockingIOError:
            return n
        if len(data) >= 12 and data[0] >> 6 == 2:
            n += 1


def udp_sink():
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    return sink


def notified(rpc, method, field):
    return [n["params"].get(field) for n in rpc.notifications if n["method"] == method]


@pytest.mark.asyncio
async def test_wrong_fingerprint_fails_and_forwards_nothing(server):
    sink = udp_sink()
    async with websockets.connect(as_admin(server)) as ws:
        rpc = Rpc(ws)
        # One hex digit of aiortc's certificate fingerprint changed.
        flip = lambda fp: ("0" if fp[0] != "0" else "1") + fp[1:]
        pc, transport = await publish_setup(rpc, sink.getsockname()[1], fingerprint_mangle=flip)
        deadline = time.time() + 10
        while "failed" not in notified(rpc, "transport.dtlsstatechange", "dtlsState") and time.time() < deadline:
            await asyncio.sleep(0.1)
            await rpc.call("worker.list")
        # aiortc keeps sending: none of it may come out.
        await asyncio.sleep(1.5)
        received = count_rtp(sink)
        usage = await rpc.call("worker.getResourceUsage")
        await pc.close()
        states = notified(rpc, "transport.dtlsstatechange", "dtlsState")
        assert "failed" in states and "connected" not in states, rpc.notifications
        assert received == 0, (received, usage)


@pytest.mark.asyncio
async def test_wrong_ice_password_gets_no_answer(server):
    sink = udp_sink()
    async with websockets.connect(as_admin(server)) as ws:
        rpc = Rpc(ws)
        before = (await rpc.call("worker.getResourceUsage"))["dropStun"]
        pc, transport = await publish_setup(rpc, sink.getsockname()[1], password_mangle=lambda p: p[::-1])
        await asyncio.sleep(4)
        usage = await rpc.call("worker.getResourceUsage")
        ice_states = notified(rpc, "transport.icestatechange", "iceState")
        received = count_rtp(sink)
        client_state = pc.iceConnectionState
        await pc.close()
        # Every check failed integrity: counted, never answered.
        assert usage["dropStun"] > before, usage
        assert ice_states == [], rpc.notifications
        assert client_state != "completed", client_state
        assert received == 0


@pytest.mark.asyncio
async def test_stun_flood_from_unknown_ufrag_is_dropped_and_counted(server):
    async with websockets.connect(as_admin(server)) as ws:
        rpc = Rpc(ws)
        router = await rpc.call("worker.createRouter", mediaCodecs=CODECS)
        transport = await rpc.call("router.createWebRtcTransport", routerId=router["id"],
                                   listenInfos=[{"protocol": "udp", "ip": "127.0.0.1"}])
        port = transport["iceCandidates"][0]["port"]
        before = (await rpc.call("worker.getResourceUsage"))["dropStun"]
        attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        attacker.bind(("127.0.0.1", 0))
        attacker.setblocking(False)
        sent = 0
        for i in range(2000):
            m = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST,
                             transaction_id=os.urandom(12))
            m.attributes["USERNAME"] = f"intruder{i % 7}:x"
            m.attributes["PRIORITY"] = 1
            m.attributes["USE-CANDIDATE"] = None
            m.add_message_integrity(b"guessed-password")
            m.add_fingerprint()
            attacker.sendto(bytes(m), ("127.0.0.1", port))
            sent += 1
            if i % 200 == 199:
                await asyncio.sleep(0.01)  # stay under the socket's queue
        await asyncio.sleep(0.5)
        answers = 0
        while True:
            try:
                attacker.recv(2048)
                answers += 1
            except BlockingIOError:
                break
        usage = await rpc.call("worker.getResourceUsage")
        dump = await rpc.call("transport.dump", transportId=transport["id"])
        assert answers == 0
        assert usage["dropStun"] - before + usage["dropSocketOverflow"] >= sent, usage
        assert dump["iceState"] == "new" and dump.get("iceSelectedTuple") is None, dump
