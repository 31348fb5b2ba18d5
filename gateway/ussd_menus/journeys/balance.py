"""Check balance and ministatement (SPEC section 1, journey 5), both PIN-protected, on
the current account.

``Enter your PIN`` -> ``Balance: 1000 USD``; ``Enter your PIN to confirm ministatement
request.`` -> ``Ministatement:`` and ``Name;Amount;Date`` rows (``tod;-44.00;17-Jan``,
``fee;-1.00;17-Jan``), newest first, paged by the engine with ``98. More``.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, Final

from dfsp.client import DfspError, StatementLine
from gateway.ussd_menus.journeys.common import (
    MenuContext,
    account_id,
    me,
    retry_or_problem,
    screen_amount,
    valid_pin,
)
from gateway.ussd_menus.screens import (
    HOME,
    HOME_BACK,
    Dialogue,
    InputScreen,
    Msg,
    Next,
    OptionsScreen,
    Screen,
)

STATEMENT_ROWS: Final = 10
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def statement_row(line: StatementLine) -> str:
    """``Name;Amount;Date``: the currency's decimals, the day as ``DD-Mon`` (UTC)."""
    day = line.at.astimezone(UTC)
    return f"{line.name};{line.amount};{day.day:02d}-{_MONTHS[day.month - 1]}"


def _balance_text(dialogue: Dialogue) -> Msg:
    return Msg("dfsp.balance.show", {"balance": dialogue.state["balance"]})


def _statement_text(dialogue: Dialogue) -> Msg:
    rows = dialogue.state["statement"]
    if not rows:
        return Msg("dfsp.ministatement.empty")
    return Msg("dfsp.ministatement.show", {"rows": "\n".join(rows)})


def screens(ctx: MenuContext) -> dict[str, Screen]:
    async def balance(dialogue: Dialogue, pin: Any) -> Next:
        try:
            available = await ctx.client.balance(me(dialogue)["id"], account_id(dialogue), pin)
        except DfspError as error:
            return retry_or_problem(ctx, dialogue, error)
        dialogue.state["balance"] = screen_amount(available)
        return "balance.show"

    async def statement(dialogue: Dialogue, pin: Any) -> Next:
        try:
            lines = await ctx.client.ministatement(
                me(dialogue)["id"], account_id(dialogue), pin, STATEMENT_ROWS
            )
        except DfspError as error:
            return retry_or_problem(ctx, dialogue, error)
        dialogue.state["statement"] = [statement_row(line) for line in lines]
        return "ministatement.show"

    return {
        "balance.pin": InputScreen("dfsp.balance.ask_pin", valid_pin, balance, nav=HOME_BACK),
        "balance.show": OptionsScreen(_balance_text, nav=(HOME,)),
        "ministatement.pin": InputScreen(
            "dfsp.ministatement.ask_pin", valid_pin, statement, nav=HOME_BACK
        ),
        "ministatement.show": OptionsScreen(_statement_text, nav=(HOME,)),
    }
