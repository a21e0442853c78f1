"""`ringsfu serve` configuration: a JSON file, RINGSFU_* variables and flags
(flags win over variables, variables over the file), and HTTPS/WSS on the
HTTP port with a certificate of the test's own."""
import json
import os
import ssl
import subprocess
import urllib.request

import pytest
import websockets

from test_aiortc_publish import free_port
from whip import request, wait_for_port


def binary():
    return os.environ["RINGSFU_BIN"]


def serve(args, env=None, port=None, scheme="http"):
    """Starts the server; waits until `port` answers /health."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RINGSFU_")}
    full_env.update(env or {})
    proc = subprocess.Popen([binary(), "serve", *args], env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if wait_for_port(port, proc, timeout=15):
        return proc
    proc.kill()
    raise AssertionError(f"server did not listen on {port}: {proc.stderr.read()}")


def stop(proc):
    proc.terminate()
    proc.wait(timeout=10)


def test_file_then_environment_then_flags(tmp_path):
    a, b, c = free_port(), free_port(), free_port()
    config = tmp_path / "ringsfu.json"
    config.write_text(json.dumps({"port": a, "workers": 1, "logLevel": "warning", "rtcMinPort": 43000, "rtcMaxPort": 43999,
                                  "publishToken": "file-publish-token-0123"}))
    for env, flags, expected in [({}, [], a), ({"RINGSFU_PORT": str(b)}, [], b), ({"RINGSFU_PORT": str(b)}, ["--port", str(c)], c)]:
        proc = serve(["--config", str(config), *flags], env=env, port=expected)
        try:
            status, _, body = request(f"http://127.0.0.1:{expected}/health")
            assert status == 200 and '"workers":1' in body, body
            # The file's publish token is in force wherever the port came from.
            assert request(f"http://127.0.0.1:{expected}/whip/r", "POST", "v=0\r\n", "application/sdp")[0] == 401
        finally:
            stop(proc)
    # A variable overrides the file's token; a flag overrides the variable.
    proc = serve(["--config", str(config), "--publish-token", "flag-publish-token-0123"],
                 env={"RINGSFU_PUBLISH_TOKEN": "env-publish-token-01234"}, port=a)
    try:
        assert request(f"http://127.0.0.1:{a}/whip/r", "POST", "v=0\r\n", "application/sdp", "env-publish-token-01234")[0] == 401
        assert request(f"http://127.0.0.1:{a}/whip/r", "POST", "v=0\r\n", "application/sdp", "flag-publish-token-0123")[0] == 400
    finally:
        stop(proc)


@pytest.mark.parametrize("content, words", [
    ({"port": "eighty"}, '--port / RINGSFU_PORT / "port"'),
    ({"rtcMinPort": 50000, "rtcMaxPort": 40000}, "--rtc-min-port"),
    ({"publishToken": "short"}, "at least 16"),
    ({"roomTokens": ["lobby:watch:abcdefghijklmnop"]}, "ROOM:publish:TOKEN"),
], ids=["port-of-wrong-type", "port-range-upside-down", "short-token", "unknown-room-role"])  # ids without spaces: scripts/test.sh runs each by id
def test_bad_settings_are_refused_by_name(tmp_path, content, words):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps(content))
    # No --port: a flag would win over the file's value.
    done = subprocess.run([binary(), "serve", "--config", str(config)], capture_output=True, text=True, timeout=20)
    assert done.returncode != 0 and words in done.stderr, done.stderr


def test_missing_or_malformed_file(tmp_path):
    done = subprocess.run([binary(), "serve", "--config", str(tmp_path / "none.json")], capture_output=True, text=True, timeout=20)
    assert done.returncode != 0 and "does not exist" in done.stderr, done.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{ port: ")
    done = subprocess.run([binary(), "serve", "--config", str(broken)], capture_output=True, text=True, timeout=20)
    assert done.returncode != 0 and "cannot read the configuration file" in done.stderr, done.stderr


@pytest.mark.asyncio
async def test_https_and_wss_on_the_http_port(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-days", "1", "-nodes",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    port = free_port()
    proc = serve(["--port", str(port), "--workers", "1", "--log-level", "warning",
                  "--tls-certificate-file", str(cert), "--tls-private-key-file", str(key)], port=port)
    try:
        context = ssl.create_default_context(cafile=str(cert))
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/health", context=context, timeout=10) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/", context=context, timeout=10) as r:
            assert b"RingSFU" in r.read()
        # Plain HTTP is not served on a TLS port.
        with pytest.raises(Exception):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
        async with websockets.connect(f"wss://127.0.0.1:{port}/rpc", ssl=context) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "worker.list"}))
            answer = json.loads(await ws.recv())
            assert answer["id"] == 1 and "result" in answer, answer
    finally:
        stop(proc)
