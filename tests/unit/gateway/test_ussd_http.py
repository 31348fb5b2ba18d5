"""USSD over HTTP through a real aiohttp server on a loopback port, walking the demo menu."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import aiohttp
import pytest
from twisted.internet import reactor as global_reactor

from gateway.ussd.http import UssdHttpListener, preferred_format, ussd_http_app
from gateway.ussd.records import DialogueKey, SessionTimers
from gateway.ussd.sessions import SessionManager
from gateway.ussd.stores import MemorySessionStore
from gateway.ussd_menus.demo import demo_menu
from gateway.ussd_menus.engine import MenuEngine
from tests.support import asyncio_test

WELCOME = "Welcome to ussdloop demo\n1. Echo\n2. Count to 40\n3. Language\n4. Quit"
BIENVENUE = "Bienvenue dans la démo ussdloop\n1. Écho\n2. Compter jusqu'à 40\n3. Langue\n4. Quitter"
NAME = "Enter your name:\n\n0. Home\n1. Back"
NUMBER = "Enter a number from 1 to 99:\n\n0. Back"
XML_ACCEPT = "application/xml, text/xml, */*"


@dataclass
class Server:
    url: str
    http: aiohttp.ClientSession
    sessions: SessionManager

    async def ussd(self, body: dict[str, Any], accept: str = XML_ACCEPT) -> tuple[str, str]:
        async with self.http.post(
            f"{self.url}/ussd", json=body, headers={"Accept": accept}
        ) as response:
            assert response.status == 200, await response.text()
            return response.content_type, await response.text()

    async def callback(self, session_id: str, phone: str, text: str) -> str:
        form = {"sessionId": session_id, "serviceCode": "*123#", "phoneNumber": phone, "text": text}
        async with self.http.post(f"{self.url}/ussd/callback", data=form) as response:
            assert response.status == 200, await response.text()
            assert response.content_type == "text/plain"
            return await response.text()


@asynccontextmanager
async def serving() -> AsyncIterator[Server]:
    reactor: Any = global_reactor
    sessions = SessionManager(
        MemorySessionStore(reactor.seconds),
        MenuEngine(demo_menu()),
        clock=reactor,
        timers=SessionTimers(),
        max_sessions=100,
    )
    listener = UssdHttpListener(ussd_http_app(sessions, default_code="*123#"), "127.0.0.1", 0)
    await listener.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Server(f"http://127.0.0.1:{listener.port}", http, sessions)
    finally:
        await listener.stop()
        await sessions.close()


def xml_message(body: str) -> tuple[str, str, str]:
    root = ElementTree.fromstring(body)
    assert root.tag == "UssdResponse" and root.get("version") == "1.0"
    status = root.find("Status")
    assert status is not None and status.get("code") == "0"
    return (
        root.findtext("Message") or "",
        root.findtext("DefaultCode") or "",
        root.findtext("PhoneNumber") or "",
    )


@asyncio_test
async def test_the_reference_xml_walks_the_demo_menu() -> None:
    async with serving() as server:
        screens = []
        steps = [("*123#", "true"), ("1", None), ("Tom & Jerry", None), ("42", None), ("2", None)]
        for message, new_session in steps:
            body: dict[str, Any] = {"phone": "bob", "message": message}
            if new_session:
                body["newSession"] = new_session
            content_type, text = await server.ussd(body)
            assert content_type == "application/xml"
            assert "Tom &amp; Jerry" in text or "Tom" not in text  # XML-escaped
            screens.append(xml_message(text))
        assert [message for message, _, _ in screens] == [
            WELCOME,
            NAME,
            NUMBER,
            "Send 42 to Tom & Jerry?\n2. Yes\n3. No\n\n0. Home\n1. Back",
            "Done: Tom & Jerry 42",
        ]
        assert {(code, phone) for _, code, phone in screens} == {("*123#", "bob")}
        assert await server.sessions.store.count() == 0


@asyncio_test
async def test_json_answers_carry_the_end_of_the_session() -> None:
    async with serving() as server:
        answers = []
        for message in ("*123#", "1", "Zoe", "42", "2"):
            content_type, text = await server.ussd(
                {"phone": "+256 700 000 001", "message": message}, "application/json"
            )
            assert content_type == "application/json"
            answers.append(text)
        import json

        decoded = [json.loads(answer) for answer in answers]
        assert [d["sessionEnd"] for d in decoded] == [False, False, False, False, True]
        assert decoded[0]["message"] == WELCOME and decoded[-1]["message"] == "Done: Zoe 42"


@asyncio_test
async def test_plain_text_is_the_answer_when_neither_xml_nor_json_is_preferred() -> None:
    async with serving() as server:
        texts = []
        for message in ("*123#", "1", "Zoe", "42", "2"):
            content_type, text = await server.ussd({"phone": "tom", "message": message}, "*/*")
            assert content_type == "text/plain"
            texts.append(text)
        assert texts[0] == WELCOME and texts[-1] == "Done: Zoe 42"


@asyncio_test
async def test_the_callback_form_walks_the_demo_menu_with_its_input_history() -> None:
    async with serving() as server:
        history = ["", "1", "1*Alice", "1*Alice*42", "1*Alice*42*2"]
        answers = [await server.callback("ATx1", "+256700000001", text) for text in history]
        assert answers == [
            f"CON {WELCOME}",
            f"CON {NAME}",
            f"CON {NUMBER}",
            "CON Send 42 to Alice?\n2. Yes\n3. No\n\n0. Home\n1. Back",
            "END Done: Alice 42",
        ]


@asyncio_test
async def test_a_repeated_callback_gets_the_same_screen_and_an_unknown_one_expires() -> None:
    async with serving() as server:
        await server.callback("ATx2", "+256700000002", "")
        first = await server.callback("ATx2", "+256700000002", "1")
        again = await server.callback("ATx2", "+256700000002", "1")
        assert first == again == f"CON {NAME}"
        # everything after the inputs already answered is one answer, "*" included
        assert await server.callback("ATx2", "+256700000002", "1*A*B") == f"CON {NUMBER}"
        record = await server.sessions.load(DialogueKey("+256700000002", "ATx2", "callback"))
        assert record is not None and record.dialogue_state["name"] == "A*B"
        assert await server.callback("ATx2", "+256700000002", "1*A*B*42") == (
            "CON Send 42 to A*B?\n2. Yes\n3. No\n\n0. Home\n1. Back"
        )
        assert await server.callback("ATx2", "+256700000002", "1*A*B*42*x") == (
            "CON Wrong Input\nSend 42 to A*B?\n2. Yes\n3. No\n\n0. Home\n1. Back"
        )
        assert await server.callback("gone", "+256700000002", "1*2") == "END Session expired"
        # one aggregator session id, two phones: two sessions
        assert await server.callback("ATx2", "+256700000003", "") == f"CON {WELCOME}"


@asyncio_test
async def test_a_dial_string_or_new_session_starts_afresh_and_any_message_opens_one() -> None:
    async with serving() as server:
        _, text = await server.ussd({"phone": "ann", "message": "hello"}, "text/plain")
        assert text == WELCOME  # no session open: the message starts one
        await server.ussd({"phone": "ann", "message": "1"}, "text/plain")
        _, text = await server.ussd({"phone": "ann", "message": "*456#"}, "text/plain")
        assert text == WELCOME  # any dial string is this DFSP's menu
        await server.ussd({"phone": "ann", "message": "1"}, "text/plain")
        _, text = await server.ussd(
            {"phone": "ann", "message": "1", "newSession": "true"}, "text/plain"
        )
        assert text == WELCOME
        _, text = await server.ussd({"phone": "ann", "message": "*123*1#"}, "text/plain")
        assert text == NAME  # dial-string shortcut: *123*1# answers "1"


@asyncio_test
async def test_the_language_chosen_over_http_is_remembered_for_the_phone_string() -> None:
    async with serving() as server:
        for message in ("*123#", "3", "2", "4"):  # 3. Language, 2. Français, 4. Quitter
            _, text = await server.ussd({"phone": "+256700000005", "message": message}, "*/*")
        assert text == "Au revoir"
        _, text = await server.ussd({"phone": "+256700000005", "message": "*123#"}, "*/*")
        assert text == BIENVENUE
        assert await server.callback("ATx9", "+256700000005", "") == f"CON {BIENVENUE}"
        _, text = await server.ussd({"phone": "256700000005", "message": "*123#"}, "*/*")
        assert text == WELCOME  # another phone string is another subscriber


@pytest.mark.parametrize(
    ("path", "payload", "reason"),
    [
        ("/ussd", b"{not json", "not JSON"),
        ("/ussd", b"[1, 2]", "JSON object"),
        ("/ussd", b'{"message": "*123#"}', "phone"),
        ("/ussd", b'{"phone": "bob"}', "message"),
        ("/ussd", b'{"phone": 7, "message": "1"}', "phone"),
        ("/ussd", b'{"phone": "", "message": "1"}', "phone"),
        ("/ussd", b'{"phone": "' + b"9" * 65 + b'", "message": "1"}', "phone"),
        ("/ussd", b'{"phone": "bob", "message": "' + b"x" * 20000 + b'"}', "over 16384"),
        ("/ussd/callback", b"phoneNumber=1&text=", "sessionId"),
    ],
)
@asyncio_test
async def test_bad_requests_get_400_with_an_error_id(
    path: str, payload: bytes, reason: str
) -> None:
    async with serving() as server:
        content_type = (
            "application/json" if path == "/ussd" else "application/x-www-form-urlencoded"
        )
        async with server.http.post(
            f"{server.url}{path}", data=payload, headers={"Content-Type": content_type}
        ) as response:
            assert response.status == 400
            body = await response.json()
        assert body["id"] == "BadRequest" and reason in body["message"]
        assert await server.sessions.store.count() == 0


@asyncio_test
async def test_health_is_green() -> None:
    async with serving() as server, server.http.get(f"{server.url}/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "green"}


def test_accept_negotiation_follows_quality_then_order() -> None:
    assert preferred_format(XML_ACCEPT) == "xml"
    assert preferred_format("application/json") == "json"
    assert preferred_format("application/xml;q=0.5, application/json") == "json"
    assert preferred_format("application/json, text/xml") == "json"
    assert preferred_format("text/xml;q=0, text/plain") == "text"
    assert preferred_format("*/*") == "text"
    assert preferred_format("") == "text"
    assert preferred_format("application/json;q=abc, text/xml") == "xml"
