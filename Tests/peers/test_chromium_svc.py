"""SVC with real browsers: Chromium publishes one VP9 encoding with
`scalabilityMode: "L3T3_KEY"` or one AV1 encoding with "L3T3" (three spatial
layers, three temporal; AV1's layers named by the dependency descriptor
only, and its upper layers referring to the lower ones in every picture); a
second peer connection subscribes through an SVC consumer whose preferred
spatial layer the page switches. The subscriber decodes each layer's
resolution (a quarter, half, full width of what is sent), never stalling."""
import pytest

from test_aiortc_publish import server  # noqa: F401
from test_chromium import assert_no_stall, run_page

SWITCHES = [[6, 0], [12, 1], [18, 2]]
END = 24


@pytest.mark.parametrize("codec,mode", [("VP9", "L3T3_KEY"), ("AV1", "L3T3")])
def test_chromium_svc_subscriber_switches_spatial_layers(server, codec, mode):  # noqa: F811
    r = run_page(server, {"listenInfos": [{"protocol": "udp", "ip": "127.0.0.1"}]}, mode="simulcast", timeout=END + 60,
                 codec=codec, svc=mode, switches=SWITCHES, duration=END, degradation="maintain-resolution",
                 minOutgoing=5_000_000)  # the preference alone decides (bandwidth: test_chromium_bwe.py)
    if f"no {codec} in the browser's offer" in r.get("error", ""):
        pytest.skip(f"this Chromium offers no {codec}")
    assert "error" not in r, r
    samples = r["samples"]
    for s in samples:
        print(f"  t={s['t']:4.1f} preferred {s['preferred']} decoded {s['framesDecoded']:4d} {s['frameWidth']:4d} wide (sent {s['sentWidths']})")
    print("layerschange:", r["layers"])
    assert_no_stall(samples, 10)
    bounds = [at for at, _ in SWITCHES] + [END + 0.5]
    for (at, layer), end in zip(SWITCHES, bounds[1:]):
        window = [s for s in samples if at + 2.5 <= s["t"] < end]
        # Spatial layer n of three is 1/2^(2-n) of the full width sent.
        matching = [s for s in window if s["sentWidths"].get("svc") and abs(s["frameWidth"] - (s["sentWidths"]["svc"] >> (2 - layer))) <= 2]
        if len(matching) < len(window) - 1:
            print("mismatch", at, layer, [(s["t"], s["frameWidth"], s["sentWidths"]) for s in window])
        assert len(matching) >= len(window) - 1, (at, layer, window)
    spatial = [n["layers"]["spatialLayer"] for n in r["layers"] if n.get("layers")]
    assert spatial[-3:] == [0, 1, 2] or {0, 1, 2} <= set(spatial), r["layers"]
