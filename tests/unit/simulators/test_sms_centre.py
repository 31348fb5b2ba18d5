"""The SMS centre: submit_sm without ussd_service_op reaches the inbox, with receipts."""

from __future__ import annotations

import re

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection

from gateway.smpp.constants import CommandId, MessageState, Tag
from gateway.smpp.gsm0338 import decode_text
from gateway.smpp.pdu import Pdu, PduStream, encode, request
from gateway.smpp.tlv import message_state, receipted_message_id
from simulators.modem import handsets
from simulators.modem.handsets import HandsetEvent, Sms, SmsEvent
from simulators.modem.service import EsmeAccount, Simulator, SimulatorConfig

C = CommandId
ALICE = "256700000001"
RECEIPT = re.compile(
    r"id:(\S+) sub:001 dlvrd:(\d{3}) submit date:(\d{10}) done date:(\d{10})"
    r" stat:(\w+) err:(\d{3}) text:(.*)"
)


class Esme:
    def __init__(self, simulator: Simulator, command: CommandId) -> None:
        self.protocol = simulator.smsc.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert self.protocol is not None
        self.transport = StringTransportWithDisconnection()
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)
        self._stream = PduStream()
        self._unread: list[Pdu] = []
        self.send(request(command, 1, system_id="dfsp1", password="secret"))
        bind_response, *self._unread = self.pdus()
        assert bind_response.status_ok

    def send(self, pdu: Pdu) -> None:
        self.protocol.dataReceived(encode(pdu))

    def pdus(self) -> list[Pdu]:
        """What the SMSC wrote since the last look."""
        data = self.transport.value()
        self.transport.clear()
        out, self._unread = self._unread + self._stream.feed(data), []  # type: ignore[operator]
        return out


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.advance(1_700_000_000)  # 2023-11-14 22:13 UTC
    return clock


@pytest.fixture
def simulator(clock: Clock) -> Simulator:
    account = EsmeAccount("dfsp1", "secret", ("*123#",))
    return Simulator(SimulatorConfig(accounts=(account,)), reactor=clock)


def submit(esme: Esme, text: bytes = b"You paid 5 USD", **params: object) -> Pdu:
    fields: dict[str, object] = {
        "source_addr": "DFSP1",
        "destination_addr": ALICE,
        "short_message": text,
    }
    fields.update(params)
    esme.send(request(C.SUBMIT_SM, 9, **fields))  # type: ignore[arg-type]
    written = esme.pdus()
    assert written[0].command_id is C.SUBMIT_SM_RESP
    return written[0]


def test_an_sms_reaches_the_inbox_and_is_announced(simulator: Simulator, clock: Clock) -> None:
    esme = Esme(simulator, C.BIND_TRANSCEIVER)
    events: list[HandsetEvent] = []
    simulator.network.handset(ALICE).subscribe(events.append)
    response = submit(esme)
    assert response.status_ok and response["message_id"]
    sms = Sms(response["message_id"], "DFSP1", "You paid 5 USD", clock.seconds())
    assert simulator.network.handset(ALICE).sms == [sms]
    assert events == [SmsEvent(sms, 0)]
    assert esme.pdus() == [], "no receipt unless asked for"


@pytest.mark.parametrize(
    ("data_coding", "payload", "text"),
    [
        (0x08, "Karibu \u2013 €5".encode("utf-16-be"), "Karibu \u2013 €5"),
        (0x03, "café".encode("latin-1"), "café"),
        (0x00, b"\x1b\x65 5", "€ 5"),
    ],
)
def test_the_text_is_decoded_from_its_data_coding(
    simulator: Simulator, data_coding: int, payload: bytes, text: str
) -> None:
    esme = Esme(simulator, C.BIND_TRANSCEIVER)
    submit(esme, payload, data_coding=data_coding)
    assert simulator.network.handset(ALICE).sms[0].text == text


def test_a_long_text_in_message_payload_is_delivered(simulator: Simulator) -> None:
    esme = Esme(simulator, C.BIND_TRANSCEIVER)
    esme.send(
        request(
            C.SUBMIT_SM,
            3,
            source_addr="DFSP1",
            destination_addr=ALICE,
            tlvs=[(Tag.MESSAGE_PAYLOAD, b"x" * 400)],
        )
    )
    assert esme.pdus()[0].status_ok
    assert simulator.network.handset(ALICE).sms[0].text == "x" * 400


def test_a_receipt_follows_the_response_when_registered_delivery_asks(
    simulator: Simulator,
) -> None:
    esme = Esme(simulator, C.BIND_TRANSCEIVER)
    esme.send(
        request(
            C.SUBMIT_SM,
            4,
            source_addr="DFSP1",
            destination_addr=ALICE,
            registered_delivery=1,
            short_message=b"Your code is 1234, valid 5 minutes",
        )
    )
    response, receipt = esme.pdus()
    assert response.command_id is C.SUBMIT_SM_RESP
    assert receipt.command_id is C.DELIVER_SM and receipt["esm_class"] == 0x04
    assert (receipt["source_addr"], receipt["destination_addr"]) == (ALICE, "DFSP1")
    text = decode_text(receipt["data_coding"], receipt["short_message"])
    match = RECEIPT.fullmatch(text)
    assert match is not None, text
    assert match[1] == response["message_id"] and match[2] == "001"
    assert match[3] == match[4] == "2311142213"
    assert (match[5], match[6], match[7]) == ("DELIVRD", "000", "Your code is 1234, v")
    assert receipted_message_id(receipt) == response["message_id"]
    assert message_state(receipt) == MessageState.DELIVERED
    esme.send(receipt.response())


def test_a_full_inbox_makes_the_delivery_fail(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handsets, "MAX_INBOX", 1)
    esme = Esme(simulator, C.BIND_TRANSCEIVER)
    submit(esme)
    esme.send(
        request(C.SUBMIT_SM, 5, source_addr="DFSP1", destination_addr=ALICE, registered_delivery=2)
    )
    _, receipt = esme.pdus()
    assert " stat:UNDELIV " in receipt["short_message"].decode()
    assert message_state(receipt) == MessageState.UNDELIVERABLE
    assert len(simulator.network.handset(ALICE).sms) == 1


def test_receipts_go_to_the_receiver_and_wait_for_one_to_bind(simulator: Simulator) -> None:
    transmitter = Esme(simulator, C.BIND_TRANSMITTER)
    submit(transmitter, registered_delivery=1)
    assert transmitter.pdus() == []
    receiver = Esme(simulator, C.BIND_RECEIVER)
    (receipt,) = receiver.pdus()
    assert receipt["esm_class"] == 0x04


def test_an_sms_to_something_that_is_not_an_msisdn_is_refused(simulator: Simulator) -> None:
    esme = Esme(simulator, C.BIND_TRANSCEIVER)
    assert submit(esme, destination_addr="").command_status == 0x0B
    assert simulator.network.handsets == {}
