"""Send money (SPEC sections 1 and 2): destination, amount, the fees before the PIN, the
result.

``Enter destination number`` -> ``Destination name: <first> <last>`` with the currency
and ``Enter USD amount:`` -> ``Amount``, ``Local fee``, ``Total`` and ``Enter PIN`` ->
``Status: executed`` with the receiver, amount and fee. The transfer id is chosen with
the quote, so answering the PIN screen again (after a wrong PIN, or a retry after a
lost answer) can never pay twice. A refusal after the PIN says what to do: the amount
available, the limit reached, the attempts left.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dfsp.client import DfspError, SendQuote, money_json
from gateway.ussd_menus.journeys.common import (
    MenuContext,
    account_id,
    currency,
    me,
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
    InputScreen,
    Invalid,
    Msg,
    Next,
    Option,
    OptionsScreen,
    Screen,
)


def _quote(dialogue: Dialogue) -> dict[str, Any]:
    value: dict[str, Any] = dialogue.state["send"]
    return value


def _amount_prompt(dialogue: Dialogue) -> Msg:
    send = _quote(dialogue)
    return Msg(
        "dfsp.send.ask_amount", {"name": send["receiver_name"], "currency": send["currency"]}
    )


def _confirm_text(dialogue: Dialogue) -> Msg:
    """The fees before the PIN: the scheme fee too for a receiver at another DFSP, and
    what the receiver's DFSP keeps back from the amount, if anything."""
    shown = _quote(dialogue)["shown"]
    variant = "_cross" if "scheme_fee" in shown else ""
    variant += "_kept" if "receiver_fee" in shown else ""
    return Msg(f"dfsp.send.confirm{variant}", shown)


def _done_text(dialogue: Dialogue) -> Msg:
    return Msg("dfsp.send.done", _quote(dialogue)["result"])


def screens(ctx: MenuContext) -> dict[str, Screen]:
    async def destination(dialogue: Dialogue, user_number: Any) -> Next:
        if user_number == me(dialogue)["user_number"]:
            return await own_accounts(dialogue)
        try:
            receiver = await ctx.client.receiver(user_number)
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        dialogue.state["send"] = {
            "receiver": user_number,
            "receiver_name": receiver.name,
            "currency": currency(dialogue),
        }
        return "send.amount"

    async def own_accounts(dialogue: Dialogue) -> Next:
        """Paying oneself: which of one's other accounts (no fee, no limits)."""
        accounts = await ctx.client.accounts(me(dialogue)["id"])
        others = [
            {"id": a.account_id, "name": a.name}
            for a in accounts
            if a.account_id != account_id(dialogue)
        ]
        if not others:
            return show_problem(dialogue, Msg("dfsp.send.no_other_account"))
        person = me(dialogue)
        dialogue.state["send"] = {
            "receiver": person["user_number"],
            "receiver_name": f"{person['first']} {person['last']}",
            "currency": currency(dialogue),
            "own": others,
        }
        return "send.own_account"

    async def own_account(dialogue: Dialogue, chosen: Any) -> Next:
        _quote(dialogue)["to_account"] = chosen
        return "send.amount"

    def own_options(dialogue: Dialogue) -> Sequence[Option]:
        return [
            Option(number, Msg("dfsp.switch.item", {"name": a["name"]}), own_account, a["id"])
            for number, a in enumerate(_quote(dialogue).get("own", []), start=1)
        ]

    async def amount(dialogue: Dialogue, text: Any) -> Next:
        send = _quote(dialogue)
        value = parse_amount(text, send["currency"])
        if isinstance(value, Invalid):
            return value
        try:
            quote = await ctx.client.quote_send(
                me(dialogue)["id"],
                account_id(dialogue),
                send["receiver"],
                value,
                to_account_id=send.get("to_account"),
            )
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        send["quote"] = quote.to_json() | {
            "receiverName": quote.receiver_name,
            "total": money_json(quote.total),
        }
        send["transfer_id"] = ctx.new_id()
        fees = quote.total - quote.amount  # everything the sender pays on top
        send["shown"] = {
            "amount": screen_amount(quote.amount),
            "fee": screen_amount(quote.fee),
            "total": screen_amount(quote.total),
            "fees": screen_amount(fees),
        }
        if quote.scheme_fee is not None and quote.receiver_dfsp is not None:
            send["shown"]["scheme_fee"] = screen_amount(quote.scheme_fee)
        if quote.receiver_fee is not None and quote.receiver_fee.minor:
            send["shown"]["receiver_fee"] = screen_amount(quote.receiver_fee)
        return "send.confirm"

    async def pay(dialogue: Dialogue, pin: Any) -> Next:
        send = _quote(dialogue)
        quote = SendQuote.from_json(send["quote"])
        try:
            result = await ctx.client.send(quote, pin, send["transfer_id"])
        except DfspError as error:
            return retry_or_problem(ctx, dialogue, error)
        send["result"] = {
            "status": result.status,
            "name": result.receiver_name,
            "amount": screen_amount(result.amount),
            "fee": send["shown"]["fees"],
        }
        return "send.done"

    return {
        "send.destination": InputScreen(
            "dfsp.send.ask_destination", valid_user_number, destination, nav=HOME_BACK
        ),
        "send.own_account": OptionsScreen(
            "dfsp.send.choose_own_account", options=own_options, nav=(HOME,)
        ),
        "send.amount": InputScreen(
            _amount_prompt,
            valid_amount_text,
            amount,
            nav=(BACK_AT_0,),
        ),
        "send.confirm": InputScreen(_confirm_text, valid_pin, pay, nav=HOME_BACK),
        "send.done": OptionsScreen(_done_text, nav=(HOME,)),
    }
