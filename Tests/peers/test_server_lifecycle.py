"""`ringsfu serve` as an operator runs it: refuses to listen beyond loopback
without an API token, shuts down within its bound on SIGTERM even with a
client that stays connected and silent (the client sees close 1001), and a
second signal ends it at once."""
import asyncio
import os
import signal
import socket
import subprocess
import time

import pytest
import websockets

from test_aiortc_publish import ROOT, free_port


def binary():
    return os.environ.get("RINGSFU_BIN") or subprocess.check_output(
        ["swift", "build", "--show-bin-path"], cwd=ROOT, text=True).strip() + "/ringsfu"


def start(*args, env=None):
    port = free_port()
    proc = subprocess.Popen([binary(), "serve", "--port", str(port), "--workers", "1", "--log-level", "warning", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                return proc, port
            time.sleep(0.1)
    return proc, port


def test_non_loopback_host_needs_a_token():
    proc = subprocess.run([binary(), "serve", "--host", "0.0.0.0", "--port", str(free_port())],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode != 0
    assert "without an API token" in proc.stderr, proc.stderr


def test_token_must_be_usable():
    proc = subprocess.run([binary(), "serve", "--api-token", "short", "--port", str(free_port())],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode != 0 and "at least 16" in proc.stderr, proc.stderr


def test_sigterm_with_a_silent_client_exits_within_the_bound():
    token = "lifecycle-token-0123456789"
    proc, port = start("--api-token", token, "--shutdown-timeout", "5")
    assert proc.poll() is None, proc.communicate()

    async def scenario():
        async with websockets.connect(f"ws://127.0.0.1:{port}/rpc",
                                      additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            await ws.send('{"jsonrpc":"2.0","id":1,"method":"worker.createRouter","params":{}}')
            assert "result" in await ws.recv()
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            # The client stays silent; the server closes it with 1001.
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), timeout=10)
            return closed.value.rcvd.code if closed.value.rcvd else None, time.monotonic() - started

    code, after = asyncio.run(scenario())
    assert code == 1001, code
    rc = proc.wait(timeout=10)
    assert rc == 0, proc.communicate()
    assert after < 6, after


def test_second_signal_exits_at_once():
    proc, port = start()
    assert proc.poll() is None

    async def hold():
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/rpc")
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.get_running_loop().run_in_executor(None, lambda: proc.wait(timeout=10))
        await ws.close()
        return rc, time.monotonic() - started

    rc, after = asyncio.run(hold())
    assert rc is not None and after < 2, (rc, after)


def test_metrics_pass_promtool():
    """Every exported family has HELP text and the exposition is valid:
    `promtool check metrics` (Debian's prometheus package) reports nothing."""
    import json
    import shutil
    import urllib.request

    proc, port = start()
    try:
        async def entities():
            async with websockets.connect(f"ws://127.0.0.1:{port}/rpc") as ws:
                await ws.send('{"jsonrpc":"2.0","id":1,"method":"worker.createRouter","params":{}}')
                router = json.loads(await ws.recv())["result"]["id"]
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "router.createPlainTransport",
                                          "params": {"routerId": router, "listenInfo": {"protocol": "udp", "ip": "127.0.0.1"}}}))
                await ws.recv()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    return r.read()

        text = asyncio.run(entities())
        assert b"ringsfu_transport_packets_received_total" in text
        promtool = shutil.which("promtool")
        assert promtool, "promtool is not installed (scripts/setup.sh installs prometheus)"
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)
        assert check.returncode == 0 and check.stdout == b"" and check.stderr == b"", (check.stdout, check.stderr)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_version_health_and_the_serving_line():
    """`--version` prints the release; `/health` reports the workers as
    JSON; "serving" is logged only once the listener is bound, with the
    port it got, and a port already in use fails instead of announcing."""
    import json
    import urllib.request

    version = subprocess.run([binary(), "--version"], capture_output=True, text=True, timeout=20)
    assert version.returncode == 0 and version.stdout.strip(), version
    proc, port = start("--log-level", "info")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            health = json.loads(r.read())
            assert r.status == 200
        assert health == {"status": "ok", "workers": 1, "deadWorkers": 0, "version": version.stdout.strip()}, health
        # The same port again: the bind fails, and nothing claims to serve.
        taken = subprocess.run([binary(), "serve", "--port", str(port), "--workers", "1", "--log-level", "info"],
                               capture_output=True, text=True, timeout=30)
        assert taken.returncode != 0 or "serving" not in taken.stderr, taken.stderr
        assert "serving" not in taken.stderr, taken.stderr
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    serving = [line for line in err.splitlines() if "ringsfu serving" in line]
    assert len(serving) == 1 and f"127.0.0.1:{port}" in serving[0], err


