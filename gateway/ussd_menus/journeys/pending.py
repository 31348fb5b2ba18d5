"""Pending transactions (SPEC sections 1 and 2): invoices to pay and invoices sent.

``Choose:`` incoming or outgoing; an incoming item reads ``1. Invoice from <first>
<last> for 100 USD`` (or a cash-out an agent prepared); picking it shows ``Pending
transaction from <first> <last> for <amount> plus fee of <fee>. Total transaction
amount: <total> ...`` with the fee the DFSP quotes for the current account; the PIN
approves (``Invoice paid!``) and ``2`` rejects. An invoice of a merchant at another DFSP
shows its fees itemised instead (local fee, scheme fee, and what the merchant's DFSP
keeps back, if anything), as a send across DFSPs does. An approval the balance cannot
cover is refused with the amount available, and the invoice stays pending.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from dfsp.client import DfspError, InvoiceInfo
from gateway.ussd_menus.journeys.common import (
    MenuContext,
    account_id,
    me,
    refusal,
    retry_or_problem,
    screen_amount,
    show_problem,
    valid_pin,
)
from gateway.ussd_menus.screens import (
    HOME,
    HOME_BACK,
    Dialogue,
    Handler,
    InputScreen,
    Invalid,
    Msg,
    Next,
    Option,
    OptionsScreen,
    Screen,
)

REJECT: Final = "2"  # on the detail screen: reject instead of typing the PIN


def _pending(dialogue: Dialogue) -> dict[str, Any]:
    value: dict[str, Any] = dialogue.state["pending"]
    return value


def _line(invoice: InvoiceInfo, incoming: bool) -> dict[str, str]:
    return {
        "id": invoice.invoice_id,
        "kind": invoice.kind,
        "name": invoice.payee_name if incoming else invoice.buyer_name,
        "amount": screen_amount(invoice.amount),
    }


def enter(ctx: MenuContext) -> Handler:
    """Load both lists, then offer them with their counts."""

    async def load(dialogue: Dialogue, _: Any) -> Next:
        try:
            pending = await ctx.client.pending_invoices(me(dialogue)["id"])
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        dialogue.state["pending"] = {
            "incoming": [_line(invoice, True) for invoice in pending.incoming],
            "outgoing": [_line(invoice, False) for invoice in pending.outgoing],
        }
        return "pending.choose"

    return load


def _choose_options(dialogue: Dialogue) -> Sequence[Option]:
    pending = _pending(dialogue)
    return (
        Option(1, Msg("dfsp.pending.incoming", {"n": len(pending["incoming"])}), "pending.in"),
        Option(2, Msg("dfsp.pending.outgoing", {"n": len(pending["outgoing"])}), "pending.out"),
    )


def _outgoing_options(dialogue: Dialogue) -> Sequence[Option]:
    return [
        Option(number, Msg(f"dfsp.pending.item_out_{line['kind']}", line), _show_sent, line)
        for number, line in enumerate(_pending(dialogue)["outgoing"], start=1)
    ]


def _list_text(key: str, empty: str) -> Any:
    def text(dialogue: Dialogue) -> Msg:
        return Msg(empty if not _pending(dialogue)[key] else "dfsp.pending.pick")

    return text


async def _show_sent(dialogue: Dialogue, line: Any) -> Next:
    _pending(dialogue)["chosen"] = line
    return "pending.sent"


def _valid_pin_or_reject(text: str) -> str | Invalid:
    return text if text == REJECT else valid_pin(text)


def screens(ctx: MenuContext) -> dict[str, Screen]:
    async def pick(dialogue: Dialogue, line: Any) -> Next:
        """An incoming invoice: the fee for the current account, then the PIN."""
        chosen = _pending(dialogue)["chosen"] = dict(line)
        try:
            offer = await ctx.client.quote_invoice(
                me(dialogue)["id"], chosen["id"], account_id(dialogue)
            )
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        chosen.update(
            fee=screen_amount(offer.fee),
            total=screen_amount(offer.total),
            transfer_id=ctx.new_id(),
            variant="",
        )
        if offer.receiver_dfsp is not None and offer.scheme_fee is not None:
            chosen.update(scheme_fee=screen_amount(offer.scheme_fee), variant="_cross")
            if offer.receiver_fee is not None and offer.receiver_fee.minor:
                chosen.update(receiver_fee=screen_amount(offer.receiver_fee), variant="_cross_kept")
        return "pending.detail"

    async def answer(dialogue: Dialogue, text: Any) -> Next:
        chosen = _pending(dialogue)["chosen"]
        customer_id = me(dialogue)["id"]
        try:
            if text == REJECT:
                await ctx.client.reject_invoice(customer_id, chosen["id"])
                return "pending.rejected"
            await ctx.client.approve_invoice(
                customer_id, chosen["id"], account_id(dialogue), text, chosen["transfer_id"]
            )
        except DfspError as error:
            return retry_or_problem(ctx, dialogue, error)
        return "pending.paid"

    def incoming_options(dialogue: Dialogue) -> Sequence[Option]:
        return [
            Option(number, Msg(f"dfsp.pending.item_in_{line['kind']}", line), pick, line)
            for number, line in enumerate(_pending(dialogue)["incoming"], start=1)
        ]

    chosen = lambda d: _pending(d)["chosen"]  # noqa: E731
    return {
        "pending.choose": OptionsScreen(
            "dfsp.pending.choose", options=_choose_options, nav=(HOME,)
        ),
        "pending.in": OptionsScreen(
            _list_text("incoming", "dfsp.pending.none"), options=incoming_options, nav=(HOME,)
        ),
        "pending.out": OptionsScreen(
            _list_text("outgoing", "dfsp.pending.none"), options=_outgoing_options, nav=(HOME,)
        ),
        "pending.detail": InputScreen(
            lambda d: Msg(
                f"dfsp.pending.detail_{chosen(d)['kind']}{chosen(d).get('variant', '')}", chosen(d)
            ),
            _valid_pin_or_reject,
            answer,
            nav=HOME_BACK,
        ),
        "pending.paid": OptionsScreen(
            lambda d: Msg(f"dfsp.pending.paid_{chosen(d)['kind']}", chosen(d)), nav=(HOME,)
        ),
        "pending.rejected": OptionsScreen("dfsp.pending.rejected", nav=(HOME,)),
        "pending.sent": OptionsScreen(
            lambda d: Msg(f"dfsp.pending.sent_{chosen(d)['kind']}", chosen(d)), nav=HOME_BACK
        ),
    }
