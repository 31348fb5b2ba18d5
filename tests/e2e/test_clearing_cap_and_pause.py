"""Acceptance (central and clearing, 3): a prepare beyond the payer DFSP's net debit cap
is refused at the centre and the payer's phone says so clearly, with nothing taken; a
paused DFSP's users look unknown, and its transfers pending at the centre are cancelled
(the payer's hold released)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from central.client import CentralHttp, ParticipantsClient
from tests.e2e.phones import PIN, Phone, dfsp_network, onboard
from tests.e2e.test_clearing_send_money import clearing_balance, operator_ledger
from tests.e2e.test_dfsp_send_money import balance_of, usd
from tests.support import asyncio_test
from ussdloop.compose import CarrierNetwork


def operator(carrier: CarrierNetwork, http: object) -> ParticipantsClient:
    assert carrier.central is not None
    settings = carrier.central.settings
    return ParticipantsClient(
        CentralHttp(
            carrier.central.base_url,
            http,  # type: ignore[arg-type]
            settings.operator_key,
            settings.operator_secret,
        )
    )


@asyncio_test
async def test_a_payment_beyond_the_net_debit_cap_is_refused_clearly(tmp_path: Path) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        hamim = Phone(carrier, http, "256700000701")
        kani = Phone(carrier, http, "256700000702", short_code="*456#")
        hamim_number = await onboard(hamim, "Hamim", "Ali", national_id="NI0701")
        kani_number = await onboard(kani, "Kani", "Moe", national_id="NI0702")
        await operator(carrier, http).set_net_debit_cap("dfsp1", "20")

        refused = await hamim.walk("1", kani_number, "25", PIN)
        assert refused == (
            "Payments to other providers are paused: dfsp1 reached its limit at the switch."
            " Please try again later.\n\n0. Home\n1. Back"
        )
        assert await balance_of(carrier.dfsps["dfsp1"], hamim_number) == usd("1000")
        assert await clearing_balance(carrier.dfsps["dfsp1"]) == usd("0")
        # Within the cap it goes through (19.50 + 0.50 scheme fee = 20).
        done = await hamim.walk("1", kani_number, "19.50", PIN)
        assert done.startswith("Status: executed\nTo: Kani Moe\nAmount: 19.50 USD")
        positions = {p.account: p.net for p in await operator_ledger(carrier, http).positions()}
        assert positions["dfsp1"] == usd("-20")


@asyncio_test
async def test_a_paused_dfsp_looks_unknown_and_its_pending_transfers_are_cancelled(
    tmp_path: Path,
) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        dfsp1, dfsp2 = carrier.dfsps["dfsp1"], carrier.dfsps["dfsp2"]
        hamim = Phone(carrier, http, "256700000711")
        kani = Phone(carrier, http, "256700000712", short_code="*456#")
        hamim_number = await onboard(hamim, "Hamim", "Ali", national_id="NI0711")
        kani_number = await onboard(kani, "Kani", "Moe", national_id="NI0712")

        # dfsp2 stops answering the centre: Hamim's payment stays prepared there...
        assert dfsp2.interledger is not None
        await dfsp2.interledger.connector.stop()
        await hamim.walk("1", kani_number)
        await hamim.reply("10")
        paying = asyncio.ensure_future(hamim.reply(PIN))
        await asyncio.sleep(1.0)
        # ...until the operator pauses dfsp2: the centre cancels it, Hamim's hold is back.
        await operator(carrier, http).pause("dfsp2")
        assert (await paying).startswith("Status: rejected\nTo: Kani Moe\nAmount: 10 USD")
        assert await balance_of(dfsp1, hamim_number) == usd("1000")
        assert await clearing_balance(dfsp1) == usd("0")
        await hamim.sms_containing("did not go through")

        # While paused, dfsp2's users are unknown to the others.
        assert await hamim.walk("1", kani_number) == "Unknown user number\n\n0. Home\n1. Back"
        await operator(carrier, http).unpause("dfsp2")
        dfsp2.interledger.connector.start()
        assert (await hamim.walk("1", kani_number)).startswith("Destination name: Kani Moe")
