"""WHIP/WHEP refusals: tokens per room and role, content types, sizes, and
bad or hostile SDP, each answered with its 4xx and a message naming the
problem, and nothing left behind in the workers."""
import asyncio
import os
import re
import subprocess

import pytest
from aiortc import RTCPeerConnection

from test_aiortc_publish import free_port
from whip import MovingTrack, metric, request, room, wait_for_port

PUBLISH = "publish-token-0123456789"
PLAY = "play-token-0123456789abc"
STAGE = "stage-publish-token-0123456"


@pytest.fixture
def base():
    binary = os.environ.get("RINGSFU_BIN")
    port = free_port()
    proc = subprocess.Popen([binary, "serve", "--port", str(port), "--workers", "1", "--log-level", "warning",
                             "--publish-token", PUBLISH, "--play-token", PLAY, "--room-token", f"stage:publish:{STAGE}",
                             "--rtc-min-port", "42000", "--rtc-max-port", "42999"])
    wait_for_port(port, proc)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


def aiortc_offer():
    async def make():
        pc = RTCPeerConnection()
        pc.addTransceiver(MovingTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp
    return asyncio.run(make())


def post(base, path, body, token=PUBLISH, content_type="application/sdp"):
    return request(base + path, "POST", body, content_type, token)


def test_tokens_per_room_and_role(base):
    offer = aiortc_offer()
    status, headers, _ = post(base, "/whip/r1", offer, token=None)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer"), status
    assert post(base, "/whip/r1", offer, token="wrong-token-0123456789")[0] == 401
    assert post(base, "/whip/r1", offer, token=PLAY)[0] == 401, "a player's token must not publish"
    assert post(base, "/whip/stage", offer, token=PUBLISH)[0] == 401, "a room with its own token refuses the server-wide one"
    assert request(base + "/rooms/r1")[0] == 401
    status, headers, answer = post(base, "/whip/stage", offer, token=STAGE)
    assert status == 201, answer
    assert headers["Content-Type"] == "application/sdp" and headers["Location"].startswith("/whip/stage/")
    assert "a=ice-lite" in answer and "a=fingerprint:sha-256" in answer and "a=candidate:" in answer
    # Only the publisher's token may end its session.
    assert request(base + headers["Location"], "DELETE", token=PLAY)[0] == 401
    assert request(base + headers["Location"], "DELETE", token=STAGE)[0] == 200
    assert room(base, "stage", token=PLAY)["publishers"] == []


def test_bad_and_hostile_offers(base):
    offer = aiortc_offer()
    lines = offer.split("\r\n")
    video_at = next(i for i, line in enumerate(lines) if line.startswith("m=video"))
    cases = {
        "wrong content type": (post(base, "/whip/r", offer, content_type="text/plain"), 415, "application/sdp"),
        "1 MB body": (post(base, "/whip/r", "v=0\r\n" + "a=x\r\n" * 200_000), 413, "larger than"),
        "not SDP": (post(base, "/whip/r", "hello"), 400, "SDP line 1"),
        "not UTF-8": (post(base, "/whip/r", b"v=0\r\n\xff\xfe"), 400, "UTF-8"),
        "truncated": (post(base, "/whip/r", "\r\n".join(lines[:video_at + 3])), 400, "a=mid"),
        "cut inside a line": (post(base, "/whip/r", offer[: offer.index("a=rtpmap") + 9]), 400, "ice-ufrag"),
        "duplicate m-sections": (post(base, "/whip/r", offer + "\r\n".join(lines[video_at:])), 400, "duplicate a=mid"),
        "unknown codecs only": (post(base, "/whip/r", offer.replace("VP8/90000", "XYZ/90000").replace("H264/90000", "XYZ/90000")), 422, "no m-section"),
        "missing fingerprint": (post(base, "/whip/r", "\r\n".join(l for l in lines if not l.startswith("a=fingerprint"))), 400, "fingerprint"),
        "no ICE credentials": (post(base, "/whip/r", "\r\n".join(l for l in lines if not l.startswith("a=ice-"))), 400, "ice-ufrag"),
        "bad room name": (post(base, "/whip/a%20b", offer), 400, "room name"),
        "huge payload type": (post(base, "/whip/r", re.sub(r"a=rtpmap:\d+ ", "a=rtpmap:9999 ", offer, count=1)), 400, "rtpmap"),
        "play before any publisher": (post(base, "/whep/r", offer, token=PLAY), 404, "no publisher"),
        "unknown session": (request(base + "/whip/r/0123", "DELETE", token=PUBLISH), 404, "no such session"),
        "trickle of an unknown session": (request(base + "/whip/r/0123", "PATCH", "a=candidate:1 1 udp 1 1.2.3.4 5 typ host",
                                                  "application/trickle-ice-sdpfrag", PUBLISH), 404, "no such session"),
    }
    for name, ((status, _, text), expected, words) in cases.items():
        print(f"{name}: {status} {text.strip()[:100]}")
    for name, ((status, _, text), expected, words) in cases.items():
        assert status == expected, (name, status, text)
        assert words in text, (name, text)
    # Nothing was left behind: no room, router, transport or producer.
    assert metric(base, "ringsfu_routers") == 0
    assert metric(base, "ringsfu_transports") == 0
    assert metric(base, "ringsfu_producers") == 0


def test_ice_restart_and_trickle_over_patch(base):
    status, headers, answer = post(base, "/whip/r", aiortc_offer())
    assert status == 201
    session, etag = headers["Location"], headers["ETag"]
    # Candidates alone: accepted, nothing to answer (ICE-lite learns addresses from checks).
    status, _, _ = request(base + session, "PATCH", "a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n",
                           "application/trickle-ice-sdpfrag", PUBLISH, {"If-Match": etag})
    assert status == 204
    assert request(base + session, "PATCH", "a=ice-ufrag:x\r\n", "application/trickle-ice-sdpfrag", PUBLISH, {"If-Match": '"stale"'})[0] == 412
    # New credentials from the client: an ICE restart, answered with ours.
    status, headers, fragment = request(base + session, "PATCH", "a=ice-ufrag:newfrag\r\na=ice-pwd:newpassword0123456789abcd\r\n",
                                        "application/trickle-ice-sdpfrag", PUBLISH, {"If-Match": "*"})
    assert status == 200, fragment
    assert headers["ETag"] != etag and "a=ice-ufrag:" in fragment and "a=ice-pwd:" in fragment and "a=candidate:" in fragment
    assert headers["ETag"].strip('"') in fragment
    assert request(base + session, "DELETE", token=PUBLISH)[0] == 200
