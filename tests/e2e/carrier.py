"""A running carrier side of the network for end-to-end tests: simulator + both gateways.

Built from the shipped configuration with environment-style overrides, on free ports,
so these tests exercise the same composition as ``ussdloop up``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ussdloop.aio import wait_deferred
from ussdloop.compose import CarrierNetwork, start_carrier_network
from ussdloop.config import load_network

FAST_LINK = {
    "reconnect_initial": 0.05,
    "reconnect_max": 0.2,
    "response_timeout": 2.0,
}


def overrides(**settings: Any) -> dict[str, str]:
    """Environment overrides for both DFSPs' SMPP settings (``window=3`` etc.)."""
    env = {}
    for dfsp in ("DFSP1", "DFSP2"):
        for key, value in {**FAST_LINK, **settings}.items():
            env[f"USSDLOOP__DFSPS__{dfsp}__GATEWAY__SMPP__{key.upper()}"] = json.dumps(value)
    return env


@asynccontextmanager
async def carrier_network(
    extra_env: dict[str, str] | None = None, **smpp: Any
) -> AsyncIterator[CarrierNetwork]:
    network = load_network(environ={**overrides(**smpp), **(extra_env or {})})
    carrier = await start_carrier_network(network, any_port=True)
    try:
        await bound(carrier)
        yield carrier
    finally:
        await carrier.running.stop()


async def bound(carrier: CarrierNetwork) -> None:
    for gateway in carrier.gateways.values():
        await wait_deferred(gateway.link.when_bound())  # type: ignore[attr-defined]
