"""The USSD gateway's PDU handling: deliver_sm in, submit_sm out, through a fake SMPP link.

The fake link has EsmeClient's interface (``start``, ``stop``, ``submit``, ``bound``) and
records what is submitted; time is a ``task.Clock``. The real link against the simulator
is the end-to-end suite's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from twisted.internet import task

from gateway.smpp.constants import (
    ESM_CLASS_DELIVERY_RECEIPT,
    CommandId,
    CommandStatus,
    MessageState,
    Tag,
    UssdServiceOp,
)
from gateway.smpp.dialects import (
    DIALECTS,
    STANDARD,
    UMR_VARIANT,
    Dialect,
    SessionKey,
    UssdAction,
    UssdMessage,
    build_mobile_originated,
    parse_mobile_terminated,
)
from gateway.smpp.esme import EsmeConfig, LinkLost
from gateway.smpp.gsm0338 import ScreenLimits, decode_text
from gateway.smpp.pdu import Pdu, request
from gateway.smpp.tlv import ItsSessionInfo, write_cstring, write_int
from gateway.ussd.records import DialogueKey
from gateway.ussd.service import GatewayConfig, PushFailed, UssdGateway
from gateway.ussd.sessions import SessionOpen
from gateway.ussd_menus.demo import demo_menu
from gateway.ussd_menus.engine import Dialogue, MenuEngine, Reply
from gateway.ussd_menus.screens import Menu, Option, OptionsScreen
from tests.support import asyncio_test

MSISDN = "256700000001"
WELCOME = "Welcome to ussdloop demo\n1. Echo\n2. Count to 40\n3. Language\n4. Quit"
ESME = EsmeConfig(host="127.0.0.1", port=2775, system_id="dfsp1", password="secret")


class FakeLink:
    """EsmeClient's interface; answers every submit with ``status`` (or raises ``error``)."""

    def __init__(self) -> None:
        self.submitted: list[Pdu] = []
        self.bound = True
        self.started = False
        self.stopped = False
        self.status = 0
        self.error: Exception | None = None

    def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def submit(self, pdu: Pdu) -> Pdu:
        if self.error is not None:
            raise self.error
        self.submitted.append(pdu)
        if self.status:
            return pdu.response(self.status)
        return pdu.response(message_id=f"msg-{len(self.submitted)}")


class Harness:
    def __init__(
        self,
        *,
        dialect: str = "standard",
        max_sessions: int = 100,
        menu: Menu | None = None,
        http_port: int | None = None,
        max_turns_in_flight: int = 100,
    ) -> None:
        self.clock = task.Clock()
        self.link = FakeLink()
        self.dialect = DIALECTS[dialect]
        config = GatewayConfig(
            esme=ESME,
            dialect=dialect,
            short_codes=("*123#",),
            max_sessions=max_sessions,
            http_port=http_port,
            max_turns_in_flight=max_turns_in_flight,
        )
        self.gateway = UssdGateway(
            config, MenuEngine(menu or demo_menu()), reactor=self.clock, link=self.link
        )
        self._sequence = 0

    def deliver(
        self, action: UssdAction, text: str = "", session: int | None = 7, **kw: Any
    ) -> int:
        self._sequence += 1
        message = UssdMessage(action, kw.get("msisdn", MSISDN), "123", text, session)
        return self.gateway.on_deliver(
            build_mobile_originated(self.dialect, message, self._sequence)
        )

    async def turn(self, action: UssdAction, text: str = "", **kw: Any) -> UssdMessage:
        """Deliver one unit and return the screen submitted for it."""
        before = len(self.link.submitted)
        assert self.deliver(action, text, **kw) == CommandStatus.ESME_ROK
        await self.gateway.settle()
        assert len(self.link.submitted) == before + 1
        return parse_mobile_terminated(self.dialect, self.link.submitted[-1])


