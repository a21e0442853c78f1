"""Headless Chromium driven over the DevTools protocol: open pages, evaluate
JavaScript in them, take screenshots. Used by the tests of the server's own
pages (the demo page), which have no test hooks of their own."""
import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import websockets


def chromium_path():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed (scripts/setup.sh installs it)"
    return path


class Browser:
    """One headless Chromium with a fake camera and microphone."""

    def __init__(self, extra_args=(), loopback=True):
        self.profile = tempfile.mkdtemp(prefix="ringsfu-cdp-")
        self.proc = subprocess.Popen(
            [chromium_path(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
             *(["--allow-loopback-in-peer-connection"] if loopback else []), "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
             *extra_args, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 20
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            assert time.time() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        self.port = int(open(port_file).read().split()[0])

    def open(self, url):
        """Opens `url` in a new tab; returns a Page."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?{urllib.parse.quote(url, safe='')}", method="PUT")
        target = json.loads(urllib.request.urlopen(request, timeout=10).read())
        return Page(target["webSocketDebuggerUrl"])

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, ws_url):
        self.ws_url = ws_url
        self.next_id = 0

    async def call(self, method, **params):
        async with websockets.connect(self.ws_url, max_size=64 << 20) as ws:
            self.next_id += 1
            await ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
            while True:
                message = json.loads(await ws.recv())
                if message.get("id") == self.next_id:
                    assert "error" not in message, message
                    return message["result"]

    async def evaluate(self, expression):
        """The JSON value of `expression` (promises are awaited)."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    async def wait_for(self, expression, timeout, what):
        """Polls `expression` until it is truthy; returns its value."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = await self.evaluate(expression)
            except AssertionError as e:  # the page is still loading
                last = None
                error = e
            if last:
                return last
            await asyncio.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}: {last or locals().get('error')}")

    async def screenshot(self, path):
        data = await self.call("Page.captureScreenshot", format="png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))
        return path


# Draws every <video> of the page into a small canvas and returns the
# standard deviation of its pixel values: 0 for a uniform (black) picture.
VIDEO_PIXEL_SPREAD = """
[...document.querySelectorAll('video')].map((v) => {
  const c = document.createElement('canvas'); c.width = 64; c.height = 36;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 36);
  const d = g.getImageData(0, 0, 64, 36).data; let n = 0, sum = 0, sq = 0;
  for (let i = 0; i < d.length; i += 4) { const y = (d[i] + d[i + 1] + d[i + 2]) / 3; n++; sum += y; sq += y * y; }
  const mean = sum / n; return Math.sqrt(Math.max(0, sq / n - mean * mean));
})
"""
