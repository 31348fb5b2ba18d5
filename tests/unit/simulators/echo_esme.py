"""A minimal USSD application for simulator tests, and a network running with it.

``EchoEsme`` binds to the simulator's SMSC as a transceiver over loopback TCP (our
``gateway.smpp.pdu`` codec and ``gateway.smpp.dialects``, asyncio streams, nothing of
the gateway's ESME), answers every dialogue from a small menu, and can push a
network-initiated screen or send an SMS. ``echo_network()`` starts a real ``Simulator``
on a free port with one account for short code 123 and this application bound to it.

The menu (``echo_menu``): ``*123#`` opens "Echo service / 1. Balance / 0. Exit"; "1" ends
with the balance, "0" ends with "Goodbye", anything else is echoed back on a new screen.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from typing import Any

from gateway.smpp.constants import INTERFACE_VERSION_34, CommandId, Tag
from gateway.smpp.dialects import (
    STANDARD,
    Dialect,
    UssdAction,
    UssdMessage,
    build_mobile_terminated,
    parse_mobile_originated,
)
from gateway.smpp.gsm0338 import encode_text
from gateway.smpp.pdu import Pdu, PduError, PduStream, encode, request
from simulators.modem.service import EsmeAccount, Simulator, SimulatorConfig
from tests.support import until

SYSTEM_ID = "echo"
PASSWORD = "echo"
SHORT_CODE = "123"
WELCOME = "Echo service\n1. Balance\n0. Exit"
BALANCE = "Your balance is 10.00 USD"
GOODBYE = "Goodbye"
ANSWER_WAIT = 5.0  # seconds to wait for a response from the SMSC


Menu = Callable[[UssdMessage], tuple[UssdAction, str] | None]


def echo_menu(message: UssdMessage) -> tuple[UssdAction, str] | None:
    """The next screen for a unit from the network, or None (nothing to answer)."""
    if message.action is UssdAction.BEGIN:
        return UssdAction.CONTINUE, WELCOME
    if message.action is not UssdAction.CONTINUE:
        return None  # an abort or a notification's acknowledgement
    if message.text == "1":
        return UssdAction.END, BALANCE
    if message.text == "0":
        return UssdAction.END, GOODBYE
    return UssdAction.CONTINUE, f"You said: {message.text}"


class EchoEsme:
    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        system_id: str = SYSTEM_ID,
        password: str = PASSWORD,
        dialect: Dialect = STANDARD,
        menu: Menu = echo_menu,
    ) -> None:
        self._host, self._port = host, port
        self._system_id, self._password = system_id, password
        self._dialect = dialect
        self._menu = menu
        self._sequence = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Pdu]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self.received: list[UssdMessage] = []  # every USSD unit from the network
        self.receipts: list[Pdu] = []  # delivery receipts

    async def start(self) -> None:
        reader, self._writer = await asyncio.open_connection(self._host, self._port)
        self._reader_task = asyncio.ensure_future(self._read(reader))
        answer = await self._call(
            request(
                CommandId.BIND_TRANSCEIVER,
                self._next(),
                system_id=self._system_id,
                password=self._password,
                interface_version=INTERFACE_VERSION_34,
            )
        )
        if not answer.status_ok:
            raise RuntimeError(f"bind refused: status 0x{answer.command_status:08X}")

    @property
    def connected(self) -> bool:
        return self._reader_task is not None and not self._reader_task.done()

    async def stop(self) -> None:
        if self._writer is None:
            return
        if self.connected:
            with suppress(TimeoutError, ConnectionError):
                await self._call(request(CommandId.UNBIND, self._next()))
        writer, self._writer = self._writer, None
        writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)

    async def push(
        self, msisdn: str, text: str, *, expects_reply: bool = True, service_code: str = SHORT_CODE
    ) -> int:
        """A network-initiated screen (USSR request, or USSN notification); the status."""
        action = UssdAction.CONTINUE if expects_reply else UssdAction.NOTIFY
        message = UssdMessage(action, msisdn, service_code, text)
        answer = await self._call(build_mobile_terminated(self._dialect, message, self._next()))
        return answer.command_status

    async def send_sms(self, msisdn: str, text: str, *, sender: str = SHORT_CODE) -> int:
        encoded = encode_text(text)
        answer = await self._call(
            request(
                CommandId.SUBMIT_SM,
                self._next(),
                source_addr=sender,
                destination_addr=msisdn,
                data_coding=int(encoded.data_coding),
                short_message=encoded.payload,
            )
        )
        return answer.command_status

    # --- the line ------------------------------------------------------------------------

    def _next(self) -> int:
        return next(self._sequence)

    def _write(self, pdu: Pdu) -> None:
        if self._writer is not None:
            self._writer.write(encode(pdu))

    async def _call(self, pdu: Pdu) -> Pdu:
        answer: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._waiting[pdu.sequence_number] = answer
        self._write(pdu)
        try:
            return await asyncio.wait_for(answer, ANSWER_WAIT)
        finally:
            self._waiting.pop(pdu.sequence_number, None)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        stream = PduStream()
        while data := await reader.read(65536):
            for item in stream.feed(data):
                if not isinstance(item, PduError):
                    self._received(item)

    def _received(self, pdu: Pdu) -> None:
        if pdu.command_id.is_response:
            waiter = self._waiting.get(pdu.sequence_number)
            if waiter is not None and not waiter.done():
                waiter.set_result(pdu)
        elif pdu.command_id is CommandId.DELIVER_SM:
            self._write(pdu.response())
            self._delivered(pdu)
        elif pdu.command_id in (CommandId.ENQUIRE_LINK, CommandId.UNBIND):
            self._write(pdu.response())

    def _delivered(self, pdu: Pdu) -> None:
        if pdu.tlv(Tag.USSD_SERVICE_OP) is None:
            self.receipts.append(pdu)
            return
        message = parse_mobile_originated(self._dialect, pdu)
        self.received.append(message)
        answer = self._menu(message)
        if answer is not None:
            action, text = answer
            reply = UssdMessage(
                action, message.msisdn, message.service_code, text, message.session_id
            )
            self._write(build_mobile_terminated(self._dialect, reply, self._next()))


@dataclass
class EchoNetwork:
    simulator: Simulator
    esme: EchoEsme


@asynccontextmanager
async def echo_network(menu: Menu = echo_menu, **timers: Any) -> AsyncIterator[EchoNetwork]:
    """A running simulator (free port) with the echo application bound for ``*123#``.

    ``timers`` overrides ``SimulatorConfig`` timers (``application_timeout=2.0``, ...).
    """
    account = EsmeAccount(SYSTEM_ID, PASSWORD, (SHORT_CODE,))
    config = SimulatorConfig(smpp_port=0, accounts=(account,))
    simulator = Simulator(replace(config, **timers))
    await simulator.start()
    esme = EchoEsme(simulator.smpp_port, menu=menu)
    try:
        await esme.start()
        await until(lambda: SYSTEM_ID in simulator.bound_accounts())
        yield EchoNetwork(simulator, esme)
    finally:
        await esme.stop()
        await simulator.stop()
