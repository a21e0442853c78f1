"""WHIP/WHEP helpers for the tests: HTTP calls, aiortc publishers and
players, and Debian's simple-whip-client (GStreamer)."""
import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import av
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import VideoStreamTrack


def http_base(rpc_url):
    return rpc_url.replace("ws://", "http://").rsplit("/rpc", 1)[0]


def request(url, method="GET", body=None, content_type=None, token=None, headers=None):
    """(status, headers, body text) of an HTTP request; errors are answers too."""
    h = dict(headers or {})
    if content_type:
        h["Content-Type"] = content_type
    if token:
        h["Authorization"] = "Bearer " + token
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def wait_for_port(port, proc=None, timeout=10):
    """Waits until a server accepts connections on loopback `port`; False
    when it did not in time (or `proc` exited first)."""
    deadline = time.time() + timeout
    while time.time() < deadline and (proc is None or proc.poll() is None):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def metric(base, name):
    """Sum of a Prometheus gauge over its labels."""
    _, _, text = request(base + "/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{") or line.startswith(name + " "))


def room(base, name, token=None):
    import json
    status, _, text = request(f"{base}/rooms/{name}", token=token)
    assert status == 200, (status, text)
    return json.loads(text)


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


class MovingTrack(VideoStreamTrack):
    """Small frames whose content changes, so that a decoded frame says something."""

    def __init__(self, width=320, height=180):
        super().__init__()
        self.width, self.height, self.n = width, height, 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        self.n += 1
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        x = (self.n * 4) % self.width
        row = bytes(16 if abs(i - x) > 10 else 235 for i in range(self.width))
        for index, plane in enumerate(frame.planes):
            if index == 0:
                plane.update(b"".join(row + bytes(plane.line_size - self.width) for _ in range(self.height)))
            else:
                plane.update(bytes([128]) * (plane.line_size * plane.height))
        frame.pts, frame.time_base = pts, time_base
        return frame


async def post_offer(pc, url, token=None):
    """Sends the local offer; applies the answer; returns the session URL."""
    await pc.setLocalDescription(await pc.createOffer())
    status, headers, text = await asyncio.to_thread(request, url, "POST", pc.localDescription.sdp, "application/sdp", token)
    assert status == 201, (status, text)
    await pc.setRemoteDescription(RTCSessionDescription(text, "answer"))
    location = headers["Location"]
    return url.split("/whi")[0] + location if location.startswith("/") else location


async def aiortc_publisher(base, room_name, token=None):
    pc = RTCPeerConnection()
    pc.addTransceiver(MovingTrack(), direction="sendonly")
    url = await post_offer(pc, f"{base}/whip/{room_name}", token)
    return pc, url


class Player:
    """An aiortc WHEP player counting decoded video frames."""

    def __init__(self):
        self.pc = RTCPeerConnection()
        self.frames = 0
        self.first_frame_at = None
        self.tasks = []
        self.pc.addTransceiver("video", direction="recvonly")

        @self.pc.on("track")
        def on_track(track):
            self.tasks.append(asyncio.ensure_future(self.read(track)))

    async def read(self, track):
        while True:
            try:
                await track.recv()
            except Exception:
                return
            self.frames += 1
            if self.first_frame_at is None:
                self.first_frame_at = time.time()

    async def start(self, base, room_name, token=None, publisher=None):
        url = f"{base}/whep/{room_name}" + (f"?publisher={publisher}" if publisher else "")
        self.connected_at = time.time()
        self.url = await post_offer(self.pc, url, token)

    async def close(self):
        for t in self.tasks:
            t.cancel()
        await self.pc.close()


IGD_STUB = r"""
/* Debian 12's libnice links libgupnp-igd, which pulls libsoup3 into
   simple-whip-client, a libsoup2 program: libsoup aborts the process when
   both are loaded. UPnP port mapping is never wanted here; this stand-in
   library offers none, so libsoup3 is never loaded. */
typedef unsigned long GType;
extern GType g_object_get_type(void);
void *gupnp_simple_igd_thread_new(void) { return 0; }
GType gupnp_simple_igd_get_type(void) { return g_object_get_type(); }
void gupnp_simple_igd_add_port(void *a, const char *b, unsigned c, const char *d, unsigned e, unsigned f, const char *g) {}
void gupnp_simple_igd_remove_port_local(void *a, const char *b, const char *c, unsigned d) {}
"""


def igd_stub_dir():
    """A directory with the stand-in libgupnp-igd-1.0.so.4, built once."""
    path = os.path.join(tempfile.gettempdir(), "ringsfu-igd-stub")
    lib = os.path.join(path, "libgupnp-igd-1.0.so.4")
    if not os.path.exists(lib):
        os.makedirs(path, exist_ok=True)
        src = os.path.join(path, "stub.c")
        with open(src, "w") as f:
            f.write(IGD_STUB)
        compiler = shutil.which("cc") or shutil.which("clang")
        subprocess.check_call([compiler, "-shared", "-fPIC", "-o", lib + ".tmp", "-Wl,-soname,libgupnp-igd-1.0.so.4", src,
                               "/lib/x86_64-linux-gnu/libgobject-2.0.so.0"])
        os.replace(lib + ".tmp", lib)
    return path


def start_whip_client(base, room_name, token=None):
    """simple-whip-client publishing GStreamer test sources (VP8 + opus)."""
    video = ("videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! queue ! "
             "vp8enc deadline=1 target-bitrate=400000 keyframe-max-dist=3000 ! rtpvp8pay pt=96 ssrc=1111 ! queue ! "
             "application/x-rtp,media=video,encoding-name=VP8,payload=96")
    audio = ("audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! queue ! opusenc ! rtpopuspay pt=111 ssrc=2222 ! "
             "queue ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111")
    args = ["whip-client", "-u", f"{base}/whip/{room_name}", "-V", video, "-A", audio, "-n", "-l", "3"]
    if token:
        args += ["-t", token]
    env = dict(os.environ, LD_LIBRARY_PATH=igd_stub_dir())
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
