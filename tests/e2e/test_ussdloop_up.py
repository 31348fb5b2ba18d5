"""`ussdloop up` as a person runs it: it prints its endpoints, serves a dialogue, and on
SIGTERM unbinds and stops cleanly."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def network_file(directory: Path, data_dir: Path | None = None) -> Path:
    smpp, control, http1, http2, api1, api2, central = free_ports(7)
    path = directory / "network.toml"
    path.write_text(
        f"""
[network]
data_dir = "{(data_dir or directory / "var").as_posix()}"
[central]
http = {{ port = {central} }}
[dfsps.dfsp1]
api = {{ port = {api1} }}
[dfsps.dfsp2]
api = {{ port = {api2} }}
[simulator]
smpp = {{ port = {smpp} }}
control = {{ port = {control} }}
at_modems = {{ msisdns = [] }}
[dfsps.dfsp1.gateway]
ussd_http = {{ port = {http1} }}
[dfsps.dfsp1.gateway.smpp]
port = {smpp}
[dfsps.dfsp2.gateway]
ussd_http = {{ port = {http2} }}
[dfsps.dfsp2.gateway.smpp]
port = {smpp}
"""
    )
    return path


def post(url: str, body: dict[str, str]) -> dict[str, object]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_up_serves_a_dialogue_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = network_file(tmp_path)
    control = [line for line in config.read_text().splitlines() if line.startswith("control")]
    control_port = int(control[0].split("=")[-1].strip(" }"))
    process = subprocess.Popen(
        [sys.executable, "-m", "ussdloop.cli", "up", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "is up:" in process.stdout.readline()
        base = f"http://127.0.0.1:{control_port}"
        screen: dict[str, object] = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the gateways bind just after start-up
            screen = post(f"{base}/phones/256700000051/dial", {"code": "*123#"})
            if screen["expectsReply"]:
                break
            time.sleep(0.1)
        assert str(screen["screen"]).startswith("Welcome to dfsp1!")
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, log
    assert "simulator_stopped" in log
    assert log.count("event=esme_unbound") == 2, log[-3000:]  # both gateways unbound first
