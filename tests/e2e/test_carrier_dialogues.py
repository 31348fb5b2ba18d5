"""Acceptance: a 5-screen handset dialogue through simulator -> SMPP -> gateway -> demo menu,
via the control API and via the AT interface, in GSM 7-bit and in UCS-2."""

from __future__ import annotations

import aiohttp
import serial  # pyserial
from twisted.internet.threads import deferToThread

from gateway.smpp.gsm0338 import DataCoding
from tests.e2e.carrier import carrier_network
from tests.support import asyncio_test
from ussdloop.aio import wait_deferred

GSM_WALK = [
    ("*123#", "Welcome to ussdloop demo\n1. Echo\n2. Count to 40\n3. Language\n4. Quit", True),
    ("1", "Enter your name:\n\n0. Home\n1. Back", True),
    ("Amani", "Enter a number from 1 to 99:\n\n0. Back", True),
    ("42", "Send 42 to Amani?\n2. Yes\n3. No\n\n0. Home\n1. Back", True),
    ("2", "Done: Amani 42", False),
]
# A name outside GSM 03.38 makes the handset send UCS-2 and the gateway answer in UCS-2.
UCS2_WALK = [
    ("*456#", "Welcome to ussdloop demo\n1. Echo\n2. Count to 40\n3. Language\n4. Quit", True),
    ("1", "Enter your name:\n\n0. Home\n1. Back", True),
    ("Алиса", "Enter a number from 1 to 99:\n\n0. Back", True),
    ("7", "Send 7 to Алиса?\n2. Yes\n3. No\n\n0. Home\n1. Back", True),
    ("2", "Done: Алиса 7", False),
]


async def walk_over_control_api(
    http: aiohttp.ClientSession, base: str, msisdn: str, walk: list[tuple[str, str, bool]]
) -> list[dict[str, object]]:
    screens = []
    for step, (send, text, expects_reply) in enumerate(walk):
        if step == 0:
            url, body = f"{base}/phones/{msisdn}/dial", {"code": send}
        else:
            url, body = f"{base}/phones/{msisdn}/reply", {"text": send}
        async with http.post(url, json=body) as response:
            assert response.status == 200, await response.text()
            screen = await response.json()
        assert screen["screen"] == text
        assert screen["expectsReply"] is expects_reply
        screens.append(screen)
    return screens


@asyncio_test
async def test_a_five_screen_dialogue_in_gsm_7_bit_over_the_control_api() -> None:
    async with carrier_network() as carrier, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{carrier.sim.control.port}"
        screens = await walk_over_control_api(http, base, "256700000011", GSM_WALK)
        assert screens[-1]["endedReason"] == "released"
        handset = carrier.simulator.network.handset("256700000011")
        assert handset.screen is not None
        assert handset.screen.data_coding == DataCoding.SMSC_DEFAULT
        assert carrier.gateways["dfsp1"].counters.screens_sent == 5
        metrics_url = f"http://127.0.0.1:{carrier.gateways['dfsp1'].http_port}/metrics"
        async with http.get(metrics_url) as response:
            exposition = await response.text()
        assert "ussd_screens_sent_total 5" in exposition.splitlines()
        assert "smpp_bound 1" in exposition.splitlines()


@asyncio_test
async def test_a_five_screen_dialogue_in_ucs2_over_the_control_api() -> None:
    async with carrier_network() as carrier, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{carrier.sim.control.port}"
        await walk_over_control_api(http, base, "256700000012", UCS2_WALK)
        handset = carrier.simulator.network.handset("256700000012")
        assert handset.screen is not None
        assert handset.screen.data_coding == DataCoding.UCS2
        assert carrier.gateways["dfsp2"].counters.screens_sent == 5


def _at_session(port: int, walk: list[tuple[str, str, bool]], charset: str) -> list[str]:
    """Drive a modem over pyserial's socket:// URL (blocking: runs in a thread)."""
    modem = serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=10)
    try:
        _command(modem, "ATE0")
        _command(modem, f'AT+CSCS="{charset}"')
        results = []
        for send, _, _ in walk:
            argument = send.encode("utf-16-be").hex().upper() if charset == "UCS2" else send
            _command(modem, f'AT+CUSD=1,"{argument}",15')
            results.append(_read_until(modem, "+CUSD:"))
        return results
    finally:
        modem.close()


def _command(modem: serial.SerialBase, line: str) -> None:
    modem.write(line.encode("latin-1") + b"\r")
    _read_until(modem, "OK")


def _read_until(modem: serial.SerialBase, marker: str) -> str:
    seen = b""
    while True:
        chunk = modem.read_until(b"\r\n")
        if not chunk:
            raise AssertionError(f"no {marker!r} from the modem; got {seen!r}")
        seen += chunk
        text = seen.decode("latin-1")
        if marker == "OK" and text.rstrip().endswith("OK"):
            return text
        if (
            marker != "OK"
            and marker in text
            and text.count('"') >= 2
            and text.rstrip()[-1].isdigit()
        ):
            return text[text.index(marker) :].strip()


def _cusd_text(result: str, charset: str) -> tuple[int, str, int]:
    head, rest = result.split(",", 1)
    mode = int(head.split(":")[1])
    quoted, dcs = rest.rsplit(",", 1)
    text = quoted.strip()[1:-1]
    if charset == "UCS2":
        text = bytes.fromhex(text).decode("utf-16-be")
    return mode, text, int(dcs)


@asyncio_test
async def test_a_five_screen_dialogue_over_the_at_interface_in_gsm_and_in_ucs2() -> None:
    async with carrier_network() as carrier:
        assert carrier.sim.modems is not None
        ports = carrier.sim.modems.ports
        for msisdn, walk, charset in (
            ("256700000001", GSM_WALK, "IRA"),
            ("256700000002", UCS2_WALK, "UCS2"),
        ):
            results = await wait_deferred(deferToThread(_at_session, ports[msisdn], walk, charset))
            for result, (_, text, expects_reply) in zip(results, walk, strict=True):
                mode, shown, dcs = _cusd_text(result, charset)
                assert shown == text
                assert mode == (1 if expects_reply else 0)
                assert dcs == (72 if not text.isascii() else 15)  # as it came over the air
