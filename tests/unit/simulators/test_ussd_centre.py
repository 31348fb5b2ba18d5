"""The USSD centre: dialogues between handsets and an application bound over SMPP.

A fake application (an ESME on a ``StringTransport``) reads the units the network sends
and answers with the dialect's own PDUs; time is a ``task.Clock``. Handsets are driven
through their non-waiting actions and followed through their events.
"""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection

from gateway.smpp.constants import CommandId, CommandStatus, Tag
from gateway.smpp.dialects import (
    DIALECTS,
    Dialect,
    UssdAction,
    UssdMessage,
    build_mobile_terminated,
    parse_mobile_originated,
)
from gateway.smpp.pdu import Pdu, PduStream, encode, request
from simulators.modem.handsets import (
    Handset,
    HandsetBusy,
    HandsetEvent,
    HandsetState,
    InvalidInput,
    NoDialogue,
    Screen,
    UssdScreenEvent,
)
from simulators.modem.service import EsmeAccount, Simulator, SimulatorConfig

A, C, S = UssdAction, CommandId, CommandStatus
ALICE, BOB = "256700000001", "256700000002"


class Application:
    """A fake USSD application bound as a transceiver for short code 123."""

    def __init__(self, simulator: Simulator, dialect: str = "standard") -> None:
        self.dialect: Dialect = DIALECTS[dialect]
        self.protocol = simulator.smsc.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert self.protocol is not None
        self.transport = StringTransportWithDisconnection()
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)
        self._stream = PduStream()
        self._unread: list[Pdu] = []
        self._sequence = 100
        self.send(request(C.BIND_TRANSCEIVER, 1, system_id="dfsp1", password="secret"))
        assert self.pdus()[0].status_ok

    def send(self, pdu: Pdu) -> None:
        self.protocol.dataReceived(encode(pdu))

    def pdus(self) -> list[Pdu]:
        """What the network wrote since the last look."""
        data = self.transport.value()
        self.transport.clear()
        out, self._unread = self._unread + self._stream.feed(data), []  # type: ignore[operator]
        return out

    def units(self, status: int = 0) -> list[UssdMessage]:
        """Every unit the network sent since the last look, each answered with ``status``."""
        out = []
        for pdu in self.pdus():
            assert pdu.command_id is C.DELIVER_SM, pdu
            out.append(parse_mobile_originated(self.dialect, pdu))
            self.send(pdu.response(status))
        return out

    def unit(self) -> UssdMessage:
        (only,) = self.units()
        return only

    def screen(self, action: UssdAction, msisdn: str, text: str, session_id: int | None) -> Pdu:
        """Send an MT unit; returns the submit_sm_resp."""
        self._sequence += 1
        message = UssdMessage(action, msisdn, "123", text, session_id)
        self.send(build_mobile_terminated(self.dialect, message, self._sequence))
        written = self.pdus()
        responses = [p for p in written if p.command_id is C.SUBMIT_SM_RESP]
        assert len(responses) == 1
        self._unread = [p for p in written if p is not responses[0]]  # for units()
        return responses[0]


