"""The Twisted ESME against a scripted SMSC on a fake clock and in-memory transports.

Every timer (keep-alive, response timeouts, throttle pauses, rate limit, reconnect
back-off) runs on ``MemoryReactorClock``; nothing sleeps. The tests at the end use the
real reactor and loopback sockets: a minimal SMSC over TCP, and over TLS with a
throwaway CA made here.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionRefusedError
from twisted.internet.protocol import Protocol, ServerFactory, connectionDone
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure

from gateway.smpp.constants import CommandId, CommandStatus
from gateway.smpp.esme import (
    BindMode,
    EsmeClient,
    EsmeConfig,
    LinkLost,
    LinkStopped,
    QueueFull,
    ResponseTimeout,
)
from gateway.smpp.pdu import Pdu, PduStream, encode, request
from tests.pki import make_pki
from ussdloop.aio import as_deferred

OK = CommandStatus.ESME_ROK
THROTTLED = CommandStatus.ESME_RTHROTTLED


# --- the scripted SMSC ----------------------------------------------------------------


class FakeTransport(StringTransport):
    """A StringTransport whose close reaches the protocol on the next reactor turn."""

    def __init__(self, reactor: MemoryReactorClock) -> None:
        super().__init__()
        self.reactor = reactor
        self.protocol: Any = None
        self.aborted = False

    def abortConnection(self) -> None:
        self.aborted = True
        self.loseConnection()

    def loseConnection(self) -> None:
        if not self.disconnecting:
            reason = ConnectionAborted() if self.aborted else ConnectionDone()
            self.reactor.callLater(0, self.protocol.connectionLost, Failure(reason))
        super().loseConnection()


class Smsc:
    """The SMSC's end of one connection the ESME dialled."""

    def __init__(self, reactor: MemoryReactorClock, factory: Any) -> None:
        self.protocol = factory.buildProtocol(None)
        self.transport = FakeTransport(reactor)
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)
        self._stream = PduStream()

    def read(self) -> list[Pdu]:
        """The PDUs the ESME wrote since the last read."""
        data = self.transport.value()
        self.transport.clear()
        items = self._stream.feed(data)
        assert all(isinstance(item, Pdu) for item in items), items
        return [item for item in items if isinstance(item, Pdu)]

    def send(self, pdu: Pdu) -> None:
        self.protocol.dataReceived(encode(pdu))

    def answer(self, pdu: Pdu, status: int = OK, **params: Any) -> None:
        self.send(pdu.response(status, **params))

    def accept_bind(self, status: int = OK) -> Pdu:
        (bind,) = self.read()
        assert bind.command_id in (
            CommandId.BIND_TRANSCEIVER,
            CommandId.BIND_TRANSMITTER,
            CommandId.BIND_RECEIVER,
        )
        self.answer(bind, status, system_id="SMSC")
        return bind

    def drop(self) -> None:
        self.transport.disconnecting = True
        self.protocol.connectionLost(Failure(ConnectionDone()))

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)


def config(**overrides: Any) -> EsmeConfig:
    values: dict[str, Any] = {
        "host": "smsc.test",
        "port": 2775,
        "system_id": "gw1",
        "password": "secret",
        "reconnect_jitter": 0.0,
    }
    values.update(overrides)
    return EsmeConfig(**values)


class Harness:
    def __init__(self, on_deliver: Any = None, **overrides: Any) -> None:
        self.reactor = MemoryReactorClock()
        self.delivered: list[Pdu] = []
        self.client = EsmeClient(
            config(**overrides),
            on_deliver or self._deliver,
            reactor=self.reactor,
            rng=random.Random(7),
        )

    def _deliver(self, pdu: Pdu) -> int:
        self.delivered.append(pdu)
        return OK

    def connect(self, index: int = -1) -> Smsc:
        """Complete the TCP connection the ESME dialled (the latest one by default)."""
        return Smsc(self.reactor, self.reactor.tcpClients[index][2])

    def bound_smsc(self) -> Smsc:
        """Start, accept the TCP connection and the bind."""
        self.client.start()
        smsc = self.connect()
        smsc.accept_bind()
        assert self.client.bound
        return smsc

    def submit(self, text: bytes = b"hi") -> Deferred[Pdu]:
        return self.client.submit_deferred(submit_sm(text))

    @property
    def dials(self) -> int:
        return len(self.reactor.tcpClients)


