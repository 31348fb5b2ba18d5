"""The USSD menu engine: navigation, wrong input, paging, language, limits, failures.

The engine is async; each test drives it with ``asyncio.run`` (pytest-asyncio is off),
in a worker thread (see ``run``).
Screens reuse the demo's message ids, which exist in both languages.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from gateway.smpp.gsm0338 import DataCoding, ScreenLimits, choose_coding, fits_screen
from gateway.ussd_menus import texts
from gateway.ussd_menus.engine import (
    MAX_BACK_STACK,
    MAX_WRONG_INPUTS,
    STATE_KEY,
    MenuEngine,
    dial_extras,
    mask_msisdn,
)
from gateway.ussd_menus.paging import page_at
from gateway.ussd_menus.screens import (
    BACK_AT_0,
    HOME,
    HOME_BACK,
    Dialogue,
    FinalScreen,
    InputScreen,
    Invalid,
    Menu,
    MenuError,
    Msg,
    Option,
    OptionsScreen,
    Reply,
    yes_no,
)

MSISDN = "255712345678"
NOT_AVAILABLE = "Sorry, the service is not available. Please try again later."


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a worker thread: under ``--reactor=asyncio`` the test thread
    already has Twisted's loop running, and asyncio.run refuses to nest in it."""
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(asyncio.run, coro).result()


def talk(engine: MenuEngine, dialogue: Dialogue, *inputs: str) -> list[Reply]:
    """Begin the dialogue, then answer each input; every reply is returned."""

    async def conversation() -> list[Reply]:
        replies = [await engine.begin(dialogue)]
        for text in inputs:
            replies.append(await engine.answer(dialogue, text))
        return replies

    return run(conversation())


def last(engine: MenuEngine, *inputs: str, language: str = "en", code: str = "*123#") -> Reply:
    return talk(engine, Dialogue(MSISDN, code, language), *inputs)[-1]


def number(text: str) -> int | Invalid:
    return int(text) if text.isdigit() and 1 <= int(text) <= 99 else Invalid("demo.bad_number")


async def store_number(dialogue: Dialogue, value: Any) -> str:
    dialogue.state["number"] = value
    return "confirm"


async def fail(dialogue: Dialogue, value: Any) -> str:
    raise RuntimeError(f"downstream refused {dialogue.msisdn}")


async def store_object(dialogue: Dialogue, value: Any) -> str:
    dialogue.state["oops"] = object()
    return "home"


async def end_with_own_reply(dialogue: Dialogue, value: Any) -> Reply:
    return Reply("Bye from the handler", end=True)


async def end_with_long_reply(dialogue: Dialogue, value: Any) -> Reply:
    return Reply("x" * 500, end=True)


async def go_on_with_own_reply(dialogue: Dialogue, value: Any) -> Reply:
    return Reply("Next?", end=False)


def confirm_text(dialogue: Dialogue) -> Msg:
    return Msg("demo.confirm", {"number": dialogue.state["number"], "name": "Zoe"})


def sample_menu(**extra_screens: Any) -> Menu:
    """home -> ask (number, 0. Home / 1. Back) -> confirm (2. Yes / 3. No) -> done."""
    screens: dict[str, Any] = {
        "home": OptionsScreen(
            "demo.welcome",
            options=(
                Option(1, "demo.echo", "ask"),
                Option(2, "demo.count", "list"),
                Option(3, "demo.language", fail),
                Option(4, "demo.quit", "bye"),
                Option(5, "demo.english", store_object),
                Option(6, "demo.echo", end_with_own_reply),
                Option(7, "demo.goodbye", end_with_long_reply),
                Option(8, "demo.goodbye", go_on_with_own_reply),
            ),
        ),
        "ask": InputScreen("demo.ask_number", validate=number, handle=store_number, nav=HOME_BACK),
        "confirm": OptionsScreen(confirm_text, options=yes_no("done", "home"), nav=HOME_BACK),
        "done": FinalScreen("demo.goodbye"),
        "bye": FinalScreen("demo.goodbye"),
        "list": OptionsScreen(
            "demo.count_title",
            options=tuple(Option(n, Msg("demo.count_item", {"n": n}), "bye") for n in range(1, 41)),
            nav=(HOME,),
        ),
        **extra_screens,
    }
    return Menu(start="home", screens=screens)


