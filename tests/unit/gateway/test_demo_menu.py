"""The demo menu: the documented 5-screen walk, its other paths, and a property test.

The engine is async; each test drives it with ``asyncio.run`` (pytest-asyncio is off),
in a worker thread (see ``run``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from hypothesis import given
from hypothesis import strategies as st

from gateway.smpp.gsm0338 import DataCoding, choose_coding, fits_screen
from gateway.ussd_menus.demo import demo_menu
from gateway.ussd_menus.engine import MenuEngine
from gateway.ussd_menus.screens import Dialogue, Reply

T = TypeVar("T")

ENGINE = MenuEngine(demo_menu())
MSISDN = "255712345678"

WALK_EN = [
    ("*123#", "Welcome to ussdloop demo\n1. Echo\n2. Count to 40\n3. Language\n4. Quit", False),
    ("1", "Enter your name:\n\n0. Home\n1. Back", False),
    ("Zoë", "Enter a number from 1 to 99:\n\n0. Back", False),
    ("42", "Send 42 to Zoë?\n2. Yes\n3. No\n\n0. Home\n1. Back", False),
    ("2", "Done: Zoë 42", True),
]
WALK_FR = [
    (
        "*123#",
        "Bienvenue dans la démo ussdloop\n1. Écho\n2. Compter jusqu'à 40\n3. Langue\n4. Quitter",
        False,
    ),
    ("1", "Entrez votre prénom :\n\n0. Accueil\n1. Retour", False),
    ("Zoë", "Entrez un nombre de 1 à 99 :\n\n0. Retour", False),
    ("42", "Envoyer 42 à Zoë ?\n2. Oui\n3. Non\n\n0. Accueil\n1. Retour", False),
    ("2", "Reçu : Zoë 42", True),
]
NOT_AVAILABLE = {
    "Sorry, the service is not available. Please try again later.",
    "Désolé, le service n'est pas disponible. Réessayez plus tard.",
}


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a worker thread: under ``--reactor=asyncio`` the test thread
    already has Twisted's loop running, and asyncio.run refuses to nest in it."""
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(asyncio.run, coro).result()


def talk(*inputs: str, language: str = "en", code: str = "*123#") -> list[Reply]:
    dialogue = Dialogue(MSISDN, code, language)

    async def conversation() -> list[Reply]:
        replies = [await ENGINE.begin(dialogue)]
        for text in inputs:
            replies.append(await ENGINE.answer(dialogue, text))
        return replies

    return run(conversation())


def test_the_documented_five_screen_walk_in_english() -> None:
    replies = talk(*(entry for entry, _, _ in WALK_EN[1:]))
    assert [(r.text, r.end) for r in replies] == [(text, end) for _, text, end in WALK_EN]


def test_the_documented_five_screen_walk_in_french() -> None:
    replies = talk(*(entry for entry, _, _ in WALK_FR[1:]), language="fr")
    assert [(r.text, r.end) for r in replies] == [(text, end) for _, text, end in WALK_FR]
    assert choose_coding(replies[-1].text) is DataCoding.UCS2  # "ç"


def test_the_walk_screens_are_gsm_until_the_name_needs_ucs2() -> None:
    codings = [choose_coding(reply.text) for reply in talk("1", "Алиса", "7", "2")]
    assert codings == [DataCoding.SMSC_DEFAULT] * 3 + [DataCoding.UCS2] * 2
    assert talk("1", "Алиса", "7", "2")[-1] == Reply("Done: Алиса 7", end=True)


def test_a_bad_number_is_asked_again_and_three_in_a_row_end_the_dialogue() -> None:
    replies = talk("1", "Zoe", "100", "abc", "0x")
    assert replies[3] == Reply(
        "Not a number from 1 to 99\nEnter a number from 1 to 99:\n\n0. Back", end=False
    )
    assert replies[4].text == replies[3].text
    assert replies[5] == Reply("Too many wrong inputs. Please dial again.", end=True)


