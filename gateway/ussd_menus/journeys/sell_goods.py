"""Sell goods (SPEC sections 1 and 2): a merchant sends an invoice to a buyer.

``To initiate the sale enter the user number of the buyer`` -> ``Destination name:
<first> <last>`` and the amount -> ``Invoice request sent!``. The merchant enters no PIN
and never learns the buyer's phone number; the buyer, at this DFSP or another one
(``DfspClient.receiver``: through the central directory), is told at once by their own
DFSP (an SMS and, where the carrier allows, a USSD push) and finds the invoice in
Pending transactions.
"""

from __future__ import annotations

from typing import Any

from dfsp.client import DfspError
from gateway.ussd_menus.journeys.common import (
    MenuContext,
    account_id,
    counterparty_step,
    me,
    only_for,
    parse_amount,
    refusal,
    screen_amount,
    show_problem,
    valid_amount_text,
    valid_user_number,
)
from gateway.ussd_menus.screens import (
    BACK_AT_0,
    HOME,
    HOME_BACK,
    Dialogue,
    Handler,
    InputScreen,
    Invalid,
    Msg,
    Next,
    OptionsScreen,
    Screen,
)


def _sale(dialogue: Dialogue) -> dict[str, Any]:
    value: dict[str, Any] = dialogue.state["sell"]
    return value


def enter(ctx: MenuContext) -> Handler:
    """Only merchants sell goods."""
    return only_for("merchant", "dfsp.error.not_merchant", "sell.buyer")


def screens(ctx: MenuContext) -> dict[str, Screen]:
    async def invoice(dialogue: Dialogue, text: Any) -> Next:
        sale = _sale(dialogue)
        amount = parse_amount(text, sale["currency"])
        if isinstance(amount, Invalid):
            return amount
        try:
            await ctx.client.create_invoice(
                me(dialogue)["id"], account_id(dialogue), sale["user_number"], amount
            )
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        sale["amount"] = screen_amount(amount)
        return "sell.sent"

    return {
        "sell.buyer": InputScreen(
            "dfsp.sell.ask_buyer",
            valid_user_number,
            # a buyer here or, through the centre, at another DFSP
            counterparty_step(ctx, "sell", "sell.amount", ctx.client.receiver),
            nav=HOME_BACK,
        ),
        "sell.amount": InputScreen(
            lambda d: Msg(
                "dfsp.sell.ask_amount", {"name": _sale(d)["name"], "currency": _sale(d)["currency"]}
            ),
            valid_amount_text,
            invoice,
            nav=(BACK_AT_0,),
        ),
        "sell.sent": OptionsScreen("dfsp.sell.sent", nav=(HOME,)),
    }
