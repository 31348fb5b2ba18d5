"""Settings: change PIN and choose the language (SPEC sections 2 and 3).

Change PIN asks the current PIN, the new one, and the new one again; the DFSP refuses a
wrong current PIN (with the attempts left) or a weak new one (with the reason). The
PINs wait in the dialogue's state only until the last of the three screens answers. The
language is stored with the customer, so every later dialogue, on any gateway node,
opens in it; the home menu is shown again in the chosen language at once.
"""

from __future__ import annotations

from typing import Any

from dfsp.client import DfspError
from gateway.ussd_menus.journeys.common import (
    MenuContext,
    me,
    refusal,
    show_problem,
    valid_pin,
)
from gateway.ussd_menus.screens import (
    HOME,
    HOME_BACK,
    Dialogue,
    Go,
    InputScreen,
    Invalid,
    Next,
    Option,
    OptionsScreen,
    Screen,
)

LANGUAGES = (("en", "demo.english"), ("fr", "demo.french"))


def screens(ctx: MenuContext) -> dict[str, Screen]:
    async def keep_old(dialogue: Dialogue, pin: Any) -> Next:
        dialogue.state["pin_change"] = {"old": pin}
        return "settings.pin.new"

    async def keep_new(dialogue: Dialogue, pin: Any) -> Next:
        dialogue.state["pin_change"]["new"] = pin
        return "settings.pin.repeat"

    async def change(dialogue: Dialogue, pin: Any) -> Next:
        change = dialogue.state["pin_change"]
        if pin != change["new"]:
            return Invalid("dfsp.settings.pins_differ")
        try:
            await ctx.client.change_pin(me(dialogue)["id"], change["old"], change["new"])
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        finally:
            dialogue.state.pop("pin_change", None)  # PINs never outlive their use
        return "settings.pin.changed"

    async def choose_language(dialogue: Dialogue, language: Any) -> Next:
        try:
            await ctx.client.set_language(me(dialogue)["id"], language)
        except DfspError as error:
            return show_problem(dialogue, refusal(ctx, error))
        dialogue.language = language
        return Go("home")

    return {
        "settings.choose": OptionsScreen(
            "dfsp.settings.choose",
            options=(
                Option(1, "dfsp.settings.change_pin", "settings.pin.old"),
                Option(2, "demo.language", "settings.language"),
            ),
            nav=(HOME,),
        ),
        "settings.pin.old": InputScreen(
            "dfsp.settings.ask_old_pin", valid_pin, keep_old, nav=HOME_BACK
        ),
        "settings.pin.new": InputScreen(
            "dfsp.settings.ask_new_pin", valid_pin, keep_new, nav=HOME_BACK
        ),
        "settings.pin.repeat": InputScreen(
            "dfsp.settings.repeat_new_pin", valid_pin, change, nav=HOME_BACK
        ),
        "settings.pin.changed": OptionsScreen("dfsp.settings.pin_changed", nav=(HOME,)),
        "settings.language": OptionsScreen(
            "demo.choose_language",
            options=tuple(
                Option(number, label, choose_language, value=language)
                for number, (language, label) in enumerate(LANGUAGES, start=1)
            ),
            nav=(HOME,),
        ),
    }
