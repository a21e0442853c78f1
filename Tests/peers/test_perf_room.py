"""The load tester against a real server: `ringsfu-perf room` loads a
running `ringsfu serve` with WebRTC publishers and subscribers (ICE, DTLS
and SRTP from the project's own primitives) over the JSON-RPC API, prints
progress, and writes a summary with the run's metadata and charts. With
`--feedback` the participants act as browsers do: subscribers send
transport-cc feedback, publishers answer NACKs with RTX (here 2 % of their
packets are lost on the way in) and key frame requests with key frames."""
import re
import json
import os
import subprocess

import pytest

from test_aiortc_publish import ADMIN_TOKEN, ROOT, free_port
from whip import wait_for_port


@pytest.mark.parametrize("simulcast,feedback", [(False, False), (True, False), (True, True)], ids=["single", "simulcast", "feedback"])
def test_room_load_with_webrtc_participants(tmp_path, simulcast, feedback):
    server_bin = os.environ.get("RINGSFU_BIN") or subprocess.check_output(
        ["swift", "build", "--show-bin-path"], cwd=ROOT, text=True).strip() + "/ringsfu"
    perf_bin = os.path.join(os.path.dirname(server_bin), "ringsfu-perf")
    port = free_port()
    server = subprocess.Popen([server_bin, "serve", "--port", str(port), "--workers", "2", "--admin-token", ADMIN_TOKEN,
                               "--rtc-min-port", "44000", "--rtc-max-port", "44999", "--log-level", "warning"])
    try:
        assert wait_for_port(port, server), "the server did not start"
        out = tmp_path / "room.json"
        run = subprocess.run([perf_bin, "room", "--target", f"ws://127.0.0.1:{port}/rpc", "--token", ADMIN_TOKEN,
                              "--publishers", "2", "--subscribers", "10" if simulcast else "4,10", "--duration", "3", "--receivers", "2",
                              "--json", str(out), "--svg", str(tmp_path / "room")] + (["--simulcast", "--workers", "2"] if simulcast else [])
                             + (["--feedback", "--publisher-loss", "2"] if feedback else []),
                             capture_output=True, text=True, timeout=120)
        print(run.stdout)
        print(run.stderr[-2000:])
        assert run.returncode == 0, run.stderr
        # Progress while it ran: joins, then a line a second.
        assert "subscribers joined: 10/10" in run.stderr
        rooms = 1 if simulcast else 2
        assert run.stderr.count(" s: sent ") == 3 * rooms
        report = json.loads(out.read_text())
        assert report["metadata"]["tool"] == "ringsfu-perf" and report["metadata"]["version"]
        assert report["metadata"]["started"] and report["metadata"]["finished"]
        summary = report["summary"]
        assert summary["participants"] == 12
        assert len(summary["tracks"]) == 2
        if feedback:
            # Lost packets came back as RTX; the subscribers' estimation ran on their feedback.
            assert int(re.search(r"packets they resent on NACKs: (\d+)", run.stderr).group(1)) > 0, run.stderr
            assert int(re.search(r"feedback packets the subscribers sent: (\d+)", run.stderr).group(1)) > 100, run.stderr
        # (With feedback the layers follow the estimate, which starts low: not all top.)
        assert summary["lossPercent"] < (5 if feedback else 1), summary
        for track in summary["tracks"]:
            assert track["serverReceived"] > 0, track
            if feedback:
                pass
            elif simulcast:
                # Three layers in (1/12, 1/4 and 1 of the top's bytes), the top one out to each subscriber.
                share = track["serverForwarded"] / (10 * track["serverReceived"])
                assert 0.6 < share < 0.85, (share, track)
            else:
                # Every packet the server got went to each of the ten subscribers.
                assert track["serverForwarded"] >= 10 * track["serverReceived"] * 0.99, track
        # Key frames every 2 s: every subscriber track decodes, none freezes.
        # (With feedback the estimator moves layers, and on a loaded host a
        # switch down can stall a track until a key frame: 1 or 2 of 20
        # tracks in about one run of six. Repairs are checked above.)
        assert summary["decodingTracks"] == 20, summary
        if not feedback:
            assert summary["freezes"] == 0, summary
        assert len(report["timeline"]) == 3
        assert all(s["p99Us"] > 0 and s["p50Us"] <= s["p99Us"] for s in report["timeline"]), report["timeline"]
        assert report["settings"]["receivers"] == "2"
        # The simulcast room spans both workers (the second fed by a pipe).
        assert report["settings"]["workers"] == ("2" if simulcast else "1")
        assert (tmp_path / "room-throughput.svg").read_text().startswith("<svg")
        assert (tmp_path / "room-latency.svg").read_text().startswith("<svg")
        # One room per size (4 then 10 subscribers): CPU per packet against subscribers.
        assert [r["summary"]["subscribers"] for r in report["runs"]] == ([10] if simulcast else [4, 10])
        assert all(r["summary"]["serverCpuPerMillionPackets"] > 0 and r["summary"]["serverOutMbps"] > 0 for r in report["runs"]), report["runs"]
        assert (tmp_path / "room-cpu.svg").read_text().startswith("<svg")
    finally:
        server.terminate()
        server.wait(timeout=10)
