"""Acceptance (DFSP core, 3): the account rules of SPEC section 3 from the phones, over
SMPP: switch account (with the single-account message), add account and primary, close
(not the primary, not with money, only by a signatory), holders with and without
signatory rights (a holder sees the account in switch account; a non-signatory gets no
send money and no manage account), account information marking signatories, removing a
holder. The rules themselves are also tested one by one in tests/unit/dfsp."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.phones import PIN, Phone, dfsp_network, onboard
from tests.support import asyncio_test

SINGLE = "You don't have any other account to switch to\n\n0. Home"


async def answer(phone: Phone, *answers: str) -> str:
    """Answer the open dialogue's screens in turn; the last screen."""
    screen = ""
    for text in answers:
        screen = await phone.reply(text)
    return screen


@asyncio_test
async def test_accounts_primary_and_closing_rules(tmp_path: Path) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        tadeo = Phone(carrier, http, "256700000301")
        await onboard(tadeo, "Tadeo", "Ruiz", national_id="NI0301", account_name="family")
        assert await tadeo.walk("5") == SINGLE

        # Add a second account and make it primary.
        assert await tadeo.walk("4") == (
            "Select which action you would like to take:\n1. Add account\n2. Edit account\n"
            "3. Close account\n4. Account info\n5. Add holder\n6. Remove holder\n\n0. Home"
        )
        assert await tadeo.reply("1") == "Enter account name:\n\n0. Back"
        assert await tadeo.reply("savings") == (
            "Make savings your primary account?\n2. Yes\n3. No\n\n0. Home\n1. Back"
        )
        assert await tadeo.reply("2") == "Enter PIN\n\n0. Home\n1. Back"
        assert await tadeo.reply(PIN) == "Account savings added\n\n0. Home"

        # A new dialogue starts on the primary account; "family" is listed to switch to.
        assert await tadeo.walk("5") == (
            "Current account name: savings\nSelect Account:\n1. family\n\n0. Home"
        )
        # "family" is no longer primary but holds the opening balance: it cannot close.
        assert (await tadeo.reply("1")).startswith("Welcome Tadeo Ruiz!")
        assert await answer(tadeo, "4", "3") == (
            "Close account family. Enter PIN\n\n0. Home\n1. Back"
        )
        assert await tadeo.reply(PIN) == (
            "The account has money: empty it before closing it\n\n0. Home\n1. Back"
        )
        # "savings" is empty but primary: it cannot close either.
        assert await tadeo.walk("4", "4") == (
            "Account: savings\nCurrency: USD\nPrimary: Yes\nHolders:\nTadeo Ruiz (owner)"
            "\n\n0. Home\n1. Back"
        )
        assert await tadeo.walk("4", "3", PIN) == (
            "The primary account cannot be closed\n\n0. Home\n1. Back"
        )
        # Make "family" primary again (it demotes savings), then savings closes.
        assert (await tadeo.walk("5", "1")).startswith("Welcome Tadeo Ruiz!")
        assert await answer(tadeo, "4", "2") == (
            "Edit account family:\n1. Rename\n2. Make primary\n\n0. Home"
        )
        assert await tadeo.reply("2") == (
            "Make family your primary account. Enter PIN\n\n0. Home\n1. Back"
        )
        assert await tadeo.reply(PIN) == "family is now your primary account\n\n0. Home"
        assert (await tadeo.walk("5", "1")).startswith("Welcome Tadeo Ruiz!")
        assert await answer(tadeo, "4", "4") == (
            "Account: savings\nCurrency: USD\nPrimary: No\nHolders:\nTadeo Ruiz (owner)"
            "\n\n0. Home\n1. Back"
        )
        assert await answer(tadeo, "0", "4", "3", PIN) == "Account savings closed\n\n0. Home"
        assert await tadeo.walk("5") == SINGLE
        # Renaming needs the PIN too.
        assert await tadeo.walk("4", "2", "1", "home", PIN) == (
            "Account renamed to home\n\n0. Home"
        )
        assert await tadeo.walk("4", "4") == (
            "Account: home\nCurrency: USD\nPrimary: Yes\nHolders:\nTadeo Ruiz (owner)"
            "\n\n0. Home\n1. Back"
        )


@asyncio_test
async def test_holders_signatories_and_what_each_may_do(tmp_path: Path) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        tadeo = Phone(carrier, http, "256700000311")
        amina = Phone(carrier, http, "256700000312")
        juma = Phone(carrier, http, "256700000313")
        await onboard(tadeo, "Tadeo", "Ruiz", national_id="NI0311", account_name="family")
        amina_number = await onboard(amina, "Amina", "Ruiz", national_id="NI0312")
        juma_number = await onboard(juma, "Juma", "Kibo", national_id="NI0313")

        # Tadeo adds Amina as a signatory and Juma without signatory rights.
        await tadeo.walk("4", "5")
        assert await tadeo.reply(amina_number) == (
            "Add Amina Ruiz as account holder. Should this holder be signatory for the"
            " account?\n2. Yes\n3. No\n\n0. Home\n1. Back"
        )
        assert await tadeo.walk("4", "5", amina_number, "2", PIN) == (
            "Amina Ruiz added as signatory account holder\n\n0. Home"
        )
        assert await tadeo.walk("4", "5", juma_number, "3", PIN) == (
            "Juma Kibo added as account holder\n\n0. Home"
        )
        assert await tadeo.walk("4", "5", juma_number, "2", PIN) == (
            "This person already holds the account\n\n0. Home\n1. Back"
        )
        assert await tadeo.walk("4", "4") == (
            "Account: family\nCurrency: USD\nPrimary: Yes\nHolders:\nTadeo Ruiz (owner)\n"
            "Amina Ruiz (signatory)\nJuma Kibo\n\n0. Home\n1. Back"
        )

        # Juma sees the family account in switch account; there he may view, not send
        # or manage.
        assert await juma.walk("5") == (
            "Current account name: main\nSelect Account:\n1. family\n\n0. Home"
        )
        home = await juma.reply("1")  # the switch lasts for this dialogue
        assert home.startswith("Welcome Juma Kibo!\n")
        assert "Send money" not in home and "Manage account" not in home
        assert "6. Check balance" in home and "7. Ministatement" in home
        assert await juma.reply("4") == f"Wrong Input\n{home}"
        assert await juma.reply("6") == "Enter your PIN\n\n0. Home\n1. Back"
        assert await juma.reply(PIN) == "Balance: 1000 USD\n\n0. Home"

        # Amina, a signatory, manages the family account: the owner is never offered
        # for removal; she removes Juma.
        assert (await amina.walk("5", "1")).startswith("Welcome Amina Ruiz!\n1. Send money")
        assert await answer(amina, "4", "6") == (
            "Remove which holder?\n1. Amina Ruiz\n2. Juma Kibo\n\n0. Home"
        )
        assert await amina.reply("2") == (
            "Remove Juma Kibo from this account. Enter PIN\n\n0. Home\n1. Back"
        )
        assert await amina.reply(PIN) == "Juma Kibo removed from the account\n\n0. Home"
        assert await juma.walk("5") == SINGLE
