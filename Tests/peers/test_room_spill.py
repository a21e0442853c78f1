"""A room bigger than one worker: `ringsfu serve --workers 2` with at most
two players of a room per worker. An aiortc WHIP publisher and five aiortc
WHEP players: the third and fourth land on an edge router of the room on
the other worker, fed through in-process pipes, the fifth back on the home
worker (nowhere else to go). Every player decodes; the edge closes with its
last player. JSON-RPC members (`room.join`) spill the same way: the third
gets the edge router, consumes the WHIP publisher piped there and decodes."""
import asyncio
import os
import subprocess
import time

import pytest
import websockets

from test_aiortc_consume import subscribe
from test_aiortc_publish import ROOT, Rpc, free_port
from whip import Player, aiortc_publisher, http_base, request, wait_for, wait_for_port


def per_worker(base, name):
    """A gauge's value per worker label."""
    _, _, text = request(base + "/metrics")
    return [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")]


@pytest.fixture
def two_workers():
    binary = os.environ.get("RINGSFU_BIN") or subprocess.check_output(
        ["swift", "build", "--show-bin-path"], cwd=ROOT, text=True).strip() + "/ringsfu"
    port = free_port()
    proc = subprocess.Popen([binary, "serve", "--port", str(port), "--workers", "2", "--room-players-per-worker", "2",
                             "--rtc-min-port", "43000", "--rtc-max-port", "43999", "--log-level", "warning"])
    assert wait_for_port(port, proc), "the server did not start"
    yield f"ws://127.0.0.1:{port}/rpc"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.asyncio
async def test_players_spill_onto_the_other_worker_and_all_decode(two_workers):
    base = http_base(two_workers)
    pc, publisher_url = await aiortc_publisher(base, "big")
    players = []
    try:
        for _ in range(5):
            player = Player()
            await player.start(base, "big")
            players.append(player)
        deadline = time.time() + 30
        while time.time() < deadline and not all(p.frames >= 10 for p in players):
            await asyncio.sleep(0.5)
        counts = [p.frames for p in players]
        print("frames decoded by 5 players:", counts)
        assert all(c >= 10 for c in counts), counts
        # The home router and one edge; consumers on both workers (the
        # players' on each, and the pipe's on the home worker).
        routers, consumers = per_worker(base, "ringsfu_routers"), per_worker(base, "ringsfu_consumers")
        print("routers per worker:", routers, "consumers per worker:", consumers)
        assert sorted(routers) == [1, 1], routers
        assert sorted(consumers) == [2, 4], consumers
        # The edge's players leave: the edge closes, the others play on.
        for p in players[2:4]:
            await asyncio.to_thread(request, p.url, "DELETE")
            await p.close()
        wait_for(lambda: sorted(per_worker(base, "ringsfu_routers")) == [0, 1], 10, "the edge router closing")
        before = [p.frames for p in players[:2] + players[4:]]
        await asyncio.sleep(2)
        after = [p.frames for p in players[:2] + players[4:]]
        assert all(b < a for b, a in zip(before, after)), (before, after)
    finally:
        for p in players:
            await p.close()
        await pc.close()
        await asyncio.to_thread(request, publisher_url, "DELETE")


@pytest.mark.asyncio
async def test_json_rpc_members_spill_and_consume_through_the_pipe(two_workers):
    base = http_base(two_workers)
    pc, publisher_url = await aiortc_publisher(base, "talk")
    sockets, receiver = [], None
    try:
        joined = []
        for _ in range(3):
            ws = await websockets.connect(two_workers)
            sockets.append(ws)
            rpc = Rpc(ws)
            joined.append((rpc, await rpc.call("room.join", room="talk")))
        home, edge = joined[0][1]["routerId"], joined[2][1]["routerId"]
        assert joined[1][1]["routerId"] == home and edge != home
        assert sorted(per_worker(base, "ringsfu_routers")) == [1, 1]
        # The edge's member sees the WHIP publisher and consumes it: piped
        # from the home router on the way.
        rpc, room = joined[2]
        [publisher] = room["publishers"]
        [video] = [p["id"] for p in publisher["producers"]]
        receiver, frames, _, _ = await subscribe(rpc, {"id": edge, "rtpCapabilities": room["rtpCapabilities"]}, [video], first_mid=1)
        deadline = time.time() + 20
        while time.time() < deadline and len(frames["video"]) < 10:
            await asyncio.sleep(0.2)
        print("frames decoded by the JSON-RPC member on the edge:", len(frames["video"]))
        assert len(frames["video"]) >= 10
        # It leaves: the edge closes.
        await rpc.call("room.leave", room="talk")
        wait_for(lambda: sorted(per_worker(base, "ringsfu_routers")) == [0, 1], 10, "the edge router closing")
    finally:
        if receiver:
            await receiver.close()
        for ws in sockets:
            await ws.close()
        await pc.close()
        await asyncio.to_thread(request, publisher_url, "DELETE")
