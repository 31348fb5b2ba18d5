"""Acceptance: smpplib's blocking Client, an independent SMPP implementation, binds to our
simulator as a transceiver and completes USSD dialogues with it over real TCP.

smpplib 2.2.4 gap (python-smpplib issue #104, open upstream since 2019): its ``DeliverSM``
declares no ``ussd_service_op`` parameter, so parsing a USSD ``deliver_sm`` raises
``KeyError: 'ussd_service_op'``. The workaround, applied per test with ``monkeypatch``
so nothing leaks: register that one parameter (TLV 0x0501, one octet) on
``smpplib.command.DeliverSM.params``. Its ``SubmitSM`` already declares it.

The client blocks, so every call to it runs in a thread (``deferToThread``), never in
the reactor's; the handsets are driven in the reactor's asyncio loop (``as_deferred``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
import smpplib.client
import smpplib.command
import smpplib.consts
from twisted.internet.threads import deferToThread

from simulators.modem.service import EsmeAccount, Simulator, SimulatorConfig
from ussdloop.aio import as_deferred

MSISDN = "256700000001"
PSSR_INDICATION, USSR_REQUEST, PSSR_RESPONSE, USSR_CONFIRM = 1, 2, 17, 18
UMR_ABORT = 0x81


@pytest.fixture(autouse=True)
def smpplib_reads_ussd_service_op(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workaround for python-smpplib issue #104 (see the module docstring)."""
    param = smpplib.command.Param(type=int, size=1)
    monkeypatch.setitem(smpplib.command.DeliverSM.params, "ussd_service_op", param)
    assert "ussd_service_op" in smpplib.command.SubmitSM.params


class BlockingEsme:
    """smpplib's Client, with the deliver_sm it received and the submit_sm_resp it read."""

    def __init__(self, port: int) -> None:
        self.client = smpplib.client.Client(
            "127.0.0.1", port, timeout=5, allow_unknown_opt_params=True
        )
        self.delivered: list[Any] = []
        self.submitted: list[Any] = []
        self.client.set_message_received_handler(lambda pdu: self.delivered.append(pdu))
        self.client.set_message_sent_handler(lambda pdu: self.submitted.append(pdu))
        self.client.set_error_pdu_handler(lambda pdu: None)  # statuses are asserted on

    def bind(self, system_id: str, password: str) -> None:
        self.client.connect()
        self.client.bind_transceiver(system_id=system_id, password=password)

    def next_delivery(self) -> Any:
        """Read until a deliver_sm arrived (smpplib answers it with deliver_sm_resp)."""
        count = len(self.delivered)
        while len(self.delivered) == count:
            self.client.read_once(auto_send_enquire_link=False)
        return self.delivered[-1]

    def submit(self, **params: Any) -> Any:
        """Send a USSD submit_sm and read its submit_sm_resp."""
        count = len(self.submitted)
        self.client.send_message(
            service_type="USSD",
            source_addr_ton=1,
            source_addr_npi=1,
            dest_addr_ton=1,
            dest_addr_npi=1,
            **params,
        )
        while len(self.submitted) == count:
            self.client.read_once(auto_send_enquire_link=False)
        return self.submitted[-1]

    def close(self) -> None:
        if self.client.state != smpplib.consts.SMPP_CLIENT_STATE_CLOSED:
            try:
                self.client.unbind()
            finally:
                self.client.disconnect()


def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return deferToThread(fn, *args, **kwargs)


@pytest.fixture
def simulator_for() -> Iterator[Callable[[str], Simulator]]:
    made: list[Simulator] = []

    def make(dialect: str) -> Simulator:
        account = EsmeAccount("dfsp1", "secret", ("*123#",), dialect=dialect)
        simulator = Simulator(SimulatorConfig(smpp_port=0, accounts=(account,)))
        made.append(simulator)
        return simulator

    yield make
    for simulator in made:
        assert not simulator.running, "each test stops its simulator"


