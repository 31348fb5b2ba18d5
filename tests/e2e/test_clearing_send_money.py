"""Acceptance (central and clearing, 1): Hamim on dfsp1 sends Kani on dfsp2 money from
his phone over SMPP: the fees itemised before the PIN (local and scheme), exact
balances in all three ledgers, positions at the centre that match, both told by SMS,
and a settlement that nets to zero."""

from __future__ import annotations

from pathlib import Path

from central.client import CentralHttp
from central.ledger.client import LedgerClient
from dfsp.clearing_ledger import CLEARING_ACCOUNT
from dfsp.service import DfspService
from tests.e2e.phones import PIN, Phone, dfsp_network, onboard
from tests.e2e.test_dfsp_send_money import balance_of, fees_of, usd
from tests.support import asyncio_test, eventually
from ussdloop.compose import CarrierNetwork
from ussdloop.money import Money


async def clearing_balance(dfsp: DfspService) -> Money:
    assert dfsp.ledger is not None
    return (await dfsp.ledger.balance(CLEARING_ACCOUNT))[0]


async def has_balance(dfsp: DfspService, user_number: str, amount: str) -> bool:
    return await balance_of(dfsp, user_number) == usd(amount)


def operator_ledger(carrier: CarrierNetwork, http: object) -> LedgerClient:
    assert carrier.central is not None
    settings = carrier.central.settings
    session = http  # the test's aiohttp session
    central = CentralHttp(
        carrier.central.base_url,
        session,  # type: ignore[arg-type]
        settings.operator_key,
        settings.operator_secret,
    )
    return LedgerClient(central)


@asyncio_test
async def test_hamim_on_dfsp1_sends_kani_on_dfsp2_through_the_centre(tmp_path: Path) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        dfsp1, dfsp2 = carrier.dfsps["dfsp1"], carrier.dfsps["dfsp2"]
        hamim = Phone(carrier, http, "256700000601")
        kani = Phone(carrier, http, "256700000602", short_code="*456#")
        hamim_number = await onboard(hamim, "Hamim", "Ali", national_id="NI0601")
        kani_number = await onboard(kani, "Kani", "Moe", national_id="NI0602")
        assert hamim_number != kani_number

        await hamim.walk("1")
        assert await hamim.reply(kani_number) == (
            "Destination name: Kani Moe\nCurrency: USD\nEnter USD amount:\n\n0. Back"
        )
        assert await hamim.reply("25") == (
            "Amount: 25 USD\nLocal fee: 1 USD\nScheme fee: 0.50 USD\nTotal: 26.50 USD\n"
            "Enter PIN\n\n0. Home\n1. Back"
        )
        assert await hamim.reply(PIN) == (
            "Status: executed\nTo: Kani Moe\nAmount: 25 USD\nFee: 1.50 USD\n\n0. Home"
        )

        # The payer's DFSP: 26.50 out of Hamim, 1 USD fee, 25.50 owed through the centre.
        assert await balance_of(dfsp1, hamim_number) == usd("973.50")
        assert await fees_of(dfsp1) == usd("1")
        assert await clearing_balance(dfsp1) == usd("25.50")
        # The payee's DFSP: 25 to Kani (committed once the centre executed), owed to it
        # through the centre.
        await eventually(lambda: has_balance(dfsp2, kani_number, "1025"))
        assert await clearing_balance(dfsp2) == usd("-25")
        for dfsp in (dfsp1, dfsp2):
            assert dfsp.ledger is not None
            assert await dfsp.ledger.total_balance("USD") == usd("0")
        # The centre: positions mirror the DFSPs' clearing accounts.
        ledger = operator_ledger(carrier, http)
        positions = {p.account: p for p in await ledger.positions()}
        assert positions["dfsp1"].net == usd("-25.50")
        assert positions["dfsp2"].net == usd("25")
        assert positions["central-fees"].net == usd("0.50")

        assert "You sent 25 USD to Kani Moe. Fee 1.50 USD. Balance 973.50 USD." in (
            await hamim.sms_containing("Kani Moe")
        )
        assert "You received 25 USD from Hamim Ali. Balance 1025 USD." in (
            await kani.sms_containing("Hamim Ali")
        )
        statement = await hamim.walk("7", PIN)
        rows = [row.split(";")[:2] for row in statement.splitlines()[2:5]]
        assert rows == [["Kani Moe", "-25.00"], ["fee", "-0.50"], ["fee", "-1.00"]], statement

        settlement = await ledger.settle()
        nets = {line.account: line.net for line in settlement.positions}
        assert sum(net.minor for net in nets.values()) == 0
        assert nets["dfsp1"] == usd("-25.50") and settlement.transfers == 1
        assert all(p.net == usd("0") for p in await ledger.positions())