def submit_sm(text: bytes = b"hi") -> Pdu:
    return request(CommandId.SUBMIT_SM, 0, destination_addr="256700000001", short_message=text)


def deliver_sm(sequence_number: int = 77) -> Pdu:
    return request(
        CommandId.DELIVER_SM, sequence_number, source_addr="256700000001", short_message=b"*123#"
    )


def result(d: Deferred[Any]) -> Any:
    """The result a Deferred already has (a failure is raised)."""
    box: list[Any] = []
    d.addBoth(box.append)
    assert box, "the Deferred has not fired"
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


def texts(pdus: list[Pdu]) -> list[bytes]:
    return [pdu["short_message"] for pdu in pdus]


# --- binding --------------------------------------------------------------------------


def test_it_binds_as_transceiver_with_interface_version_0x34() -> None:
    h = Harness(system_type="USSD", address_range="123")
    h.client.start()
    host, port = h.reactor.tcpClients[0][:2]
    assert (host, port) == ("smsc.test", 2775)
    waiter = h.client.when_bound()
    smsc = h.connect()
    bind = smsc.accept_bind()

    assert bind.command_id is CommandId.BIND_TRANSCEIVER
    assert bind["system_id"] == "gw1" and bind["password"] == "secret"
    assert bind["system_type"] == "USSD" and bind["address_range"] == "123"
    assert bind["interface_version"] == 0x34
    assert h.client.bound and result(waiter) is None
    assert result(h.client.when_bound()) is None
    assert h.client.stats.binds == 1


def test_pair_mode_binds_a_transmitter_and_a_receiver_and_uses_each_for_its_direction() -> None:
    h = Harness(bind_mode=BindMode.PAIR)
    h.client.start()
    transmitter, receiver = h.connect(0), h.connect(1)
    assert transmitter.accept_bind().command_id is CommandId.BIND_TRANSMITTER
    assert not h.client.bound  # the receiver is not bound yet
    sent = h.submit(b"out")
    assert texts(transmitter.read()) == [b"out"]  # the transmitter already sends
    assert receiver.accept_bind().command_id is CommandId.BIND_RECEIVER
    assert h.client.bound

    receiver.send(deliver_sm(5))
    assert [p.command_id for p in receiver.read()] == [CommandId.DELIVER_SM_RESP]
    assert len(h.delivered) == 1
    transmitter.send(deliver_sm(6))  # an SMSC may not deliver to a transmitter
    (refused,) = transmitter.read()
    assert refused.command_status == CommandStatus.ESME_RINVBNDSTS
    assert receiver.read() == [] and not sent.called


def test_a_refused_bind_is_logged_by_name_closed_and_retried_with_back_off() -> None:
    h = Harness(reconnect_initial=1.0, reconnect_max=4.0)
    h.client.start()
    delays = []
    with capturedLogs() as events:
        for _ in range(4):
            smsc = h.connect()
            smsc.accept_bind(CommandStatus.ESME_RINVPASWD)
            assert smsc.closed and not h.client.bound
            h.reactor.advance(0)  # the connection is gone
            dials, waited = h.dials, 0.0
            while h.dials == dials:
                h.reactor.advance(0.25)
                waited += 0.25
            delays.append(waited)
    assert delays == [1.0, 2.0, 4.0, 4.0]  # doubling from reconnect_initial up to the max
    failed = [e for e in events if e.get("event") == "bind_failed"]
    assert len(failed) == 4
    assert failed[0]["status"] == "ESME_RINVPASWD"
    assert failed[0]["system_id"] == "gw1"
    assert failed[0]["command"] == "BIND_TRANSCEIVER_RESP"
    assert failed[0]["log_level"] is LogLevel.error
    assert h.client.stats.reconnects == 4 and h.client.stats.binds == 0