def test_a_name_longer_than_twenty_characters_is_asked_again() -> None:
    assert (
        talk("1", "x" * 21)[-1].text
        == "Name: 1 to 20 characters\nEnter your name:\n\n0. Home\n1. Back"
    )


def test_no_on_the_confirm_screen_returns_to_the_welcome_screen() -> None:
    assert talk("1", "Zoe", "42", "3")[-1].text == WALK_EN[0][1]


def test_back_and_home_on_the_echo_path() -> None:
    assert talk("1", "Zoe", "0")[-1].text == WALK_EN[1][1]  # 0. Back on the number prompt
    assert talk("1", "Zoe", "42", "1")[-1].text == WALK_EN[2][1]
    assert talk("1", "Zoe", "42", "0")[-1].text == WALK_EN[0][1]


def test_count_to_40_pages_with_98_and_keeps_the_option_numbers() -> None:
    for language, more in (("en", "98. More"), ("fr", "98. Suite")):
        replies = talk("2", *["98"] * 15, language=language)
        pages = [reply.text for reply in replies[1:]]
        pages = pages[: next(i for i, p in enumerate(pages) if more not in p) + 1]
        assert len(pages) > 1
        numbers = [
            int(line.split(".")[0])
            for page in pages
            for line in page.split("\n\n")[0].split("\n")
            if line[:1].isdigit()
        ]
        assert numbers == list(range(1, 41))
        assert all(fits_screen(page) for page in pages)


def test_count_to_40_in_french_pages_in_ucs2_at_80_units() -> None:
    pages = talk("2", *["98"] * 5, language="fr")[1:]
    assert all(choose_coding(page.text) is DataCoding.UCS2 for page in pages)
    assert all(len(page.text) <= 80 for page in pages)
    assert pages[0].text.startswith("Comptons jusqu'à 40, choisissez :\n1. 1 × 1\n")  # noqa: RUF001


def test_picking_a_square_shows_it_and_back_returns_to_the_list() -> None:
    replies = talk("2", "98", "37", "1")
    assert replies[3] == Reply("37 x 37 = 1369\n\n0. Home\n1. Back", end=False)
    assert replies[4].text.startswith("Counting to 40, pick a square:\n1. 1 x 1\n")


def test_the_language_screen_switches_the_dialogue_to_french() -> None:
    replies = talk("3", "2")
    assert replies[1].text == "Choose a language:\n1. English\n2. Français\n\n0. Home"
    assert replies[2].text == WALK_FR[0][1]


def test_quit_says_goodbye_and_ends() -> None:
    assert talk("4")[-1] == Reply("Goodbye", end=True)
    assert talk("4", language="fr")[-1] == Reply("Au revoir", end=True)


def test_a_dial_string_shortcut_opens_the_echo_path() -> None:
    assert talk(code="*123*1#")[-1].text == WALK_EN[1][1]
    assert talk(code="*123*1*Zoë*42#")[-1].text == WALK_EN[3][1]


MENU_KEYS = st.sampled_from(["0", "1", "2", "3", "4", "98", "42", "Zoë", "Алиса", " 2 "])


@given(
    inputs=st.lists(st.one_of(st.text(), MENU_KEYS), max_size=30),
    language=st.sampled_from(["en", "fr", "xx"]),
    code=st.sampled_from(["*123#", "*123*1#", "*123*2*98#"]),
)
def test_any_inputs_never_raise_always_fit_and_keep_the_state_json(
    inputs: list[str], language: str, code: str
) -> None:
    dialogue = Dialogue(MSISDN, code, language)

    async def conversation() -> list[Reply]:
        replies = [await ENGINE.begin(dialogue)]
        json.dumps(dialogue.state)
        for text in inputs:
            if replies[-1].end:
                replies.append(await ENGINE.begin(dialogue))
            else:
                replies.append(await ENGINE.answer(dialogue, text))
            json.dumps(dialogue.state)
        return replies

    for reply in run(conversation()):
        assert fits_screen(reply.text), reply.text
        assert reply.text not in NOT_AVAILABLE  # no handler of the demo fails