ENGINE = MenuEngine(sample_menu())
HOME_TEXT = "Welcome to ussdloop demo\n1. Echo\n2. Count to 40\n3. Language\n4. Quit\n5. English\n"
ASK_TEXT = "Enter a number from 1 to 99:\n\n0. Home\n1. Back"


# --- screens and options -------------------------------------------------------------


def test_an_options_screen_shows_its_text_then_its_numbered_options() -> None:
    reply = last(ENGINE)
    assert reply.text.startswith(HOME_TEXT)
    assert reply.end is False


def test_picking_an_option_opens_the_screen_it_leads_to() -> None:
    assert last(ENGINE, "1") == Reply(ASK_TEXT, end=False)


def test_a_valid_input_goes_through_the_handler_to_the_next_screen() -> None:
    dialogue = Dialogue(MSISDN, "*123#")
    reply = talk(ENGINE, dialogue, "1", " 42 ")[-1]
    assert reply.text == "Send 42 to Zoe?\n2. Yes\n3. No\n\n0. Home\n1. Back"
    assert dialogue.state["number"] == 42


def test_yes_on_a_question_leads_to_the_final_screen_which_ends_the_dialogue() -> None:
    assert last(ENGINE, "1", "42", "2") == Reply("Goodbye", end=True)


def test_no_on_a_question_leads_where_the_menu_says() -> None:
    assert last(ENGINE, "1", "42", "3").text.startswith(HOME_TEXT)


# --- wrong input -----------------------------------------------------------------------


def test_a_wrong_option_shows_the_same_screen_under_wrong_input() -> None:
    reply = last(ENGINE, "9")
    assert reply.text.startswith("Wrong Input\n" + HOME_TEXT)
    assert reply.end is False


def test_the_validators_message_is_the_error_line_of_the_reprompt() -> None:
    reply = last(ENGINE, "1", "100")
    assert reply == Reply("Not a number from 1 to 99\n" + ASK_TEXT, end=False)


def test_three_wrong_inputs_in_a_row_end_the_dialogue_politely() -> None:
    replies = talk(ENGINE, Dialogue(MSISDN, "*123#"), "1", *["x"] * MAX_WRONG_INPUTS)
    assert all(not reply.end for reply in replies[:-1])
    assert replies[-1] == Reply("Too many wrong inputs. Please dial again.", end=True)


def test_a_right_input_resets_the_count_of_wrong_inputs() -> None:
    reply = last(ENGINE, "9", "9", "1", "x", "x")
    assert reply == Reply("Not a number from 1 to 99\n" + ASK_TEXT, end=False)


def test_an_input_longer_than_any_ussd_string_is_wrong_input() -> None:
    assert last(ENGINE, "1" * 500).text.startswith("Wrong Input\n")


def test_a_wrong_input_is_never_a_crash_even_on_a_final_screens_page() -> None:
    long_end = FinalScreen(Msg("demo.done", {"name": " ".join(["word"] * 60), "number": 1}))
    engine = MenuEngine(
        sample_menu(home=OptionsScreen("demo.welcome", (Option(1, "demo.echo", "e"),)), e=long_end)
    )
    reply = last(engine, "1", "hello")
    assert reply.text.startswith("Wrong Input\n") and not reply.end


# --- navigation ------------------------------------------------------------------------


def test_zero_goes_home_from_any_depth() -> None:
    assert last(ENGINE, "1", "42", "0").text.startswith(HOME_TEXT)


def test_one_goes_back_to_the_previous_screen() -> None:
    assert last(ENGINE, "1", "42", "1") == Reply(ASK_TEXT, end=False)
    assert last(ENGINE, "1", "42", "1", "1").text.startswith(HOME_TEXT)


def test_zero_back_on_a_data_entry_screen_goes_back() -> None:
    ask = InputScreen("demo.ask_number", validate=number, handle=store_number, nav=(BACK_AT_0,))
    engine = MenuEngine(sample_menu(ask=ask))
    assert last(engine, "1", "0").text.startswith(HOME_TEXT)
    assert last(engine, "1", "1").text.startswith("Send 1 to Zoe?")  # 1 is a number here