def test_back_off_jitter_comes_from_the_injected_rng_and_resets_after_a_bind() -> None:
    h = Harness(reconnect_initial=2.0, reconnect_jitter=0.25)
    expected = random.Random(7)
    h.client.start()
    h.reactor.tcpClients[0][2].clientConnectionFailed(
        h.reactor.connectors[-1], Failure(ConnectionRefusedError())
    )
    first = 2.0 * (1 + expected.uniform(-0.25, 0.25))
    h.reactor.advance(first - 0.001)
    assert h.dials == 1
    h.reactor.advance(0.001)
    assert h.dials == 2
    h.reactor.tcpClients[1][2].clientConnectionFailed(
        h.reactor.connectors[-1], Failure(ConnectionRefusedError())
    )
    second = 4.0 * (1 + expected.uniform(-0.25, 0.25))
    h.reactor.advance(second)
    assert h.dials == 3
    smsc = h.connect()
    smsc.accept_bind()
    smsc.drop()  # after a good bind the back-off starts again from reconnect_initial
    third = 2.0 * (1 + expected.uniform(-0.25, 0.25))
    h.reactor.advance(third - 0.001)
    assert h.dials == 3
    h.reactor.advance(0.001)
    assert h.dials == 4


def test_an_unanswered_bind_drops_the_connection_and_retries() -> None:
    h = Harness(response_timeout=5.0)
    h.client.start()
    smsc = h.connect()
    h.reactor.advance(5.0)
    assert smsc.transport.aborted
    h.reactor.advance(0)
    h.reactor.advance(1.0)
    assert h.dials == 2


# --- keep-alive and the SMSC's requests ---------------------------------------------------


def test_enquire_link_is_sent_every_interval_while_bound() -> None:
    h = Harness(enquire_link_interval=30.0)
    smsc = h.bound_smsc()
    h.reactor.advance(29.9)
    assert smsc.read() == []
    for _ in range(3):
        h.reactor.advance(0.1)
        (enquire,) = smsc.read()
        assert enquire.command_id is CommandId.ENQUIRE_LINK
        smsc.answer(enquire)
        h.reactor.advance(29.9)
    assert h.client.stats.enquire_links_sent == 3 and not smsc.closed


def test_a_missing_enquire_link_resp_drops_the_link_and_rebinds() -> None:
    h = Harness(enquire_link_interval=30.0, response_timeout=10.0)
    smsc = h.bound_smsc()
    h.reactor.advance(30.0)
    assert [p.command_id for p in smsc.read()] == [CommandId.ENQUIRE_LINK]
    h.reactor.advance(9.9)
    assert not smsc.closed
    h.reactor.advance(0.1)
    assert smsc.transport.aborted and not h.client.bound
    h.reactor.advance(0)
    h.reactor.advance(1.0)  # reconnect_initial
    again = h.connect()
    again.accept_bind()
    assert h.client.bound and h.client.stats.binds == 2


def test_the_smscs_enquire_link_is_answered() -> None:
    h = Harness()
    smsc = h.bound_smsc()
    smsc.send(request(CommandId.ENQUIRE_LINK, 41))
    (answer,) = smsc.read()
    assert (answer.command_id, answer.sequence_number, answer.command_status) == (
        CommandId.ENQUIRE_LINK_RESP,
        41,
        OK,
    )


def test_the_smscs_unbind_is_answered_and_the_esme_reconnects() -> None:
    h = Harness()
    smsc = h.bound_smsc()
    smsc.send(request(CommandId.UNBIND, 9))
    (answer,) = smsc.read()
    assert (answer.command_id, answer.sequence_number) == (CommandId.UNBIND_RESP, 9)
    assert smsc.closed
    h.reactor.advance(0)
    assert not h.client.bound
    h.reactor.advance(1.0)
    h.connect().accept_bind()
    assert h.client.bound


def test_deliver_sm_goes_to_on_deliver_and_its_status_is_the_answer() -> None:
    h = Harness(on_deliver=lambda pdu: CommandStatus.ESME_RX_T_APPN)
    smsc = h.bound_smsc()
    smsc.send(deliver_sm(12))
    smsc.send(request(CommandId.DATA_SM, 13, source_addr="256700000001"))
    deliver_resp, data_resp = smsc.read()
    assert (deliver_resp.command_id, deliver_resp.sequence_number) == (
        CommandId.DELIVER_SM_RESP,
        12,
    )
    assert deliver_resp.command_status == CommandStatus.ESME_RX_T_APPN
    assert data_resp.command_id is CommandId.DATA_SM_RESP
    assert data_resp.command_status == CommandStatus.ESME_RX_T_APPN


