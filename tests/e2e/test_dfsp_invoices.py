"""Sell goods, pending transactions and agent cash from the phones, over SMPP: a merchant
invoices a buyer who is told at once, approves with the PIN (fee shown first) or
rejects; an approval the balance cannot cover leaves the invoice pending; an agent
cashes a customer in, and the customer approves a cash-out the agent prepared."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.phones import PIN, Phone, dfsp_network, onboard
from tests.e2e.test_dfsp_send_money import balance_of, fees_of, usd
from tests.support import asyncio_test


@asyncio_test
async def test_a_merchant_invoices_and_the_buyer_pays_or_rejects(tmp_path: Path) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        dfsp1 = carrier.dfsps["dfsp1"]
        shop = Phone(carrier, http, "256700000501")
        venya = Phone(carrier, http, "256700000502")
        shop_number = await onboard(shop, "Shop", "One", national_id="NI0501", role="2")
        venya_number = await onboard(venya, "Venya", "Ndoro", national_id="NI0502")

        assert await venya.walk("2") == "Only merchants can sell goods\n\n0. Home\n1. Back"

        assert await shop.walk("2") == (
            "To initiate the sale enter the user number of the buyer\n\n0. Home\n1. Back"
        )
        assert await shop.reply(venya_number) == (
            "Destination name: Venya Ndoro\nEnter USD amount:\n\n0. Back"
        )
        assert await shop.reply("25") == "Invoice request sent!\n\n0. Home"
        told = await venya.sms_containing("Invoice from Shop One for 25 USD")
        assert "Dial *123#" in told and shop_number not in told

        assert await venya.walk("3") == ("Choose:\n1. Incoming (1)\n2. Outgoing (0)\n\n0. Home")
        assert await venya.reply("1") == (
            "Pick one:\n1. Invoice from Shop One for 25 USD\n\n0. Home"
        )
        assert await venya.reply("1") == (
            "Pending transaction from Shop One for 25 USD plus fee of 1 USD. Total"
            " transaction amount: 26 USD Please enter your PIN to approve or select 2 to"
            " reject.\n2. Reject\n\n0. Home\n1. Back"
        )
        assert await venya.reply(PIN) == "Invoice paid!\n\n0. Home"
        assert await balance_of(dfsp1, venya_number) == usd("974")
        assert await balance_of(dfsp1, shop_number) == usd("1025")
        assert await fees_of(dfsp1) == usd("1")
        await shop.sms_containing("Venya Ndoro paid your invoice")

        # Rejected: the merchant is told, nothing moves.
        assert await shop.walk("2", venya_number, "10") == "Invoice request sent!\n\n0. Home"
        assert await venya.walk("3", "1", "1", "2") == "Invoice rejected\n\n0. Home"
        await shop.sms_containing("Venya Ndoro declined your invoice")
        assert await balance_of(dfsp1, venya_number) == usd("974")

        # Beyond the balance: refused with what is available; the invoice stays pending.
        assert await shop.walk("2", venya_number, "2000") == "Invoice request sent!\n\n0. Home"
        assert await venya.walk("3", "1", "1", PIN) == (
            "Insufficient funds. Available: 974 USD\n\n0. Home\n1. Back"
        )
        assert (await venya.walk("3")).startswith("Choose:\n1. Incoming (1)")
        assert await shop.walk("3", "2") == (
            "Pick one:\n1. Invoice to Venya Ndoro for 2000 USD\n\n0. Home"
        )
        assert dfsp1.ledger is not None
        assert await dfsp1.ledger.total_balance("USD") == usd("0")


@asyncio_test
async def test_an_agent_cashes_in_and_the_customer_approves_a_cash_out(tmp_path: Path) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        dfsp1 = carrier.dfsps["dfsp1"]
        agent = Phone(carrier, http, "256700000511")
        jahari = Phone(carrier, http, "256700000512")
        agent_number = await onboard(agent, "Asha", "Agent", national_id="NI0511", role="3")
        jahari_number = await onboard(jahari, "Jahari", "Odhiambo", national_id="NI0512")

        home = await agent.dial()
        assert home.endswith("8. Settings\n9. Cash in\n10. Cash out"), home
        assert await jahari.walk("9") == f"Wrong Input\n{await jahari.dial()}"

        assert await agent.walk("9") == "Enter customer user number\n\n0. Home\n1. Back"
        assert await agent.reply(jahari_number) == (
            "Customer: Jahari Odhiambo\nEnter USD amount:\n\n0. Back"
        )
        assert await agent.reply("100") == (
            "Cash in for Jahari Odhiambo\nAmount: 100 USD\nFee: 0 USD\nEnter PIN"
            "\n\n0. Home\n1. Back"
        )
        assert await agent.reply(PIN) == (
            "Cash in done\nAmount: 100 USD\nTo: Jahari Odhiambo\n\n0. Home"
        )
        assert await balance_of(dfsp1, jahari_number) == usd("1100")
        assert await balance_of(dfsp1, agent_number) == usd("900")
        await jahari.sms_containing("You deposited 100 USD with agent Asha Agent")

        assert await agent.walk("10", jahari_number, "40") == (
            "Cash out request sent\nAmount: 40 USD\nTo: Jahari Odhiambo\n"
            "The customer approves it in Pending transactions.\n\n0. Home"
        )
        assert await jahari.walk("3", "1") == (
            "Pick one:\n1. Cash out at Asha Agent for 40 USD\n\n0. Home"
        )
        assert (await jahari.reply("1")).startswith("Cash out at agent Asha Agent: 40 USD")
        assert await jahari.reply(PIN) == (
            "Cash out approved! Collect 40 USD from Asha Agent.\n\n0. Home"
        )
        assert await balance_of(dfsp1, jahari_number) == usd("1060")
        assert await balance_of(dfsp1, agent_number) == usd("940")
