"""One role's SMPP link for the ESME: the Twisted protocol, the session over it, the dialer.

Layers, thinnest first:

- ``EsmeProtocol`` frames bytes into PDUs (``PduStream``) and hands each to its
  ``Connection``; nothing it receives can raise out of ``dataReceived``.
- ``Connection`` is one SMPP session over one transport: bind, keep-alive
  (``enquire_link``), answers to the SMSC's requests, unbind; its ``ConnectionState``
  moves only along ``gateway.smpp.link.TRANSITIONS``.
- ``Dialer`` owns one role's connection (transceiver, or transmitter / receiver for a
  pair) and reconnects with exponential back-off and jitter until stopped.

Both work for an ``Esme`` (``gateway.smpp.esme.EsmeClient`` is the one): its config,
clock, counters and sequence numbers, and the callbacks that tell it of binds, losses
and responses. Time comes only from its reactor (``callLater``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import suppress
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet.base import DelayedCall
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import NotConnectingError
from twisted.internet.protocol import ClientFactory, Protocol, connectionDone
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from gateway.smpp.constants import (
    BIND_COMMANDS,
    INTERFACE_VERSION_34,
    CommandId,
    CommandStatus,
    status_name,
)
from gateway.smpp.link import (
    Backoff,
    ConnectionState,
    EsmeConfig,
    EsmeStats,
    Role,
    SequenceNumbers,
    check_transition,
    error_answer,
)
from gateway.smpp.pdu import Pdu, PduError, PduStream, encode, request

# The ESME's log events keep the namespace they have always had.
log = Logger(namespace="gateway.smpp.esme")
_FORMAT = (
    "smpp {event}: system_id={system_id} role={role} command={command}"
    " sequence_number={sequence_number} status={status}"
)
State = ConnectionState


def _command_name(command: int | None) -> str | None:
    if command is None:
        return None
    try:
        return CommandId(command).name
    except ValueError:
        return f"0x{command:08X}"


def emit(
    level: LogLevel,
    event: str,
    system_id: str,
    role: Role | None = None,
    pdu: Pdu | None = None,
    *,
    failure: bool = False,
    **fields: Any,
) -> None:
    """One structured log event; ``pdu`` fills command, sequence_number and status.

    ``failure`` attaches the exception being handled (``Logger.failure``).
    """
    fields.setdefault("command", _command_name(pdu.command_id) if pdu else None)
    fields.setdefault("sequence_number", pdu.sequence_number if pdu else None)
    status = fields.pop("status", pdu.command_status if pdu else None)
    fields["status"] = None if status is None else status_name(status)
    fields.update(event=event, system_id=system_id, role=role.name.lower() if role else None)
    if failure:
        log.failure(_FORMAT, level=level, **fields)
    else:
        log.emit(level, _FORMAT, **fields)


class Esme(TypingProtocol):
    """The ESME as its connections and dialers see it (``EsmeClient`` is one)."""

    config: EsmeConfig
    reactor: Any  # IReactorTCP, IReactorSSL and IReactorTime
    rng: random.Random
    stats: EsmeStats
    sequences: SequenceNumbers
    backoff: Backoff
    tls_options: Any  # None unless config.tls
    on_deliver: Callable[[Pdu], int]

    @property
    def stopping(self) -> bool: ...

    def connection_changed(self, connection: Connection) -> None: ...

    def request_answered(self, connection: Connection, pdu: Pdu) -> None: ...


class EsmeProtocol(Protocol):
    """Bytes to PDUs for one ``Connection``; exceptions never escape ``dataReceived``."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._stream = PduStream()

    def connectionMade(self) -> None:
        # USSD is request/answer in small PDUs: Nagle + delayed ACK would add ~40 ms each.
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        self.connection.made(self.transport)

    def dataReceived(self, data: bytes) -> None:
        for item in self._stream.feed(data):
            try:
                self.connection.received(item)
            except Exception:
                self.connection.log_failure("handler_failed", item)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.connection.lost(reason)