def test_keys_a_screen_does_not_show_are_ordinary_input() -> None:
    assert last(ENGINE, "0").text.startswith("Wrong Input\n" + HOME_TEXT)  # no 0. Home there
    assert last(ENGINE, "1", "98").text.startswith("Send 98 to Zoe?")  # no 98. More there


def test_the_back_stack_is_bounded() -> None:
    loop: dict[str, OptionsScreen | FinalScreen] = {
        f"s{i}": OptionsScreen("demo.echo", (Option(2, "demo.echo", f"s{i + 1}"),), HOME_BACK)
        for i in range(30)
    }
    loop["s30"] = FinalScreen("demo.goodbye")
    engine = MenuEngine(
        sample_menu(home=OptionsScreen("demo.welcome", (Option(1, "demo.echo", "s0"),)), **loop)
    )
    dialogue = Dialogue(MSISDN, "*123#")
    talk(engine, dialogue, "1", *["2"] * 20)
    stack = dialogue.state[STATE_KEY]["stack"]
    assert len(stack) == MAX_BACK_STACK
    assert stack[-1] == "s19"
    replies = run(_answers(engine, dialogue, ["1"] * (MAX_BACK_STACK + 1)))
    assert replies[-1].text.startswith("Welcome to ussdloop demo")  # empty stack: home


async def _answers(engine: MenuEngine, dialogue: Dialogue, inputs: Sequence[str]) -> list[Reply]:
    return [await engine.answer(dialogue, text) for text in inputs]


# --- paging ----------------------------------------------------------------------------


def pages_of(engine: MenuEngine, *inputs: str, language: str = "en") -> list[Reply]:
    """Open a screen through ``inputs`` and follow 98. More to its last page."""
    dialogue = Dialogue(MSISDN, "*123#", language)
    pages = [talk(engine, dialogue, *inputs)[-1]]
    while "\n98. " in pages[-1].text:
        pages.append(run(engine.answer(dialogue, "98")))
        assert len(pages) < 50
    return pages


def option_numbers(text: str) -> list[int]:
    return [int(line.split(".")[0]) for line in text.split("\n") if line[:1].isdigit()]


def test_a_long_option_list_pages_with_98_and_keeps_the_option_numbers() -> None:
    pages = pages_of(ENGINE, "2")
    assert len(pages) > 1
    for page in pages[:-1]:
        assert page.text.endswith("\n\n98. More\n0. Home")
    assert pages[-1].text.endswith("40. 40 x 40\n\n0. Home")
    numbers = [n for page in pages for n in option_numbers(page.text) if n not in (0, 98)]
    assert numbers == list(range(1, 41))
    assert all(fits_screen(page.text) and not page.end for page in pages)


def test_french_pages_go_out_in_ucs2_within_80_units() -> None:
    pages = pages_of(ENGINE, "2", language="fr")
    assert len(pages) > 4
    for page in pages:
        assert choose_coding(page.text) is DataCoding.UCS2
        assert len(page.text.encode("utf-16-be")) // 2 <= 80
    for page in pages[:-1]:
        assert page.text.endswith("\n\n98. Suite\n0. Accueil")
    numbers = [n for page in pages for n in option_numbers(page.text) if n not in (0, 98)]
    assert numbers == list(range(1, 41))


def test_any_option_can_be_picked_from_any_page() -> None:
    assert last(ENGINE, "2", "40") == Reply("Goodbye", end=True)
    assert last(ENGINE, "2", "98", "98", "3") == Reply("Goodbye", end=True)


def test_a_wrong_input_on_a_later_page_redraws_that_page_and_more_continues_after_it() -> None:
    dialogue = Dialogue(MSISDN, "*123#")
    _, _, second, wrong, third = talk(ENGINE, dialogue, "2", "98", "x", "98")
    assert wrong.text.startswith("Wrong Input\n" + second.text.split("\n")[0])
    last_on_wrong = option_numbers(wrong.text.split("\n\n")[0])[-1]
    assert option_numbers(third.text)[0] == last_on_wrong + 1


def test_a_line_longer_than_a_page_is_split_between_words() -> None:
    body = " ".join(f"word{i}" for i in range(100))
    texts_: list[str] = []
    start: int | None = 0
    while start is not None:
        page = page_at(
            body,
            start,
            error_line="",
            nav_lines=["0. Home"],
            more_line="98. More",
            limits=ScreenLimits(),
        )
        assert fits_screen(page.text)
        texts_.append(page.text.split("\n\n")[0])
        start = page.next_start
    assert len(texts_) > 1
    assert " ".join(texts_).split() == body.split()  # every word once, none cut


