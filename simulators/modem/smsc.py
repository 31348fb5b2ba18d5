"""The SMPP server: the SMSC / USSD centre our gateway binds to as an ESME.

``SmscProtocol`` is the thin Twisted shell around one ``smpp_link.SmscLink``;
``SmscFactory`` owns the accounts, every connection, and the routing of
network-to-ESME messages: to a receive-capable bind of the account, round robin over
its connections (a transmitter + receiver pair, several gateway nodes). Delivery
receipts for an account with no receiving bind are kept (up to a limit) and sent when
one binds, as an SMSC stores messages for an absent ESME.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol, ServerFactory

from gateway.smpp.constants import CommandStatus
from gateway.smpp.pdu import Pdu
from simulators.modem.clock import ReactorClock
from simulators.modem.faults import DelayLine, Faults
from simulators.modem.smpp_link import (
    BindType,
    DeliveryResult,
    SmscLink,
    SubmitOutcome,
)

log = logging.getLogger(__name__)

S = CommandStatus
MAX_CONNECTIONS = 256
MAX_BINDS_PER_ACCOUNT = 32
MAX_STORED = 1_000  # messages kept per account while it has no receiving bind
MAX_WINDOW = 1_000
_SHORT_CODE = re.compile(r"\d{1,15}")


@dataclass(frozen=True)
class EsmeAccount:
    """One SMPP account: credentials, the short codes it serves, its dialect and limits."""

    system_id: str
    password: str
    short_codes: tuple[str, ...]
    dialect: str = "standard"
    bind_types: frozenset[str] = frozenset({"transceiver", "transmitter", "receiver"})
    window: int = 10

    def __post_init__(self) -> None:
        where = f"accounts[{self.system_id!r}]"
        if not 0 < len(self.system_id) <= 15:
            raise ValueError(f"{where}.system_id must be 1-15 characters (SMPP limit)")
        if len(self.password) > 8:
            raise ValueError(f"{where}.password must be at most 8 characters (SMPP limit)")
        codes = tuple(normalise_short_code(code) for code in self.short_codes)
        for code in codes:
            if not _SHORT_CODE.fullmatch(code):
                raise ValueError(f"{where}.short_codes: {code!r} is not a short code like *123#")
        object.__setattr__(self, "short_codes", codes)
        bind_types = frozenset(self.bind_types)
        unknown = bind_types - {b.value for b in BindType}
        if unknown or not bind_types:
            raise ValueError(f"{where}.bind_types: unknown {sorted(unknown)} or empty")
        object.__setattr__(self, "bind_types", bind_types)
        if not 1 <= self.window <= MAX_WINDOW:
            raise ValueError(f"{where}.window must be 1-{MAX_WINDOW}, got {self.window}")


def normalise_short_code(code: str) -> str:
    """``*123#``, ``123#`` and ``123`` all name short code ``123``."""
    return code.strip().strip("*#")


class MessageCentre(TypingProtocol):
    """Where ``submit_sm`` goes: the USSD and SMS centres (``network.MobileNetwork``)."""

    def submit(self, system_id: str, pdu: Pdu) -> SubmitOutcome: ...


class SmscProtocol(Protocol):
    """Twisted shell of one ESME connection: bytes to the link, the link's bytes out."""

    def __init__(self, factory: SmscFactory) -> None:
        self.smsc = factory
        self._line = DelayLine(factory.clock, factory.faults)
        self._waiting_close: list[Deferred[None]] = []
        self.link: SmscLink | None = None
        self._transport: Any = None  # Twisted's zope interfaces do not type-check here
        self._open = False

    def connectionMade(self) -> None:
        self._transport = self.transport
        # USSD is request/answer in small PDUs: Nagle + delayed ACK would add ~40 ms each.
        if hasattr(self._transport, "setTcpNoDelay"):
            self._transport.setTcpNoDelay(True)
        peer = self._transport.getPeer()
        self._open = True
        self.link = self.smsc.new_link(
            self, f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"
        )
        self.smsc.connection_made(self)

    def dataReceived(self, data: bytes) -> None:
        if self.link is not None:
            self.link.data_received(data)

    def connectionLost(self, reason: Any = None) -> None:
        self._open = False
        self._line.clear()
        if self.link is not None:
            self.link.connection_lost()
        self.smsc.connection_lost(self)
        waiting, self._waiting_close = self._waiting_close, []
        for d in waiting:
            d.callback(None)

    def write(self, data: bytes) -> None:
        self._line.push(self._write_now, data)

    def close(self) -> None:
        self._line.push(self._close_now)

    def abort(self) -> None:
        """Drop the connection now, as a crashed SMSC would."""
        self._line.clear()
        if self._open:
            transport = self._transport
            getattr(transport, "abortConnection", transport.loseConnection)()

    def when_closed(self) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        if self._open:
            self._waiting_close.append(d)
        else:
            d.callback(None)
        return d

    def _write_now(self, data: bytes) -> None:
        if self._open:
            self._transport.write(data)

    def _close_now(self) -> None:
        if self._open:
            self._transport.loseConnection()


