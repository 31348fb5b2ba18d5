"""The command line: configuration errors stop start-up with the key, bad start-ups say
what to fix, and `config` prints the resolved network."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ussdloop.cli import main

ROOT = Path(__file__).resolve().parents[3]


def test_config_prints_the_resolved_network(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 0
    network = json.loads(capsys.readouterr().out)
    assert network["dfsps"]["dfsp1"]["short_code"] == "123"


def test_a_bad_config_file_stops_start_up_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[dfsps.dfsp1.gateway.smpp]\nwindow = 'ten'\n")
    assert main(["up", "--config", str(bad)]) == 2
    error = capsys.readouterr().err
    assert "dfsps.dfsp1.gateway.smpp.window: expected an integer, got 'ten'" in error


def test_an_unknown_dfsp_for_the_gateway_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "--dfsp", "dfsp9"]) == 2
    assert "no DFSP named 'dfsp9' (known: dfsp1, dfsp2)" in capsys.readouterr().err


def test_a_port_already_in_use_fails_at_once_saying_what_to_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "net.toml"
        config.write_text(f"[simulator.smpp]\nport = {port}\n")
        # A process of its own: the reactor runs once per process.
        done = subprocess.run(
            [sys.executable, "-m", "ussdloop.cli", "simulator", "--config", str(config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert "cannot start" in done.stderr
    assert "another process holds that port" in done.stderr
