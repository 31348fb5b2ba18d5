"""The simulator's SMPP server: binds, commands, errors, the MO window and link faults.

The server runs on a ``StringTransport`` and a ``task.Clock``: bytes in, bytes out, time
advanced by hand.
"""

from __future__ import annotations

import struct

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection

from gateway.smpp.constants import CommandId, CommandStatus, Tag
from gateway.smpp.pdu import Pdu, PduStream, encode, request
from simulators.modem.service import EsmeAccount, Simulator, SimulatorConfig

C, S = CommandId, CommandStatus
MSISDN = "256700000001"


class Esme:
    """A fake ESME connected to the simulator's SMSC through a StringTransport."""

    def __init__(self, simulator: Simulator) -> None:
        self.protocol = simulator.smsc.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert self.protocol is not None
        self.transport = StringTransportWithDisconnection()
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)
        self._stream = PduStream()
        self._sequence = 0

    def send(self, pdu: Pdu) -> None:
        self.protocol.dataReceived(encode(pdu))

    def request(self, command: CommandId, **params: object) -> Pdu:
        self._sequence += 1
        pdu = request(command, self._sequence, **params)  # type: ignore[arg-type]
        self.send(pdu)
        return pdu

    def read(self) -> list[Pdu]:
        data = self.transport.value()
        self.transport.clear()
        out = self._stream.feed(data)
        assert all(isinstance(p, Pdu) for p in out)
        return out  # type: ignore[return-value]

    def answer(self, request_pdu: Pdu) -> Pdu:
        """Send a request and return the one PDU the SMSC answers with."""
        self.send(request_pdu)
        (response,) = self.read()
        return response

    def bind(self, command: CommandId = C.BIND_TRANSCEIVER, password: str = "secret") -> Pdu:
        self.request(command, system_id="dfsp1", password=password, interface_version=0x34)
        (response,) = self.read()
        return response

    @property
    def closed(self) -> bool:
        return not self.transport.connected


def make_simulator(clock: Clock, **account: object) -> Simulator:
    settings: dict[str, object] = {"system_id": "dfsp1", "password": "secret"}
    settings.update(short_codes=("*123#",), **account)
    config = SimulatorConfig(
        accounts=(EsmeAccount(**settings),),  # type: ignore[arg-type]
        response_timeout=10.0,
        retry_pause=1.0,
    )
    return Simulator(config, reactor=clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def simulator(clock: Clock) -> Simulator:
    return make_simulator(clock)


def sms(sequence: int = 1, **params: object) -> Pdu:
    fields: dict[str, object] = {
        "source_addr": "123",
        "destination_addr": MSISDN,
        "short_message": b"hello",
    }
    fields.update(params)
    return request(C.SUBMIT_SM, sequence, **fields)  # type: ignore[arg-type]


def mo_unit(text: bytes = b"x") -> Pdu:
    return request(C.DELIVER_SM, 0, source_addr=MSISDN, destination_addr="123", short_message=text)


# --- binds -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [C.BIND_TRANSCEIVER, C.BIND_TRANSMITTER, C.BIND_RECEIVER])
def test_an_account_binds_with_its_credentials(simulator: Simulator, command: CommandId) -> None:
    esme = Esme(simulator)
    response = esme.bind(command)
    assert response.command_id is command.response
    assert response.status_ok and response["system_id"] == "USSDLOOP"
    assert response.tlv(Tag.SC_INTERFACE_VERSION) == b"\x34"
    assert simulator.bound_accounts() == ["dfsp1"]


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [
        ("nobody", "secret", S.ESME_RINVSYSID),
        ("dfsp1", "wrong", S.ESME_RINVPASWD),
    ],
)
def test_a_bind_with_bad_credentials_is_refused_and_the_link_stays_usable(
    simulator: Simulator, system_id: str, password: str, status: CommandStatus
) -> None:
    esme = Esme(simulator)
    refused = esme.answer(request(C.BIND_TRANSCEIVER, 1, system_id=system_id, password=password))
    assert refused.command_id is C.BIND_TRANSCEIVER_RESP
    assert refused.command_status == status and refused.sequence_number == 1
    assert simulator.bound_accounts() == [] and not esme.closed
    assert esme.bind().status_ok


def test_a_bind_type_the_account_does_not_allow_is_refused(clock: Clock) -> None:
    simulator = make_simulator(clock, bind_types=frozenset({"transceiver"}))
    esme = Esme(simulator)
    assert esme.bind(C.BIND_TRANSMITTER).command_status == S.ESME_RBINDFAIL
    assert esme.bind(C.BIND_TRANSCEIVER).status_ok


