"""Opening an account from an unknown phone (SPEC section 2, "On-boarding").

One screen per answer, in the reference order: user number (``1. Skip`` lets the DFSP
allocate one), first name, last name, date of birth, national id, account name, role,
PIN. The PIN screen registers the customer; a weak PIN is asked again with the reason,
and a refusal (same person, same phone) is explained. ``Account created!`` then shows
the user number, and ``0. Home`` opens the customer's home menu.
"""

from __future__ import annotations

from typing import Any

from dfsp.client import DfspError, WeakPinError
from gateway.ussd_menus.journeys.common import (
    MenuContext,
    refresh_account,
    refusal,
    remember_customer,
    show_problem,
    valid_account_name,
    valid_birth_date,
    valid_name,
    valid_national_id,
    valid_pin,
    valid_user_number,
)
from gateway.ussd_menus.screens import (
    BACK_AT_0,
    HOME,
    HOME_BACK,
    Dialogue,
    Go,
    Handler,
    InputScreen,
    Invalid,
    Msg,
    Next,
    Option,
    OptionsScreen,
    Screen,
)

SKIP = "1"
ROLES = ("customer", "merchant", "agent")


def _valid_user_number_or_skip(text: str) -> str | Invalid:
    return "" if text == SKIP else valid_user_number(text)


def _answer(field: str, next_screen: str) -> Handler:
    async def keep(dialogue: Dialogue, value: Any) -> Next:
        dialogue.state.setdefault("onboard", {})[field] = value
        return next_screen

    return keep


def _created(dialogue: Dialogue) -> Msg:
    return Msg("dfsp.onboard.created", {"user_number": dialogue.state["me"]["user_number"]})


def screens(ctx: MenuContext) -> dict[str, Screen]:
    async def register(dialogue: Dialogue, pin: Any) -> Next:
        answers = dialogue.state.get("onboard", {})
        try:
            customer = await ctx.client.register(
                msisdn=dialogue.msisdn,
                user_number=answers.get("user_number") or None,
                first_name=answers["first_name"],
                last_name=answers["last_name"],
                date_of_birth=answers["date_of_birth"],
                national_id=answers["national_id"],
                account_name=answers["account_name"],
                role=answers["role"],
                pin=pin,
                language=dialogue.language,
            )
        except WeakPinError as error:
            return Invalid(refusal(ctx, error))
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        dialogue.state.pop("onboard", None)
        remember_customer(dialogue, customer)
        await refresh_account(ctx, dialogue)
        return Go("onboard.created", home="home")

    async def choose_role(dialogue: Dialogue, role: Any) -> Next:
        dialogue.state.setdefault("onboard", {})["role"] = role
        return "onboard.pin"

    return {
        "onboard.user_number": InputScreen(
            "dfsp.onboard.ask_user_number",
            validate=_valid_user_number_or_skip,
            handle=_answer("user_number", "onboard.first_name"),
            nav=(HOME,),
        ),
        "onboard.first_name": InputScreen(
            "dfsp.onboard.ask_first_name",
            validate=valid_name,
            handle=_answer("first_name", "onboard.last_name"),
            nav=HOME_BACK,
        ),
        "onboard.last_name": InputScreen(
            "dfsp.onboard.ask_last_name",
            validate=valid_name,
            handle=_answer("last_name", "onboard.date_of_birth"),
            nav=HOME_BACK,
        ),
        "onboard.date_of_birth": InputScreen(
            "dfsp.onboard.ask_date_of_birth",
            validate=valid_birth_date,
            handle=_answer("date_of_birth", "onboard.national_id"),
            nav=HOME_BACK,
        ),
        "onboard.national_id": InputScreen(
            "dfsp.onboard.ask_national_id",
            validate=valid_national_id,
            handle=_answer("national_id", "onboard.account_name"),
            nav=HOME_BACK,
        ),
        "onboard.account_name": InputScreen(
            "dfsp.onboard.ask_account_name",
            validate=valid_account_name,
            handle=_answer("account_name", "onboard.role"),
            nav=(BACK_AT_0,),
        ),
        "onboard.role": OptionsScreen(
            "dfsp.onboard.choose_role",
            options=tuple(
                Option(number, f"dfsp.role.{role}", choose_role, value=role)
                for number, role in enumerate(ROLES, start=1)
            ),
            nav=(BACK_AT_0,),
        ),
        "onboard.pin": InputScreen("dfsp.onboard.ask_pin", valid_pin, register, nav=(BACK_AT_0,)),
        "onboard.created": OptionsScreen(_created, nav=(HOME,)),
    }
