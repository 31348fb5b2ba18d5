"""Handsets of the simulator driven through its control API, for the journey tests:
every screen goes handset -> simulator -> SMPP -> gateway -> DFSP menu and back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.carrier import bound, overrides
from ussdloop.compose import CarrierNetwork, start_network
from ussdloop.config import load_network

PIN = "4071"


@asynccontextmanager
async def dfsp_network(
    tmp_path: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[tuple[CarrierNetwork, aiohttp.ClientSession]]:
    """The network of ``ussdloop up`` (simulator, both DFSPs and their gateways) on free
    ports with its data under ``tmp_path``, and an HTTP session to drive it."""
    network = load_network(environ={**overrides(), **(extra_env or {})})
    carrier = await start_network(network, any_port=True, data_dir=tmp_path / "var")
    try:
        await bound(carrier)
        async with aiohttp.ClientSession() as http:
            yield carrier, http
    finally:
        await carrier.running.stop()


@dataclass
class Phone:
    """One handset: ``dial`` and ``reply`` return the screen it shows next."""

    carrier: CarrierNetwork
    http: aiohttp.ClientSession
    msisdn: str
    short_code: str = "*123#"
    open: bool = False  # a dialogue is waiting for this phone's answer

    @property
    def _base(self) -> str:
        return f"http://127.0.0.1:{self.carrier.sim.control.port}/phones/{self.msisdn}"

    async def dial(self, code: str | None = None) -> str:
        """Dial (hanging up first if a dialogue is still open)."""
        if self.open:
            await self.hang_up()
        return await self._post("dial", {"code": code or self.short_code})

    async def hang_up(self) -> None:
        async with self.http.post(f"{self._base}/cancel", json={}) as response:
            assert response.status == 200, await response.text()
        self.open = False

    async def reply(self, text: str) -> str:
        assert self.open, f"{self.msisdn}: no screen waits for an answer"
        return await self._post("reply", {"text": text})

    async def walk(self, *answers: str) -> str:
        """Dial, then answer each screen in turn; the last screen."""
        screen = await self.dial()
        for answer in answers:
            screen = await self.reply(answer)
        return screen

    async def sms(self) -> list[str]:
        async with self.http.get(f"{self._base}/sms") as response:
            assert response.status == 200, await response.text()
            return [sms["text"] for sms in (await response.json())["sms"]]

    async def sms_containing(self, part: str, timeout: float = 10.0) -> str:
        """The first SMS with ``part`` in it, waiting for it to arrive."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [text for text in await self.sms() if part in text]
            if found:
                return found[0]
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no SMS with {part!r} in {await self.sms()}")
            await asyncio.sleep(0.05)

    async def _post(self, action: str, body: dict[str, Any]) -> str:
        async with self.http.post(f"{self._base}/{action}", json=body) as response:
            assert response.status == 200, await response.text()
            screen = await response.json()
        self.open = bool(screen["expectsReply"])
        return str(screen["screen"])


async def onboard(
    phone: Phone,
    first: str,
    last: str,
    *,
    national_id: str,
    born: str = "1990-05-17",
    role: str = "1",
    pin: str = PIN,
    account_name: str = "main",
) -> str:
    """Walk the on-boarding screens; the user number from ``Account created!``."""
    answers = ("1", "1", first, last, born, national_id, account_name, role, pin)
    screen = await phone.walk(*answers)
    assert screen.startswith("Account created!\nUser number: "), screen
    return screen.split("User number: ")[1].split("\n")[0]
