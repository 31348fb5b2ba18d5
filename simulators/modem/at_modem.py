"""A GSM modem's AT command interface to a virtual handset, one TCP port per handset.

Modem tools (pyserial's ``socket://host:port``, minicom over a TCP bridge, gammu-style
scripts) talk to a handset the way they talk to a USB modem: 3GPP TS 27.007 for USSD
(``AT+CUSD`` and the unsolicited ``+CUSD:``), TS 27.005 text mode for SMS (``AT+CMGF=1``,
``+CMTI:``, ``AT+CMGL``/``CMGR``/``CMGD``), V.250 for the rest (command lines ended by
CR, echo, ``OK``/``ERROR``).

The commands are interpreted sans-I/O by ``at_commands.AtSession`` (bytes in, bytes
out). ``AtModemServer`` is the thin Twisted edge: it listens, feeds each connection's
session, and turns the handset's events (every screen, solicited or not, and every SMS)
into unsolicited result codes. A handset's message storage (``at_sms.Inbox``) is shared
by every connection to its port.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure

from simulators.modem.at_commands import AtSession, ModemIdentity
from simulators.modem.at_sms import INBOX_CAPACITY, Inbox
from simulators.modem.handsets import Handset, HandsetEvent, SmsEvent, UssdScreenEvent, mask
from simulators.modem.network import MobileNetwork
from ussdloop.aio import wait_deferred

log = logging.getLogger(__name__)

MAX_CONNECTIONS_PER_MODEM = 8


class _ModemProtocol(Protocol):
    """One TCP connection to a handset's modem: bytes to the session and back.

    An unsolicited result code raised while a command line runs (a screen shown at once
    for an unknown code) is written after that line's result code, as a modem does.
    """

    def __init__(self, modem: _HandsetModem) -> None:
        self._modem = modem
        self.session = modem.new_session()
        self._open = False
        self._held: list[bytes] | None = None
        self._transport: Any = None  # Twisted's zope interfaces do not type-check here
        self._closed: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self._transport = self.transport
        if not self._modem.attach(self):
            self._transport.loseConnection()
            return
        self._open = True

    def dataReceived(self, data: bytes) -> None:
        self._held = []
        try:
            answer = self.session.receive(data)
        finally:
            held, self._held = self._held, None
        self.write(answer + b"".join(held))

    def unsolicited(self, data: bytes) -> None:
        if self._held is not None:
            self._held.append(data)
        else:
            self.write(data)

    def write(self, data: bytes) -> None:
        if data and self._open:
            self._transport.write(data)

    def close(self) -> Deferred[None]:
        """Hang up; fires once the connection is closed."""
        if self._open:
            self._transport.loseConnection()
        return self._closed

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._open = False
        self._modem.detach(self)
        if not self._closed.called:
            self._closed.callback(None)


@dataclass
class _HandsetModem:
    """One handset's modem: its message storage and the connections to it."""

    handset: Handset
    inbox: Inbox
    identity: ModemIdentity
    connections: set[_ModemProtocol] = field(default_factory=set)
    unsubscribe: Callable[[], None] | None = None

    def new_session(self) -> AtSession:
        return AtSession(self.handset.msisdn, self.inbox, self.handset, identity=self.identity)

    def attach(self, connection: _ModemProtocol) -> bool:
        if len(self.connections) >= MAX_CONNECTIONS_PER_MODEM:
            log.warning("event=at_modem_connection_refused msisdn=%s", mask(self.handset.msisdn))
            return False
        self.connections.add(connection)
        return True

    def detach(self, connection: _ModemProtocol) -> None:
        self.connections.discard(connection)

    def on_event(self, event: HandsetEvent) -> None:
        """Screens and messages reach every connection as unsolicited result codes."""
        if isinstance(event, UssdScreenEvent):
            for connection in list(self.connections):
                connection.unsolicited(connection.session.ussd_screen(event.screen))
        elif isinstance(event, SmsEvent):
            index = self.inbox.add(event.sms)
            if index is None:
                log.warning("event=at_modem_storage_full msisdn=%s", mask(self.handset.msisdn))
                return
            for connection in list(self.connections):
                connection.unsolicited(connection.session.sms_arrived(index))


class _ModemFactory(Factory):
    def __init__(self, modem: _HandsetModem) -> None:
        self._modem = modem

    def buildProtocol(self, addr: Any) -> _ModemProtocol:
        return _ModemProtocol(self._modem)


class AtModemServer:
    """AT modems for ``msisdns``: handset ``i`` listens on ``base_port + i``.

    With ``base_port`` 0 every modem takes a free port; ``ports`` maps MSISDN to port.
    """

    def __init__(
        self,
        network: MobileNetwork,
        host: str = "127.0.0.1",
        base_port: int = 7000,
        msisdns: Sequence[str] = (),
        *,
        reactor: Any = None,
        identity: ModemIdentity | None = None,
        inbox_capacity: int = INBOX_CAPACITY,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        if len(set(msisdns)) != len(msisdns):
            raise ValueError("AtModemServer: each MSISDN may have one modem")
        self._network = network
        self._host = host
        self._base_port = base_port
        self._msisdns = tuple(msisdns)
        self._reactor = reactor
        self._identity = identity or ModemIdentity()
        self._inbox_capacity = inbox_capacity
        self._modems: dict[str, _HandsetModem] = {}
        self._listening: list[Any] = []
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        try:
            for offset, msisdn in enumerate(self._msisdns):
                self._start_modem(offset, msisdn)
        except Exception:
            await self.stop()
            raise

    def _start_modem(self, offset: int, msisdn: str) -> None:
        handset = self._network.handset(msisdn)
        modem = _HandsetModem(handset, Inbox(self._inbox_capacity), self._identity)
        for sms in handset.sms:
            modem.inbox.add(sms)
        modem.unsubscribe = handset.subscribe(modem.on_event)
        self._modems[msisdn] = modem
        port_number = self._base_port + offset if self._base_port else 0
        port = self._reactor.listenTCP(port_number, _ModemFactory(modem), interface=self._host)
        self._listening.append(port)
        self.ports[msisdn] = port.getHost().port
        log.info("event=at_modem_listening msisdn=%s port=%d", mask(msisdn), self.ports[msisdn])

    async def stop(self) -> None:
        listening, self._listening = self._listening, []
        for port in listening:
            await wait_deferred(maybeDeferred(port.stopListening))
        closing: list[Deferred[None]] = []
        for modem in self._modems.values():
            if modem.unsubscribe is not None:
                modem.unsubscribe()
            closing.extend(connection.close() for connection in list(modem.connections))
        if closing:
            await wait_deferred(DeferredList(closing, consumeErrors=True))
        self._modems.clear()
        self.ports.clear()
