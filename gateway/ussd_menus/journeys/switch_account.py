"""Switch account (SPEC section 2): the accounts the customer holds, their own and those
they were added to as a holder; the chosen one becomes the dialogue's current account
(balance, statement, send money and manage account act on it).

``Current account name: bob`` then ``Select Account:`` and the other accounts numbered;
``You don't have any other account to switch to`` when there is only one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dfsp.client import DfspError
from gateway.ussd_menus.journeys.common import (
    MenuContext,
    current_account,
    refresh_account,
    refusal,
    remember_account,
    show_problem,
)
from gateway.ussd_menus.screens import (
    HOME,
    Dialogue,
    Go,
    Handler,
    Msg,
    Next,
    Option,
    OptionsScreen,
    Screen,
)


def _choose_text(dialogue: Dialogue) -> Msg:
    account = current_account(dialogue) or {"name": ""}
    return Msg("dfsp.switch.choose", {"name": account["name"]})


def _others(dialogue: Dialogue) -> list[dict[str, Any]]:
    others: list[dict[str, Any]] = dialogue.state.get("switch", [])
    return others


def enter(ctx: MenuContext) -> Handler:
    """The home menu's entry: load the accounts, then list the others (or say none)."""

    async def load(dialogue: Dialogue, _: Any) -> Next:
        try:
            accounts = await refresh_account(ctx, dialogue)
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        current = current_account(dialogue)
        dialogue.state["switch"] = [
            {"id": a.account_id, "name": a.name}
            for a in accounts
            if current is None or a.account_id != current["id"]
        ]
        return "switch.choose" if dialogue.state["switch"] else "switch.none"

    return load


def screens(ctx: MenuContext) -> dict[str, Screen]:
    async def switch(dialogue: Dialogue, chosen: Any) -> Next:
        accounts = await ctx.client.accounts(dialogue.state["me"]["id"])
        account = next((a for a in accounts if a.account_id == chosen), None)
        if account is None:  # closed or removed meanwhile
            return show_problem(dialogue, Msg("dfsp.error.unknown_account"))
        remember_account(dialogue, account)
        return Go("home")

    def options(dialogue: Dialogue) -> Sequence[Option]:
        return [
            Option(number, Msg("dfsp.switch.item", {"name": other["name"]}), switch, other["id"])
            for number, other in enumerate(_others(dialogue), start=1)
        ]

    return {
        "switch.choose": OptionsScreen(_choose_text, options=options, nav=(HOME,)),
        "switch.none": OptionsScreen("dfsp.switch.none", nav=(HOME,)),
    }