class Connection:
    """One SMPP session over one transport: bind, keep-alive, the SMSC's requests, unbind."""

    def __init__(self, client: Esme, role: Role) -> None:
        self.client = client
        self.role = role
        self.state = State.CONNECTED
        self.transport: Any = None
        self._control: dict[int, CommandId] = {}  # our bind/enquire/unbind awaiting answers
        self._timers: dict[str, DelayedCall] = {}
        self._closed_waiters: list[Deferred[None]] = []

    # --- events from the protocol

    def made(self, transport: Any) -> None:
        self.transport = transport
        if self.client.stopping:
            self.close()
            return
        config = self.client.config
        self._send_control(
            self.role.value,
            system_id=config.system_id,
            password=config.password,
            system_type=config.system_type,
            interface_version=INTERFACE_VERSION_34,
            address_range=config.address_range,
        )
        self._move(State.BINDING)

    def received(self, item: Pdu | PduError) -> None:
        if isinstance(item, PduError):
            self._malformed(item)
        elif item.command_id.is_response:
            self._on_response(item)
        else:
            self._on_request(item)

    def lost(self, reason: Failure) -> None:
        for name in list(self._timers):
            self._cancel(name)
        for sequence_number in self._control:
            self.client.sequences.release(sequence_number)
        self._control.clear()
        self._log(LogLevel.info, "connection_lost", reason=reason.getErrorMessage())
        self._move(State.CLOSED)
        waiters, self._closed_waiters = self._closed_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    # --- what the client asks for

    def write(self, pdu: Pdu) -> None:
        self.write_frame(encode(pdu))

    def write_frame(self, frame: bytes) -> None:
        if self.state not in (State.CLOSING, State.CLOSED):
            self.transport.write(frame)

    def shutdown(self) -> Deferred[None]:
        """Orderly end: unbind if bound (waiting up to response_timeout), then close."""
        if self.state is State.CLOSED:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._closed_waiters.append(waiter)
        if self.state is State.BOUND:
            self._move(State.UNBINDING)
            self._send_control(CommandId.UNBIND)
        elif self.state in (State.CONNECTED, State.BINDING):
            self.close()
        return waiter

    def close(self, *, abort: bool = False) -> None:
        if self.state in (State.CLOSING, State.CLOSED):
            return
        for name in list(self._timers):
            self._cancel(name)
        self._move(State.CLOSING)
        if abort:
            self.transport.abortConnection()
        else:
            self.transport.loseConnection()
            self._timer("close", self.client.config.response_timeout, self._abort)

    def log_failure(self, event: str, item: Pdu | PduError) -> None:
        pdu = item if isinstance(item, Pdu) else None
        emit(LogLevel.error, event, self.client.config.system_id, self.role, pdu, failure=True)

    # --- requests from the SMSC

    def _on_request(self, pdu: Pdu) -> None:
        command = pdu.command_id
        if command is CommandId.ENQUIRE_LINK:
            self.write(pdu.response())
        elif command is CommandId.UNBIND:
            self._log(LogLevel.info, "unbind_received", pdu)
            self.write(pdu.response())
            self.close()
        elif command in (CommandId.DELIVER_SM, CommandId.DATA_SM):
            self.write(pdu.response(self._deliver_status(pdu)))
        elif command in (CommandId.ALERT_NOTIFICATION, CommandId.OUTBIND):
            self._log(LogLevel.info, "ignored_request", pdu)  # neither has a response
        else:
            self._log(LogLevel.warn, "unexpected_request", pdu)
            self.write(pdu.response(CommandStatus.ESME_RINVCMDID))

    def _deliver_status(self, pdu: Pdu) -> int:
        if not self.role.receives or self.state not in (State.BOUND, State.UNBINDING):
            self._log(LogLevel.warn, "deliver_refused", pdu, status=CommandStatus.ESME_RINVBNDSTS)
            return CommandStatus.ESME_RINVBNDSTS
        try:
            status = int(self.client.on_deliver(pdu))
        except Exception:
            self.log_failure("on_deliver_failed", pdu)
            return CommandStatus.ESME_RSYSERR
        return status if 0 <= status <= 0xFFFFFFFF else CommandStatus.ESME_RSYSERR

    def _malformed(self, error: PduError) -> None:
        self.client.stats.malformed_received += 1
        answer = error_answer(error)
        self._log(LogLevel.warn, "malformed_pdu", answer, reason=error.reason, fatal=error.fatal)
        self.write(answer)
        if error.fatal:
            self.close()

    # --- responses

    def _on_response(self, pdu: Pdu) -> None:
        if pdu.command_id is CommandId.GENERIC_NACK:
            self.client.stats.generic_nacks_received += 1
            self._log(LogLevel.warn, "generic_nack_received", pdu)
        command = self._control.pop(pdu.sequence_number, None)
        if command is None:
            self.client.request_answered(self, pdu)
            return
        self.client.sequences.release(pdu.sequence_number)
        self._cancel(command.response.name.lower())
        if command in BIND_COMMANDS:
            self._bind_answered(pdu)
        elif command is CommandId.ENQUIRE_LINK:
            self._timer("enquire_link", self.client.config.enquire_link_interval, self._enquire)
        elif command is CommandId.UNBIND:
            self.close()

    def _bind_answered(self, pdu: Pdu) -> None:
        if pdu.command_id is not self.role.value.response or not pdu.status_ok:
            self._log(LogLevel.error, "bind_failed", pdu)
            self.close()
            return
        self._log(LogLevel.info, "bound", pdu)
        self._move(State.BOUND)
        self._timer("enquire_link", self.client.config.enquire_link_interval, self._enquire)

    # --- our requests and their timers

    def _send_control(self, command: CommandId, **params: Any) -> None:
        sequence_number = self.client.sequences.allocate()
        self._control[sequence_number] = command
        self.write(request(command, sequence_number, **params))
        name = command.response.name.lower()
        self._timer(name, self.client.config.response_timeout, self._no_answer, command)

    def _enquire(self) -> None:
        if self.state is State.BOUND:
            self.client.stats.enquire_links_sent += 1
            self._send_control(CommandId.ENQUIRE_LINK)

    def _no_answer(self, command: CommandId) -> None:
        self._log(LogLevel.error, "response_timeout", command=command.name)
        # A bind or keep-alive unanswered means a dead link: drop it hard and rebind.
        self.close(abort=command is not CommandId.UNBIND)

    def _abort(self) -> None:
        self.transport.abortConnection()

    def _timer(self, name: str, delay: float, fn: Callable[..., object], *args: Any) -> None:
        self._cancel(name)
        self._timers[name] = self.client.reactor.callLater(delay, fn, *args)

    def _cancel(self, name: str) -> None:
        call = self._timers.pop(name, None)
        if call is not None and call.active():
            call.cancel()

    def _move(self, new: ConnectionState) -> None:
        self.state = check_transition(self.state, new)
        self.client.connection_changed(self)

    def _log(self, level: LogLevel, event: str, pdu: Pdu | None = None, **fields: Any) -> None:
        emit(level, event, self.client.config.system_id, self.role, pdu, **fields)


