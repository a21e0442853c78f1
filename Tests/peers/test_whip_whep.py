"""Rooms over WHIP and WHEP with real clients: the demo page in headless
Chromium (two participants), Debian's simple-whip-client (GStreamer)
played by the demo page, and twenty aiortc WHEP players on one publisher."""
import asyncio
import os
import time

import pytest

from cdp import Browser, VIDEO_PIXEL_SPREAD
from test_aiortc_publish import ROOT, server  # noqa: F401
from whip import Player, aiortc_publisher, http_base, metric, request, room, start_whip_client, wait_for

ARTIFACTS = os.path.join(ROOT, ".build", "test-artifacts")

# Every participant of the page's room: decoding video and receiving audio.
ALL_DECODING = """(() => { const d = window.demo; const ps = Object.values(d.participants);
  return ps.length >= %d && ps.every((p) => p.framesDecoded >= 30 && p.width > 0 && p.audioSamples > 0) ? d : null; })()"""


@pytest.mark.asyncio
async def test_demo_page_two_participants(server):  # noqa: F811
    base = http_base(server)
    # As a user's browser is: no flag that lets Chromium gather loopback candidates.
    browser = Browser(loopback=False)
    try:
        a = browser.open(f"{base}/?room=demo-test&autojoin=1")
        b = browser.open(f"{base}/?room=demo-test&autojoin=1")
        state_a = await a.wait_for(ALL_DECODING % 2, 45, "page A to decode both participants")
        state_b = await b.wait_for(ALL_DECODING % 2, 30, "page B to decode both participants")
        for state in (state_a, state_b):
            others = [p for p in state["participants"].values() if not p["mine"]]
            assert len(others) == 1, state
            assert others[0]["width"] in (320, 640) and others[0]["audioPackets"] > 0, state
        # Frames keep coming, and the pictures are not uniform.
        before = {k: v["framesDecoded"] for k, v in state_a["participants"].items()}
        await asyncio.sleep(2)
        after = await a.evaluate("window.demo.participants")
        assert all(after[k]["framesDecoded"] > before[k] + 20 for k in before), (before, after)
        spreads = await a.evaluate(VIDEO_PIXEL_SPREAD)
        assert len(spreads) == 2 and all(s > 5 for s in spreads), spreads
        shot = await a.screenshot(os.path.join(ARTIFACTS, "demo-page.png"))
        print("demo page:", {k: (v["width"], v["height"], v.get("kbps")) for k, v in after.items()}, "screenshot:", shot)
        # Leaving ends the publisher's session: the other page drops the tile.
        await b.evaluate("document.getElementById('leave').click()")
        await a.wait_for("Object.keys(window.demo.participants).length === 1", 10, "page A to drop the participant who left")
        await a.evaluate("document.getElementById('leave').click()")
        wait_for(lambda: metric(base, "ringsfu_routers") == 0, 10, "the empty room to close")
        assert metric(base, "ringsfu_transports") == 0
    finally:
        browser.close()


@pytest.mark.asyncio
async def test_whip_client_played_in_chromium_until_delete(server):  # noqa: F811
    base = http_base(server)
    publisher = start_whip_client(base, "gst")
    browser = None
    try:
        info = await asyncio.to_thread(wait_for, lambda: (r := room(base, "gst"))["publishers"] and r, 20, "simple-whip-client to publish")
        publisher_id = info["publishers"][0]["id"]
        assert sorted(info["publishers"][0]["tracks"]) == ["audio", "video"], info
        browser = Browser()
        page = browser.open(f"{base}/?room=gst&autowatch=1")
        state = await page.wait_for(ALL_DECODING % 1, 30, "the WHEP player to decode the GStreamer stream")
        p = state["participants"][publisher_id]
        assert (p["width"], p["height"]) == (320, 240), p
        spreads = await page.evaluate(VIDEO_PIXEL_SPREAD)
        assert spreads and spreads[0] > 5, spreads
        # DELETE ends the publisher's session; its players' sessions end with it.
        status, _, _ = request(f"{base}/whip/gst/{publisher_id}", "DELETE")
        assert status == 200
        events = await page.wait_for(
            "(() => { const e = window.demo.events.map((x) => x.event); return e.includes('removed') && e.some((x) => /ended|connection:(failed|closed|disconnected)/.test(x)) ? e : null; })()",
            20, "the player to see the publisher's track end")
        print("player events after DELETE:", events)
        assert room(base, "gst")["publishers"] == []
        status, _, _ = request(f"{base}/whip/gst/{publisher_id}", "DELETE")
        assert status == 404
        wait_for(lambda: metric(base, "ringsfu_transports") == 0, 10, "every transport of the room to close")
    finally:
        publisher.terminate()
        publisher.wait(timeout=10)
        if browser:
            browser.close()