def test_rpc_refuses_pages_of_other_origins():
    """A browser page of another site cannot drive /rpc (it names itself in
    Origin); the server's own pages, the origins allowed by flag, and
    clients that send no Origin can."""
    proc, port = start("--allowed-origin", "https://app.example")
    assert proc.poll() is None, proc.communicate()

    async def attempt(origin):
        extra = {"origin": origin} if origin else {}
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/rpc", **extra) as ws:
                await ws.send('{"jsonrpc":"2.0","id":1,"method":"worker.createRouter","params":{}}')
                reply = await asyncio.wait_for(ws.recv(), timeout=5)
                return "result" in reply, None
        except websockets.ConnectionClosed as closed:
            return False, (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else None

    try:
        ok, closed = asyncio.run(attempt("https://evil.example"))
        assert not ok and closed and closed[0] == 1008 and "origin" in closed[1], closed
        assert asyncio.run(attempt("null"))[0] is False
        assert asyncio.run(attempt(f"http://127.0.0.1:{port}"))[0], "the server's own page"
        assert asyncio.run(attempt("https://app.example"))[0], "an allowed origin"
        assert asyncio.run(attempt(None))[0], "no Origin: not a browser"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_server_wide_announced_address():
    """--announced-address fills in transports that bind a wildcard address
    and announce nothing; without it a WebRTC transport on a wildcard
    address is refused (its candidates would be useless), naming the field."""
    async def rpc(port, calls):
        async with websockets.connect(f"ws://127.0.0.1:{port}/rpc") as ws:
            replies = []
            for i, (method, params) in enumerate(calls):
                if replies and "result" in replies[0] and isinstance(params, dict) and params.get("routerId") == "?":
                    params = dict(params, routerId=replies[0]["result"]["id"])
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": i + 1, "method": method, "params": params}))
                while True:
                    reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
                    if reply.get("id") == i + 1:
                        replies.append(reply)
                        break
            return replies

    import json
    wildcard = {"routerId": "?", "listenInfos": [{"protocol": "udp", "ip": "0.0.0.0"}]}
    calls = [("worker.createRouter", {}),
             ("router.createWebRtcTransport", wildcard),
             ("router.createWebRtcTransport", {"routerId": "?", "listenInfos": [{"protocol": "udp", "ip": "127.0.0.1"}]}),
             ("router.createPlainTransport", {"routerId": "?", "listenInfo": {"protocol": "udp", "ip": "0.0.0.0"}})]

    proc, port = start("--announced-address", "203.0.113.9")
    try:
        replies = asyncio.run(rpc(port, calls))
        assert [c["address"] for c in replies[1]["result"]["iceCandidates"]] == ["203.0.113.9"], replies[1]
        assert [c["address"] for c in replies[2]["result"]["iceCandidates"]] == ["127.0.0.1"], replies[2]
        assert replies[3]["result"]["tuple"]["localAddress"] == "203.0.113.9", replies[3]
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    proc, port = start()
    try:
        replies = asyncio.run(rpc(port, calls[:2] + calls[3:]))
        error = replies[1]["error"]
        assert error["data"]["type"] == "TypeError" and "listenInfos.ip 0.0.0.0" in error["message"], error
        assert "announcedAddress" in error["message"] and "--announced-address" in error["message"], error
        assert replies[2]["result"]["tuple"]["localAddress"] == "0.0.0.0", replies[2]
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    bad = subprocess.run([binary(), "serve", "--port", str(free_port()), "--announced-address", "0.0.0.0"],
                         capture_output=True, text=True, timeout=20)
    assert bad.returncode != 0 and "--announced-address" in bad.stderr, bad.stderr


def test_announced_address_per_worker():
    """--worker-announced-address gives each worker its own announced
    address (in worker order; an empty one keeps --announced-address), for
    JSON-RPC transports on a wildcard address and for WHIP answers."""
    import json

    async def run(port):
        async with websockets.connect(f"ws://127.0.0.1:{port}/rpc") as ws:
            async def call(i, method, params):
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}))
                while True:
                    reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
                    if reply.get("id") == i:
                        return reply["result"]
            workers = await call(1, "worker.list", {})
            addresses = []
            for n, w in enumerate(workers):
                router = await call(10 + n, "worker.createRouter", {"workerId": w["id"]})
                t = await call(20 + n, "router.createWebRtcTransport",
                               {"routerId": router["id"], "listenInfos": [{"protocol": "udp", "ip": "0.0.0.0"}]})
                addresses.append(t["iceCandidates"][0]["address"])
            return addresses

    proc, port = start("--workers", "2", "--announced-address", "203.0.113.9", "--worker-announced-address", "",
                       "--worker-announced-address", "203.0.113.10")
    try:
        assert asyncio.run(run(port)) == ["203.0.113.9", "203.0.113.10"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    bad = subprocess.run([binary(), "serve", "--port", str(free_port()), "--workers", "1", "--worker-announced-address", "198.51.100.1",
                          "--worker-announced-address", "198.51.100.2"], capture_output=True, text=True, timeout=20)
    assert bad.returncode != 0 and "given 2 times for 1 workers" in bad.stderr, bad.stderr