@pytest_twisted.ensureDeferred
async def test_smpplib_transceiver_completes_a_standard_ussd_dialogue(simulator_for):
    simulator = simulator_for("standard")
    await as_deferred(simulator.start())
    esme = BlockingEsme(simulator.smpp_port)
    try:
        await in_thread(esme.bind, "dfsp1", "secret")
        assert simulator.bound_accounts() == ["dfsp1"]
        handset = simulator.network.handset(MSISDN)

        first_screen = as_deferred(handset.dial("*123#", timeout=10))
        begin = await in_thread(esme.next_delivery)
        assert begin.ussd_service_op == PSSR_INDICATION
        assert (begin.source_addr, begin.destination_addr) == (MSISDN.encode(), b"123")
        assert begin.short_message == b"*123#"
        session_number = begin.its_session_info >> 8

        response = await in_thread(
            esme.submit,
            source_addr="123",
            destination_addr=MSISDN,
            short_message=b"Welcome\n1. Balance",
            ussd_service_op=USSR_REQUEST,
            its_session_info=session_number << 8,
        )
        assert response.status == 0 and response.message_id
        screen = await first_screen
        assert screen.text == "Welcome\n1. Balance" and screen.expects_reply
        assert screen.ended_reason is None

        next_screen = as_deferred(handset.reply("1", timeout=10))
        answer = await in_thread(esme.next_delivery)
        assert answer.ussd_service_op == USSR_CONFIRM and answer.short_message == b"1"
        assert answer.its_session_info >> 8 == session_number
        assert not answer.its_session_info & 1, "the subscriber's answer does not end it"

        await in_thread(
            esme.submit,
            source_addr="123",
            destination_addr=MSISDN,
            short_message=b"Balance: 10 USD",
            ussd_service_op=PSSR_RESPONSE,
            its_session_info=(session_number << 8) | 1,  # end of session
        )
        last = await next_screen
        assert last.text == "Balance: 10 USD"
        assert not last.expects_reply and last.ended_reason == "released"
        assert handset.state.value == "idle"
        assert simulator.network.ussd.live_dialogues == 0
    finally:
        await in_thread(esme.close)
        await as_deferred(simulator.stop())


@pytest_twisted.ensureDeferred
async def test_smpplib_speaks_the_umr_variant_and_receives_the_subscribers_abort(
    simulator_for,
):
    simulator = simulator_for("umr")
    await as_deferred(simulator.start())
    esme = BlockingEsme(simulator.smpp_port)
    try:
        await in_thread(esme.bind, "dfsp1", "secret")
        handset = simulator.network.handset(MSISDN)

        first_screen = as_deferred(handset.dial("*123*7#", timeout=10))
        begin = await in_thread(esme.next_delivery)
        assert begin.ussd_service_op == PSSR_INDICATION
        assert begin.destination_addr == b"123" and begin.short_message == b"*123*7#"
        assert begin.data_coding == 0x0F, "the variant writes GSM text as DCS 0x0F"
        assert begin.its_session_info is None
        reference = begin.user_message_reference
        assert reference is not None

        await in_thread(
            esme.submit,
            source_addr="123",
            destination_addr=MSISDN,
            short_message=b"Pay invoice 7?\n1. Yes\n2. No",
            ussd_service_op=USSR_REQUEST,
            user_message_reference=reference,
        )
        screen = await first_screen
        assert screen.expects_reply and screen.text.startswith("Pay invoice 7?")

        next_screen = as_deferred(handset.reply("1", timeout=10))
        answer = await in_thread(esme.next_delivery)
        assert answer.ussd_service_op == USSR_CONFIRM
        assert answer.user_message_reference == reference and answer.short_message == b"1"
        await in_thread(
            esme.submit,
            source_addr="123",
            destination_addr=MSISDN,
            short_message=b"Enter PIN",
            ussd_service_op=USSR_REQUEST,
            user_message_reference=reference,
        )
        assert (await next_screen).text == "Enter PIN"

        await as_deferred(handset.cancel())
        abort = await in_thread(esme.next_delivery)
        assert abort.ussd_service_op == UMR_ABORT
        assert abort.user_message_reference == reference
        assert handset.screen is not None and handset.screen.ended_reason == "aborted"

        late = await in_thread(
            esme.submit,
            source_addr="123",
            destination_addr=MSISDN,
            short_message=b"Too late",
            ussd_service_op=PSSR_RESPONSE,
            user_message_reference=reference,
        )
        assert late.status == 0x0B, "an MT unit for an ended dialogue: ESME_RINVDSTADR"
    finally:
        await in_thread(esme.close)
        await as_deferred(simulator.stop())