def test_a_word_longer_than_a_page_is_split_between_characters() -> None:
    body = "x" * 500
    page = page_at(
        body, 0, error_line="", nav_lines=[], more_line="98. More", limits=ScreenLimits()
    )
    assert page.text == "x" * 172 + "\n\n98. More"
    assert page.next_start == 172


def test_the_error_line_gives_way_when_nothing_else_would_fit() -> None:
    page = page_at(
        "body",
        0,
        error_line="e" * 200,
        nav_lines=["0. Home"],
        more_line="98. More",
        limits=ScreenLimits(),
    )
    assert page.text == "body\n\n0. Home"


def test_a_long_final_screen_pages_and_ends_on_its_last_page() -> None:
    long_end = FinalScreen(Msg("demo.done", {"name": " ".join(["word"] * 60), "number": 7}))
    engine = MenuEngine(
        sample_menu(home=OptionsScreen("demo.welcome", (Option(1, "demo.echo", "e"),)), e=long_end)
    )
    pages = pages_of(engine, "1")
    assert [page.end for page in pages] == [False] * (len(pages) - 1) + [True]
    assert pages[-1].text.endswith("word 7")


# --- language and text -----------------------------------------------------------------


def test_screens_are_in_the_dialogues_language() -> None:
    assert last(ENGINE, "1", language="fr") == Reply(
        "Entrez un nombre de 1 à 99 :\n\n0. Accueil\n1. Retour", end=False
    )


def test_a_missing_translation_falls_back_to_english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(texts.TEXTS["fr"], "demo.ask_number")
    assert last(ENGINE, "1", language="fr").text.startswith("Enter a number from 1 to 99:")


def test_an_unknown_language_reads_english() -> None:
    assert last(ENGINE, "1", language="xx") == Reply(ASK_TEXT, end=False)


def test_every_text_exists_in_english_and_french() -> None:
    assert set(texts.TEXTS["fr"]) == set(texts.TEXTS["en"])


def test_characters_no_accepted_coding_can_write_are_shown_as_question_marks() -> None:
    engine = MenuEngine(sample_menu(), limits=ScreenLimits(codings=(DataCoding.SMSC_DEFAULT,)))
    dialogue = Dialogue(MSISDN, "*123#", "fr")
    reply = talk(engine, dialogue, "2")[-1]
    assert reply.text.startswith(
        "Comptons jusqu'à 40, choisissez :\n1. 1 ? 1\n"
    )  # the sign is not GSM


# --- the session layer's other calls ------------------------------------------------


def test_expired_gives_session_expired_in_the_dialogues_language() -> None:
    assert ENGINE.expired(Dialogue(MSISDN, "*123#")) == Reply("Session expired", end=True)
    assert ENGINE.expired(Dialogue(MSISDN, "*123#", "fr")) == Reply("Session expirée", end=True)


def test_busy_gives_service_busy() -> None:
    assert ENGINE.busy(Dialogue(MSISDN, "*123#")) == Reply(
        "Service busy, please try again later", end=True
    )


def test_dial_string_extras_answer_the_first_screens() -> None:
    assert last(ENGINE, code="*123*1*42#").text.startswith("Send 42 to Zoe?")
    assert last(ENGINE, code="*123*1*x*42#").text.startswith("Not a number")  # stops there
    assert dial_extras("*123#") == [] and dial_extras("123") == []
    assert dial_extras("*123*1*Zoe#") == ["1", "Zoe"]


def test_an_answer_with_no_dialogue_under_way_begins_afresh() -> None:
    reply = run(ENGINE.answer(Dialogue(MSISDN, "*123#"), "1"))
    assert reply.text.startswith(HOME_TEXT)
    stale = Dialogue(MSISDN, "*123#", state={STATE_KEY: {"screen": "gone"}, "x": 1})
    assert run(ENGINE.answer(stale, "1")).text.startswith(HOME_TEXT)


def test_after_the_final_screen_the_engines_state_is_gone() -> None:
    dialogue = Dialogue(MSISDN, "*123#")
    talk(ENGINE, dialogue, "4")
    assert STATE_KEY not in dialogue.state


