"""Three `ringsfu serve` nodes, each in its own network namespace, forming a
cluster through a Redis the test starts. A publisher on node 0; players on
nodes 1 and 2 play the room through UDP pipes from node 0. Node 1 stops: its
player's connection ends, the others play on; node 1 restarts and serves
again. Node 0 is cut off, then dies: the mirrors' players end, the room is homed anew by the
next publisher. Redis stops: nodes keep serving their own rooms and say so.
JSON-RPC members (the mediasoup-client flow) of a room homed on another node
join a mirror of it: they consume the home's publishers, their own producers
are piped up to the home (and on to other nodes' players), and they see
their transports close when the home leaves."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import aioice.ice
import pytest

import websockets

from aiortc import RTCSessionDescription

from test_aiortc_consume import subscribe, video_publisher
from test_aiortc_publish import session_sdp
from test_aiortc_publish import ROOT, Rpc
from whip import Player, aiortc_publisher, request, wait_for
from netns import Hosts

TOKEN = "cluster-test-token-0123456789"
PORT = 8080
REDIS_PORT = 6390


def reachable(ip, port):
    try:
        socket.create_connection((ip, port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Cluster:
    def __init__(self, hosts, logdir):
        self.hosts = hosts
        self.logdir = logdir
        self.binary = os.environ.get("RINGSFU_BIN") or subprocess.check_output(
            ["swift", "build", "--show-bin-path"], cwd=ROOT, text=True).strip() + "/ringsfu"
        self.nodes = {}
        self.redis = None

    def start_redis(self):
        self.redis = subprocess.Popen(["redis-server", "--bind", self.hosts.gateway, "--port", str(REDIS_PORT), "--save", "",
                                       "--appendonly", "no", "--protected-mode", "no"], stdout=subprocess.DEVNULL)
        wait_for(lambda: reachable(self.hosts.gateway, REDIS_PORT), 10, "Redis")

    def start(self, i):
        ip = self.hosts.ip(i)
        log = open(os.path.join(self.logdir, f"node{i}.log"), "a")
        self.nodes[i] = self.hosts.popen(i, [self.binary, "serve", "--host", ip, "--port", str(PORT), "--api-token", TOKEN,
                                             "--workers", "1", "--cluster-redis", f"{self.hosts.gateway}:{REDIS_PORT}",
                                             "--node-id", f"node{i}", "--rtc-min-port", "40000", "--rtc-max-port", "40999",
                                             "--log-level", "debug"], stderr=log)
        wait_for(lambda: reachable(ip, PORT) or self.nodes[i].poll() is not None, 15, f"node {i} listening")
        assert self.nodes[i].poll() is None, f"node {i} exited: {self.log(i)[-2000:]}"

    def base(self, i):
        return f"http://{self.hosts.ip(i)}:{PORT}"

    def log(self, i):
        with open(os.path.join(self.logdir, f"node{i}.log")) as f:
            return f.read()

    def status(self, i):
        code, _, text = request(self.base(i) + "/cluster", token=TOKEN)
        assert code == 200, (code, text)
        return json.loads(text)

    def node_ids(self, i):
        return sorted(n["id"] for n in self.status(i)["nodes"])

    def stop(self, i, sig=signal.SIGTERM):
        self.nodes[i].send_signal(sig)
        self.nodes[i].wait(timeout=15)

    def close(self):
        for p in self.nodes.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.redis and self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait()


@pytest.fixture
def cluster():
    try:
        hosts = Hosts(3).__enter__()
    except RuntimeError as e:
        pytest.fail(str(e))
    logdir = tempfile.mkdtemp(prefix="ringsfu-cluster-")
    c = Cluster(hosts, logdir)
    # The peers reach the nodes from the bridge's address (the other test
    # modules limit aiortc to loopback).
    gather = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: [hosts.gateway]
    try:
        c.start_redis()
        for i in range(3):
            c.start(i)
        yield c
    finally:
        aioice.ice.get_host_addresses = gather
        c.close()
        hosts.__exit__(None, None, None)
        print("node logs in", logdir)


async def decoded(players, at_least=10, timeout=25):
    deadline = time.time() + timeout
    while time.time() < deadline and not all(p.frames >= at_least for p in players):
        await asyncio.sleep(0.3)
    return [p.frames for p in players]


async def ended(player, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline and player.pc.connectionState not in ("closed", "failed"):
        await asyncio.sleep(0.2)
    return player.pc.connectionState


@pytest.mark.asyncio
async def test_a_room_plays_on_every_node_and_survives_nodes_leaving(cluster):
    c = cluster
    wait_for(lambda: c.node_ids(0) == ["node0", "node1", "node2"], 10, "three nodes registered")
    publisher, publisher_url = await aiortc_publisher(c.base(0), "hall", token=TOKEN)
    players = {}
    try:
        # Players on the two other nodes: the room is piped to each.
        for i in (1, 2):
            players[i] = Player()
            await players[i].start(c.base(i), "hall", token=TOKEN)
        frames = await decoded([players[1], players[2]])
        print("frames decoded on nodes 1 and 2:", frames)
        assert all(f >= 10 for f in frames), frames
        # A publisher reaching another node is sent to the room's home.
        code, headers, _ = request(c.base(2) + "/whip/hall", "POST", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "application/sdp", TOKEN)
        assert code == 307 and headers["Location"] == c.base(0) + "/whip/hall", (code, dict(headers))

        # Node 1 stops: its player's connection ends; node 2's plays on.
        c.stop(1)
        assert await ended(players[1]) in ("closed", "failed")
        wait_for(lambda: c.node_ids(0) == ["node0", "node2"], 5, "node 1 leaving the cluster")
        before = players[2].frames
        await asyncio.sleep(2)
        assert players[2].frames > before + 10, (before, players[2].frames)
        # It comes back and serves the room again.
        c.start(1)
        wait_for(lambda: c.node_ids(2) == ["node0", "node1", "node2"], 10, "node 1 rejoining")
        await players[1].close()
        players[1] = Player()
        await players[1].start(c.base(1), "hall", token=TOKEN)
        assert (await decoded([players[1]]))[0] >= 10

        # The home node is cut off (its link goes down: no TCP close ever
        # reaches the others), then dies: the mirrors notice (pings), lose
        # the room's producers and end their players; the next publisher
        # homes the room again, on the node it reaches.
        c.hosts.cut(0)
        assert await ended(players[2], timeout=12) in ("closed", "failed")
        c.stop(0, signal.SIGKILL)
        assert await ended(players[1]) in ("closed", "failed")
        wait_for(lambda: c.node_ids(2) == ["node1", "node2"], 6, "node 0's record expiring")
        await publisher.close()
        publisher, publisher_url = await aiortc_publisher(c.base(2), "hall", token=TOKEN)
        late = Player()
        players["late"] = late
        await late.start(c.base(1), "hall", token=TOKEN)
        assert (await decoded([late]))[0] >= 10
        assert "cascade up" in c.log(1)

        # Redis stops: the nodes keep serving what they have, and say so.
        c.redis.terminate()
        c.redis.wait()
        wait_for(lambda: c.status(2)["redis"] == "unreachable", 10, "node 2 noticing Redis is gone")
        local = Player()
        players["local"] = local
        await local.start(c.base(2), "hall", token=TOKEN)
        assert (await decoded([local]))[0] >= 10
        before = late.frames
        await asyncio.sleep(2)
        assert late.frames > before + 10, "the piped player stopped with Redis"
    finally:
        for p in players.values():
            await p.close()
        await publisher.close()


@pytest.mark.asyncio
async def test_json_rpc_members_join_a_mirror_of_a_room_homed_elsewhere(cluster):
    c = cluster
    wait_for(lambda: c.node_ids(0) == ["node0", "node1", "node2"], 10, "three nodes registered")
    publisher, _ = await aiortc_publisher(c.base(0), "forum", token=TOKEN)
    pc = None
    try:
        # Node 2 lists the room as its home describes it (through Redis).
        def listed():
            code, _, text = request(c.base(2) + "/rooms/forum", token=TOKEN)
            return code == 200 and len(json.loads(text)["publishers"]) == 1
        wait_for(listed, 5, "node 2 listing the publisher of node 0's room")
        url = c.base(2).replace("http://", "ws://") + "/rpc"
        async with websockets.connect(url, subprotocols=["ringsfu", "ringsfu.token." + TOKEN]) as ws:
            rpc = Rpc(ws)
            room = await rpc.call("room.join", room="forum")
            [remote] = room["publishers"]
            [video] = [p["id"] for p in remote["producers"]]
            router = {"id": room["routerId"], "rtpCapabilities": room["rtpCapabilities"]}
            pc, frames, _, _ = await subscribe(rpc, router, [video], first_mid=3, ip=c.hosts.ip(2))
            deadline = time.time() + 20
            while time.time() < deadline and len(frames["video"]) < 10:
                await asyncio.sleep(0.2)
            print("frames decoded by the JSON-RPC member on node 2:", len(frames["video"]))
            assert len(frames["video"]) >= 10
            assert "cascade up" in c.log(2)
            # A member of the mirror publishes: its producer is piped up to
            # the home, which lists it; WHEP players on the home and on node 1
            # (a second pipe, from the home) decode it.
            sender, send, produced, (kind, mid, pt, _) = await video_publisher(rpc, router, ip=c.hosts.ip(2))
            await sender.setRemoteDescription(RTCSessionDescription(sdp=session_sdp(send, [(kind, mid, pt, "recvonly", [])], "passive"),
                                                                    type="answer"))
            def home_lists():
                code, _, text = request(c.base(0) + "/rooms/forum", token=TOKEN)
                return code == 200 and send["id"] in [p["id"] for p in json.loads(text)["publishers"]]
            wait_for(home_lists, 5, "the home listing the mirror member's publisher")
            watchers = [Player(), Player()]
            for player, node in zip(watchers, (0, 1)):
                await player.start(c.base(node), "forum", token=TOKEN, publisher=send["id"])
            got = await decoded(watchers)
            print("frames of node 2's publisher decoded on nodes 0 and 1:", got)
            assert all(f >= 10 for f in got), got
            assert (await rpc.call("room.getPublishers", room="forum"))["publishers"][-1]["id"] == send["id"]
            # Closed on node 2, gone from the home's list.
            await rpc.call("producer.close", producerId=produced["id"])
            wait_for(lambda: not home_lists(), 5, "the home dropping the closed producer")
            for player in watchers:
                await player.close()
            await sender.close()
            # The home node leaves: the member's transports close with the
            # mirror's router; a new join finds no home and opens the room here.
            c.stop(0)
            deadline = time.time() + 10
            while time.time() < deadline and not any(n["method"] == "transport.routerclose" for n in rpc.notifications):
                await rpc.call("worker.list")
                await asyncio.sleep(0.3)
            assert any(n["method"] == "transport.routerclose" for n in rpc.notifications), rpc.notifications[-5:]
            again = await rpc.call("room.join", room="forum")
            assert again["routerId"] != room["routerId"] and again["publishers"] == []
            await rpc.call("room.leave", room="forum")
    finally:
        if pc:
            await pc.close()
        await publisher.close()
