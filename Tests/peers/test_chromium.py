"""Headless Chromium (Debian's) against `ringsfu serve`: the browser publishes
its fake camera through a WebRtcTransport and receives it back through a
consumer on another, driven over JSON-RPC from the page itself
(chromium_page.html); over UDP, and over ICE-TCP only."""
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import urllib.parse

import pytest

from test_aiortc_publish import server  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))


class PageServer(http.server.ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.result = None
        self.done = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(os.path.join(HERE, "chromium_page.html"), "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.server.result = json.loads(self.rfile.read(length))
        self.server.done.set()
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()

    def log_message(self, *args):
        pass


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed (scripts/setup.sh installs it)"
    return path


def run_page(server, listen, mode="media"):  # noqa: F811
    """Opens the test page in headless Chromium; returns what it reported."""
    pages = PageServer()
    threading.Thread(target=pages.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{pages.server_address[1]}"
    url = base + "/page?" + urllib.parse.urlencode({"ws": server, "report": base + "/report", "listen": json.dumps(listen), "mode": mode})
    profile = tempfile.mkdtemp(prefix="ringsfu-chromium-")
    browser = subprocess.Popen(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
         "--allow-loopback-in-peer-connection", f"--user-data-dir={profile}", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert pages.done.wait(60), "the page did not report"
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
        pages.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    return pages.result


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_chromium_publishes_and_receives(server, protocol):  # noqa: F811
    r = run_page(server, {"listenInfos": [{"protocol": protocol, "ip": "127.0.0.1"}]})
    print(f"chromium over {protocol}:", {k: r.get(k) for k in ("framesDecoded", "frameWidth", "packetsSent", "pubIce", "subIce")})
    assert "error" not in r, r
    assert r["framesDecoded"] >= 30, r
    assert r["frameWidth"] == 640, r
    assert r["producerStats"][0]["packetCount"] > 0, r
    assert r["consumerStats"][0]["packetCount"] > 0, r
    assert r["sendStats"][0]["iceSelectedTuple"]["protocol"] == protocol, r


def test_chromium_data_channels(server):  # noqa: F811
    """The browser's own SCTP stack against RingSFU's: negotiated channels,
    a text and a 100 kB binary message echoed, a stream reset closing one."""
    r = run_page(server, {"listenInfos": [{"protocol": "udp", "ip": "127.0.0.1"}]}, mode="data")
    assert "error" not in r, r
    assert r["text"] == "hello" and r["bigMatches"], r
    assert r["stats"][0]["messagesReceived"] == 2, r
    assert r["transportStats"][0]["sctpState"] == "connected", r
    assert r["echoState"] == "closed" and r["chatState"] == "open", r
