"""Acceptance (central and clearing, 2): a merchant on dfsp1 invoices Venya on dfsp2
from the phones, over SMPP. Her own DFSP tells her (SMS, and the invoice in Pending
transactions); approving shows the fees itemised (dfsp2's invoice fee, the scheme fee)
before the PIN and pays through the centre, with exact balances in all three ledgers
and the merchant told; a rejection reaches the merchant; an approval beyond her balance
is refused and the invoice stays pending."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.phones import PIN, Phone, dfsp_network, onboard
from tests.e2e.test_clearing_send_money import clearing_balance, has_balance, operator_ledger
from tests.e2e.test_dfsp_send_money import balance_of, fees_of, usd
from tests.support import asyncio_test, eventually


@asyncio_test
async def test_venya_on_dfsp2_pays_rejects_and_cannot_overpay_a_dfsp1_merchants_invoice(
    tmp_path: Path,
) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        dfsp1, dfsp2 = carrier.dfsps["dfsp1"], carrier.dfsps["dfsp2"]
        shop = Phone(carrier, http, "256700000701")
        venya = Phone(carrier, http, "256700000702", short_code="*456#")
        shop_number = await onboard(shop, "Shop", "One", national_id="NI0701", role="2")
        venya_number = await onboard(venya, "Venya", "Ndoro", national_id="NI0702")

        # The merchant finds the buyer through the central directory and invoices her.
        assert await shop.walk("2") == (
            "To initiate the sale enter the user number of the buyer\n\n0. Home\n1. Back"
        )
        assert await shop.reply(venya_number) == (
            "Destination name: Venya Ndoro\nEnter USD amount:\n\n0. Back"
        )
        assert await shop.reply("25") == "Invoice request sent!\n\n0. Home"
        assert await shop.walk("3", "2") == (
            "Pick one:\n1. Invoice to Venya Ndoro for 25 USD\n\n0. Home"
        )

        # Her own DFSP tells her, and lists it with her pending transactions.
        told = await venya.sms_containing("Invoice from Shop One for 25 USD")
        assert "Dial *456#" in told and shop_number not in told
        assert await venya.walk("3") == "Choose:\n1. Incoming (1)\n2. Outgoing (0)\n\n0. Home"
        assert await venya.reply("1") == (
            "Pick one:\n1. Invoice from Shop One for 25 USD\n\n0. Home"
        )
        assert await venya.reply("1") == (
            "Invoice from Shop One\nAmount: 25 USD\nLocal fee: 1 USD\nScheme fee: 0.50 USD"
            "\nTotal: 26.50 USD\nEnter PIN to approve or 2 to reject\n2. Reject"
            "\n\n0. Home\n1. Back"
        )
        assert await venya.reply(PIN) == "Invoice paid!\n\n0. Home"

        # The buyer's DFSP: 26.50 out of Venya, its 1 USD fee, 25.50 through the centre.
        assert await balance_of(dfsp2, venya_number) == usd("973.50")
        assert await fees_of(dfsp2) == usd("1")
        assert await clearing_balance(dfsp2) == usd("25.50")
        # The merchant's DFSP: 25 to the shop, committed once the centre executed.
        await eventually(lambda: has_balance(dfsp1, shop_number, "1025"))
        assert await fees_of(dfsp1) == usd("0")
        assert await clearing_balance(dfsp1) == usd("-25")
        for dfsp in (dfsp1, dfsp2):
            assert dfsp.ledger is not None
            assert await dfsp.ledger.total_balance("USD") == usd("0")
        # The centre.
        ledger = operator_ledger(carrier, http)
        positions = {p.account: p for p in await ledger.positions()}
        assert positions["dfsp2"].net == usd("-25.50")
        assert positions["dfsp1"].net == usd("25")
        assert positions["central-fees"].net == usd("0.50")

        assert "Venya Ndoro paid your invoice" in (await shop.sms_containing("paid your"))
        assert "You sent 25 USD to Shop One. Fee 1.50 USD. Balance 973.50 USD." in (
            await venya.sms_containing("Shop One. Fee")
        )
        assert await shop.walk("3") == "Choose:\n1. Incoming (0)\n2. Outgoing (0)\n\n0. Home"
        assert await venya.walk("3") == "Choose:\n1. Incoming (0)\n2. Outgoing (0)\n\n0. Home"

        # Rejected: the merchant's DFSP hears of it and tells the merchant; nothing moves.
        assert await shop.walk("2", venya_number, "10") == "Invoice request sent!\n\n0. Home"
        await venya.sms_containing("Invoice from Shop One for 10 USD")
        assert await venya.walk("3", "1", "1", "2") == "Invoice rejected\n\n0. Home"
        await shop.sms_containing("Venya Ndoro declined your invoice")
        assert await shop.walk("3") == "Choose:\n1. Incoming (0)\n2. Outgoing (0)\n\n0. Home"
        assert await balance_of(dfsp2, venya_number) == usd("973.50")

        # Beyond her balance: refused with what is available; it stays pending both sides.
        assert await shop.walk("2", venya_number, "2000") == "Invoice request sent!\n\n0. Home"
        await venya.sms_containing("Invoice from Shop One for 2000 USD")
        assert await venya.walk("3", "1", "1", PIN) == (
            "Insufficient funds. Available: 973.50 USD\n\n0. Home\n1. Back"
        )
        assert await venya.walk("3", "1") == (
            "Pick one:\n1. Invoice from Shop One for 2000 USD\n\n0. Home"
        )
        assert await shop.walk("3", "2") == (
            "Pick one:\n1. Invoice to Venya Ndoro for 2000 USD\n\n0. Home"
        )
        assert await balance_of(dfsp2, venya_number) == usd("973.50")
        assert await balance_of(dfsp1, shop_number) == usd("1025")
        for dfsp in (dfsp1, dfsp2):
            assert dfsp.ledger is not None
            assert await dfsp.ledger.total_balance("USD") == usd("0")
