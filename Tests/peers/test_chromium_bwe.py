"""Send-side congestion control with real browsers: Chromium publishes a
1280x720 y4m clip as 3-layer VP8 simulcast, or as VP9 or AV1 SVC (L3T3_KEY); a
second Chromium peer connection subscribes through a shaping relay on its
downlink whose rate steps 4 Mbps -> 600 kbps -> 4 Mbps. The SFU's estimate
for the subscriber's transport (from the subscriber's transport-wide
feedback) drives the consumer's spatial layer: down when the link drops, up
again after probing."""
import os
import subprocess

import pytest

from shaping_relay import ShapingRelay
from test_aiortc_publish import server  # noqa: F401
from test_chromium import free_rtc_port, run_page

DROP, RECOVER, END = 15, 27, 45


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Two seconds of a moving 1280x720 test pattern (the browser loops it):
    detailed enough that the top layer needs its full bitrate."""
    path = str(tmp_path_factory.mktemp("clip") / "720p.y4m")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                    "-frames:v", "60", "-pix_fmt", "yuv420p", path], check=True)
    yield path
    os.remove(path)


@pytest.mark.parametrize("stream", ["vp8-simulcast", "vp9-svc", "av1-svc"])
def test_chromium_subscriber_layers_follow_a_link_that_drops_and_recovers(server, clip, stream):  # noqa: F811
    codec = stream.split("-")[0].upper()
    extra = {"codec": codec, "svc": "L3T3_KEY", "degradation": "maintain-resolution"} if stream.endswith("-svc") else {}
    port = free_rtc_port()
    with ShapingRelay(("127.0.0.1", port), rate_bps=4_000_000, queue_bytes=64_000, shape="to_peer") as relay:
        r = run_page(server, {"listenInfos": [{"protocol": "udp", "ip": "127.0.0.1"}]}, mode="simulcast", timeout=END + 60,
                     shaper=relay, browser_args=[f"--use-file-for-fake-video-capture={clip}"], duration=END,
                     recvListen={"listenInfos": [{"protocol": "udp", "ip": "127.0.0.1", "port": port}]},
                     recvRelay=f"127.0.0.1:{relay.port}", rates=[[DROP, 600_000], [RECOVER, 4_000_000]], **extra)
        print(f"relay: {relay.forwarded} forwarded, {relay.dropped} dropped")
    if f"no {codec} in the browser's offer" in r.get("error", ""):
        pytest.skip(f"this Chromium offers no {codec}")
    assert "error" not in r, r
    samples = r["samples"]
    print("   t  link  estimate  sent  layer  queue  decoded  width")
    for s in samples:
        print(f"{s['t']:4.1f} {s['linkKbps']:5d} {s['estimateKbps']:9d} {s['sendKbps']:5d} {str(s['layer']):>6} {s['queueMs']:5d}ms"
              f" {s['framesDecoded']:7d} {s['frameWidth']:6d}")
    print("freezes:", r["freezes"])
    print("layerschange:", r["layers"])
    traces = [t["trace"] for t in r.get("traces", [])]
    t0 = traces[0]["timestamp"] if traces else 0
    print("bwe traces (s, available, acked, delay-based, loss-based, loss, last probe), kbps:")
    for tr in traces:
        i = tr["info"]
        print(f"  {(tr['timestamp'] - t0) / 1000:5.1f} {i['availableBitrate'] // 1000:6d} {i['ackedBitrate'] // 1000:6d}"
              f" {i['delayBasedBitrate'] // 1000:6d} {i['lossBasedBitrate'] // 1000:6d} {i['lossFraction']:.3f} {i.get('probeBitrate', 0) // 1000:6d}")
    assert r["framesPresented"], "the subscriber presented no frame"

    def layer_at(t):
        return next(s["layer"] for s in samples if s["t"] == t)

    # Before the drop the subscriber gets the top layer.
    assert any(s["layer"] == 2 for s in samples if s["t"] < DROP), samples
    assert layer_at(DROP - 0.5) == 2, samples
    # Down within 2 s of the drop.
    down = next(s["t"] for s in samples if s["t"] > DROP and s["layer"] is not None and s["layer"] < 2)
    assert down <= DROP + 2, f"stepped down at {down}"
    # Frozen time (gaps over 200 ms between presented frames) across the
    # drop: the step down itself. (A probe later in the low phase can still
    # try the middle layer once and stall for up to a second: printed above.)
    frozen = sum(f["ms"] for f in r["freezes"] if DROP - 1 <= f["t"] <= DROP + 5)
    # SVC: the held consumer's key frame is asked for once the link's queue
    # has drained (asked for at once, the full queue lost it and the
    # endpoint froze ~3 s until its own request): measured 0.6-0.9 s.
    assert frozen < (1000 if stream == "vp8-simulcast" else 1500), r["freezes"]
    # The relay's queue back under 150 ms within 5 s of the drop, and kept there.
    drained = next(s["t"] for s in samples if s["t"] > DROP and s["queueMs"] < 150)
    assert drained <= DROP + 5, f"queue drained at {drained}"
    late = [s["queueMs"] for s in samples if DROP + 6 <= s["t"] < RECOVER]
    assert sorted(late)[len(late) // 2] < 150, late
    # The top layer again within 15 s of the recovery.
    up = next((s["t"] for s in samples if s["t"] > RECOVER and s["layer"] == 2), None)
    assert up is not None and up <= RECOVER + 15, f"back to the top layer at {up}"
