"""Acceptance (main job, 2): a payment between DFSPs interrupted by stopping the whole
network (the composition of `ussdloop up`) ends consistently once it starts again on the
same data: the payee's DFSP catches up with the centre's notification, fulfils, and all
three ledgers agree with nothing left held."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from dfsp.clearing_ledger import CLEARING_ACCOUNT
from dfsp.client import DfspClient
from tests.e2e.carrier import bound
from tests.support import asyncio_test
from ussdloop.compose import CarrierNetwork, start_network
from ussdloop.config import load_network
from ussdloop.money import Money

PIN = "4071"


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


async def in_flight(carrier: CarrierNetwork) -> int:
    """Clearing transfers still held in either DFSP's ledger."""
    held = 0
    for dfsp in carrier.dfsps.values():
        assert dfsp.interledger is not None
        held += len(await dfsp.interledger.connector._local.in_flight())
    return held


@asyncio_test
async def test_a_payment_interrupted_by_a_restart_completes_consistently(tmp_path: Path) -> None:
    network = load_network(environ={})
    data_dir = tmp_path / "var"
    carrier = await start_network(network, any_port=True, data_dir=data_dir)
    try:
        await bound(carrier)
        async with aiohttp.ClientSession() as http:
            dfsp1 = DfspClient(carrier.dfsps["dfsp1"].base_url, http)
            dfsp2 = DfspClient(carrier.dfsps["dfsp2"].base_url, http)
            hamim = await dfsp1.register(
                msisdn="+256700000901",
                first_name="Hamim",
                last_name="Ali",
                date_of_birth="1990-05-17",
                national_id="NI0901",
                pin=PIN,
            )
            kani = await dfsp2.register(
                msisdn="+256700000902",
                first_name="Kani",
                last_name="Moe",
                date_of_birth="1995-12-01",
                national_id="NI0902",
                pin=PIN,
            )
            assert hamim.primary_account_id is not None
            # dfsp2 stops listening to the centre: the payment stays prepared there.
            interledger = carrier.dfsps["dfsp2"].interledger
            assert interledger is not None
            await interledger.connector.stop()
            quote = await dfsp1.quote_send(
                hamim.customer_id, hamim.primary_account_id, kani.user_number, usd("25")
            )
            result = await dfsp1.send(quote, PIN, "0d6f3e2a-93c1-4b1e-8a55-2f0c4a7b9e10")
            assert result.status == "prepared"
    finally:
        await carrier.running.stop()  # everything stops with the payment in flight

    carrier = await start_network(network, any_port=True, data_dir=data_dir)
    try:
        await bound(carrier)

        for _ in range(300):  # the DFSPs reconcile with the centre as they start
            if not await in_flight(carrier):
                break
            await asyncio.sleep(0.05)
        assert await in_flight(carrier) == 0
        books = {}
        for name in ("dfsp1", "dfsp2"):
            ledger = carrier.dfsps[name].ledger
            assert ledger is not None
            assert await ledger.total_balance("USD") == usd("0")
            books[name] = (await ledger.balance(CLEARING_ACCOUNT))[0]
        async with aiohttp.ClientSession() as http:
            dfsp1 = DfspClient(carrier.dfsps["dfsp1"].base_url, http)
            dfsp2 = DfspClient(carrier.dfsps["dfsp2"].base_url, http)
            hamim_now = await dfsp1.customer_by_msisdn("+256700000901")
            kani_now = await dfsp2.customer_by_msisdn("+256700000902")
            assert hamim_now.primary_account_id and kani_now.primary_account_id
            paid = await dfsp1.balance(hamim_now.customer_id, hamim_now.primary_account_id, PIN)
            got = await dfsp2.balance(kani_now.customer_id, kani_now.primary_account_id, PIN)
        # Executed everywhere (the centre's expiry was not reached), or released
        # everywhere (it was): never one without the other.
        if got == usd("1025"):
            assert (paid, books["dfsp1"], books["dfsp2"]) == (
                usd("973.50"),
                usd("25.50"),
                usd("-25"),
            )
        else:
            assert (paid, got, books["dfsp1"], books["dfsp2"]) == (
                usd("1000"),
                usd("1000"),
                usd("0"),
                usd("0"),
            )
    finally:
        await carrier.running.stop()
