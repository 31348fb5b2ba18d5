"""The first screen of a dialogue: the home menu of a registered phone, or the offer to
open an account for an unknown one (SPEC section 2).

The home menu's items follow the customer and their current account: agents also get
``Cash in`` / ``Cash out``; a holder who may not send (a non-signatory) gets no
``Send money`` and no ``Manage account``; a customer left with no account sees only
``Manage account`` (to open one) and ``Settings``. Item numbers stay as declared, so a
number means the same thing to everyone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final, TypeAlias

from dfsp.client import UnknownCustomerError
from gateway.ussd_menus.journeys.common import (
    MenuContext,
    current_account,
    me,
    refresh_account,
    remember_customer,
)
from gateway.ussd_menus.screens import (
    Dialogue,
    Handler,
    Msg,
    Opening,
    Option,
    OptionsScreen,
    Reply,
    Screen,
)

HOME = "home"
UNKNOWN_PHONE = "unknown"

# (number, journey, who sees it); the label is "dfsp.home.<journey>"
ITEMS: Final = (
    (1, "send", "send"),
    (2, "sell", "invoice"),
    (3, "pending", "view"),
    (4, "manage", "manage"),
    (5, "switch", "view"),
    (6, "balance", "view"),
    (7, "ministatement", "view"),
    (8, "settings", "anyone"),
    (9, "cash_in", "agent"),
    (10, "cash_out", "agent"),
)
Entries: TypeAlias = Mapping[str, str | Handler]  # journey -> its first screen or handler


def opening(ctx: MenuContext) -> Opening:
    async def open_dialogue(dialogue: Dialogue) -> str | Reply:
        try:
            customer = await ctx.client.customer_by_msisdn(dialogue.msisdn)
        except UnknownCustomerError:
            return UNKNOWN_PHONE
        remember_customer(dialogue, customer)
        dialogue.language = customer.language
        await refresh_account(ctx, dialogue)
        return HOME

    return open_dialogue


def home_options(entries: Entries) -> Callable[[Dialogue], Sequence[Option]]:
    def options(dialogue: Dialogue) -> Sequence[Option]:
        return [
            Option(number, f"dfsp.home.{journey}", entries[journey])
            for number, journey, who in ITEMS
            if journey in entries and _sees(dialogue, who, journey)
        ]

    return options


def _sees(dialogue: Dialogue, who: str, journey: str) -> bool:
    account = current_account(dialogue)
    if who == "anyone":
        return True
    if account is None:
        return journey == "manage"  # to open an account again
    if who == "agent":
        return bool(me(dialogue)["role"] == "agent" and account["send"])
    return bool(account.get(who, False))


def _welcome(dialogue: Dialogue) -> Msg:
    person = me(dialogue)
    return Msg("dfsp.welcome", {"first": person["first"], "last": person["last"]})


def screens(ctx: MenuContext, entries: Entries) -> dict[str, Screen]:
    return {
        HOME: OptionsScreen(_welcome, options=home_options(entries)),
        UNKNOWN_PHONE: OptionsScreen(
            Msg("dfsp.unknown_phone", {"dfsp": ctx.dfsp_name}),
            options=(Option(1, "dfsp.open_account", "onboard.user_number"),),
        ),
    }