@asyncio_test
async def test_the_demo_walk_over_smpp_ends_with_the_end_bit() -> None:
    h = Harness()
    screens = [await h.turn(UssdAction.BEGIN, "*123#")]
    for text in ("1", "Zoe", "42", "2"):
        screens.append(await h.turn(UssdAction.CONTINUE, text))
    assert [(s.action, s.text) for s in screens] == [
        (UssdAction.CONTINUE, WELCOME),
        (UssdAction.CONTINUE, "Enter your name:\n\n0. Home\n1. Back"),
        (UssdAction.CONTINUE, "Enter a number from 1 to 99:\n\n0. Back"),
        (UssdAction.CONTINUE, "Send 42 to Zoe?\n2. Yes\n3. No\n\n0. Home\n1. Back"),
        (UssdAction.END, "Done: Zoe 42"),
    ]
    assert {(s.msisdn, s.service_code, s.session_id) for s in screens} == {(MSISDN, "123", 7)}
    first, last = h.link.submitted[0], h.link.submitted[-1]
    assert first.command_id is CommandId.SUBMIT_SM and first.params["service_type"] == "USSD"
    assert first.tlv(Tag.USSD_SERVICE_OP) == bytes([UssdServiceOp.USSR_REQUEST])
    assert last.tlv(Tag.USSD_SERVICE_OP) == bytes([UssdServiceOp.PSSR_RESPONSE])
    assert last.tlv(Tag.ITS_SESSION_INFO) == ItsSessionInfo(7, 0, True).to_bytes()
    counters = h.gateway.counters
    assert (counters.sessions_started, counters.screens_sent, counters.sessions_ended) == (1, 5, 1)


@asyncio_test
async def test_the_umr_dialect_walks_and_aborts_with_0x81() -> None:
    h = Harness(dialect="umr")
    welcome = await h.turn(UssdAction.BEGIN, "*123#", session=4242)
    assert welcome.session_id == 4242 and welcome.text == WELCOME
    assert h.link.submitted[0].params["data_coding"] == 0x0F
    name = await h.turn(UssdAction.CONTINUE, "1", session=4242)
    assert name.text.startswith("Enter your name:")
    assert h.deliver(UssdAction.ABORT, session=4242) == CommandStatus.ESME_ROK
    await h.gateway.settle()
    assert await h.gateway.store.count() == 0
    assert h.gateway.counters.aborts == 1
    assert len(h.link.submitted) == 2  # nothing is sent for an abort


@asyncio_test
async def test_the_same_session_id_from_two_subscribers_is_two_sessions() -> None:
    h = Harness()
    await h.turn(UssdAction.BEGIN, "*123#", msisdn="256700000001")
    await h.turn(UssdAction.BEGIN, "*123#", msisdn="256700000002")
    alice = await h.turn(UssdAction.CONTINUE, "1", msisdn="256700000001")
    bob = await h.turn(UssdAction.CONTINUE, "4", msisdn="256700000002")
    assert alice.text.startswith("Enter your name:") and alice.action is UssdAction.CONTINUE
    assert bob.text == "Goodbye" and bob.action is UssdAction.END


@asyncio_test
async def test_a_msisdn_only_dialect_keys_on_the_msisdn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        DIALECTS,
        "msisdn",
        Dialect(name="msisdn", session_key=SessionKey.MSISDN_ONLY, abort_ops=frozenset({0x81})),
    )
    h = Harness(dialect="msisdn")
    welcome = await h.turn(UssdAction.BEGIN, "*123#", session=None)
    assert welcome.session_id is None
    name = await h.turn(UssdAction.CONTINUE, "1", session=None)
    assert name.text.startswith("Enter your name:")
    assert await h.gateway.sessions.load(DialogueKey(MSISDN)) is not None


@asyncio_test
async def test_a_continue_for_no_session_is_accepted_and_ended_as_expired() -> None:
    h = Harness()
    screen = await h.turn(UssdAction.CONTINUE, "1", session=99)
    assert (screen.action, screen.text, screen.session_id) == (
        UssdAction.END,
        "Session expired",
        99,
    )
    assert await h.gateway.store.count() == 0


