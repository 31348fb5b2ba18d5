"""The DFSP's USSD menu: every journey of SPEC section 2 behind one home menu.

``dfsp_menu(ctx)`` puts the journeys of ``gateway.ussd_menus.journeys`` together: the
opening looks the phone up at the DFSP (``dfsp.client``) and starts at the home menu of
a registered customer or at the offer to open an account; each journey adds its screens
under its own prefix (``send.``, ``manage.``...). The gateway runs it with the menu
engine like any other menu.
"""

from __future__ import annotations

from gateway.ussd_menus.journeys import (
    balance,
    cash,
    home,
    manage_account,
    onboarding,
    pending,
    sell_goods,
    send_money,
    settings,
    switch_account,
)
from gateway.ussd_menus.journeys.common import MenuContext, problem_screens
from gateway.ussd_menus.screens import Menu, Screen


def dfsp_menu(ctx: MenuContext) -> Menu:
    entries: home.Entries = {
        "send": "send.destination",
        "sell": sell_goods.enter(ctx),
        "pending": pending.enter(ctx),
        "manage": "manage.choose",
        "switch": switch_account.enter(ctx),
        "balance": "balance.pin",
        "ministatement": "ministatement.pin",
        "settings": "settings.choose",
        "cash_in": cash.enter("cash_in.customer"),
        "cash_out": cash.enter("cash_out.customer"),
    }
    screens: dict[str, Screen] = {}
    for part in (
        home.screens(ctx, entries),
        problem_screens(),
        onboarding.screens(ctx),
        send_money.screens(ctx),
        balance.screens(ctx),
        switch_account.screens(ctx),
        manage_account.screens(ctx),
        settings.screens(ctx),
        sell_goods.screens(ctx),
        pending.screens(ctx),
        cash.screens(ctx),
    ):
        clash = screens.keys() & part.keys()
        if clash:
            raise ValueError(f"screen names used twice: {sorted(clash)}")
        screens.update(part)
    return Menu(start=home.HOME, screens=screens, opening=home.opening(ctx))
