"""Acceptance (DFSP core, 2): send money between two phones of dfsp1 over SMPP: the fee
before the PIN, exact balances afterwards including the fee rows; 1, some and exactly
the balance succeed; over the balance and over it once the fee is added are refused
with the amount available; a wrong PIN says how many attempts are left; both parties
get an SMS."""

from __future__ import annotations

from pathlib import Path

from dfsp.service import FEE_ACCOUNT, DfspService
from tests.e2e.phones import PIN, Phone, dfsp_network, onboard
from tests.support import asyncio_test
from ussdloop.money import Money


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


async def balance_of(dfsp: DfspService, user_number: str) -> Money:
    assert dfsp.customers is not None and dfsp.ledger is not None
    customer = await dfsp.customers.by_user_number(user_number)
    assert customer is not None
    accounts = await dfsp.customers.accounts_of(customer.id)
    primary = next(a for a in accounts if a.primary)
    return (await dfsp.ledger.balance(primary.ledger_account_id))[1]


async def fees_of(dfsp: DfspService) -> Money:
    assert dfsp.ledger is not None
    return (await dfsp.ledger.balance(FEE_ACCOUNT))[1]


async def send(phone: Phone, to: str, amount: str, pin: str = PIN) -> tuple[str, str]:
    """The confirmation screen (fees before the PIN) and the screen after the PIN."""
    await phone.walk("1", to)
    confirm = await phone.reply(amount)
    return confirm, await phone.reply(pin)


@asyncio_test
async def test_send_money_with_the_fee_first_and_exact_balances(tmp_path: Path) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        dfsp1 = carrier.dfsps["dfsp1"]
        hamim = Phone(carrier, http, "256700000201")
        kani = Phone(carrier, http, "256700000202")
        await onboard(hamim, "Hamim", "Ali", national_id="NI0201")
        kani_number = await onboard(kani, "Kani", "Moe", national_id="NI0202")

        # The destination's name and currency, then the fee and total before the PIN.
        await hamim.walk("1")
        assert await hamim.reply(kani_number) == (
            "Destination name: Kani Moe\nCurrency: USD\nEnter USD amount:\n\n0. Back"
        )
        assert await hamim.reply("0.001") == (
            "Not a valid amount\nDestination name: Kani Moe\nCurrency: USD\n"
            "Enter USD amount:\n\n0. Back"
        )
        assert await hamim.reply("1") == (
            "Amount: 1 USD\nLocal fee: 1 USD\nTotal: 2 USD\nEnter PIN\n\n0. Home\n1. Back"
        )
        assert await hamim.reply("9999") == (
            "Wrong PIN. Attempts left: 2\nAmount: 1 USD\nLocal fee: 1 USD\nTotal: 2 USD\n"
            "Enter PIN\n\n0. Home\n1. Back"
        )
        assert await hamim.reply(PIN) == (
            "Status: executed\nTo: Kani Moe\nAmount: 1 USD\nFee: 1 USD\n\n0. Home"
        )
        assert await balance_of(dfsp1, kani_number) == usd("1001")
        assert await fees_of(dfsp1) == usd("1")

        # Over the balance, and over it once the fee is added: refused, available shown.
        for amount in ("998.01", "998"):
            confirm, refused = await send(hamim, kani_number, amount)
            assert confirm.startswith(f"Amount: {amount} USD\nLocal fee: 1 USD")
            assert refused == "Insufficient funds. Available: 998 USD\n\n0. Home\n1. Back"

        # Some, then exactly what is left: the balance goes to 0.
        _, done = await send(hamim, kani_number, "12.34")
        assert done.startswith("Status: executed\nTo: Kani Moe\nAmount: 12.34 USD")
        _, done = await send(hamim, kani_number, "983.66")
        assert done.startswith("Status: executed\nTo: Kani Moe\nAmount: 983.66 USD")

        assert await balance_of(dfsp1, kani_number) == usd("1997")
        assert await fees_of(dfsp1) == usd("3")
        assert dfsp1.ledger is not None
        assert await dfsp1.ledger.total_balance("USD") == usd("0")
        assert await hamim.walk("6", PIN) == "Balance: 0 USD\n\n0. Home"

        # The statement shows each payment and its fee as separate rows, newest first.
        statement = await hamim.walk("7", PIN)
        assert statement.startswith("Ministatement:\nName;Amount;Date\nKani Moe;-983.66;"), (
            statement
        )
        rows = statement.splitlines()[2:]
        assert [row.split(";")[:2] for row in rows[:4]] == [
            ["Kani Moe", "-983.66"],
            ["fee", "-1.00"],
            ["Kani Moe", "-12.34"],
            ["fee", "-1.00"],
        ]

        # Both parties get an SMS for each payment.
        assert "You sent 983.66 USD to Kani Moe. Fee 1 USD. Balance 0 USD." in (
            await hamim.sms_containing("983.66")
        )
        assert "You received 983.66 USD from Hamim Ali. Balance 1997 USD." in (
            await kani.sms_containing("983.66")
        )
        await kani.sms_containing("You received 1 USD from Hamim Ali")