def test_a_failing_on_deliver_answers_rsyserr_is_logged_and_keeps_the_link() -> None:
    def broken(pdu: Pdu) -> int:
        raise RuntimeError("menu engine down")

    h = Harness(on_deliver=broken)
    smsc = h.bound_smsc()
    with capturedLogs() as events:
        smsc.send(deliver_sm(3))
    (answer,) = smsc.read()
    assert answer.command_status == CommandStatus.ESME_RSYSERR
    (event,) = [e for e in events if e.get("event") == "on_deliver_failed"]
    assert event["sequence_number"] == 3 and "log_failure" in event
    assert not smsc.closed and h.client.bound


def test_an_unknown_command_gets_generic_nack_and_the_link_stays() -> None:
    h = Harness()
    smsc = h.bound_smsc()
    smsc.protocol.dataReceived(bytes.fromhex("00000010 00000099 00000000 0000002a"))
    (nack,) = smsc.read()
    assert (nack.command_id, nack.sequence_number, nack.command_status) == (
        CommandId.GENERIC_NACK,
        42,
        CommandStatus.ESME_RINVCMDID,
    )
    smsc.send(deliver_sm(43))  # still in business
    assert [p.command_id for p in smsc.read()] == [CommandId.DELIVER_SM_RESP]
    assert h.client.stats.malformed_received == 1 and not smsc.closed


def test_a_malformed_deliver_sm_gets_its_own_response_with_the_error_status() -> None:
    h = Harness()
    smsc = h.bound_smsc()
    body = b"USSD\x00\x01"  # service_type, source_addr_ton, then the PDU ends
    header = (16 + len(body)).to_bytes(4, "big") + bytes.fromhex("00000005 00000000 00000009")
    smsc.protocol.dataReceived(header + body)
    (answer,) = smsc.read()
    assert (answer.command_id, answer.sequence_number) == (CommandId.DELIVER_SM_RESP, 9)
    assert answer.command_status == CommandStatus.ESME_RINVMSGLEN
    assert h.delivered == [] and not smsc.closed


def test_a_bad_command_length_gets_generic_nack_closes_and_reconnects() -> None:
    h = Harness()
    smsc = h.bound_smsc()
    smsc.protocol.dataReceived(bytes.fromhex("00000004 00000015 00000000 00000005"))
    (nack,) = smsc.read()
    assert nack.command_id is CommandId.GENERIC_NACK
    assert nack.command_status == CommandStatus.ESME_RINVCMDLEN
    assert smsc.closed
    h.reactor.advance(0)
    h.reactor.advance(1.0)
    h.connect().accept_bind()
    assert h.client.bound


# --- outbound requests ------------------------------------------------------------------


def test_the_window_bounds_outstanding_requests_and_the_rest_wait_in_order() -> None:
    h = Harness(window=3)
    smsc = h.bound_smsc()
    waiters = [h.submit(bytes([65 + i])) for i in range(7)]
    first = smsc.read()
    assert texts(first) == [b"A", b"B", b"C"]
    smsc.answer(first[1], message_id="b")  # answers may come in any order
    assert texts(smsc.read()) == [b"D"]
    smsc.answer(first[0], message_id="a")
    smsc.answer(first[2], message_id="c")
    more = smsc.read()
    assert texts(more) == [b"E", b"F"]
    assert result(waiters[1])["message_id"] == "b"
    assert result(waiters[0]).sequence_number == first[0].sequence_number
    assert not waiters[3].called
    assert h.client.outbound.in_flight == 3 and h.client.outbound.waiting == 1


def test_sequence_numbers_are_unique_among_outstanding_requests() -> None:
    h = Harness(window=10)
    smsc = h.bound_smsc()
    for _ in range(10):
        h.submit()
    numbers = [p.sequence_number for p in smsc.read()]
    assert len(set(numbers)) == 10 and all(1 <= n <= 0x7FFFFFFF for n in numbers)


