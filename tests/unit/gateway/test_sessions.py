"""The session manager: turns, deadlines, bounds and keys, on a fake clock and the demo menu."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from twisted.internet import task
from twisted.logger import globalLogPublisher

from gateway.ussd.records import (
    TRANSITIONS,
    DialogueKey,
    InvalidTransition,
    Outcome,
    SessionRecord,
    SessionState,
    SessionTimers,
)
from gateway.ussd.sessions import MENU_HANDLER, SessionManager, SessionOpen, SessionsFull
from gateway.ussd.stores import MemorySessionStore, RedisSessionStore
from gateway.ussd_menus.demo import demo_menu
from gateway.ussd_menus.engine import Dialogue, MenuEngine, Reply
from gateway.ussd_menus.screens import Menu, Option, OptionsScreen
from tests.support import asyncio_test

ALICE = DialogueKey("256700000001", "7")
BOB = DialogueKey("256700000002", "7")
WELCOME = "Welcome to ussdloop demo\n1. Echo\n2. Count to 40\n3. Language\n4. Quit"
BIENVENUE = "Bienvenue dans la démo ussdloop\n1. Écho\n2. Compter jusqu'à 40\n3. Langue\n4. Quitter"
EXPIRED = "Session expired"
APOLOGY = "Sorry, the service is not available. Please try again later."


def manager(
    clock: task.Clock, *, menu: Menu | None = None, max_sessions: int = 100
) -> SessionManager:
    return SessionManager(
        MemorySessionStore(clock.seconds),
        MenuEngine(menu or demo_menu()),
        clock=clock,
        timers=SessionTimers(dialogue=180.0, screen=30.0, application=15.0),
        max_sessions=max_sessions,
    )


async def spin() -> None:
    """Let the tasks started so far run up to their next wait."""
    for _ in range(10):
        await asyncio.sleep(0)


class SlowMenu:
    """A one-option menu whose option waits for ``release`` before answering."""

    def __init__(self) -> None:
        self.release: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.finished = False

    async def slow(self, dialogue: Dialogue, value: Any) -> Reply:
        text = await self.release
        self.finished = True
        return Reply(text, end=True)

    def menu(self) -> Menu:
        screen = OptionsScreen("demo.welcome", options=(Option(1, "demo.echo", self.slow),))
        return Menu(start="home", screens={"home": screen})


@asyncio_test
async def test_a_begin_opens_a_session_awaiting_the_subscriber() -> None:
    clock = task.Clock()
    clock.advance(1000.0)
    sessions = manager(clock)
    screen = await sessions.begin(ALICE, "*123#")
    assert screen is not None and screen.outcome is Outcome.MENU
    assert screen.reply == Reply(WELCOME, end=False)
    record = await sessions.load(ALICE)
    assert record is not None
    assert record.session_id == screen.session_id
    assert record.state is SessionState.AWAITING_SUBSCRIBER
    assert (record.created_at, record.screen_deadline, record.dialogue_deadline) == (
        1000.0,
        1030.0,
        1180.0,
    )
    assert record.last_screen == WELCOME
    assert record.service_code == "*123#" and not record.network_initiated
    assert sessions.counters.sessions_started == 1 and sessions.counters.screens_sent == 1


@asyncio_test
async def test_the_demo_walk_ends_the_session_on_the_last_screen() -> None:
    sessions = manager(task.Clock())
    replies = [await sessions.begin(ALICE, "*123#")]
    for text in ("1", "Zoe", "42", "2"):
        replies.append(await sessions.answer(ALICE, text))
    assert [s.reply for s in replies if s is not None] == [
        Reply(WELCOME, False),
        Reply("Enter your name:\n\n0. Home\n1. Back", False),
        Reply("Enter a number from 1 to 99:\n\n0. Back", False),
        Reply("Send 42 to Zoe?\n2. Yes\n3. No\n\n0. Home\n1. Back", False),
        Reply("Done: Zoe 42", True),
    ]
    assert await sessions.load(ALICE) is None
    assert await sessions.store.count() == 0
    counters = sessions.counters
    assert (counters.sessions_started, counters.screens_sent, counters.sessions_ended) == (1, 5, 1)


@asyncio_test
async def test_the_end_of_a_dialogue_is_logged_with_every_screen_it_showed() -> None:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        sessions = manager(task.Clock())
        await sessions.begin(ALICE, "*123#")
        for text in ("1", "Zoe", "42", "2"):
            await sessions.answer(ALICE, text)
    finally:
        globalLogPublisher.removeObserver(events.append)
    ended = [e for e in events if e.get("log_format", "").startswith("ussd_session_ended")]
    assert [(e["reason"], e["screens"]) for e in ended] == [("completed", 5)]


@asyncio_test
async def test_a_silent_subscriber_is_dropped_after_the_screen_timeout() -> None:
    clock = task.Clock()
    sessions = manager(clock)
    await sessions.begin(ALICE, "*123#")
    clock.advance(29.9)
    await sessions.settle()
    assert await sessions.store.count() == 1
    clock.advance(0.1)
    await sessions.settle()
    assert await sessions.store.count() == 0
    assert sessions.counters.timeouts == 1 and sessions.counters.sessions_ended == 1
    late = await sessions.answer(ALICE, "1")
    assert late is not None and late.outcome is Outcome.EXPIRED
    assert late.reply == Reply(EXPIRED, end=True) and late.session_id is None
    assert sessions.counters.timeouts == 1  # counted once


@asyncio_test
async def test_each_answer_renews_the_screen_deadline() -> None:
    clock = task.Clock()
    sessions = manager(clock)
    await sessions.begin(ALICE, "*123#")
    clock.advance(25.0)
    await sessions.answer(ALICE, "1")
    clock.advance(25.0)
    await sessions.settle()
    record = await sessions.load(ALICE)
    assert record is not None and record.screen_deadline == 55.0 and record.answers == 1


@asyncio_test
async def test_the_dialogue_ends_at_the_dialogue_timeout_however_busy() -> None:
    clock = task.Clock()
    sessions = manager(clock)
    await sessions.begin(ALICE, "*123#")
    await sessions.answer(ALICE, "2")  # "count": "1" shows 1 x 1, whose "1. Back" returns
    for _ in range(8):
        clock.advance(20.0)
        screen = await sessions.answer(ALICE, "1")
        assert screen is not None and screen.outcome is Outcome.MENU
    clock.advance(20.0)  # t = 180: the dialogue deadline
    await sessions.settle()
    assert await sessions.store.count() == 0
    screen = await sessions.answer(ALICE, "1")
    assert screen is not None and screen.reply == Reply(EXPIRED, end=True)
    assert sessions.counters.timeouts == 1


@asyncio_test
async def test_a_menu_slower_than_the_application_timeout_gets_an_apology_screen() -> None:
    clock = task.Clock()
    slow = SlowMenu()
    sessions = manager(clock, menu=slow.menu())
    await sessions.begin(ALICE, "*123#")
    answering = asyncio.ensure_future(sessions.answer(ALICE, "1"))
    await spin()
    clock.advance(14.9)
    await spin()
    assert not answering.done()
    clock.advance(0.1)
    screen = await answering
    assert screen is not None and screen.outcome is Outcome.APOLOGY
    assert screen.reply == Reply(APOLOGY, end=True)
    assert await sessions.store.count() == 0
    assert sessions.counters.application_timeouts == 1
    slow.release.set_result("too late")  # the late answer is discarded
    await spin()
    assert slow.finished and await sessions.store.count() == 0


@asyncio_test
async def test_beyond_max_sessions_a_begin_gets_busy_and_nothing_is_stored() -> None:
    sessions = manager(task.Clock(), max_sessions=2)
    await sessions.begin(ALICE, "*123#")
    await sessions.begin(BOB, "*123#")
    carol = DialogueKey("256700000003", "9")
    screen = await sessions.begin(carol, "*123#")
    assert screen is not None and screen.outcome is Outcome.BUSY
    assert screen.reply == Reply("Service busy, please try again later", end=True)
    assert await sessions.load(carol) is None
    assert await sessions.store.count() == 2
    assert sessions.counters.busy == 1
    again = await sessions.begin(ALICE, "*123#")  # a live key is replaced, not refused
    assert again is not None and again.outcome is Outcome.MENU


@asyncio_test
async def test_a_begin_for_a_live_key_replaces_the_session() -> None:
    sessions = manager(task.Clock())
    first = await sessions.begin(ALICE, "*123#")
    await sessions.answer(ALICE, "1")
    second = await sessions.begin(ALICE, "*123#")
    assert first is not None and second is not None
    assert second.reply == Reply(WELCOME, end=False)
    assert second.session_id != first.session_id
    record = await sessions.load(ALICE)
    assert record is not None and record.session_id == second.session_id
    assert record.answers == 0
    assert await sessions.store.count() == 1
    assert sessions.counters.sessions_started == 2 and sessions.counters.sessions_ended == 1


@asyncio_test
async def test_a_session_id_reused_by_two_subscribers_keeps_two_sessions() -> None:
    sessions = manager(task.Clock())
    await sessions.begin(ALICE, "*123#")
    await sessions.begin(BOB, "*123#")
    alice = await sessions.answer(ALICE, "1")
    bob = await sessions.answer(BOB, "4")
    assert alice is not None and alice.reply.text.startswith("Enter your name:")
    assert bob is not None and bob.reply == Reply("Goodbye", end=True)
    assert await sessions.load(ALICE) is not None and await sessions.load(BOB) is None


@asyncio_test
async def test_a_msisdn_only_key_finds_the_session_without_a_session_id() -> None:
    sessions = manager(task.Clock())
    only = DialogueKey("256700000001")
    await sessions.begin(only, "*123#")
    assert await sessions.load(only) is not None
    assert await sessions.load(ALICE) is None  # a session id makes another key
    screen = await sessions.answer(DialogueKey("256700000001", ""), "1")  # "" is no id
    assert screen is not None and screen.outcome is Outcome.MENU


@asyncio_test
async def test_an_abort_removes_the_session() -> None:
    sessions = manager(task.Clock())
    await sessions.begin(ALICE, "*123#")
    assert await sessions.abort(ALICE) is True
    assert await sessions.abort(ALICE) is False
    assert await sessions.store.count() == 0
    assert sessions.counters.aborts == 1 and sessions.counters.sessions_ended == 1


@asyncio_test
async def test_an_abort_while_the_menu_answers_sends_nothing_and_keeps_nothing() -> None:
    slow = SlowMenu()
    sessions = manager(task.Clock(), menu=slow.menu())
    await sessions.begin(ALICE, "*123#")
    answering = asyncio.ensure_future(sessions.answer(ALICE, "1"))
    await spin()
    duplicate = await sessions.answer(ALICE, "1")
    assert duplicate is None  # the same session's answer is already being handled
    assert await sessions.abort(ALICE) is True
    slow.release.set_result("Done")
    assert await answering is None
    assert await sessions.store.count() == 0


@asyncio_test
async def test_a_pushed_session_sends_its_answer_to_the_named_handler() -> None:
    clock = task.Clock()
    sessions = manager(clock)
    answers: list[tuple[str, dict[str, Any]]] = []

    async def invoice(dialogue: Dialogue, text: str) -> Reply:
        answers.append((text, dict(dialogue.state)))
        return Reply("Invoice paid!", end=True)

    sessions.register_handler("invoice", invoice)
    key = DialogueKey("256700000001", "200")
    record = await sessions.open_pushed(
        key, "*123#", "Pay 10 USD to bob?", handler="invoice", state={"invoice": 12}
    )
    assert record.network_initiated and record.state is SessionState.AWAITING_SUBSCRIBER
    with pytest.raises(SessionOpen):
        await sessions.open_pushed(key, "*123#", "again?", handler="invoice")
    screen = await sessions.answer(key, "1234")
    assert screen is not None and screen.reply == Reply("Invoice paid!", end=True)
    assert answers == [("1234", {"invoice": 12})]
    assert await sessions.store.count() == 0


@asyncio_test
async def test_a_pushed_session_without_handler_opens_the_menu_on_answer() -> None:
    sessions = manager(task.Clock())
    key = DialogueKey("256700000001", "201")
    await sessions.open_pushed(key, "*123#", "You have an invoice. Reply to see it.")
    screen = await sessions.answer(key, "ok")
    assert screen is not None and screen.reply == Reply(WELCOME, end=False)
    screen = await sessions.answer(key, "4")
    assert screen is not None and screen.reply == Reply("Goodbye", end=True)
    with pytest.raises(ValueError):
        await sessions.open_pushed(key, "*123#", "x", handler="nobody")
    with pytest.raises(ValueError):
        sessions.register_handler(MENU_HANDLER, lambda d, t: None)  # type: ignore[arg-type,return-value]


@asyncio_test
async def test_a_push_beyond_max_sessions_is_refused() -> None:
    sessions = manager(task.Clock(), max_sessions=1)
    await sessions.begin(ALICE, "*123#")
    with pytest.raises(SessionsFull):
        await sessions.open_pushed(BOB, "*123#", "Hello?")


def test_states_move_only_along_the_transition_table() -> None:
    record = SessionRecord(
        key=ALICE,
        session_id="s1",
        service_code="*123#",
        state=SessionState.AWAITING_APPLICATION,
        created_at=0.0,
        screen_deadline=15.0,
        dialogue_deadline=180.0,
    )
    assert TRANSITIONS[SessionState.ENDED] == frozenset()
    with pytest.raises(InvalidTransition):
        record.move_to(SessionState.AWAITING_APPLICATION)
    record.move_to(SessionState.AWAITING_SUBSCRIBER)
    record.move_to(SessionState.AWAITING_APPLICATION)
    record.move_to(SessionState.ENDED)
    for state in SessionState:
        with pytest.raises(InvalidTransition):
            record.move_to(state)


def test_a_record_survives_json_and_garbage_is_refused() -> None:
    record = SessionRecord(
        key=DialogueKey("bob", "x:1", channel="callback"),
        session_id="s1",
        service_code="*123#",
        state=SessionState.AWAITING_SUBSCRIBER,
        created_at=1.5,
        screen_deadline=31.5,
        dialogue_deadline=181.5,
        language="fr",
        dialogue_state={"name": "Zoë", "_engine": {"stack": ["home"]}},
        last_screen="Entrez votre prénom :",
        answer_handler="invoice",
        answers=3,
        screens=4,
    )
    assert SessionRecord.from_json(record.to_json()) == record
    for garbage in (
        "",
        "[]",
        '{"key": 1}',
        record.to_json().replace('"answers":3', '"answers":"x"'),
    ):
        with pytest.raises(ValueError):
            SessionRecord.from_json(garbage)


def test_bad_limits_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="max_sessions"):
        manager(task.Clock(), max_sessions=0)
    with pytest.raises(ValueError, match="screen"):
        SessionTimers(screen=0)


@asyncio_test
async def test_two_nodes_sharing_a_store_continue_each_others_sessions() -> None:
    clock = task.Clock()
    store = MemorySessionStore(clock.seconds)
    slow = SlowMenu()

    def node() -> SessionManager:
        return SessionManager(store, MenuEngine(slow.menu()), clock=clock, max_sessions=10)

    node1, node2 = node(), node()
    await node1.begin(ALICE, "*123#")
    clock.advance(20.0)
    answering = asyncio.ensure_future(node2.answer(ALICE, "1"))
    await spin()
    assert await node1.answer(ALICE, "1") is None  # node2 is preparing this screen
    clock.advance(10.0)  # node1's screen deadline passes while node2 works: no timeout
    await node1.settle()
    assert node1.counters.timeouts == 0
    slow.release.set_result("Done")
    screen = await answering
    assert screen is not None and screen.reply == Reply("Done", end=True)
    assert await store.count() == 0


@asyncio_test
async def test_two_nodes_on_redis_walk_the_demo_menu_turn_about(redis_url: str) -> None:
    clock = task.Clock()
    prefix = f"test:{uuid.uuid4().hex}:{{sessions}}:"
    stores = [RedisSessionStore.from_url(redis_url, clock.seconds, prefix=prefix) for _ in "ab"]
    nodes = [
        SessionManager(store, MenuEngine(demo_menu()), clock=clock, max_sessions=10)
        for store in stores
    ]
    try:
        screens = [await nodes[0].begin(ALICE, "*123#")]
        for index, text in enumerate(("1", "Zoe", "42", "2"), start=1):
            screens.append(await nodes[index % 2].answer(ALICE, text))
        assert [s.reply.text for s in screens if s is not None][-1] == "Done: Zoe 42"
        assert await stores[0].count() == 0
    finally:
        for manager_ in nodes:
            await manager_.close()
        await stores[0].clear()
        for store in stores:
            await store.close()


@asyncio_test
async def test_an_answer_for_a_handler_this_node_lacks_gets_the_apology() -> None:
    clock = task.Clock()
    store = MemorySessionStore(clock.seconds)
    pusher = SessionManager(store, MenuEngine(demo_menu()), clock=clock, max_sessions=10)
    other = SessionManager(store, MenuEngine(demo_menu()), clock=clock, max_sessions=10)

    async def invoice(dialogue: Dialogue, text: str) -> Reply:
        return Reply("Invoice paid!", end=True)

    pusher.register_handler("invoice", invoice)
    key = DialogueKey("256700000001", "17")
    await pusher.open_pushed(key, "*123#", "Pay?", handler="invoice")
    screen = await other.answer(key, "1234")
    assert screen is not None and screen.outcome is Outcome.APOLOGY
    assert screen.reply == Reply(APOLOGY, end=True)
    assert await store.count() == 0
    await pusher.close()


@asyncio_test
async def test_a_language_chosen_in_one_dialogue_starts_the_next_one_from_that_msisdn() -> None:
    clock = task.Clock()
    sessions = manager(clock)
    await sessions.begin(ALICE, "*123#")
    await sessions.answer(ALICE, "3")  # 3. Language
    chosen = await sessions.answer(ALICE, "2")  # 2. Français
    assert chosen is not None and chosen.reply == Reply(BIENVENUE, end=False)
    goodbye = await sessions.answer(ALICE, "4")
    assert goodbye is not None and goodbye.reply == Reply("Au revoir", end=True)
    clock.advance(3600.0)
    again = DialogueKey(ALICE.msisdn, "8", channel="callback")  # another dialogue, any channel
    screen = await sessions.begin(again, "*123#")
    assert screen is not None and screen.reply == Reply(BIENVENUE, end=False)
    record = await sessions.load(again)
    assert record is not None and record.language == "fr"
    bob = await sessions.begin(BOB, "*123#")  # another MSISDN: still English
    assert bob is not None and bob.reply == Reply(WELCOME, end=False)
    assert await sessions.remembered_language(ALICE.msisdn) == "fr"
    assert await sessions.remembered_language(BOB.msisdn) == "en"


@asyncio_test
async def test_pushes_and_expired_screens_use_the_remembered_language() -> None:
    sessions = manager(task.Clock())
    await sessions.begin(ALICE, "*123#")
    await sessions.answer(ALICE, "3")
    await sessions.answer(ALICE, "1")  # English again: remembered too
    assert await sessions.remembered_language(ALICE.msisdn) == "en"
    await sessions.answer(ALICE, "3")
    await sessions.answer(ALICE, "2")
    await sessions.answer(ALICE, "4")
    pushed = await sessions.open_pushed(DialogueKey(ALICE.msisdn, "200"), "*123#", "Bonjour")
    assert pushed.language == "fr"
    menu = await sessions.answer(pushed.key, "ok")  # the push's answer opens the menu
    assert menu is not None and menu.reply == Reply(BIENVENUE, end=False)
    english = await sessions.open_pushed(
        DialogueKey(ALICE.msisdn, "201"), "*123#", "Hello", language="en"
    )
    assert english.language == "en"  # an explicit language wins
    late = await sessions.answer(DialogueKey(ALICE.msisdn, "99"), "1")
    assert late is not None and late.reply == Reply("Session expirée", end=True)
    explicit = await sessions.begin(DialogueKey(ALICE.msisdn, "9"), "*123#", language="en")
    assert explicit is not None and explicit.reply == Reply(WELCOME, end=False)
    assert await sessions.remembered_language(ALICE.msisdn) == "fr"  # not a choice


@asyncio_test
async def test_a_language_the_texts_lack_is_not_remembered() -> None:
    async def klingon(dialogue: Dialogue, value: Any) -> Reply:
        dialogue.language = "tlh"
        return Reply("Qapla'", end=True)

    screen = OptionsScreen("demo.welcome", options=(Option(1, "demo.echo", klingon),))
    sessions = manager(task.Clock(), menu=Menu(start="home", screens={"home": screen}))
    await sessions.begin(ALICE, "*123#")
    reply = await sessions.answer(ALICE, "1")
    assert reply is not None and reply.reply == Reply("Qapla'", end=True)
    assert await sessions.store.load_language(ALICE.msisdn) is None


@asyncio_test
async def test_a_language_chosen_on_one_redis_node_starts_the_next_dialogue_on_another(
    redis_url: str,
) -> None:
    clock = task.Clock()
    prefix = f"test:{uuid.uuid4().hex}:{{sessions}}:"
    stores = [RedisSessionStore.from_url(redis_url, clock.seconds, prefix=prefix) for _ in "ab"]
    nodes = [
        SessionManager(store, MenuEngine(demo_menu()), clock=clock, max_sessions=10)
        for store in stores
    ]
    try:
        await nodes[0].begin(ALICE, "*123#")
        await nodes[0].answer(ALICE, "3")
        await nodes[0].answer(ALICE, "2")
        await nodes[0].answer(ALICE, "4")
        screen = await nodes[1].begin(DialogueKey(ALICE.msisdn, "8"), "*123#")
        assert screen is not None and screen.reply == Reply(BIENVENUE, end=False)
        bob = await nodes[1].begin(BOB, "*123#")
        assert bob is not None and bob.reply == Reply(WELCOME, end=False)
    finally:
        for manager_ in nodes:
            await manager_.close()
        await stores[0].clear()
        for store in stores:
            await store.close()