@pytest.mark.asyncio
async def test_twenty_whep_players_and_a_late_one(server):  # noqa: F811
    base = http_base(server)
    pc, publisher_url = await aiortc_publisher(base, "crowd")
    players = []
    try:
        for _ in range(20):
            player = Player()
            await player.start(base, "crowd")
            players.append(player)
        deadline = time.time() + 30
        while time.time() < deadline and not all(p.frames >= 10 for p in players):
            await asyncio.sleep(0.5)
        counts = [p.frames for p in players]
        print("frames decoded by 20 players:", counts)
        assert all(c >= 10 for c in counts), counts
        assert metric(base, "ringsfu_consumers") == 20
        # A player joining a running stream gets a key frame at once (the
        # publisher's encoder sends one only when asked).
        await asyncio.sleep(2)
        late = Player()
        await late.start(base, "crowd")
        players.append(late)
        deadline = time.time() + 10
        while time.time() < deadline and late.first_frame_at is None:
            await asyncio.sleep(0.1)
        assert late.first_frame_at is not None, "the late player decoded nothing"
        delay = late.first_frame_at - late.connected_at
        print(f"late player: first frame {delay:.2f} s after its offer")
        assert delay < 5, delay
    finally:
        for p in players:
            await p.close()
        await pc.close()
        await asyncio.to_thread(request, publisher_url, "DELETE")


@pytest.mark.asyncio
async def test_json_rpc_and_whip_publishers_share_a_room(server):  # noqa: F811
    """A JSON-RPC client joins a room, publishes aiortc's VP8 on the room's
    router and consumes the room's WHIP publisher; a WHEP player plays the
    JSON-RPC publisher; the room closes when the last member leaves."""
    import websockets
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from test_aiortc_publish import Rpc, answer_sdp, offer_parameters
    from whip import MovingTrack
    base = http_base(server)
    whip_pc, whip_url = await aiortc_publisher(base, "mixed")
    async with websockets.connect(server) as ws:
        rpc = Rpc(ws)
        joined = await rpc.call("room.join", room="mixed")
        assert [len(p["producers"]) for p in joined["publishers"]] == [1], joined
        transport = await rpc.call("router.createWebRtcTransport", routerId=joined["routerId"],
                                   listenInfos=[{"protocol": "udp", "ip": "127.0.0.1"}])
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver(MovingTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        fingerprint, mid, vp8, rtp = offer_parameters(pc.localDescription.sdp)
        await rpc.call("transport.connect", transportId=transport["id"],
                       dtlsParameters={"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": fingerprint}]})
        await rpc.call("transport.produce", transportId=transport["id"], kind="video", rtpParameters=rtp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp(transport, mid, vp8), type="answer"))
        # The WHIP publisher's producer may be consumed from the room's router.
        egress = await rpc.call("router.createPlainTransport", routerId=joined["routerId"],
                                listenInfo={"protocol": "udp", "ip": "127.0.0.1"}, comedia=True)
        consumer = await rpc.call("transport.consume", transportId=egress["id"], producerId=joined["publishers"][0]["producers"][0]["id"],
                                  rtpCapabilities=joined["rtpCapabilities"])
        assert consumer["kind"] == "video"
        # Both publishers are listed; a WHEP player plays the JSON-RPC one.
        info = await asyncio.to_thread(wait_for, lambda: len((r := room(base, "mixed"))["publishers"]) == 2 and r, 10, "two publishers")
        assert info["publishers"][1]["id"] == transport["id"], info
        player = Player()
        await player.start(base, "mixed", publisher=transport["id"])
        deadline = time.time() + 20
        while time.time() < deadline and player.frames < 10:
            await asyncio.sleep(0.2)
        assert player.frames >= 10, player.frames
        await pc.close()
    # The JSON-RPC client left: its publisher and the player of it are gone.
    await asyncio.to_thread(wait_for, lambda: len(room(base, "mixed")["publishers"]) == 1 and room(base, "mixed")["players"] == 0, 10,
                            "the player of the JSON-RPC publisher to end")
    await player.close()
    assert (await asyncio.to_thread(request, whip_url, "DELETE"))[0] == 200
    await whip_pc.close()
    await asyncio.to_thread(wait_for, lambda: metric(base, "ringsfu_routers") == 0, 10, "the room to close")