def test_submit_fails_with_queue_full_at_once_beyond_the_queue_limit() -> None:
    h = Harness(window=1, queue_limit=2)
    h.bound_smsc()
    accepted = [h.submit() for _ in range(3)]  # one in flight, two queued
    with pytest.raises(QueueFull):
        result(h.submit())
    assert not any(d.called for d in accepted)


def test_a_response_timeout_frees_the_slot_and_fails_the_caller() -> None:
    h = Harness(window=1, response_timeout=10.0)
    smsc = h.bound_smsc()
    late, next_one = h.submit(b"late"), h.submit(b"next")
    assert texts(smsc.read()) == [b"late"]
    h.reactor.advance(10.0)
    with pytest.raises(ResponseTimeout):
        result(late)
    assert texts(smsc.read()) == [b"next"]
    assert h.client.stats.timeouts == 1 and not next_one.called


def test_a_throttled_request_pauses_the_link_and_is_resent_first() -> None:
    h = Harness(window=1, throttle_pause=1.0, throttle_pause_max=30.0)
    smsc = h.bound_smsc()
    a, b = h.submit(b"A"), h.submit(b"B")
    (sent_a,) = smsc.read()
    smsc.answer(sent_a, THROTTLED)
    h.reactor.advance(0.9)
    assert smsc.read() == [] and not a.called  # paused: nothing goes out
    h.reactor.advance(0.1)
    (resent_a,) = smsc.read()
    assert resent_a["short_message"] == b"A" and resent_a.sequence_number != sent_a.sequence_number
    smsc.answer(resent_a, message_id="a")
    assert result(a)["message_id"] == "a"  # the caller sees only the final answer
    assert texts(smsc.read()) == [b"B"] and not b.called
    assert h.client.stats.throttled == 1 and h.client.stats.submitted == 3


def test_the_throttle_pause_doubles_while_it_repeats_and_resets_after_a_success() -> None:
    h = Harness(window=1, throttle_pause=1.0, throttle_pause_max=3.0)
    smsc = h.bound_smsc()
    h.submit(b"A")
    pauses = []
    for _ in range(4):
        (sent,) = smsc.read()
        smsc.answer(sent, THROTTLED)
        waited = 0.0
        while not smsc.transport.value():
            h.reactor.advance(0.5)
            waited += 0.5
        pauses.append(waited)
    assert pauses == [1.0, 2.0, 3.0, 3.0]  # doubling, up to throttle_pause_max
    (sent,) = smsc.read()
    smsc.answer(sent, message_id="ok")
    h.submit(b"B")
    (sent,) = smsc.read()
    smsc.answer(sent, CommandStatus.ESME_RMSGQFUL)  # the same as throttled
    h.reactor.advance(0.9)
    assert smsc.read() == []
    h.reactor.advance(0.1)
    assert texts(smsc.read()) == [b"B"]  # back to the first pause


def test_throttling_with_a_full_window_loses_nothing_and_keeps_the_order() -> None:
    h = Harness(window=3, throttle_pause=1.0)
    smsc = h.bound_smsc()
    waiters = {name: h.submit(name) for name in (b"A", b"B", b"C", b"D")}
    a, b, c = smsc.read()
    smsc.answer(a, THROTTLED)
    smsc.answer(b, message_id="b")  # B got through before the pause
    smsc.answer(c, THROTTLED)  # covered by the same pause: it does not double
    assert smsc.read() == []
    h.reactor.advance(1.0)
    resent = smsc.read()
    assert texts(resent) == [b"A", b"C", b"D"]  # throttled ones first, in order, then the queue
    for pdu in resent:
        smsc.answer(pdu, message_id=pdu["short_message"].decode())
    assert {k: result(d)["message_id"] for k, d in waiters.items()} == {
        b"A": "A",
        b"B": "b",
        b"C": "C",
        b"D": "D",
    }


def test_the_rate_limit_caps_requests_sent_per_second() -> None:
    h = Harness(window=100, rate_limit=4.0)
    smsc = h.bound_smsc()
    for i in range(12):
        h.submit(bytes([65 + i]))
    sent_at: list[float] = []
    for _ in range(40):
        sent_at += [h.reactor.seconds()] * len(smsc.read())
        h.reactor.advance(0.125)  # binary-exact steps, so send times are exact
    assert len(sent_at) == 12
    for t in sent_at:  # no one-second window holds more than 4
        assert sum(1 for u in sent_at if t <= u < t + 1 - 1e-9) <= 4
    assert sent_at[-1] == pytest.approx(2.75)  # and it goes as fast as allowed