def test_a_second_bind_on_one_connection_is_refused_as_already_bound(
    simulator: Simulator,
) -> None:
    esme = Esme(simulator)
    esme.bind()
    assert esme.bind(C.BIND_RECEIVER).command_status == S.ESME_RALYBND


def test_submit_before_bind_is_refused_with_invalid_bind_status(simulator: Simulator) -> None:
    esme = Esme(simulator)
    response = esme.answer(sms())
    assert response.command_id is C.SUBMIT_SM_RESP
    assert response.command_status == S.ESME_RINVBNDSTS
    assert simulator.network.handsets == {}


def test_submit_on_a_receiver_bind_is_refused_with_invalid_bind_status(
    simulator: Simulator,
) -> None:
    esme = Esme(simulator)
    esme.bind(C.BIND_RECEIVER)
    assert esme.answer(sms()).command_status == S.ESME_RINVBNDSTS


def test_several_connections_of_one_account_bind_at_once(simulator: Simulator) -> None:
    transmitter, receiver = Esme(simulator), Esme(simulator)
    assert transmitter.bind(C.BIND_TRANSMITTER).status_ok
    assert receiver.bind(C.BIND_RECEIVER).status_ok
    assert simulator.bound_accounts() == ["dfsp1"]


# --- link commands ------------------------------------------------------------------------


def test_enquire_link_is_answered_bound_or_not(simulator: Simulator) -> None:
    esme = Esme(simulator)
    assert esme.answer(request(C.ENQUIRE_LINK, 5)).command_id is C.ENQUIRE_LINK_RESP
    esme.bind()
    response = esme.answer(request(C.ENQUIRE_LINK, 6))
    assert (response.command_id, response.sequence_number) == (C.ENQUIRE_LINK_RESP, 6)


def test_unbind_is_answered_and_the_connection_closed(simulator: Simulator) -> None:
    esme = Esme(simulator)
    esme.bind()
    response = esme.answer(request(C.UNBIND, 9))
    assert (response.command_id, response.command_status) == (C.UNBIND_RESP, 0)
    assert esme.closed and simulator.bound_accounts() == []


def test_unbind_before_bind_is_refused(simulator: Simulator) -> None:
    esme = Esme(simulator)
    assert esme.answer(request(C.UNBIND, 1)).command_status == S.ESME_RINVBNDSTS
    assert not esme.closed


# --- bad input ----------------------------------------------------------------------------


def test_an_unknown_command_gets_generic_nack_and_the_link_carries_on(
    simulator: Simulator,
) -> None:
    esme = Esme(simulator)
    esme.bind()
    esme.protocol.dataReceived(struct.pack(">IIII", 16, 0x00000099, 0, 42))
    (nack,) = esme.read()
    assert (nack.command_id, nack.command_status) == (C.GENERIC_NACK, S.ESME_RINVCMDID)
    assert nack.sequence_number == 42
    assert esme.answer(sms(2)).status_ok


def test_a_readable_but_malformed_request_gets_its_own_response_with_the_error(
    simulator: Simulator,
) -> None:
    esme = Esme(simulator)
    esme.bind()
    bad = bytearray(encode(sms(7)))
    bad[-len(b"hello") - 1] = 200  # sm_length: short_message runs past the end
    esme.protocol.dataReceived(bytes(bad))
    (response,) = esme.read()
    assert response.command_id is C.SUBMIT_SM_RESP and response.sequence_number == 7
    assert response.command_status == S.ESME_RINVMSGLEN
    assert not esme.closed and esme.answer(sms(8)).status_ok


def test_a_request_the_smsc_does_not_take_is_answered_invalid_command(
    simulator: Simulator,
) -> None:
    esme = Esme(simulator)
    esme.bind()
    response = esme.answer(mo_unit())  # deliver_sm travels the other way
    assert (response.command_id, response.command_status) == (
        C.DELIVER_SM_RESP,
        S.ESME_RINVCMDID,
    )


def test_a_bad_command_length_is_answered_and_the_connection_closed(
    simulator: Simulator,
) -> None:
    esme = Esme(simulator)
    esme.bind()
    esme.protocol.dataReceived(struct.pack(">IIII", 8, C.ENQUIRE_LINK, 0, 3))
    (nack,) = esme.read()
    assert (nack.command_id, nack.command_status) == (C.GENERIC_NACK, S.ESME_RINVCMDLEN)
    assert esme.closed and simulator.bound_accounts() == []


