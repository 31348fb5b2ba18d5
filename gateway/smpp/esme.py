"""The Twisted ESME: binds to an SMSC, keeps the link alive, sends requests, takes deliveries.

Layers, thinnest first:

- ``gateway.smpp.connection``: ``EsmeProtocol`` frames bytes into PDUs for its
  ``Connection`` (one SMPP session over one transport: bind, keep-alive, the SMSC's
  requests, unbind); a ``Dialer`` keeps one role connected (transceiver, or transmitter /
  receiver for a pair), reconnecting with exponential back-off and jitter until stopped.
- ``EsmeClient`` is what the gateway uses: ``submit``, ``stop``, ``bound``; the window,
  queue, throttling and rate limit are the sans-I/O ``gateway.smpp.link.Outbound``.

Time comes only from the injected reactor (``callLater`` / ``seconds``), so tests drive
everything with ``twisted.internet.task.Clock``. ``submit_deferred`` / ``stop_deferred``
are the Twisted edge; ``submit`` / ``stop`` are the same for asyncio callers.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet.base import DelayedCall
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.logger import LogLevel

from gateway.smpp.connection import Connection, Dialer, emit
from gateway.smpp.link import (
    ROLES,
    Backoff,
    BindMode,
    ConnectionState,
    EsmeConfig,
    EsmeError,
    EsmeStats,
    Lifecycle,
    LinkLost,
    LinkStopped,
    Outbound,
    OutboundLimits,
    QueueFull,
    Request,
    ResponseTimeout,
    SequenceNumbers,
)
from gateway.smpp.pdu import Pdu
from ussdloop.aio import wait_deferred

__all__ = [
    "BindMode",
    "EsmeClient",
    "EsmeConfig",
    "EsmeError",
    "EsmeStats",
    "LinkLost",
    "LinkStopped",
    "QueueFull",
    "ResponseTimeout",
]


class EsmeClient:
    """An SMPP v3.4 ESME: one transceiver link, or a transmitter and receiver pair.

    ``on_deliver`` is called synchronously for every deliver_sm / data_sm; its return
    value is the command_status of the response sent at once (an exception in it answers
    ESME_RSYSERR and is logged; it never costs the link).
    """

    def __init__(
        self,
        config: EsmeConfig,
        on_deliver: Callable[[Pdu], int],
        *,
        reactor: Any = None,
        rng: random.Random | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.config = config
        self.reactor = reactor
        self.rng = rng or random.Random()
        self.stats = EsmeStats()
        self.sequences = SequenceNumbers()
        self.backoff = Backoff(
            config.reconnect_initial, config.reconnect_max, config.reconnect_jitter
        )
        self.outbound = Outbound(OutboundLimits.of(config), self.sequences)
        self.on_deliver = on_deliver
        self._dialers = {role: Dialer(self, role) for role in ROLES[config.bind_mode]}
        self._waiters: dict[Request, Deferred[Pdu]] = {}
        self._bound_waiters: list[Deferred[None]] = []
        self._wakeup: DelayedCall | None = None
        self._lifecycle = Lifecycle.NEW
        self._stop_waiters: list[Deferred[None]] = []
        self.tls_options: Any = None  # built by start() when config.tls

    # --- public API

    @property
    def bound(self) -> bool:
        """A transmit-capable bind is up (for a pair, the receiver's too)."""
        return all(
            d.connection is not None and d.connection.state is ConnectionState.BOUND
            for d in self._dialers.values()
        )

    @property
    def stopping(self) -> bool:
        return self._lifecycle in (Lifecycle.STOPPING, Lifecycle.STOPPED)

    def when_bound(self) -> Deferred[None]:
        if self.bound:
            return succeed(None)
        if self.stopping:
            return fail(LinkStopped("the ESME is stopped"))
        waiter: Deferred[None] = Deferred()
        self._bound_waiters.append(waiter)
        return waiter

    def start(self) -> None:
        """Connect and bind; keeps reconnecting, with back-off, until ``stop``."""
        if self._lifecycle is not Lifecycle.NEW:
            raise RuntimeError(f"an EsmeClient starts once (it is {self._lifecycle.value})")
        self._lifecycle = Lifecycle.RUNNING
        if self.config.tls:
            self.tls_options = self._tls_options()
        for dialer in self._dialers.values():
            dialer.dial()

    async def submit(self, pdu: Pdu) -> Pdu:
        """Send a request, return its response (throttling is retried inside)."""
        return await wait_deferred(self.submit_deferred(pdu))

    async def stop(self) -> None:
        """Stop reconnecting, unbind, close; pending submits fail with ``LinkStopped``."""
        await wait_deferred(self.stop_deferred())

    def submit_deferred(self, pdu: Pdu) -> Deferred[Pdu]:
        """``submit`` for Twisted callers; cancelling it withdraws a request not yet sent."""
        if self.stopping:
            return fail(LinkStopped("submit after stop()"))
        try:
            queued = self.outbound.accept(pdu)
        except (QueueFull, ValueError) as error:
            return fail(error)
        waiter: Deferred[Pdu] = Deferred(lambda _: self._withdraw(queued))
        self._waiters[queued] = waiter
        self._pump()
        return waiter

    def stop_deferred(self) -> Deferred[None]:
        """``stop`` for Twisted callers."""
        if self._lifecycle is Lifecycle.STOPPED:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._stop_waiters.append(waiter)
        if self._lifecycle is not Lifecycle.STOPPING:
            self._lifecycle = Lifecycle.STOPPING
            self._begin_stop()
        return waiter

    # --- from connections

    def connection_changed(self, connection: Connection) -> None:
        if connection.role.transmits:
            if connection.state is ConnectionState.BOUND:
                self.outbound.open()
            else:
                self.outbound.hold()
        dialer = self._dialers[connection.role]
        if connection.state is ConnectionState.BOUND:
            self.stats.binds += 1
            dialer.attempt = 0
            self._notify_bound()
        elif connection.state is ConnectionState.CLOSED and dialer.connection is connection:
            if connection.role.transmits:
                self._lose_in_flight()
            dialer.redial()
        self._pump()

    def request_answered(self, connection: Connection, pdu: Pdu) -> None:
        now = self.reactor.seconds()
        answer = self.outbound.on_response(pdu, now) if connection.role.transmits else None
        if answer is None:
            emit(LogLevel.warn, "unexpected_response", self.config.system_id, connection.role, pdu)
            return
        self.stats.responses += 1
        if answer.final:
            self._settle(answer.request, pdu)
        else:
            self.stats.throttled += 1
            sends = answer.request.sends
            emit(
                LogLevel.warn, "throttled", self.config.system_id, connection.role, pdu, sends=sends
            )
        self._pump()

    # --- the outbound pump

    def _pump(self) -> None:
        transmitter = self._transmitter()
        if transmitter is not None:
            for sending in self.outbound.take_sendable(self.reactor.seconds()):
                transmitter.write_frame(sending.wire())
                self.stats.submitted += 1
            in_flight = self.outbound.in_flight
            if in_flight > self.stats.max_in_flight:
                self.stats.max_in_flight = in_flight
        self._schedule_wakeup()

    def _cancel_wakeup(self) -> None:
        if self._wakeup is not None and self._wakeup.active():
            self._wakeup.cancel()
        self._wakeup = None

    def _schedule_wakeup(self) -> None:
        self._cancel_wakeup()
        when = self.outbound.next_wakeup()
        if when is not None:
            delay = max(0.0, when - self.reactor.seconds())
            self._wakeup = self.reactor.callLater(delay, self._on_wakeup)

    def _on_wakeup(self) -> None:
        self._wakeup = None
        for late in self.outbound.expire(self.reactor.seconds()):
            self.stats.timeouts += 1
            emit(
                LogLevel.warn,
                "response_timeout",
                self.config.system_id,
                command=late.command_id.name,
                sequence_number=late.sequence_number,
            )
            self._settle(late, ResponseTimeout(f"no response in {self.config.response_timeout}s"))
        self._pump()

    def _transmitter(self) -> Connection | None:
        for dialer in self._dialers.values():
            if dialer.role.transmits:
                return dialer.connection
        return None

    # --- settling callers

    def _settle(self, settled: Request, result: Pdu | EsmeError) -> None:
        waiter = self._waiters.pop(settled, None)
        if waiter is None or waiter.called:
            return  # the caller cancelled
        if isinstance(result, Pdu):
            waiter.callback(result)
        else:
            waiter.errback(result)

    def _withdraw(self, queued: Request) -> None:
        if self.outbound.withdraw(queued):
            self._waiters.pop(queued, None)

    def _lose_in_flight(self) -> None:
        error = LinkStopped if self.stopping else LinkLost
        for lost in self.outbound.close():
            self._settle(lost, error(f"connection closed with sequence {lost.sequence_number}"))

    def _notify_bound(self) -> None:
        if self.bound:
            waiters, self._bound_waiters = self._bound_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def _begin_stop(self) -> None:
        for queued in self.outbound.drain():
            self._settle(queued, LinkStopped("stopped before it was sent"))
        waiters, self._bound_waiters = self._bound_waiters, []
        for waiter in waiters:
            waiter.errback(LinkStopped("the ESME is stopped"))
        self.outbound.hold()
        closing = gatherResults([d.stop() for d in self._dialers.values()])
        closing.addBoth(self._finish_stop)

    def _finish_stop(self, _: object) -> None:
        self._cancel_wakeup()
        self._lose_in_flight()
        self._lifecycle = Lifecycle.STOPPED
        waiters, self._stop_waiters = self._stop_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _tls_options(self) -> Any:
        from twisted.internet import ssl

        hostname = self.config.tls_hostname or self.config.host
        if self.config.tls_ca_file is None:
            return ssl.optionsForClientTLS(hostname)
        try:
            ca = ssl.Certificate.loadPEM(Path(self.config.tls_ca_file).read_bytes())
        except Exception as error:
            raise ValueError(f"EsmeConfig.tls_ca_file: no PEM certificate: {error}") from error
        return ssl.optionsForClientTLS(hostname, trustRoot=ca)