def test_an_opening_handler_chooses_the_first_screen_which_is_then_home() -> None:
    async def opening(dialogue: Dialogue) -> str:
        dialogue.state["looked_up"] = True
        return "ask"

    base = sample_menu()
    engine = MenuEngine(Menu(start="home", screens=base.screens, opening=opening))
    dialogue = Dialogue(MSISDN, "*123#")
    first, again = talk(engine, dialogue, "0")
    assert first == again == Reply(ASK_TEXT, end=False)
    assert dialogue.state["looked_up"] is True


def test_options_can_be_computed_from_the_dialogue() -> None:
    def accounts(dialogue: Dialogue) -> list[Option]:
        names = dialogue.state.get("names", ["demo.english", "demo.french"])
        return [Option(i + 2, name, "bye") for i, name in enumerate(names)]

    pick = OptionsScreen("demo.choose_language", options=accounts, nav=HOME_BACK)
    engine = MenuEngine(
        sample_menu(home=OptionsScreen("demo.welcome", (Option(1, "demo.echo", "p"),)), p=pick)
    )
    assert (
        last(engine, "1").text == "Choose a language:\n2. English\n3. Français\n\n0. Home\n1. Back"
    )
    assert last(engine, "1", "3") == Reply("Goodbye", end=True)


# --- failures --------------------------------------------------------------------------


def test_a_handler_error_gives_service_not_available_and_is_logged_with_the_msisdn_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="gateway.ussd_menus.engine")
    dialogue = Dialogue(MSISDN, "*123#")
    reply = talk(ENGINE, dialogue, "3")[-1]
    assert reply == Reply(NOT_AVAILABLE, end=True)
    assert STATE_KEY not in dialogue.state
    (record,) = caplog.records
    assert getattr(record, "msisdn", None) == "*********678"
    assert getattr(record, "screen", None) == "home"
    assert MSISDN not in record.getMessage()


def test_a_handler_storing_a_non_json_value_gives_service_not_available() -> None:
    dialogue = Dialogue(MSISDN, "*123#")
    assert talk(ENGINE, dialogue, "5")[-1] == Reply(NOT_AVAILABLE, end=True)
    dialogue.state.pop("oops")
    json.dumps(dialogue.state)


def test_a_handler_may_end_the_dialogue_with_its_own_reply_if_it_fits() -> None:
    assert last(ENGINE, "6") == Reply("Bye from the handler", end=True)
    assert last(ENGINE, "7") == Reply(NOT_AVAILABLE, end=True)  # too long
    assert last(ENGINE, "8") == Reply(NOT_AVAILABLE, end=True)  # does not end


def test_not_available_is_in_the_dialogues_language() -> None:
    assert last(ENGINE, "3", language="fr") == Reply(
        "Désolé, le service n'est pas disponible. Réessayez plus tard.", end=True
    )


def test_msisdns_are_masked_but_for_the_last_three_digits() -> None:
    assert mask_msisdn("255712345678") == "*********678"
    assert mask_msisdn("bob") == "***"


# --- menus and limits checked up front -----------------------------------------------


@pytest.mark.parametrize(
    ("screens", "message"),
    [
        ({"home": OptionsScreen("demo.welcome", (Option(1, "demo.echo", "nowhere"),))}, "nowhere"),
        (
            {"home": OptionsScreen("demo.welcome", (Option(1, "demo.echo", "home"),), HOME_BACK)},
            "clash",
        ),
        ({"home": OptionsScreen("demo.welcome", (Option(98, "demo.echo", "home"),))}, "clash"),
        ({"home": OptionsScreen("no.such.text")}, "no.such.text"),
        ({"other": FinalScreen("demo.goodbye")}, "start screen"),
    ],
)
def test_a_menu_that_cannot_work_is_refused_when_built(
    screens: dict[str, Any], message: str
) -> None:
    with pytest.raises(MenuError, match=message):
        Menu(start="home", screens=screens)


def test_limits_too_small_for_the_engines_texts_are_refused() -> None:
    with pytest.raises(MenuError, match="too small"):
        MenuEngine(sample_menu(), limits=ScreenLimits(gsm7=30, ucs2=30))
