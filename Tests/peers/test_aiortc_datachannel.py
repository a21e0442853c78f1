"""aiortc data channels through a RingSFU WebRtcTransport with enableSctp.

aiortc opens two negotiated channels (as mediasoup clients do) over SCTP on
DTLS: what it sends on stream 1 reaches a DataProducer, which RingSFU
delivers both back to aiortc (a DataConsumer on the same transport, stream 0)
and to the application (a DataConsumer on a DirectTransport); a message the
application sends reaches aiortc; closing a DataConsumer closes aiortc's
channel (SCTP stream reset).
"""
import asyncio
import base64
import re
import time

import pytest
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from test_aiortc_publish import Rpc, server  # noqa: F401


def answer_sdp(transport, offer):
    """An answer with the transport's ICE/DTLS/SCTP parameters for aiortc's
    single m=application section."""
    mid = re.search(r"a=mid:(\S+)", offer).group(1)
    ice, dtls, sctp = transport["iceParameters"], transport["dtlsParameters"], transport["sctpParameters"]
    fp = next(f["value"] for f in dtls["fingerprints"] if f["algorithm"] == "sha-256")
    c = transport["iceCandidates"][0]
    return "\r\n".join([
        "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=ice-lite", f"a=group:BUNDLE {mid}",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 127.0.0.1", f"a=mid:{mid}",
        f"a=ice-ufrag:{ice['usernameFragment']}", f"a=ice-pwd:{ice['password']}",
        f"a=fingerprint:sha-256 {fp}", "a=setup:passive",
        f"a=sctp-port:{sctp['port']}", f"a=max-message-size:{sctp['maxMessageSize']}",
        f"a=candidate:{c['foundation']} 1 udp {c['priority']} {c['address']} {c['port']} typ host",
        "a=end-of-candidates", ""])


async def until(condition, seconds=10):
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        await asyncio.sleep(0.05)
    return condition()


@pytest.mark.asyncio
async def test_aiortc_data_channels(server):  # noqa: F811
    async with websockets.connect(server) as ws:
        rpc = Rpc(ws)
        router = await rpc.call("worker.createRouter", mediaCodecs=[
            {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2}])
        transport = await rpc.call("router.createWebRtcTransport", routerId=router["id"],
                                   listenInfos=[{"protocol": "udp", "ip": "127.0.0.1"}],
                                   enableSctp=True, numSctpStreams={"OS": 1024, "MIS": 1024})
        assert transport["sctpParameters"] == {"port": 5000, "OS": 1024, "MIS": 1024, "maxMessageSize": 262144}
        assert transport["sctpState"] == "new"

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        from_sfu = pc.createDataChannel("echo", negotiated=True, id=0)
        to_sfu = pc.createDataChannel("chat", negotiated=True, id=1)
        echoed, to_sfu_received = [], []
        from_sfu.on("message", echoed.append)
        to_sfu.on("message", to_sfu_received.append)
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        fingerprint = re.search(r"a=fingerprint:sha-256 (\S+)", offer).group(1)
        await rpc.call("transport.connect", transportId=transport["id"],
                       dtlsParameters={"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": fingerprint}]})

        producer = await rpc.call("transport.produceData", transportId=transport["id"], label="chat",
                                  sctpStreamParameters={"streamId": 1, "ordered": True})
        assert producer["type"] == "sctp"
        echo = await rpc.call("transport.consumeData", transportId=transport["id"], dataProducerId=producer["id"])
        assert echo["type"] == "sctp" and echo["sctpStreamParameters"]["streamId"] == 0
        direct = await rpc.call("router.createDirectTransport", routerId=router["id"])
        tap = await rpc.call("transport.consumeData", transportId=direct["id"], dataProducerId=producer["id"])
        app = await rpc.call("transport.produceData", transportId=direct["id"], label="app")
        app_to_peer = await rpc.call("transport.consumeData", transportId=transport["id"], dataProducerId=app["id"])
        assert app_to_peer["sctpStreamParameters"]["streamId"] == 1

        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp(transport, offer), type="answer"))
        assert await until(lambda: to_sfu.readyState == "open" and from_sfu.readyState == "open"), (to_sfu.readyState, rpc.notifications)

        # Text, binary and a message larger than one SCTP packet, echoed.
        big = bytes(i % 251 for i in range(60000))
        to_sfu.send("hello")
        to_sfu.send(b"\x00\x01\x02")
        to_sfu.send(big)
        assert await until(lambda: len(echoed) >= 3), echoed
        assert echoed[0] == "hello" and echoed[1] == b"\x00\x01\x02" and echoed[2] == big

        # The application got them too, and its own message reaches aiortc.
        await rpc.call("dataProducer.send", dataProducerId=app["id"], text="from the app")
        assert await until(lambda: "from the app" in to_sfu_received), to_sfu_received
        await rpc.call("worker.list")  # collects notifications sent meanwhile
        tapped = [n["params"] for n in rpc.notifications
                  if n["method"] == "dataconsumer.message" and n["params"]["dataConsumerId"] == tap["id"]]
        assert [base64.b64decode(t["message"]) for t in tapped[:2]] == [b"hello", b"\x00\x01\x02"]
        assert tapped[0]["ppid"] == 51 and tapped[1]["ppid"] == 53
        states = [n["params"]["sctpState"] for n in rpc.notifications if n["method"] == "transport.sctpstatechange"]
        assert states[:2] == ["connecting", "connected"], states

        stats = await rpc.call("dataProducer.getStats", dataProducerId=producer["id"])
        assert stats[0]["messagesReceived"] == 3 and stats[0]["bytesReceived"] == 5 + 3 + len(big)

        # Closing the echo consumer resets its stream: aiortc's channel closes.
        await rpc.call("dataConsumer.close", dataConsumerId=echo["id"])
        assert await until(lambda: from_sfu.readyState == "closed"), from_sfu.readyState
        assert to_sfu.readyState == "open"
        await pc.close()