class _Factory(ClientFactory):
    def __init__(self, dialer: Dialer) -> None:
        self.dialer = dialer

    def buildProtocol(self, addr: Any) -> EsmeProtocol:
        return EsmeProtocol(self.dialer.new_connection())

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        self.dialer.failed(reason)


class Dialer:
    """Keeps one role connected: dials, and redials with back-off until stopped."""

    def __init__(self, client: Esme, role: Role) -> None:
        self.client = client
        self.role = role
        self.connection: Connection | None = None
        self.attempt = 0  # consecutive failures since the last successful bind
        self._dials = 0
        self._connector: Any | None = None
        self._retry: DelayedCall | None = None

    def dial(self) -> None:
        self._retry = None
        if self.client.stopping:
            return
        self._dials += 1
        if self._dials > 1:
            self.client.stats.reconnects += 1
        config, reactor, factory = self.client.config, self.client.reactor, _Factory(self)
        if config.tls:
            options = self.client.tls_options
            self._connector = reactor.connectSSL(
                config.host, config.port, factory, options, timeout=config.response_timeout
            )
        else:
            self._connector = reactor.connectTCP(
                config.host, config.port, factory, timeout=config.response_timeout
            )

    def new_connection(self) -> Connection:
        self.connection = Connection(self.client, self.role)
        return self.connection

    def failed(self, reason: Failure) -> None:
        self._log(LogLevel.warn, "connect_failed", reason=reason.getErrorMessage())
        self.redial()

    def redial(self) -> None:
        self.connection = None
        if self.client.stopping:
            return
        delay = self.client.backoff.delay(self.attempt, self.client.rng)
        self.attempt += 1
        self._log(LogLevel.info, "reconnect_scheduled", delay=delay, attempt=self.attempt)
        self._retry = self.client.reactor.callLater(delay, self.dial)

    def stop(self) -> Deferred[None]:
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        if self.connection is not None:
            return self.connection.shutdown()
        if self._connector is not None:
            with suppress(NotConnectingError):
                self._connector.stopConnecting()
        return succeed(None)

    def _log(self, level: LogLevel, event: str, **fields: Any) -> None:
        emit(level, event, self.client.config.system_id, self.role, **fields)