@asyncio_test
async def test_malformed_and_unexpected_pdus_get_their_status_and_no_screen() -> None:
    h = Harness()
    begin = build_mobile_originated(
        STANDARD, UssdMessage(UssdAction.BEGIN, MSISDN, "123", "*123#", 7), 1
    )
    no_op = Pdu(begin.command_id, 2, 0, dict(begin.params), [])
    bad_op = Pdu(begin.command_id, 3, 0, dict(begin.params), list(begin.tlvs))
    write_int(bad_op, Tag.USSD_SERVICE_OP, 1, UssdServiceOp.USSR_REQUEST)  # an MT operation
    bad_session = Pdu(begin.command_id, 4, 0, dict(begin.params), list(begin.tlvs))
    bad_session.set_tlv(Tag.ITS_SESSION_INFO, b"\x07")
    other_code = build_mobile_originated(
        STANDARD, UssdMessage(UssdAction.BEGIN, MSISDN, "999", "*999#", 7), 5
    )
    assert h.gateway.on_deliver(no_op) == CommandStatus.ESME_RMISSINGOPTPARAM
    assert h.gateway.on_deliver(bad_op) == CommandStatus.ESME_RINVOPTPARAMVAL
    assert h.gateway.on_deliver(bad_session) == CommandStatus.ESME_RINVOPTPARAMVAL
    assert h.gateway.on_deliver(other_code) == CommandStatus.ESME_RINVDSTADR
    assert h.gateway.on_deliver(Pdu(CommandId.DELIVER_SM, 6)) == CommandStatus.ESME_RMISSINGOPTPARAM
    await h.gateway.settle()
    assert h.link.submitted == [] and await h.gateway.store.count() == 0
    assert h.gateway.counters.rejected_pdus == 5


@asyncio_test
async def test_beyond_the_turns_in_flight_a_unit_is_refused_with_queue_full() -> None:
    h = Harness(max_turns_in_flight=2)
    statuses = [h.deliver(UssdAction.BEGIN, "*123#", msisdn=f"25670000000{n}") for n in range(3)]
    assert statuses == [CommandStatus.ESME_ROK, CommandStatus.ESME_ROK, CommandStatus.ESME_RMSGQFUL]
    await h.gateway.settle()
    assert len(h.link.submitted) == 2
    assert h.deliver(UssdAction.BEGIN, "*123#", msisdn="256700000009") == CommandStatus.ESME_ROK


@asyncio_test
async def test_beyond_max_sessions_a_begin_gets_service_busy() -> None:
    h = Harness(max_sessions=1)
    await h.turn(UssdAction.BEGIN, "*123#", msisdn="256700000001")
    busy = await h.turn(UssdAction.BEGIN, "*123#", msisdn="256700000002")
    assert (busy.action, busy.text) == (UssdAction.END, "Service busy, please try again later")
    assert await h.gateway.store.count() == 1 and h.gateway.counters.busy == 1


@asyncio_test
async def test_a_slow_menu_gets_an_end_with_an_apology_after_the_application_timeout() -> None:
    release: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def slow(dialogue: Dialogue, value: Any) -> Reply:
        await release
        return Reply("late", end=True)

    menu = Menu(
        start="home",
        screens={"home": OptionsScreen("demo.welcome", options=(Option(1, "demo.echo", slow),))},
    )
    h = Harness(menu=menu)
    await h.turn(UssdAction.BEGIN, "*123#")
    assert h.deliver(UssdAction.CONTINUE, "1") == CommandStatus.ESME_ROK
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(h.link.submitted) == 1
    h.clock.advance(STANDARD.application_timeout)
    await h.gateway.settle()
    apology = parse_mobile_terminated(STANDARD, h.link.submitted[-1])
    assert apology.action is UssdAction.END and apology.text.startswith("Sorry")
    release.set_result(None)
    await asyncio.sleep(0)
    assert len(h.link.submitted) == 2 and await h.gateway.store.count() == 0


@asyncio_test
async def test_a_silent_subscriber_is_dropped_at_the_screen_timeout() -> None:
    h = Harness()
    await h.turn(UssdAction.BEGIN, "*123#")
    h.clock.advance(STANDARD.screen_timeout)
    await h.gateway.settle()
    assert await h.gateway.store.count() == 0 and h.gateway.counters.timeouts == 1
    late = await h.turn(UssdAction.CONTINUE, "1")
    assert (late.action, late.text) == (UssdAction.END, "Session expired")