def test_a_failure_inside_the_network_is_answered_system_error_and_the_link_lives_on(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    esme = Esme(simulator)
    esme.bind()

    def broken(system_id: str, pdu: Pdu) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(simulator.network, "submit", broken)
    assert esme.answer(sms(1)).command_status == S.ESME_RSYSERR
    assert esme.answer(request(C.ENQUIRE_LINK, 2)).command_id is C.ENQUIRE_LINK_RESP


def test_an_unknown_vendor_tlv_does_not_disturb_a_submission(simulator: Simulator) -> None:
    esme = Esme(simulator)
    esme.bind()
    pdu = sms()
    pdu.tlvs.append((0x1400, b"\x01\x02\x03"))
    assert esme.answer(pdu).status_ok


# --- network-to-ESME messages -------------------------------------------------------------


def deliver(simulator: Simulator, results: list[int | None], text: bytes = b"x") -> bool:
    return simulator.smsc.deliver("dfsp1", mo_unit(text), results.append)


def test_messages_go_to_the_receiver_of_a_transmitter_receiver_pair(
    simulator: Simulator,
) -> None:
    transmitter, receiver = Esme(simulator), Esme(simulator)
    transmitter.bind(C.BIND_TRANSMITTER)
    receiver.bind(C.BIND_RECEIVER)
    results: list[int | None] = []
    assert deliver(simulator, results) and deliver(simulator, results)
    assert transmitter.read() == [] and len(receiver.read()) == 2


def test_messages_are_shared_round_robin_between_receiving_binds(simulator: Simulator) -> None:
    first, second = Esme(simulator), Esme(simulator)
    first.bind()
    second.bind()
    results: list[int | None] = []
    for text in (b"1", b"2", b"3", b"4"):
        deliver(simulator, results, text)
    assert [p["short_message"] for p in first.read()] == [b"1", b"3"]
    assert [p["short_message"] for p in second.read()] == [b"2", b"4"]


def test_no_receiving_bind_means_the_message_is_not_taken(simulator: Simulator) -> None:
    Esme(simulator).bind(C.BIND_TRANSMITTER)
    assert not deliver(simulator, [])


def test_the_window_bounds_outstanding_deliver_sm(clock: Clock) -> None:
    simulator = make_simulator(clock, window=2)
    esme = Esme(simulator)
    esme.bind()
    results: list[int | None] = []
    for text in (b"1", b"2", b"3"):
        deliver(simulator, results, text)
    first, second = esme.read()
    assert first.sequence_number != second.sequence_number
    esme.send(first.response())
    (third,) = esme.read()
    assert third["short_message"] == b"3" and results == [0]
    esme.send(second.response())
    esme.send(third.response())
    assert results == [0, 0, 0]


@pytest.mark.parametrize("status", [S.ESME_RTHROTTLED, S.ESME_RMSGQFUL])
def test_a_throttled_deliver_sm_is_sent_again_after_a_pause_in_order(
    clock: Clock, status: CommandStatus
) -> None:
    simulator = make_simulator(clock, window=2)
    esme = Esme(simulator)
    esme.bind()
    results: list[int | None] = []
    for text in (b"1", b"2", b"3"):
        deliver(simulator, results, text)
    first, second = esme.read()
    esme.send(first.response(status))
    esme.send(second.response())
    assert esme.read() == [], "the link pauses after a throttled answer"
    clock.advance(1.0)
    again, third = esme.read()
    assert [again["short_message"], third["short_message"]] == [b"1", b"3"]
    assert again.sequence_number not in (first.sequence_number, second.sequence_number)
    esme.send(again.response())
    esme.send(third.response())
    assert results == [0, 0, 0]


def test_an_unanswered_deliver_sm_fails_after_the_response_timeout(
    simulator: Simulator, clock: Clock
) -> None:
    esme = Esme(simulator)
    esme.bind()
    results: list[int | None] = []
    deliver(simulator, results)
    clock.advance(9.9)
    assert results == []
    clock.advance(0.1)
    assert results == [None]


def test_a_lost_connection_fails_what_it_carried(clock: Clock) -> None:
    simulator = make_simulator(clock, window=1)
    esme = Esme(simulator)
    esme.bind()
    results: list[int | None] = []
    deliver(simulator, results)
    deliver(simulator, results)
    esme.transport.loseConnection()
    assert results == [None, None]
    assert simulator.bound_accounts() == [] and simulator.smsc.connections == set()


def test_an_error_answer_fails_the_delivery(simulator: Simulator) -> None:
    esme = Esme(simulator)
    esme.bind()
    results: list[int | None] = []
    deliver(simulator, results)
    (pdu,) = esme.read()
    esme.send(pdu.response(S.ESME_RSYSERR))
    assert results == [S.ESME_RSYSERR]


# --- the SMSC ends the session ------------------------------------------------------------


def test_unbind_from_the_smsc_closes_on_unbind_resp(simulator: Simulator) -> None:
    esme = Esme(simulator)
    esme.bind()
    closing = simulator.smsc.unbind_all()
    (unbind,) = esme.read()
    assert unbind.command_id is C.UNBIND
    assert not esme.closed
    esme.send(unbind.response())
    assert esme.closed
    assert [d.called for d in closing] == [True]


def test_unbind_from_the_smsc_closes_anyway_when_the_esme_is_silent(
    simulator: Simulator, clock: Clock
) -> None:
    esme = Esme(simulator)
    esme.bind()
    simulator.smsc.unbind_all()
    assert esme.read()[0].command_id is C.UNBIND
    clock.advance(2.0)
    assert esme.closed


# --- link faults --------------------------------------------------------------------------


def test_dropped_submissions_get_no_answer(simulator: Simulator) -> None:
    esme = Esme(simulator)
    esme.bind()
    simulator.faults.drop_mt = 1.0
    esme.send(sms())
    assert esme.read() == []
    assert MSISDN not in simulator.network.handsets


def test_throttle_count_answers_the_next_submissions_throttled(simulator: Simulator) -> None:
    esme = Esme(simulator)
    esme.bind()
    simulator.faults.throttle(2)
    statuses = [esme.answer(sms(n)).command_status for n in (1, 2, 3)]
    assert statuses == [S.ESME_RTHROTTLED, S.ESME_RTHROTTLED, S.ESME_ROK]
    assert len(simulator.network.handset(MSISDN).sms) == 1


def test_throttle_fraction_is_drawn_from_the_seeded_random(clock: Clock) -> None:
    def statuses(seed: int) -> list[int]:
        simulator = make_simulator(clock)
        simulator.faults.seed(seed)
        simulator.faults.throttle(0.5)
        esme = Esme(simulator)
        esme.bind()
        return [esme.answer(sms(n)).command_status for n in range(1, 41)]

    first = statuses(7)
    assert first == statuses(7)
    assert 5 < first.count(S.ESME_RTHROTTLED) < 35


def test_enquire_link_can_be_ignored(simulator: Simulator) -> None:
    esme = Esme(simulator)
    esme.bind()
    simulator.faults.ignore_enquire_link = True
    esme.send(request(C.ENQUIRE_LINK, 4))
    assert esme.read() == []
    simulator.faults.ignore_enquire_link = False
    assert esme.answer(request(C.ENQUIRE_LINK, 5)).command_id is C.ENQUIRE_LINK_RESP


def test_delay_holds_every_pdu_back_and_keeps_their_order(
    simulator: Simulator, clock: Clock
) -> None:
    esme = Esme(simulator)
    esme.bind()
    simulator.faults.delay = 3.0
    esme.send(request(C.ENQUIRE_LINK, 10))
    clock.advance(1.0)
    simulator.faults.delay = 0.0  # a later PDU must not overtake the one held back
    esme.send(request(C.ENQUIRE_LINK, 11))
    assert esme.read() == []
    clock.advance(2.0)
    assert [p.sequence_number for p in esme.read()] == [10, 11]


def test_dropped_mo_messages_count_as_sent_but_never_arrive(simulator: Simulator) -> None:
    esme = Esme(simulator)
    esme.bind()
    simulator.faults.drop_mo = 1.0
    results: list[int | None] = []
    assert deliver(simulator, results)
    assert esme.read() == [] and results == []


def test_raw_bytes_can_be_injected_toward_the_binds_of_an_account(
    simulator: Simulator,
) -> None:
    bound, unbound = Esme(simulator), Esme(simulator)
    bound.bind()
    assert simulator.inject_raw("dfsp1", b"\x00\x00\x00\x10garbage!") == 1
    assert bound.transport.value() == b"\x00\x00\x00\x10garbage!"
    assert unbound.transport.value() == b""
    assert simulator.inject_raw("nobody", b"x") == 0


def test_disconnect_drops_every_connection(simulator: Simulator) -> None:
    first, second = Esme(simulator), Esme(simulator)
    first.bind()
    assert simulator.faults.disconnect() == 2
    assert first.closed and second.closed and simulator.bound_accounts() == []


def test_fault_settings_are_checked() -> None:
    simulator = make_simulator(Clock())
    with pytest.raises(ValueError, match="drop_mo"):
        simulator.faults.drop_mo = 1.5
    with pytest.raises(ValueError, match="delay"):
        simulator.faults.delay = -1
    with pytest.raises(TypeError):
        simulator.faults.throttle(True)
    simulator.faults.throttle(0.25)
    assert simulator.faults.snapshot()["throttle_fraction"] == 0.25
    simulator.faults.clear()
    assert not any(simulator.faults.snapshot().values())
