"""TURN for clients behind restrictive firewalls: coturn with the TURN REST
API secret, the server handing out expiring credentials (Link headers, the
room listing), and the demo page in Chromium forced through the relay."""
import asyncio
import base64
import hashlib
import hmac
import os
import socket
import subprocess
import time

import pytest

from cdp import Browser
from test_aiortc_publish import free_port
from whip import request, room, wait_for_port

SECRET = "turn-shared-secret-0123456789"


def udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def turn_and_server(tmp_path):
    turn_port = udp_port()
    turn = subprocess.Popen(["turnserver", "-n", "--listening-ip=127.0.0.1", f"--listening-port={turn_port}", "--relay-ip=127.0.0.1",
                             "--use-auth-secret", f"--static-auth-secret={SECRET}", "--realm=ringsfu", "--allow-loopback-peers",
                             "--no-cli", "--no-tls", "--no-dtls", "--min-port=44000", "--max-port=44999", "--no-stdout-log",
                             f"--log-file={tmp_path}/turn.log", f"--pidfile={tmp_path}/turn.pid", f"--userdb={tmp_path}/turn.db"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    server = subprocess.Popen([os.environ["RINGSFU_BIN"], "serve", "--port", str(port), "--workers", "1", "--log-level", "warning",
                               "--rtc-min-port", "45000", "--rtc-max-port", "45999",
                               "--ice-server", f"turn:127.0.0.1:{turn_port}?transport=udp", "--turn-secret", SECRET])
    wait_for_port(port, server)
    yield f"http://127.0.0.1:{port}", turn_port
    server.terminate()
    turn.terminate()
    server.wait(timeout=10)
    turn.wait(timeout=10)


@pytest.mark.asyncio
async def test_demo_page_through_turn(turn_and_server):
    base, turn_port = turn_and_server
    # Link headers (RFC 9725) carry credentials coturn accepts: HMAC-SHA1 of the username under the secret.
    status, headers, _ = request(base + "/whip/relayed", "OPTIONS")
    assert status == 204
    link = headers["Link"]
    assert link.startswith(f"<turn:127.0.0.1:{turn_port}?transport=udp>; rel=\"ice-server\""), link
    fields = dict(part.strip().split("=", 1) for part in link.split(";")[2:])
    username, credential = fields["username"].strip('"'), fields["credential"].strip('"')
    expiry = int(username.split(":")[0])
    assert time.time() + 3600 < expiry <= time.time() + 86400 + 5
    assert credential == base64.b64encode(hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()).decode()
    assert room(base, "relayed")["iceServers"][0]["username"] == username
    browser = Browser()
    try:
        page = browser.open(f"{base}/?room=relayed&autojoin=1&relay=1")
        state = await page.wait_for(
            "(() => { const d = window.demo; const p = Object.values(d.participants)[0];"
            " return p && p.framesDecoded >= 30 && p.candidateType && d.publishCandidateType ? d : null; })()",
            45, "the page to see itself through TURN")
        me = next(iter(state["participants"].values()))
        print("through TURN:", me["width"], me["height"], me["candidateType"], state["publishCandidateType"])
        assert me["candidateType"] == "relay" and state["publishCandidateType"] == "relay", state
        assert me["width"] > 0 and me["audioSamples"] > 0
    finally:
        browser.close()