def test_submits_queue_while_unbound_and_in_flight_ones_fail_with_link_lost() -> None:
    h = Harness(window=2)
    early = h.submit(b"early")  # before start: it waits for the bind
    smsc = h.bound_smsc()
    assert texts(smsc.read()) == [b"early"]
    second = h.submit(b"second")
    smsc.read()
    smsc.drop()
    with pytest.raises(LinkLost):
        result(early)
    with pytest.raises(LinkLost):
        result(second)
    later = h.submit(b"later")  # while unbound: queued
    h.reactor.advance(1.0)
    again = h.connect()
    again.accept_bind()
    (sent,) = again.read()
    assert sent["short_message"] == b"later"
    again.answer(sent, message_id="x")
    assert result(later)["message_id"] == "x"


def test_a_generic_nack_to_a_submit_is_its_response_and_is_counted() -> None:
    h = Harness()
    smsc = h.bound_smsc()
    d = h.submit()
    (sent,) = smsc.read()
    smsc.send(Pdu(CommandId.GENERIC_NACK, sent.sequence_number, CommandStatus.ESME_RINVCMDLEN))
    answer = result(d)
    assert answer.command_id is CommandId.GENERIC_NACK
    assert h.client.stats.generic_nacks_received == 1 and h.client.stats.responses == 1


def test_cancelling_a_queued_submit_withdraws_it() -> None:
    h = Harness(window=1)
    smsc = h.bound_smsc()
    first, second, third = h.submit(b"1"), h.submit(b"2"), h.submit(b"3")
    second.cancel()
    with pytest.raises(CancelledError):
        result(second)
    (sent,) = smsc.read()
    smsc.answer(sent)
    assert result(first).status_ok
    assert texts(smsc.read()) == [b"3"] and not third.called


def test_a_response_pdu_or_a_link_command_cannot_be_submitted() -> None:
    h = Harness()
    with pytest.raises(ValueError):
        result(h.client.submit_deferred(submit_sm().response()))
    with pytest.raises(ValueError):
        result(h.client.submit_deferred(request(CommandId.ENQUIRE_LINK, 0)))


# --- stopping -------------------------------------------------------------------------


def test_stop_unbinds_waits_for_unbind_resp_closes_and_fails_pending_submits() -> None:
    h = Harness(window=1)
    smsc = h.bound_smsc()
    in_flight, queued = h.submit(b"in flight"), h.submit(b"queued")
    smsc.read()
    stopped = h.client.stop_deferred()
    with pytest.raises(LinkStopped):
        result(queued)
    (unbind,) = smsc.read()
    assert unbind.command_id is CommandId.UNBIND and not smsc.closed
    smsc.answer(unbind)
    assert smsc.closed and not stopped.called
    h.reactor.advance(0)
    assert result(stopped) is None
    with pytest.raises(LinkStopped):
        result(in_flight)
    with pytest.raises(LinkStopped):
        result(h.submit())
    h.reactor.advance(120)
    assert h.dials == 1  # no reconnect after stop
    assert h.reactor.getDelayedCalls() == []


def test_stop_closes_after_response_timeout_when_unbind_is_not_answered() -> None:
    h = Harness(response_timeout=10.0)
    smsc = h.bound_smsc()
    stopped = h.client.stop_deferred()
    h.reactor.advance(9.9)
    assert not smsc.closed
    h.reactor.advance(0.1)
    assert smsc.closed
    h.reactor.advance(0)
    assert result(stopped) is None


def test_stop_before_the_connection_is_up_stops_connecting() -> None:
    h = Harness()
    h.client.start()
    waiter = h.client.when_bound()
    assert result(h.client.stop_deferred()) is None
    assert h.reactor.connectors[0].stoppedConnecting
    with pytest.raises(LinkStopped):
        result(waiter)


# --- configuration and logs -----------------------------------------------------------


