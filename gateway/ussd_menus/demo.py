"""A small demo menu that exercises every part of the menu engine.

The carrier link's acceptance tests walk it over SMPP. The 5-screen walk, in English
(``\\n`` is a newline; ``end`` says the dialogue ends with that screen)::

    dial "*123#" -> "Welcome to ussdloop demo\\n1. Echo\\n2. Count to 40\\n3. Language\\n4. Quit"
    "1"          -> "Enter your name:\\n\\n0. Home\\n1. Back"
    "Zoë"        -> "Enter a number from 1 to 99:\\n\\n0. Back"
    "42"         -> "Send 42 to Zoë?\\n2. Yes\\n3. No\\n\\n0. Home\\n1. Back"
    "2"          -> "Done: Zoë 42"                                         (end)

The same walk in French (``Dialogue.language == "fr"``)::

    "Bienvenue dans la démo ussdloop\\n1. Écho\\n2. Compter jusqu'à 40\\n3. Langue\\n4. Quitter"
    "Entrez votre prénom :\\n\\n0. Accueil\\n1. Retour"
    "Entrez un nombre de 1 à 99 :\\n\\n0. Retour"
    "Envoyer 42 à Zoë ?\\n2. Oui\\n3. Non\\n\\n0. Accueil\\n1. Retour"
    "Reçu : Zoë 42"                                                        (end)

"ë" is not in the GSM 03.38 alphabet, so the confirm and done screens above go out in
UCS-2 (80 units); the others are GSM 7-bit. Other paths:

- a name must be 1 to 20 printable characters, the number 1 to 99; otherwise the prompt
  comes back under "Name: 1 to 20 characters" / "Not a number from 1 to 99";
- ``3. No`` on the confirm screen returns to the welcome screen;
- ``2. Count to 40``: "Counting to 40, pick a square:" and 40 options ``N. N x N`` with
  ``0. Home``, paged with ``98. More`` (French writes a multiplication sign: UCS-2, 80-unit pages);
  picking N shows ``N x N = <square>`` with ``0. Home`` / ``1. Back``;
- ``3. Language``: ``1. English`` / ``2. Français`` (``0. Home``), then the welcome
  screen in the chosen language;
- ``4. Quit``: "Goodbye" (end).
"""

from __future__ import annotations

from typing import Any

from gateway.ussd_menus.screens import (
    BACK_AT_0,
    HOME,
    HOME_BACK,
    Dialogue,
    FinalScreen,
    InputScreen,
    Invalid,
    Menu,
    Msg,
    Option,
    OptionsScreen,
    yes_no,
)

MAX_NAME_CHARS = 20
COUNT_TO = 40


def demo_menu() -> Menu:
    return Menu(
        start="home",
        screens={
            "home": OptionsScreen(
                "demo.welcome",
                options=(
                    Option(1, "demo.echo", "echo.name"),
                    Option(2, "demo.count", "count"),
                    Option(3, "demo.language", "language"),
                    Option(4, "demo.quit", "goodbye"),
                ),
            ),
            "echo.name": InputScreen(
                "demo.ask_name", validate=_valid_name, handle=_store_name, nav=HOME_BACK
            ),
            "echo.number": InputScreen(
                "demo.ask_number", validate=_valid_number, handle=_store_number, nav=(BACK_AT_0,)
            ),
            "echo.confirm": OptionsScreen(
                _confirm_text, options=yes_no(yes="echo.done", no="home"), nav=HOME_BACK
            ),
            "echo.done": FinalScreen(_done_text),
            "count": OptionsScreen(
                "demo.count_title",
                options=tuple(
                    Option(n, Msg("demo.count_item", {"n": n}), _show_square, value=n)
                    for n in range(1, COUNT_TO + 1)
                ),
                nav=(HOME,),
            ),
            "count.square": OptionsScreen(_square_text, nav=HOME_BACK),
            "language": OptionsScreen(
                "demo.choose_language",
                options=(
                    Option(1, "demo.english", _set_language, value="en"),
                    Option(2, "demo.french", _set_language, value="fr"),
                ),
                nav=(HOME,),
            ),
            "goodbye": FinalScreen("demo.goodbye"),
        },
    )


def _valid_name(text: str) -> str | Invalid:
    if 1 <= len(text) <= MAX_NAME_CHARS and text.isprintable():
        return text
    return Invalid("demo.bad_name")


def _valid_number(text: str) -> int | Invalid:
    if text.isascii() and text.isdigit() and 1 <= int(text) <= 99:
        return int(text)
    return Invalid("demo.bad_number")


async def _store_name(dialogue: Dialogue, name: Any) -> str:
    dialogue.state["name"] = name
    return "echo.number"


async def _store_number(dialogue: Dialogue, number: Any) -> str:
    dialogue.state["number"] = number
    return "echo.confirm"


async def _show_square(dialogue: Dialogue, n: Any) -> str:
    dialogue.state["n"] = n
    return "count.square"


async def _set_language(dialogue: Dialogue, language: Any) -> str:
    dialogue.language = language
    return "home"


def _confirm_text(dialogue: Dialogue) -> Msg:
    return Msg("demo.confirm", _echo_args(dialogue))


def _done_text(dialogue: Dialogue) -> Msg:
    return Msg("demo.done", _echo_args(dialogue))


def _echo_args(dialogue: Dialogue) -> dict[str, object]:
    return {"name": dialogue.state["name"], "number": dialogue.state["number"]}


def _square_text(dialogue: Dialogue) -> Msg:
    n = dialogue.state["n"]
    return Msg("demo.square", {"n": n, "square": n * n})