@asyncio_test
async def test_a_screen_the_link_cannot_deliver_drops_the_session() -> None:
    h = Harness()
    h.link.error = LinkLost("gone")
    assert h.deliver(UssdAction.BEGIN, "*123#") == CommandStatus.ESME_ROK
    await h.gateway.settle()
    assert await h.gateway.store.count() == 0
    h.link.error = None
    h.link.status = CommandStatus.ESME_RSUBMITFAIL
    assert h.deliver(UssdAction.BEGIN, "*123#") == CommandStatus.ESME_ROK
    await h.gateway.settle()
    assert await h.gateway.store.count() == 0


@asyncio_test
async def test_a_pushed_ussr_opens_a_session_whose_answer_goes_to_the_handler() -> None:
    h = Harness()
    seen: list[tuple[str, dict[str, Any]]] = []

    async def invoice(dialogue: Dialogue, text: str) -> Reply:
        seen.append((text, dict(dialogue.state)))
        return Reply("Invoice paid!", end=True)

    h.gateway.sessions.register_handler("invoice", invoice)
    await h.gateway.push(
        MSISDN,
        "Invoice from bob: 10 USD. PIN?",
        expect_reply=True,
        handler="invoice",
        state={"invoice_id": "i-1"},
    )
    pushed = parse_mobile_terminated(STANDARD, h.link.submitted[-1])
    assert pushed.action is UssdAction.CONTINUE and pushed.session_id is not None
    assert pushed.service_code == "123" and pushed.msisdn == MSISDN
    paid = await h.turn(UssdAction.CONTINUE, "1234", session=pushed.session_id)
    assert (paid.action, paid.text) == (UssdAction.END, "Invoice paid!")
    assert seen == [("1234", {"invoice_id": "i-1"})]
    assert h.gateway.counters.pushes == 1


@asyncio_test
async def test_a_push_opens_its_session_in_the_subscribers_remembered_language() -> None:
    h = Harness()
    await h.turn(UssdAction.BEGIN, "*123#")
    await h.turn(UssdAction.CONTINUE, "3")  # 3. Language
    french = await h.turn(UssdAction.CONTINUE, "2")  # 2. Français
    assert french.text.startswith("Bienvenue")
    await h.turn(UssdAction.CONTINUE, "4")
    assert await h.gateway.sessions.remembered_language(MSISDN) == "fr"
    await h.gateway.push(MSISDN, "Nouvelle facture. Répondez pour la voir.", expect_reply=True)
    pushed = parse_mobile_terminated(STANDARD, h.link.submitted[-1])
    menu = await h.turn(UssdAction.CONTINUE, "ok", session=pushed.session_id)
    assert menu.text.startswith("Bienvenue") and menu.action is UssdAction.CONTINUE
    other = await h.turn(UssdAction.BEGIN, "*123#", msisdn="256700000002", session=8)
    assert other.text == WELCOME


@asyncio_test
async def test_a_pushed_ussn_is_a_notification_and_keeps_no_session() -> None:
    h = Harness(dialect="umr")
    await h.gateway.push(MSISDN, "Invoice paid by alice", expect_reply=False)
    note = h.link.submitted[-1]
    assert note.tlv(Tag.USSD_SERVICE_OP) == bytes([UssdServiceOp.USSN_REQUEST])
    assert await h.gateway.store.count() == 0
    with pytest.raises(ValueError):
        await h.gateway.push(MSISDN, "x" * 200, expect_reply=False)


@asyncio_test
async def test_a_push_the_network_refuses_leaves_no_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness()
    h.link.status = CommandStatus.ESME_RSUBMITFAIL
    with pytest.raises(PushFailed) as refused:
        await h.gateway.push(MSISDN, "Hello?", expect_reply=True)
    assert refused.value.status == CommandStatus.ESME_RSUBMITFAIL
    assert await h.gateway.store.count() == 0
    monkeypatch.setitem(
        DIALECTS,
        "msisdn",
        Dialect(name="msisdn", session_key=SessionKey.MSISDN_ONLY, abort_ops=frozenset({0x81})),
    )
    m = Harness(dialect="msisdn")
    await m.turn(UssdAction.BEGIN, "*123#", session=None)
    with pytest.raises(SessionOpen):  # the phone is in a dialogue
        await m.gateway.push(MSISDN, "Hello?", expect_reply=True)