def test_a_bad_config_value_is_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match="system_id"):
        config(system_id="x" * 16)
    with pytest.raises(ValueError, match="window"):
        config(window=0)
    with pytest.raises(ValueError, match="rate_limit"):
        config(rate_limit=0)


def test_an_unreadable_tls_ca_file_is_refused_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ValueError, match="tls_ca_file"):
        Harness(tls=True, tls_ca_file=str(bad)).client.start()


def test_link_events_are_logged_with_their_fields() -> None:
    h = Harness()
    with capturedLogs() as events:
        smsc = h.bound_smsc()
        h.submit()
        (sent,) = smsc.read()
        smsc.answer(sent, THROTTLED)
    by_name = {e["event"]: e for e in events if "event" in e}
    bound, throttled = by_name["bound"], by_name["throttled"]
    assert bound["command"] == "BIND_TRANSCEIVER_RESP" and bound["status"] == "ESME_ROK"
    assert bound["role"] == "transceiver" and bound["system_id"] == "gw1"
    assert throttled["status"] == "ESME_RTHROTTLED"
    assert throttled["sequence_number"] == sent.sequence_number
    assert throttled["command"] == "SUBMIT_SM_RESP"


def test_tls_connects_with_connect_ssl(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(make_pki().ca_pem)
    h = Harness(tls=True, tls_ca_file=str(ca_file), tls_hostname="smsc.example")
    h.client.start()
    assert h.reactor.tcpClients == []
    host, port, factory, options, *_ = h.reactor.sslClients[0]
    assert (host, port) == ("smsc.test", 2775) and options is not None
    Smsc(h.reactor, factory).accept_bind()
    assert h.client.bound


# --- the async API, from asyncio tasks ----------------------------------------------------


async def next_pdu(smsc: Smsc, limit: int = 50) -> Pdu:
    """Let the real event loop run the asyncio tasks until the ESME writes a PDU.

    Only loop turns pass: the ESME's own clock is the fake one and does not move.
    """
    from twisted.internet import reactor

    for _ in range(limit):
        written = smsc.read()
        if written:
            (pdu,) = written
            return pdu
        await deferLater(reactor, 0, lambda: None)
    raise AssertionError("the ESME wrote nothing")


@pytest_twisted.ensureDeferred
async def test_submit_and_stop_work_as_asyncio_coroutines() -> None:
    h = Harness()
    smsc = h.bound_smsc()
    answered = as_deferred(h.client.submit(submit_sm(b"async")))
    smsc.answer(await next_pdu(smsc), message_id="m-async")
    assert (await answered)["message_id"] == "m-async"

    stopped = as_deferred(h.client.stop())
    unbind = await next_pdu(smsc)
    assert unbind.command_id is CommandId.UNBIND
    smsc.answer(unbind)
    h.reactor.advance(0)
    await stopped
    with pytest.raises(LinkStopped):
        await as_deferred(h.client.submit(submit_sm()))


# --- real sockets: a minimal SMSC on loopback -------------------------------------------


class MiniSmsc(Protocol):
    """Just enough SMSC: binds anyone, accepts submit_sm, then delivers one deliver_sm."""

    factory: MiniSmscFactory

    def connectionMade(self) -> None:
        self.stream = PduStream()

    def dataReceived(self, data: bytes) -> None:
        for pdu in self.stream.feed(data):
            assert isinstance(pdu, Pdu), pdu
            self.factory.received.append(pdu)
            self.handle(pdu)

    def handle(self, pdu: Pdu) -> None:
        write = self.transport.write  # type: ignore[union-attr]
        if pdu.command_id is CommandId.BIND_TRANSCEIVER:
            write(encode(pdu.response(system_id="MINI")))
        elif pdu.command_id is CommandId.SUBMIT_SM:
            write(encode(pdu.response(message_id="m1")))
            write(encode(deliver_sm(100)))
        elif pdu.command_id is CommandId.DELIVER_SM_RESP:
            self.factory.deliver_answered.callback(pdu)
        elif pdu.command_id in (CommandId.ENQUIRE_LINK, CommandId.UNBIND):
            write(encode(pdu.response()))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.factory.lost.callback(None)


class MiniSmscFactory(ServerFactory):
    protocol = MiniSmsc

    def __init__(self) -> None:
        self.received: list[Pdu] = []
        self.deliver_answered: Deferred[Pdu] = Deferred()
        self.lost: Deferred[None] = Deferred()


def loopback_client(port: int, **overrides: Any) -> tuple[EsmeClient, Deferred[Pdu]]:
    delivered: Deferred[Pdu] = Deferred()

    def on_deliver(pdu: Pdu) -> int:
        delivered.callback(pdu)
        return OK

    return EsmeClient(config(host="127.0.0.1", port=port, **overrides), on_deliver), delivered


def within(d: Deferred[Any], seconds: float = 10.0) -> Deferred[Any]:
    """A safety net so a broken test fails instead of hanging (it never waits on success)."""
    from twisted.internet import reactor

    return d.addTimeout(seconds, reactor)


async def bind_submit_deliver_stop(
    client: EsmeClient, smsc: MiniSmscFactory, delivered: Any
) -> None:
    client.start()
    await within(client.when_bound())
    response = await within(as_deferred(client.submit(submit_sm(b"over tcp"))))
    assert response.command_id is CommandId.SUBMIT_SM_RESP and response["message_id"] == "m1"
    deliver = await within(delivered)
    assert deliver["short_message"] == b"*123#"
    answer = await within(smsc.deliver_answered)
    assert answer.sequence_number == 100 and answer.status_ok
    await within(as_deferred(client.stop()))
    await within(smsc.lost)
    commands = [p.command_id for p in smsc.received]
    assert commands[0] is CommandId.BIND_TRANSCEIVER and commands[-1] is CommandId.UNBIND
    assert not client.bound


@pytest_twisted.ensureDeferred
async def test_over_real_loopback_tcp_it_binds_submits_takes_a_delivery_and_unbinds() -> None:
    from twisted.internet import reactor

    smsc = MiniSmscFactory()
    port = reactor.listenTCP(0, smsc, interface="127.0.0.1")
    try:
        client, delivered = loopback_client(port.getHost().port)
        await bind_submit_deliver_stop(client, smsc, delivered)
    finally:
        await port.stopListening()


# Twisted's server-side CertificateOptions hands pyOpenSSL objects to pyOpenSSL, which
# warns; the client side (the code under test) does not.
SERVER_TLS_WARNING = "ignore:Passing pyOpenSSL:DeprecationWarning"


@pytest.mark.filterwarnings(SERVER_TLS_WARNING)
@pytest_twisted.ensureDeferred
async def test_over_real_tls_it_binds_to_an_smsc_whose_certificate_the_ca_signed(
    tmp_path: Path,
) -> None:
    from twisted.internet import reactor, ssl

    pki = make_pki()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(pki.ca_pem)
    server_cert = ssl.PrivateCertificate.loadPEM(pki.server_cert_pem + pki.server_key_pem)
    smsc = MiniSmscFactory()
    port = reactor.listenSSL(0, smsc, server_cert.options(), interface="127.0.0.1")
    try:
        client, delivered = loopback_client(
            port.getHost().port, tls=True, tls_ca_file=str(ca_file), tls_hostname="localhost"
        )
        await bind_submit_deliver_stop(client, smsc, delivered)
    finally:
        await port.stopListening()


@pytest.mark.filterwarnings(SERVER_TLS_WARNING)
@pytest_twisted.ensureDeferred
async def test_over_real_tls_it_refuses_an_smsc_signed_by_another_ca(tmp_path: Path) -> None:
    from twisted.internet import reactor, ssl

    pki, stranger = make_pki(), make_pki()
    ca_file = tmp_path / "other-ca.pem"
    ca_file.write_bytes(stranger.ca_pem)
    server_cert = ssl.PrivateCertificate.loadPEM(pki.server_cert_pem + pki.server_key_pem)
    smsc = MiniSmscFactory()
    port = reactor.listenSSL(0, smsc, server_cert.options(), interface="127.0.0.1")
    try:
        client, _ = loopback_client(
            port.getHost().port, tls=True, tls_ca_file=str(ca_file), tls_hostname="localhost"
        )
        client.start()
        await within(smsc.lost)  # the handshake failed
        assert smsc.received == [] and not client.bound
        await within(as_deferred(client.stop()))
    finally:
        await port.stopListening()
