"""Agent cash-in and cash-out (SPEC section 3, agents), from the agent's phone.

Cash in: the customer's user number, the amount, the fee, the agent's PIN; the money
goes from the agent's main account to the customer's primary account. Cash out: the
agent enters the customer's user number and the amount, and the customer approves the
request with their own PIN in Pending transactions (as an invoice), so no one ever types
a PIN on someone else's phone.
"""

from __future__ import annotations

from typing import Any

from dfsp.client import DfspError, SendQuote, money_json
from gateway.ussd_menus.journeys.common import (
    MenuContext,
    account_id,
    counterparty_step,
    me,
    only_for,
    parse_amount,
    refusal,
    retry_or_problem,
    screen_amount,
    show_problem,
    valid_amount_text,
    valid_pin,
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


def _cash(dialogue: Dialogue) -> dict[str, Any]:
    value: dict[str, Any] = dialogue.state["cash"]
    return value


def enter(first_screen: str) -> Handler:
    """Only agents cash in or out."""
    return only_for("agent", "dfsp.error.not_agent", first_screen)


def _customer_step(ctx: MenuContext, next_screen: str) -> Handler:
    """The customer of this DFSP the agent serves."""
    return counterparty_step(ctx, "cash", next_screen, ctx.client.customer_by_user_number)


def _amount_prompt(dialogue: Dialogue) -> Msg:
    cash = _cash(dialogue)
    return Msg("dfsp.cash.ask_amount", {"name": cash["name"], "currency": cash["currency"]})


def screens(ctx: MenuContext) -> dict[str, Screen]:
    async def quote_in(dialogue: Dialogue, text: Any) -> Next:
        cash = _cash(dialogue)
        amount = parse_amount(text, cash["currency"])
        if isinstance(amount, Invalid):
            return amount
        try:
            quote = await ctx.client.quote_cash_in(
                me(dialogue)["id"], account_id(dialogue), cash["user_number"], amount
            )
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        cash["quote"] = quote.to_json() | {
            "receiverName": quote.receiver_name,
            "total": money_json(quote.total),
        }
        cash["transfer_id"] = ctx.new_id()
        fee = quote.receiver_fee or quote.fee  # a cash-in fee is kept from what arrives
        cash["shown"] = {
            "name": quote.receiver_name,
            "amount": screen_amount(quote.amount),
            "fee": screen_amount(fee),
        }
        return "cash_in.confirm"

    async def cash_in(dialogue: Dialogue, pin: Any) -> Next:
        cash = _cash(dialogue)
        try:
            await ctx.client.cash_in(SendQuote.from_json(cash["quote"]), pin, cash["transfer_id"])
        except DfspError as error:
            return retry_or_problem(ctx, dialogue, error)
        return "cash_in.done"

    async def cash_out(dialogue: Dialogue, text: Any) -> Next:
        cash = _cash(dialogue)
        amount = parse_amount(text, cash["currency"])
        if isinstance(amount, Invalid):
            return amount
        try:
            await ctx.client.request_cash_out(
                me(dialogue)["id"], account_id(dialogue), cash["user_number"], amount
            )
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        cash["shown"] = {"name": cash["name"], "amount": screen_amount(amount)}
        return "cash_out.sent"

    shown = lambda d: _cash(d)["shown"]  # noqa: E731
    return {
        "cash_in.customer": InputScreen(
            "dfsp.cash.ask_customer",
            valid_user_number,
            _customer_step(ctx, "cash_in.amount"),
            nav=HOME_BACK,
        ),
        "cash_in.amount": InputScreen(
            _amount_prompt, valid_amount_text, quote_in, nav=(BACK_AT_0,)
        ),
        "cash_in.confirm": InputScreen(
            lambda d: Msg("dfsp.cash.confirm_in", shown(d)), valid_pin, cash_in, nav=HOME_BACK
        ),
        "cash_in.done": OptionsScreen(lambda d: Msg("dfsp.cash.done_in", shown(d)), nav=(HOME,)),
        "cash_out.customer": InputScreen(
            "dfsp.cash.ask_customer",
            valid_user_number,
            _customer_step(ctx, "cash_out.amount"),
            nav=HOME_BACK,
        ),
        "cash_out.amount": InputScreen(
            _amount_prompt, valid_amount_text, cash_out, nav=(BACK_AT_0,)
        ),
        "cash_out.sent": OptionsScreen(
            lambda d: Msg("dfsp.cash.out_requested", shown(d)), nav=(HOME,)
        ),
    }
