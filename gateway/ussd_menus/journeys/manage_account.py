"""Manage account (SPEC sections 2 and 3): add, edit (rename, make primary), close,
account information, add holder, remove holder, on the dialogue's current account.

The DFSP applies every rule (only a signatory changes an account, the primary and a
non-empty account cannot close, the owner stays a signatory and cannot be removed...);
this journey asks for what it needs, the PIN last, and says what happened or why not.
Closing one's last account removes the customer from the DFSP: the dialogue ends there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dfsp.client import AccountInfo, DfspError
from gateway.ussd_menus.journeys.common import (
    MenuContext,
    account_id,
    current_account,
    me,
    refresh_account,
    refusal,
    retry_or_problem,
    show_problem,
    valid_account_name,
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
    Msg,
    Next,
    Option,
    OptionsScreen,
    Reply,
    Screen,
    yes_no,
)
from gateway.ussd_menus.texts import translate

DONE = "manage.done"


def _manage(dialogue: Dialogue) -> dict[str, Any]:
    value: dict[str, Any] = dialogue.state.setdefault("manage", {})
    return value


def _done(dialogue: Dialogue, message: Msg) -> str:
    _manage(dialogue)["done"] = {"id": message.id, "args": dict(message.args)}
    return DONE


def _done_text(dialogue: Dialogue) -> Msg:
    done = _manage(dialogue)["done"]
    return Msg(done["id"], done["args"])


def _account_name(dialogue: Dialogue) -> dict[str, object]:
    account = current_account(dialogue) or {"name": ""}
    return {"name": account["name"]}


def _keep(field: str, next_screen: str) -> Handler:
    async def keep(dialogue: Dialogue, value: Any) -> Next:
        _manage(dialogue)[field] = value
        return next_screen

    return keep


def info_text(account: AccountInfo, language: str) -> str:
    """Name, currency, primary or not, then the holders with the signatories marked."""
    lines = [
        translate(
            "dfsp.manage.info",
            language,
            {
                "name": account.name,
                "currency": account.currency,
                "primary": translate("engine.yes" if account.primary else "engine.no", language),
            },
        )
    ]
    for holder in account.holders:
        mark = "owner" if holder.owner else "signatory" if holder.signatory else "holder"
        lines.append(
            translate(
                f"dfsp.manage.info_{mark}",
                language,
                {"name": f"{holder.first_name} {holder.last_name}"},
            )
        )
    return "\n".join(lines)


def screens(ctx: MenuContext) -> dict[str, Screen]:
    customer_id = lambda dialogue: me(dialogue)["id"]  # noqa: E731

    async def changed(dialogue: Dialogue, message: Msg) -> Next:
        await refresh_account(ctx, dialogue)
        return _done(dialogue, message)

    async def add_account(dialogue: Dialogue, pin: Any) -> Next:
        answers = _manage(dialogue)
        try:
            await ctx.client.add_account(
                customer_id(dialogue), answers["name"], primary=answers["primary"], pin=pin
            )
        except DfspError as error:
            return retry_or_problem(ctx, dialogue, error)
        return await changed(dialogue, Msg("dfsp.manage.added", {"name": answers["name"]}))

    async def rename(dialogue: Dialogue, pin: Any) -> Next:
        name = _manage(dialogue)["new_name"]
        try:
            await ctx.client.rename_account(customer_id(dialogue), account_id(dialogue), name, pin)
        except DfspError as error:
            return retry_or_problem(ctx, dialogue, error)
        return await changed(dialogue, Msg("dfsp.manage.renamed", {"name": name}))

    async def make_primary(dialogue: Dialogue, pin: Any) -> Next:
        try:
            await ctx.client.make_primary(customer_id(dialogue), account_id(dialogue), pin)
        except DfspError as error:
            return retry_or_problem(ctx, dialogue, error)
        return await changed(dialogue, Msg("dfsp.manage.made_primary", _account_name(dialogue)))

    async def close(dialogue: Dialogue, pin: Any) -> Next:
        name = _account_name(dialogue)
        try:
            closed = await ctx.client.close_account(
                customer_id(dialogue), account_id(dialogue), pin
            )
        except DfspError as error:
            return retry_or_problem(ctx, dialogue, error)
        if closed.customer_removed:
            return Reply(translate("dfsp.manage.closed_last", dialogue.language), end=True)
        dialogue.state.pop("account", None)  # the primary becomes current again
        return await changed(dialogue, Msg("dfsp.manage.closed", name))

    async def show_info(dialogue: Dialogue, _: Any) -> Next:
        try:
            accounts = await refresh_account(ctx, dialogue)
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        account = next(a for a in accounts if a.account_id == account_id(dialogue))
        _manage(dialogue)["info"] = info_text(account, dialogue.language)
        return "manage.info"

    async def holder(dialogue: Dialogue, user_number: Any) -> Next:
        try:
            person = await ctx.client.customer_by_user_number(user_number)
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        _manage(dialogue).update(holder=user_number, holder_name=person.name)
        return "manage.holder.signatory"

    async def add_holder(dialogue: Dialogue, pin: Any) -> Next:
        answers = _manage(dialogue)
        try:
            await ctx.client.add_holder(
                customer_id(dialogue),
                account_id(dialogue),
                answers["holder"],
                signatory=answers["signatory"],
                pin=pin,
            )
        except DfspError as error:
            return retry_or_problem(ctx, dialogue, error)
        message = "dfsp.manage.holder_added" + ("_signatory" if answers["signatory"] else "")
        return await changed(dialogue, Msg(message, {"name": answers["holder_name"]}))

    async def removable(dialogue: Dialogue, _: Any) -> Next:
        try:
            accounts = await refresh_account(ctx, dialogue)
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        account = next(a for a in accounts if a.account_id == account_id(dialogue))
        _manage(dialogue)["removable"] = [
            {"id": h.customer_id, "name": f"{h.first_name} {h.last_name}"}
            for h in account.holders
            if not h.owner
        ]
        return "manage.remove.choose" if _manage(dialogue)["removable"] else "manage.remove.none"

    async def remove_holder(dialogue: Dialogue, pin: Any) -> Next:
        chosen = _manage(dialogue)["remove"]
        try:
            await ctx.client.remove_holder(
                customer_id(dialogue), account_id(dialogue), chosen["id"], pin
            )
        except DfspError as error:
            return retry_or_problem(ctx, dialogue, error)
        return await changed(dialogue, Msg("dfsp.manage.holder_removed", {"name": chosen["name"]}))

    def removable_options(dialogue: Dialogue) -> Sequence[Option]:
        holders = _manage(dialogue).get("removable", [])
        return [
            Option(number, Msg("dfsp.switch.item", {"name": h["name"]}), _keep_removal, h)
            for number, h in enumerate(holders, start=1)
        ]

    return {
        "manage.choose": OptionsScreen(
            "dfsp.manage.choose",
            options=(
                Option(1, "dfsp.manage.add", "manage.add.name"),
                Option(2, "dfsp.manage.edit", "manage.edit"),
                Option(3, "dfsp.manage.close", "manage.close.pin"),
                Option(4, "dfsp.manage.info_item", show_info),
                Option(5, "dfsp.manage.add_holder", "manage.holder.id"),
                Option(6, "dfsp.manage.remove_holder", removable),
            ),
            nav=(HOME,),
        ),
        # add account: name, primary?, PIN
        "manage.add.name": InputScreen(
            "dfsp.manage.ask_account_name",
            valid_account_name,
            _keep("name", "manage.add.primary"),
            nav=(BACK_AT_0,),
        ),
        "manage.add.primary": OptionsScreen(
            lambda d: Msg("dfsp.manage.ask_primary", {"name": _manage(d)["name"]}),
            options=yes_no(_choose_primary(True), _choose_primary(False)),
            nav=HOME_BACK,
        ),
        "manage.add.pin": InputScreen("dfsp.ask_pin", valid_pin, add_account, nav=HOME_BACK),
        # edit account: rename or make primary
        "manage.edit": OptionsScreen(
            lambda d: Msg("dfsp.manage.edit_choose", _account_name(d)),
            options=(
                Option(1, "dfsp.manage.rename", "manage.rename.name"),
                Option(2, "dfsp.manage.make_primary", "manage.primary.pin"),
            ),
            nav=(HOME,),
        ),
        "manage.rename.name": InputScreen(
            "dfsp.manage.ask_new_name",
            valid_account_name,
            _keep("new_name", "manage.rename.pin"),
            nav=(BACK_AT_0,),
        ),
        "manage.rename.pin": InputScreen("dfsp.ask_pin", valid_pin, rename, nav=HOME_BACK),
        "manage.primary.pin": InputScreen(
            lambda d: Msg("dfsp.manage.confirm_primary", _account_name(d)),
            valid_pin,
            make_primary,
            nav=HOME_BACK,
        ),
        # close account
        "manage.close.pin": InputScreen(
            lambda d: Msg("dfsp.manage.confirm_close", _account_name(d)),
            valid_pin,
            close,
            nav=HOME_BACK,
        ),
        # account information
        "manage.info": OptionsScreen(
            lambda d: Msg("dfsp.text", {"text": _manage(d)["info"]}), nav=HOME_BACK
        ),
        # add holder: identifier, signatory?, PIN
        "manage.holder.id": InputScreen(
            "dfsp.manage.ask_holder", valid_user_number, holder, nav=HOME_BACK
        ),
        "manage.holder.signatory": OptionsScreen(
            lambda d: Msg("dfsp.manage.ask_signatory", {"name": _manage(d)["holder_name"]}),
            options=yes_no(_choose_signatory(True), _choose_signatory(False)),
            nav=HOME_BACK,
        ),
        "manage.holder.pin": InputScreen("dfsp.ask_pin", valid_pin, add_holder, nav=HOME_BACK),
        # remove holder: which one, PIN
        "manage.remove.choose": OptionsScreen(
            "dfsp.manage.remove_choose", options=removable_options, nav=(HOME,)
        ),
        "manage.remove.none": OptionsScreen("dfsp.manage.remove_none", nav=(HOME,)),
        "manage.remove.pin": InputScreen(
            lambda d: Msg("dfsp.manage.confirm_remove", {"name": _manage(d)["remove"]["name"]}),
            valid_pin,
            remove_holder,
            nav=HOME_BACK,
        ),
        DONE: OptionsScreen(_done_text, nav=(HOME,)),
    }


def _choose_primary(primary: bool) -> Handler:
    async def choose(dialogue: Dialogue, _: Any) -> Next:
        _manage(dialogue)["primary"] = primary
        return "manage.add.pin"

    return choose


def _choose_signatory(signatory: bool) -> Handler:
    async def choose(dialogue: Dialogue, _: Any) -> Next:
        _manage(dialogue)["signatory"] = signatory
        return "manage.holder.pin"

    return choose


async def _keep_removal(dialogue: Dialogue, holder: Any) -> Next:
    _manage(dialogue)["remove"] = holder
    return "manage.remove.pin"
