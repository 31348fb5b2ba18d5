"""Acceptance (DFSP core, 1): phones on-board on dfsp1 through the on-boarding screens
over SMPP and get user numbers; the same person again is refused; a weak PIN is refused
with the reason and another PIN is asked for."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.phones import PIN, Phone, dfsp_network, onboard
from tests.support import asyncio_test


@asyncio_test
async def test_two_phones_on_board_and_the_same_person_is_refused(tmp_path: Path) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        hamim = Phone(carrier, http, "256700000101")
        first = await hamim.dial()
        assert first == ("Welcome to dfsp1! This phone has no account yet.\n1. Open Account")
        assert await hamim.reply("1") == "Enter your user number\n1. Skip\n\n0. Home"
        assert await hamim.reply("1") == "Enter first name\n\n0. Home\n1. Back"
        assert await hamim.reply("Hamim") == "Enter last name\n\n0. Home\n1. Back"
        assert (await hamim.reply("Ali")).startswith("Enter date of birth")
        assert (await hamim.reply("1985-02-30")).startswith("Write the date as YYYY-MM-DD")
        assert (await hamim.reply("1985-02-28")).startswith("Enter national id")
        assert (await hamim.reply("NI0001")).startswith("Enter account name:")
        assert await hamim.reply("main") == (
            "Choose role:\n1. Customer\n2. Merchant\n3. Agent\n\n0. Back"
        )
        assert await hamim.reply("1") == "Enter PIN:\n\n0. Back"
        created = await hamim.reply(PIN)
        assert created.startswith("Account created!\nUser number: ")
        user_number = created.split("User number: ")[1][:8]
        assert user_number.isdigit()
        assert await hamim.reply("0") == (
            "Welcome Hamim Ali!\n1. Send money\n2. Sell goods\n3. Pending transactions\n"
            "4. Manage account\n5. Switch account\n6. Check balance\n7. Ministatement\n"
            "8. Settings"
        )

        kani = Phone(carrier, http, "256700000102")
        other = await onboard(kani, "Kani", "Moe", national_id="NI0002")
        assert other.isdigit() and other != user_number
        # A known phone gets its home menu at once.
        assert (await kani.dial()).startswith("Welcome Kani Moe!\n1. Send money")

        # The same person (name, birth date, national id) from a third phone: refused.
        twin = Phone(carrier, http, "256700000103")
        refused = await twin.walk("1", "1", "Hamim", "Ali", "1985-02-28", "NI0001", "main", "1")
        assert refused == "Enter PIN:\n\n0. Back"
        refused = await twin.reply(PIN)
        assert refused == "This person is already registered at dfsp1\n\n0. Home\n1. Back"
        assert (await twin.dial()).startswith("Welcome to dfsp1! This phone has no account")


@asyncio_test
async def test_a_weak_pin_is_refused_with_the_reason(tmp_path: Path) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        phone = Phone(carrier, http, "256700000104")
        screen = await phone.walk("1", "1", "Tadeo", "Ruiz", "1979-11-02", "NI0104", "main", "1")
        assert screen == "Enter PIN:\n\n0. Back"
        assert await phone.reply("1111") == "PIN refused: not all one digit\nEnter PIN:\n\n0. Back"
        assert await phone.reply("1234") == (
            "PIN refused: not a straight run like 1234\nEnter PIN:\n\n0. Back"
        )
        assert (await phone.reply("7193")).startswith("Account created!\nUser number: ")
