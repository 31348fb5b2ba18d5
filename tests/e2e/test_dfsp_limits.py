"""Acceptance (DFSP core, 4): tier limits from the network configuration, over SMPP. With
at most 2 transfers a day and at most 2 USD per transfer, the third transfer and an
oversize one are refused with the limit named, while transfers between one's own
accounts still go through (no fee, no limit)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.phones import PIN, Phone, dfsp_network, onboard
from tests.support import asyncio_test

TIGHT_TIER = {
    "name": "tight",
    "limits": {
        "transfers_per_day": 2,
        "amount_per_day": "none",
        "amount_per_week": "none",
        "max_transfer": "2",
        "max_balance": "none",
    },
}
# A TOML array of one inline table, as an environment override of dfsp1's tiers.
TIERS_ENV = {
    "USSDLOOP__DFSPS__DFSP1__TIERS": "["
    + "{name = "
    + json.dumps(TIGHT_TIER["name"])
    + ", limits = {"
    + ", ".join(f"{k} = {json.dumps(v)}" for k, v in TIGHT_TIER["limits"].items())  # type: ignore[union-attr]
    + "}}]"
}


async def send(phone: Phone, to: str, amount: str) -> str:
    return await phone.walk("1", to, amount, PIN)


@asyncio_test
async def test_count_and_size_limits_spare_own_account_transfers(tmp_path: Path) -> None:
    async with dfsp_network(tmp_path, TIERS_ENV) as (carrier, http):
        hamim = Phone(carrier, http, "256700000401")
        kani = Phone(carrier, http, "256700000402")
        hamim_number = await onboard(hamim, "Hamim", "Ali", national_id="NI0401")
        kani_number = await onboard(kani, "Kani", "Moe", national_id="NI0402")

        assert (await send(hamim, kani_number, "2")).startswith("Status: executed")
        assert (await send(hamim, kani_number, "1")).startswith("Status: executed")
        assert await send(hamim, kani_number, "1") == (
            "Limit reached: transfers per day\n\n0. Home\n1. Back"
        )
        assert await send(kani, hamim_number, "2.01") == (
            "Limit reached: maximum amount of one transfer\n\n0. Home\n1. Back"
        )

        # Between his own accounts: over the size, past the count, no fee.
        assert await hamim.walk("4", "1", "savings", "3", PIN) == (
            "Account savings added\n\n0. Home"
        )
        await hamim.walk("1")
        assert await hamim.reply(hamim_number) == (
            "To which of your accounts?\n1. savings\n\n0. Home"
        )
        assert await hamim.reply("1") == (
            "Destination name: Hamim Ali\nCurrency: USD\nEnter USD amount:\n\n0. Back"
        )
        assert await hamim.reply("50") == (
            "Amount: 50 USD\nLocal fee: 0 USD\nTotal: 50 USD\nEnter PIN\n\n0. Home\n1. Back"
        )
        assert await hamim.reply(PIN) == (
            "Status: executed\nTo: Hamim Ali\nAmount: 50 USD\nFee: 0 USD\n\n0. Home"
        )
        # Main: 1000 - (2 + 1) - 2 fees - 50 = 945.
        assert await hamim.walk("6", PIN) == "Balance: 945 USD\n\n0. Home"
        assert await hamim.walk("5", "1", "6", PIN) == "Balance: 50 USD\n\n0. Home"