@asyncio_test
async def test_an_sms_asks_for_a_receipt_and_the_receipt_is_recorded() -> None:
    h = Harness()
    message_id = await h.gateway.send_sms(MSISDN, "You received 25 USD from bob")
    sms = h.link.submitted[-1]
    assert message_id == "msg-1"
    assert sms.tlv(Tag.USSD_SERVICE_OP) is None and sms.params["service_type"] == ""
    assert sms.params["registered_delivery"] == 1 and sms.params["destination_addr"] == MSISDN
    assert decode_text(sms["data_coding"], sms["short_message"]).startswith("You")
    quiet = await h.gateway.send_sms(MSISDN, "No receipt please", receipt=False)
    assert h.link.submitted[-1].params["registered_delivery"] == 0 and quiet == "msg-2"
    long_sms = await h.gateway.send_sms(MSISDN, "x" * 600)
    assert h.link.submitted[-1].tlv(Tag.MESSAGE_PAYLOAD) is not None and long_sms == "msg-3"

    receipt = request(
        CommandId.DELIVER_SM,
        9,
        source_addr=MSISDN,
        destination_addr="123",
        esm_class=ESM_CLASS_DELIVERY_RECEIPT,
        short_message=b"id:msg-1 sub:001 dlvrd:001 stat:DELIVRD err:000 text:You",
    )
    write_cstring(receipt, Tag.RECEIPTED_MESSAGE_ID, "msg-1")
    write_int(receipt, Tag.MESSAGE_STATE, 1, MessageState.DELIVERED)
    text_only = request(
        CommandId.DELIVER_SM,
        10,
        source_addr=MSISDN,
        esm_class=ESM_CLASS_DELIVERY_RECEIPT,
        short_message=b"id:msg-2 sub:001 dlvrd:000 stat:UNDELIV err:001",
    )
    assert h.gateway.on_deliver(receipt) == CommandStatus.ESME_ROK
    assert h.gateway.on_deliver(text_only) == CommandStatus.ESME_ROK
    await h.gateway.settle()
    assert h.gateway.receipts["msg-1"].state == "DELIVERED"
    assert h.gateway.receipts["msg-2"].state == "UNDELIV"
    assert len(h.link.submitted) == 3 and await h.gateway.store.count() == 0
    assert h.gateway.counters.delivery_receipts == 2


def test_an_unknown_dialect_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'martian'"):
        GatewayConfig(esme=ESME, dialect="martian")
    with pytest.raises(ValueError, match="short_codes"):
        GatewayConfig(esme=ESME, short_codes=("123",))
    with pytest.raises(ValueError, match="max_sessions"):
        GatewayConfig(esme=ESME, max_sessions=0)
    assert GatewayConfig(esme=ESME, dialect="umr").carrier_dialect is UMR_VARIANT


def test_a_menu_engine_with_larger_screens_than_the_carrier_is_refused() -> None:
    roomy = MenuEngine(demo_menu(), limits=ScreenLimits(gsm7=400))
    with pytest.raises(ValueError, match="screen limits"):
        UssdGateway(GatewayConfig(esme=ESME, http_port=None), roomy, link=FakeLink())


@asyncio_test
async def test_start_opens_the_http_listener_and_stop_closes_it_and_the_link() -> None:
    h = Harness(http_port=0)
    await h.gateway.start()
    port = h.gateway.http_port
    assert h.link.started and port
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/health") as response:
            assert await response.json() == {"status": "green"}
        h.link.bound = False
        async with http.get(f"http://127.0.0.1:{port}/health") as response:
            body = await response.json()
            assert body["status"] == "yellow" and "link" in body["reason"]
        async with http.post(
            f"http://127.0.0.1:{port}/ussd",
            json={"phone": MSISDN, "message": "*123#"},
            headers={"Accept": "application/json"},
        ) as response:
            assert (await response.json())["message"] == WELCOME
        await h.gateway.stop()
        assert h.link.stopped and h.gateway.http_port is None
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(f"http://127.0.0.1:{port}/health"):
                pass