class SmscFactory(ServerFactory):
    """The SMSC: accounts, connections, and routing of messages to the ESMEs."""

    protocol = SmscProtocol

    def __init__(
        self,
        accounts: Iterable[EsmeAccount],
        clock: ReactorClock,
        faults: Faults,
        *,
        system_id: str = "USSDLOOP",
        response_timeout: float = 10.0,
        retry_pause: float = 1.0,
    ) -> None:
        self.accounts = {account.system_id: account for account in accounts}
        self.clock = clock
        self.faults = faults
        self.centre: MessageCentre | None = None
        self._system_id = system_id
        self._response_timeout = response_timeout
        self._retry_pause = retry_pause
        self.connections: set[SmscProtocol] = set()
        self._binds: dict[str, list[SmscLink]] = {name: [] for name in self.accounts}
        self._receivers: dict[str, list[SmscLink]] = {name: [] for name in self.accounts}
        self._turn: dict[str, int] = dict.fromkeys(self.accounts, 0)
        self._stored: dict[str, deque[tuple[Pdu, DeliveryResult]]] = {
            name: deque() for name in self.accounts
        }

    # --- connections ---------------------------------------------------------------------

    def buildProtocol(self, addr: Any) -> SmscProtocol | None:
        if len(self.connections) >= MAX_CONNECTIONS:
            log.warning("event=esme_connection_refused reason=connection_limit peer=%s", addr)
            return None
        return SmscProtocol(self)

    def new_link(self, protocol: SmscProtocol, peer: str) -> SmscLink:
        return SmscLink(
            self,
            self.clock,
            self.faults,
            write=protocol.write,
            close=protocol.close,
            system_id=self._system_id,
            response_timeout=self._response_timeout,
            retry_pause=self._retry_pause,
            peer=peer,
        )

    def connection_made(self, protocol: SmscProtocol) -> None:
        self.connections.add(protocol)

    def connection_lost(self, protocol: SmscProtocol) -> None:
        self.connections.discard(protocol)

    def bound_accounts(self) -> list[str]:
        return sorted(name for name, links in self._binds.items() if links)

    def unbind_all(self) -> list[Deferred[None]]:
        """Ask every ESME to unbind; the Deferreds fire as the connections close."""
        closing = [protocol.when_closed() for protocol in self.connections]
        for protocol in list(self.connections):
            if protocol.link is not None:
                protocol.link.unbind()
        return closing

    def inject_raw(self, system_id: str, data: bytes) -> int:
        """Write ``data`` unchanged to every bound connection of the account (a fault:
        garbage, or hand-made PDUs, toward the ESME); returns how many got it."""
        links = list(self._binds.get(system_id, ()))
        for link in links:
            link.write_raw(data)
        return len(links)

    def drop_all(self) -> int:
        """Drop every ESME connection now (a fault, or a restart)."""
        protocols = list(self.connections)
        for protocol in protocols:
            protocol.abort()
        if protocols:
            log.info("event=esme_connections_dropped count=%d", len(protocols))
        return len(protocols)

    # --- LinkOwner: binds and submissions ---------------------------------------------------

    def authenticate(
        self, system_id: str, password: str, bind_type: BindType
    ) -> tuple[CommandStatus, int]:
        account = self.accounts.get(system_id)
        if account is None:
            return S.ESME_RINVSYSID, 0
        if password != account.password:
            return S.ESME_RINVPASWD, 0
        if bind_type.value not in account.bind_types:
            return S.ESME_RBINDFAIL, 0
        if len(self._binds[system_id]) >= MAX_BINDS_PER_ACCOUNT:
            return S.ESME_RBINDFAIL, 0
        return S.ESME_ROK, account.window

    def bound(self, link: SmscLink) -> None:
        self._binds[link.system_id].append(link)
        if link.receives:
            self._receivers[link.system_id].append(link)
            self._flush_stored(link.system_id)

    def closed(self, link: SmscLink) -> None:
        for table in (self._binds, self._receivers):
            links = table.get(link.system_id)
            if links is not None and link in links:
                links.remove(link)
        if link.system_id:
            log.info("event=esme_link_closed peer=%s system_id=%s", link.peer, link.system_id)

    def submit(self, link: SmscLink, pdu: Pdu) -> SubmitOutcome:
        if self.centre is None:
            return SubmitOutcome(S.ESME_RSYSERR)
        return self.centre.submit(link.system_id, pdu)

    # --- network-to-ESME routing -------------------------------------------------------------

    def deliver(
        self, system_id: str, pdu: Pdu, on_result: DeliveryResult, *, store: bool = False
    ) -> bool:
        """Send ``pdu`` to a receiving bind of the account, round robin.

        False when no bind can take it (``store=True``: kept until one binds, if room).
        A PDU lost to the ``drop_mo`` fault counts as sent: nobody answers it.
        """
        receivers = self._receivers.get(system_id)
        if receivers is None:
            return False
        if self.faults.drops_mo():
            return True
        count = len(receivers)
        for _ in range(count):
            turn = self._turn[system_id] % count
            self._turn[system_id] = turn + 1
            if receivers[turn].deliver(pdu, on_result):
                return True
        if store and len(self._stored[system_id]) < MAX_STORED:
            self._stored[system_id].append((pdu, on_result))
            return True
        return False

    def _flush_stored(self, system_id: str) -> None:
        stored = self._stored[system_id]
        while stored:
            pdu, on_result = stored.popleft()
            if not self.deliver(system_id, pdu, on_result):
                stored.appendleft((pdu, on_result))
                return