def make_simulator(clock: Clock, dialect: str = "standard") -> Simulator:
    account = EsmeAccount("dfsp1", "secret", ("*123#", "*124#"), dialect=dialect)
    config = SimulatorConfig(
        accounts=(account,), dialogue_timeout=180, screen_timeout=30, application_timeout=15
    )
    return Simulator(config, reactor=clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def simulator(clock: Clock) -> Simulator:
    return make_simulator(clock)


@pytest.fixture
def app(simulator: Simulator) -> Application:
    return Application(simulator)


def screens_of(handset: Handset) -> list[Screen]:
    seen: list[Screen] = []

    def record(event: HandsetEvent) -> None:
        if isinstance(event, UssdScreenEvent):
            seen.append(event.screen)

    handset.subscribe(record)
    return seen


# --- a dialogue from the handset ----------------------------------------------------------


def test_dialling_sends_begin_to_the_account_that_owns_the_short_code(
    simulator: Simulator, app: Application
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*124*3*1#")
    begin = app.unit()
    assert (begin.action, begin.msisdn, begin.service_code) == (A.BEGIN, ALICE, "124")
    assert begin.text == "*124*3*1#" and begin.session_id is not None
    assert alice.state is HandsetState.WAITING


def test_continue_opens_a_screen_and_end_releases_the_dialogue(
    simulator: Simulator, app: Application
) -> None:
    alice = simulator.network.handset(ALICE)
    seen = screens_of(alice)
    alice.dial_nowait("*123#")
    session = app.unit().session_id
    assert app.screen(A.CONTINUE, ALICE, "1. Send\n2. Balance", session).status_ok
    assert alice.state is HandsetState.OPEN
    assert alice.screen == Screen("1. Send\n2. Balance", expects_reply=True, data_coding=0)

    alice.reply_nowait("2")
    answer = app.unit()
    assert (answer.action, answer.text, answer.session_id) == (A.CONTINUE, "2", session)
    assert app.screen(A.END, ALICE, "Balance: 10 USD", session).status_ok
    assert seen[-1] == Screen("Balance: 10 USD", False, False, "released", data_coding=0)
    assert alice.state is HandsetState.IDLE
    assert simulator.network.ussd.live_dialogues == 0


@pytest.mark.parametrize("code", ["*999#", "123", "*12a#", "", "*" + "1" * 200 + "#"])
def test_an_unknown_or_malformed_code_ends_at_once_without_reaching_an_application(
    simulator: Simulator, app: Application, code: str
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait(code)
    assert alice.state is HandsetState.IDLE
    assert alice.screen is not None and alice.screen.ended_reason == "network_error"
    assert app.pdus() == []


def test_a_short_code_with_no_application_bound_ends_with_network_error(
    simulator: Simulator,
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    assert alice.screen is not None and alice.screen.ended_reason == "network_error"
    assert simulator.network.ussd.live_dialogues == 0


def test_a_handset_holds_one_dialogue_at_a_time(simulator: Simulator, app: Application) -> None:
    alice = simulator.network.handset(ALICE)
    with pytest.raises(NoDialogue):
        alice.reply_nowait("1")
    with pytest.raises(NoDialogue):
        alice.cancel_nowait()
    alice.dial_nowait("*123#")
    with pytest.raises(HandsetBusy):
        alice.dial_nowait("*123#")
    with pytest.raises(HandsetBusy):
        alice.reply_nowait("1")  # waiting for the network, not for the subscriber


# --- timers -------------------------------------------------------------------------------


def test_a_silent_application_gets_abort_and_the_handset_a_network_error(
    simulator: Simulator, app: Application, clock: Clock
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    session = app.unit().session_id
    clock.advance(14.9)
    assert alice.state is HandsetState.WAITING
    clock.advance(0.1)
    abort = app.unit()
    assert (abort.action, abort.session_id) == (A.ABORT, session)
    assert alice.screen is not None and alice.screen.ended_reason == "network_error"
    assert alice.state is HandsetState.IDLE


def test_a_silent_subscriber_times_out_and_the_application_gets_abort(
    simulator: Simulator, app: Application, clock: Clock
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    session = app.unit().session_id
    app.screen(A.CONTINUE, ALICE, "Amount?", session)
    clock.advance(29.9)
    assert alice.state is HandsetState.OPEN
    clock.advance(0.1)
    assert app.unit().action is A.ABORT
    assert alice.screen is not None and alice.screen.ended_reason == "timeout"


def test_the_dialogue_timer_bounds_a_dialogue_that_keeps_moving(
    simulator: Simulator, app: Application, clock: Clock
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    session = app.unit().session_id
    for _ in range(17):  # 17 x 10 s of lively dialogue
        app.screen(A.CONTINUE, ALICE, "Next?", session)
        clock.advance(5)
        alice.reply_nowait("1")
        app.unit()
        clock.advance(5)
    assert alice.state is HandsetState.WAITING
    clock.advance(10)
    assert app.unit().action is A.ABORT
    assert alice.screen is not None and alice.screen.ended_reason == "timeout"


def test_the_subscriber_cancels_and_the_application_gets_abort(
    simulator: Simulator, app: Application
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    session = app.unit().session_id
    app.screen(A.CONTINUE, ALICE, "PIN?", session)
    alice.cancel_nowait()
    abort = app.unit()
    assert (abort.action, abort.session_id) == (A.ABORT, session)
    assert alice.screen is not None and alice.screen.ended_reason == "aborted"
    assert simulator.network.ussd.live_dialogues == 0


# --- the application's units --------------------------------------------------------------


def test_units_for_ended_or_unknown_dialogues_are_refused_with_invalid_destination(
    simulator: Simulator, app: Application
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    session = app.unit().session_id
    app.screen(A.END, ALICE, "Bye", session)
    assert app.screen(A.CONTINUE, ALICE, "Late", session).command_status == S.ESME_RINVDSTADR
    assert app.screen(A.END, ALICE, "Late", session).command_status == S.ESME_RINVDSTADR
    assert app.screen(A.END, BOB, "Never", 9).command_status == S.ESME_RINVDSTADR
    assert alice.state is HandsetState.IDLE


def test_an_ended_dialogue_is_forgotten_after_the_dialogue_timeout(
    simulator: Simulator, app: Application, clock: Clock
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    session = app.unit().session_id
    app.screen(A.END, ALICE, "Bye", session)
    clock.advance(181)
    assert app.screen(A.CONTINUE, ALICE, "Hello again", session).status_ok
    assert alice.screen is not None and alice.screen.network_initiated


def test_a_second_screen_before_the_subscriber_answers_is_refused(
    simulator: Simulator, app: Application
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    session = app.unit().session_id
    app.screen(A.CONTINUE, ALICE, "One", session)
    assert app.screen(A.CONTINUE, ALICE, "Two", session).command_status == S.ESME_RSUBMITFAIL
    assert alice.screen is not None and alice.screen.text == "One"
    assert app.screen(A.END, ALICE, "Released by the application", session).status_ok


@pytest.mark.parametrize(
    ("tlvs", "status"),
    [
        ([(Tag.USSD_SERVICE_OP, b"\x02\x00")], S.ESME_RINVOPTPARAMVAL),
        ([(Tag.USSD_SERVICE_OP, b"\x01")], S.ESME_RINVOPTPARAMVAL),  # an MO operation
        ([(Tag.USSD_SERVICE_OP, b"\x02"), (Tag.ITS_SESSION_INFO, b"\x01")], S.ESME_RINVOPTPARAMVAL),
    ],
)
def test_malformed_units_are_refused_with_a_status_not_a_crash(
    simulator: Simulator, app: Application, tlvs: list[tuple[int, bytes]], status: int
) -> None:
    pdu = request(C.SUBMIT_SM, 50, destination_addr=ALICE, source_addr="123", tlvs=tlvs)
    app.send(pdu)
    (response,) = app.pdus()
    assert response.command_status == status
    app.send(request(C.ENQUIRE_LINK, 51))
    assert app.pdus()[0].command_id is C.ENQUIRE_LINK_RESP


def test_a_unit_to_a_destination_that_is_not_an_msisdn_is_refused(
    simulator: Simulator, app: Application
) -> None:
    assert app.screen(A.CONTINUE, "not-a-phone", "Hi", 1).command_status == S.ESME_RINVDSTADR


def test_a_refused_begin_ends_the_dialogue_with_network_error(
    simulator: Simulator, app: Application
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    assert app.units(status=S.ESME_RSYSERR)[0].action is A.BEGIN
    assert alice.screen is not None and alice.screen.ended_reason == "network_error"
    assert app.pdus() == [], "no abort for a dialogue the application never took"


def test_a_throttled_begin_is_sent_again_and_the_dialogue_goes_on(
    simulator: Simulator, app: Application, clock: Clock
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    app.units(status=S.ESME_RTHROTTLED)
    clock.advance(1.0)
    begin = app.unit()
    assert begin.action is A.BEGIN
    assert app.screen(A.CONTINUE, ALICE, "Menu", begin.session_id).status_ok
    assert alice.state is HandsetState.OPEN


def test_a_begin_lost_to_the_drop_fault_ends_by_the_application_timer(
    simulator: Simulator, app: Application, clock: Clock
) -> None:
    simulator.faults.drop_mo = 1.0
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    assert app.pdus() == []
    clock.advance(15)
    assert alice.screen is not None and alice.screen.ended_reason == "network_error"


# --- network-initiated dialogues ----------------------------------------------------------


def test_a_continue_to_an_idle_handset_opens_a_network_initiated_dialogue(
    simulator: Simulator, app: Application
) -> None:
    bob = simulator.network.handset(BOB)
    seen = screens_of(bob)
    assert app.screen(A.CONTINUE, BOB, "Pay invoice 42?\n1. Yes", 77).status_ok
    assert seen == [Screen("Pay invoice 42?\n1. Yes", True, True, data_coding=0)]
    bob.reply_nowait("1")
    answer = app.unit()
    assert (answer.action, answer.text, answer.session_id) == (A.CONTINUE, "1", 77)
    app.screen(A.END, BOB, "Paid", 77)
    assert seen[-1] == Screen("Paid", False, True, "released", data_coding=0)


def test_a_push_to_a_handset_created_by_it(simulator: Simulator, app: Application) -> None:
    assert app.screen(A.CONTINUE, "+256 700 000 009", "Hello", 1).status_ok
    assert simulator.network.handsets["256700000009"].state is HandsetState.OPEN


def test_a_push_to_a_handset_in_another_dialogue_is_refused_as_busy(
    simulator: Simulator, app: Application
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    session = app.unit().session_id
    other = (session + 1) % 256
    response = app.screen(A.CONTINUE, ALICE, "Pushed", other)
    assert response.command_status == S.ESME_RDELIVERYFAILURE
    assert alice.state is HandsetState.WAITING


def test_a_notification_is_acknowledged_and_kept_when_released_without_text(
    simulator: Simulator, app: Application
) -> None:
    bob = simulator.network.handset(BOB)
    seen = screens_of(bob)
    assert app.screen(A.NOTIFY, BOB, "You received 5 USD", 3).status_ok
    assert seen == [Screen("You received 5 USD", False, True, data_coding=0)]
    ack = app.unit()
    assert (ack.action, ack.session_id) == (A.NOTIFY_ACK, 3)
    app.screen(A.END, BOB, "", 3)
    assert seen[-1] == Screen("You received 5 USD", False, True, "released", data_coding=0)
    assert bob.state is HandsetState.IDLE


# --- session ids and text -----------------------------------------------------------------


def test_its_session_numbers_differ_between_dialogues_of_one_msisdn(
    simulator: Simulator, app: Application
) -> None:
    alice = simulator.network.handset(ALICE)
    numbers = []
    for _ in range(3):
        alice.dial_nowait("*123#")
        numbers.append(app.unit().session_id)
        alice.cancel_nowait()
        app.units()
    assert len(set(numbers)) == 3 and all(0 <= n <= 255 for n in numbers)


def test_user_message_references_are_unique_across_the_network(clock: Clock) -> None:
    simulator = make_simulator(clock, dialect="umr")
    app = Application(simulator, dialect="umr")
    references = set()
    for n in range(50):
        simulator.network.handset(f"2567000001{n:02d}").dial_nowait("*123#")
        (begin,) = app.units()
        references.add(begin.session_id)
    assert len(references) == 50 and all(0 <= r <= 0xFFFF for r in references)


def test_the_umr_variant_aborts_with_operation_0x81(clock: Clock) -> None:
    simulator = make_simulator(clock, dialect="umr")
    app = Application(simulator, dialect="umr")
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    app.unit()
    alice.cancel_nowait()
    (pdu,) = app.pdus()
    assert pdu.tlv(Tag.USSD_SERVICE_OP) == b"\x81"
    assert pdu.tlv(Tag.USER_MESSAGE_REFERENCE) is not None


def test_the_handset_writes_ucs2_when_its_text_needs_it(
    simulator: Simulator, app: Application
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    session = app.unit().session_id
    app.screen(A.CONTINUE, ALICE, "Jina?", session)
    alice.reply_nowait("Zoë 😀")
    (pdu,) = app.pdus()
    assert pdu["data_coding"] == 0x08
    assert parse_mobile_originated(app.dialect, pdu).text == "Zoë 😀"


def test_text_longer_than_a_screen_is_refused_before_anything_is_sent(
    simulator: Simulator, app: Application
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    session = app.unit().session_id
    app.screen(A.CONTINUE, ALICE, "Message?", session)
    with pytest.raises(InvalidInput):
        alice.reply_nowait("x" * 183)
    assert alice.state is HandsetState.OPEN and app.pdus() == []


@pytest.mark.parametrize(
    ("text", "data_coding"), [("Karibu: €5 {ok} [1]", 0x00), ("Karibu \u2013 Zoë", 0x08)]
)
def test_the_application_screen_is_decoded_from_its_data_coding_and_keeps_it(
    simulator: Simulator, app: Application, text: str, data_coding: int
) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*123#")
    session = app.unit().session_id
    app.screen(A.CONTINUE, ALICE, text, session)
    assert alice.screen is not None and alice.screen.text == text
    assert alice.screen.data_coding == data_coding


def test_the_networks_own_screens_carry_no_data_coding(simulator: Simulator) -> None:
    alice = simulator.network.handset(ALICE)
    alice.dial_nowait("*999#")
    assert alice.screen is not None and alice.screen.data_coding is None
