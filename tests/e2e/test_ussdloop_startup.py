"""Acceptance (main job, 2 and 4): `ussdloop up` restarted on the same data directory
keeps customers, balances and the centre's positions; bad start-ups fail at once with
a message that says what to fix."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.test_ussdloop_up import ROOT, network_file, post

PIN = "4071"
HAMIM, KANI = "256700000801", "256700000802"


def port_of(config: Path, section: str, key: str) -> int:
    """The port of ``key`` under ``[section]`` in a file written by ``network_file``."""
    text = config.read_text()
    block = text.split(f"[{section}]", 1)[1]
    found = re.search(rf"^{key} = \{{ port = (\d+) \}}", block, re.MULTILINE)
    assert found is not None, (section, key)
    return int(found.group(1))


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ussdloop.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def network_up(config: Path) -> Iterator[str]:
    """`ussdloop up` running; the control API's base URL. SIGTERM on the way out."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ussdloop.cli", "up", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "is up:" in first, first + (process.stderr.read() if process.stderr else "")
        base = f"http://127.0.0.1:{port_of(config, 'simulator', 'control')}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # the gateways bind just after start-up
            screen = post(f"{base}/phones/{HAMIM}/dial", {"code": "*123#"})
            if screen["expectsReply"]:
                post(f"{base}/phones/{HAMIM}/cancel", {})
                break
            time.sleep(0.1)
        yield base
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)
        assert process.returncode == 0, log[-3000:]
    finally:
        process.kill()


def walk(base: str, msisdn: str, code: str, *answers: str) -> str:
    screen = post(f"{base}/phones/{msisdn}/dial", {"code": code})
    for answer in answers:
        screen = post(f"{base}/phones/{msisdn}/reply", {"text": answer})
    text = str(screen["screen"])
    if screen["expectsReply"]:
        post(f"{base}/phones/{msisdn}/cancel", {})
    return text


def onboard(base: str, msisdn: str, code: str, first: str, national_id: str) -> str:
    created = walk(
        base, msisdn, code, "1", "1", first, "Ali", "1990-05-17", national_id, "main", "1", PIN
    )
    assert created.startswith("Account created!\nUser number: "), created
    return created.split("User number: ")[1][:8]


def test_a_restart_on_the_same_data_keeps_customers_balances_and_positions(
    tmp_path: Path,
) -> None:
    config = network_file(tmp_path)
    with network_up(config) as base:
        onboard(base, HAMIM, "*123#", "Hamim", "NI0801")
        kani = onboard(base, KANI, "*456#", "Kani", "NI0802")
        paid = walk(base, HAMIM, "*123#", "1", kani, "25", PIN)
        assert paid.startswith("Status: executed"), paid
    assert (tmp_path / "var" / "central.db").exists()
    assert (tmp_path / "var" / "dfsp1.central.json").exists()
    with network_up(config) as base:
        assert walk(base, HAMIM, "*123#").startswith("Welcome Hamim Ali!")
        assert walk(base, HAMIM, "*123#", "6", PIN) == "Balance: 973.50 USD\n\n0. Home"
        assert walk(base, KANI, "*456#", "6", PIN) == "Balance: 1025 USD\n\n0. Home"
        # Paying again after the restart works through the same registrations.
        again = walk(base, HAMIM, "*123#", "1", kani, "1", PIN)
        assert again.startswith("Status: executed"), again


def test_a_bad_configuration_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[dfsps.dfsp1]\nshort_code = "12a"\n')
    result = run("up", "--config", str(bad))
    assert result.returncode == 2
    assert "configuration error: dfsps.dfsp1: short_code must be digits" in result.stderr


def test_a_port_in_use_says_so(tmp_path: Path) -> None:
    config = network_file(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port_of(config, "central", "http")))
        taken.listen()
        result = run("up", "--config", str(config))
    assert result.returncode != 0
    assert "another process holds that port" in result.stderr, result.stderr[-2000:]


def test_an_unwritable_data_directory_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = network_file(tmp_path, data_dir=blocker / "var")
    result = run("up", "--config", str(config))
    assert result.returncode != 0
    assert f"network.data_dir: cannot write to {blocker / 'var'}" in result.stderr, result.stderr


def test_a_dfsp_without_its_centre_says_to_start_it(tmp_path: Path) -> None:
    config = network_file(tmp_path)
    result = run("dfsp", "--dfsp", "dfsp1", "--config", str(config))
    assert result.returncode != 0
    assert "the centre does not answer at http://127.0.0.1:" in result.stderr, result.stderr
    assert "start it first (ussdloop central)" in result.stderr
