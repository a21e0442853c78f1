"""Temporal layers with real browsers: Chromium publishes 3-layer VP8 or
H264 simulcast with `scalabilityMode: "L1T3"` in each encoding (as
mediasoup-client asks for; VP8 names each picture's layer in its payload
descriptor, H264 only in the dependency descriptor); the subscriber's
consumer drops to temporal layer 0 (a quarter of the frame rate) and back
to all three, with the subscriber decoding throughout."""
import pytest

from test_aiortc_publish import server  # noqa: F401
from test_chromium import assert_no_stall, run_page

DOWN, UP, END = 8, 16, 24


@pytest.mark.parametrize("codec", ["VP8", "H264"])
def test_chromium_subscriber_frame_rate_follows_the_temporal_layer(server, codec):  # noqa: F811
    r = run_page(server, {"listenInfos": [{"protocol": "udp", "ip": "127.0.0.1"}]}, mode="simulcast", timeout=END + 60,
                 codec=codec, scalability="L1T3", duration=END, temporalSwitches=[[DOWN, 0], [UP, 2]])
    if "scalabilityMode" in r.get("error", ""):
        pytest.skip(f"this Chromium does not take scalabilityMode for {codec}: {r['error']}")
    assert "error" not in r, r
    samples = r["samples"]
    for s in samples:
        print(f"  t={s['t']:4.1f} temporal {s['temporal']} fps {s['fps']:5.1f} decoded {s['framesDecoded']:4d} width {s['frameWidth']}")
    print("layerschange:", r["layers"])
    # Decoding never stops: every 2 s window has frames, even at a quarter rate.
    assert_no_stall(samples, 6)

    def rate(start, end):
        window = [s for s in samples if start <= s["t"] <= end]
        return (window[-1]["framesDecoded"] - window[0]["framesDecoded"]) / (window[-1]["t"] - window[0]["t"])

    before, low, after = rate(3, DOWN), rate(DOWN + 2, UP), rate(UP + 2, END)
    print(f"frames/s decoded: {before:.1f} before, {low:.1f} on temporal layer 0, {after:.1f} after")
    assert low < before * 0.45, (before, low)
    assert after > low * 2.5, (low, after)
    # layerschange reported the temporal layer going down and up again.
    temporals = [n["layers"]["temporalLayer"] for n in r["layers"] if n.get("layers")]
    assert 0 in temporals and temporals[-1] == 2, r["layers"]
