"""Sans-I/O model of an ESME's SMPP link: configuration, outbound window, queue, throttling,
rate, timers, sequence numbers, back-off and connection states.

Nothing here touches a socket or a clock: every method that depends on time takes
``now`` (seconds, from the caller's ``IReactorTime``), and the Twisted protocol in
``gateway.smpp.esme`` turns the answers into writes and ``callLater`` timers. So the
window, FIFO order, throttle pauses, token bucket, response deadlines, sequence numbers
and reconnect back-off are tested with plain values.
"""

from __future__ import annotations

import bisect
import random
from collections import deque
from dataclasses import dataclass
from enum import Enum

from gateway.smpp.constants import CommandId, CommandStatus
from gateway.smpp.pdu import Pdu, PduError, encode, generic_nack

MAX_SEQUENCE = 0x7FFFFFFF
THROTTLE_STATUSES = frozenset({CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL})
EPSILON = 1e-9  # float slack when comparing times taken from a clock
# Requests the link itself sends (or that only an SMSC sends): never through submit.
LINK_COMMANDS = frozenset(
    {
        CommandId.BIND_RECEIVER,
        CommandId.BIND_TRANSMITTER,
        CommandId.BIND_TRANSCEIVER,
        CommandId.UNBIND,
        CommandId.ENQUIRE_LINK,
        CommandId.OUTBIND,
        CommandId.DELIVER_SM,
        CommandId.ALERT_NOTIFICATION,
    }
)


class EsmeError(Exception):
    """Base of what a submit can fail with."""


class QueueFull(EsmeError):
    """The queue of requests waiting for the window is at its limit."""


class ResponseTimeout(EsmeError):
    """No response arrived within ``response_timeout`` of sending the request."""


class LinkLost(EsmeError):
    """The connection dropped with this request in flight (it may or may not have arrived)."""


class LinkStopped(EsmeError):
    """The client was stopped before this request got its response."""


class BindMode(Enum):
    TRANSCEIVER = "transceiver"
    PAIR = "pair"  # a transmitter and a receiver connection


@dataclass(frozen=True)
class EsmeConfig:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    bind_mode: BindMode = BindMode.TRANSCEIVER
    address_range: str = ""
    window: int = 10  # outstanding requests awaiting a response, per link
    queue_limit: int = 10_000  # requests waiting for the window; beyond: QueueFull at once
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    reconnect_initial: float = 1.0
    reconnect_max: float = 60.0
    reconnect_jitter: float = 0.25  # fraction of the delay, uniformly +/-
    throttle_pause: float = 1.0  # first pause on ESME_RTHROTTLED / ESME_RMSGQFUL, doubling
    throttle_pause_max: float = 30.0
    rate_limit: float | None = None  # max requests per second sent, None = unlimited
    tls: bool = False
    tls_ca_file: str | None = None  # trust this CA (PEM); None = system trust
    tls_hostname: str | None = None  # expected server name (defaults to host)

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("EsmeConfig.host must not be empty")
        for key, limit in (("system_id", 15), ("password", 8), ("system_type", 12)):
            if len(getattr(self, key)) > limit:
                raise ValueError(f"EsmeConfig.{key}: at most {limit} characters")
        if len(self.address_range) > 40:
            raise ValueError("EsmeConfig.address_range: at most 40 characters")
        if not 0 < self.port < 65536:
            raise ValueError(f"EsmeConfig.port: {self.port} is not a TCP port")
        if self.window < 1 or self.queue_limit < 0:
            raise ValueError("EsmeConfig.window must be >= 1 and queue_limit >= 0")
        for key in ("enquire_link_interval", "response_timeout", "reconnect_initial"):
            if getattr(self, key) <= 0:
                raise ValueError(f"EsmeConfig.{key} must be positive")
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError("EsmeConfig.reconnect_max must be >= reconnect_initial")
        if self.throttle_pause <= 0 or self.throttle_pause_max < self.throttle_pause:
            raise ValueError("EsmeConfig.throttle_pause must be > 0 and <= throttle_pause_max")
        if not 0 <= self.reconnect_jitter < 1:
            raise ValueError("EsmeConfig.reconnect_jitter must be in [0, 1)")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("EsmeConfig.rate_limit must be positive (or None)")


@dataclass
class EsmeStats:
    binds: int = 0  # successful binds
    reconnects: int = 0  # connection attempts after the first
    submitted: int = 0  # requests written, resends after throttling included
    responses: int = 0  # responses (or generic_nacks) matched to a submitted request
    throttled: int = 0  # responses with ESME_RTHROTTLED / ESME_RMSGQFUL
    timeouts: int = 0  # submitted requests that got no response in time
    enquire_links_sent: int = 0
    generic_nacks_received: int = 0
    malformed_received: int = 0
    max_in_flight: int = 0  # the most requests ever awaiting a response at once


class Role(Enum):
    TRANSCEIVER = CommandId.BIND_TRANSCEIVER
    TRANSMITTER = CommandId.BIND_TRANSMITTER
    RECEIVER = CommandId.BIND_RECEIVER

    @property
    def transmits(self) -> bool:
        return self is not Role.RECEIVER

    @property
    def receives(self) -> bool:
        return self is not Role.TRANSMITTER


ROLES = {
    BindMode.TRANSCEIVER: (Role.TRANSCEIVER,),
    BindMode.PAIR: (Role.TRANSMITTER, Role.RECEIVER),
}


def error_answer(error: PduError) -> Pdu:
    """SMPP's answer to an undecodable PDU: the command's own response, else generic_nack."""
    try:
        command: CommandId | None = CommandId(error.command_id)
    except ValueError:
        command = None
    if command is None or error.fatal or command.is_response:
        return generic_nack(error.sequence_number, error.status)
    return Pdu(command.response, error.sequence_number, error.status)


class SequenceNumbers:
    """Sequence numbers 1..0x7FFFFFFF, wrapping round, never one still outstanding."""

    def __init__(self, start: int = 1) -> None:
        if not 1 <= start <= MAX_SEQUENCE:
            raise ValueError(f"sequence start {start} outside 1..{MAX_SEQUENCE}")
        self._next = start
        self._outstanding: set[int] = set()

    def allocate(self) -> int:
        if len(self._outstanding) >= MAX_SEQUENCE:
            raise RuntimeError("every sequence number is outstanding")
        while self._next in self._outstanding:
            self._advance()
        number = self._next
        self._advance()
        self._outstanding.add(number)
        return number

    def release(self, number: int) -> None:
        self._outstanding.discard(number)

    def _advance(self) -> None:
        self._next = 1 if self._next >= MAX_SEQUENCE else self._next + 1


class TokenBucket:
    """At most ``rate`` sends per second: a bucket of one token refilled at ``rate``/s.

    A capacity of one token means no burst, so no one-second window ever holds more
    than ``rate`` sends.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._interval = 1.0 / rate
        self._next_free = float("-inf")

    def available_at(self) -> float:
        return self._next_free

    def try_take(self, now: float) -> bool:
        if now + EPSILON < self._next_free:
            return False
        self._next_free = max(self._next_free, now) + self._interval
        return True


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with uniform jitter: ``initial * 2**attempt`` up to ``maximum``."""

    initial: float
    maximum: float
    jitter: float

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.initial * 2 ** min(attempt, 64), self.maximum)
        return base * (1.0 + rng.uniform(-self.jitter, self.jitter))


@dataclass(eq=False)
class Request:
    """One submitted request: its encoded form, and where it stands in the link."""

    ticket: int  # acceptance order: the order requests go on the wire
    command_id: CommandId
    frame: bytes  # encoded once on acceptance; the sequence number is patched per send
    sequence_number: int = 0
    deadline: float = 0.0
    epoch: int = 0  # throttle pauses started before it was last sent
    sends: int = 0

    def wire(self) -> bytes:
        return self.frame[:12] + self.sequence_number.to_bytes(4, "big") + self.frame[16:]


@dataclass(frozen=True)
class OutboundLimits:
    window: int
    queue_limit: int
    response_timeout: float
    throttle_pause: float
    throttle_pause_max: float
    rate_limit: float | None = None

    @classmethod
    def of(cls, config: EsmeConfig) -> OutboundLimits:
        return cls(
            config.window,
            config.queue_limit,
            config.response_timeout,
            config.throttle_pause,
            config.throttle_pause_max,
            config.rate_limit,
        )


@dataclass(frozen=True)
class Answer:
    """What a response did to its request: ``final`` False means it was throttled and requeued."""

    request: Request
    response: Pdu
    final: bool


class Outbound:
    """The outbound half of a link: bounded FIFO queue, bounded window, throttle, rate.

    Requests are sent in acceptance order. A throttled request goes back to the head
    of the line (ahead of everything not yet sent, in acceptance order among the other
    throttled ones), the whole link pauses, and sending resumes with it first. The window
    and the pause belong to one connection: ``close`` hands back what was in flight and
    clears them; queued and throttled requests wait for the next connection.
    """

    def __init__(self, limits: OutboundLimits, sequences: SequenceNumbers) -> None:
        if limits.window < 1 or limits.queue_limit < 0:
            raise ValueError("window must be at least 1 and queue_limit not negative")
        self.limits = limits
        self._sequences = sequences
        self._queue: deque[Request] = deque()
        self._retry: list[Request] = []  # throttled, sorted by ticket, sent before the queue
        self._in_flight: dict[int, Request] = {}
        self._tickets = 0
        self._open = False
        self._bucket = TokenBucket(limits.rate_limit) if limits.rate_limit else None
        self._pause_step = limits.throttle_pause
        self._paused_until = float("-inf")
        self._epoch = 0

    # --- what the link holds

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def waiting(self) -> int:
        return len(self._retry) + len(self._queue)

    def paused(self, now: float) -> bool:
        return now + EPSILON < self._paused_until

    # --- inputs

    def accept(self, pdu: Pdu) -> Request:
        """Queue a request PDU; raises ``QueueFull``, or ``ValueError`` for one not sendable."""
        if pdu.command_id.is_response or pdu.command_id in LINK_COMMANDS:
            raise ValueError(f"{pdu.command_id.name} is not a request an ESME submits")
        if len(self._queue) >= self.limits.queue_limit:
            raise QueueFull(f"{len(self._queue)} requests already wait for the window")
        frame = encode(Pdu(pdu.command_id, 0, pdu.command_status, pdu.params, pdu.tlvs))
        self._tickets += 1
        request = Request(self._tickets, pdu.command_id, frame)
        self._queue.append(request)
        return request

    def withdraw(self, request: Request) -> bool:
        """Take back a request not yet sent (its caller gave up); False if already sent."""
        if request in self._retry:
            self._retry.remove(request)
            return True
        if request in self._queue:
            self._queue.remove(request)
            return True
        return False

    def open(self) -> None:
        """A transmit-capable bind is up: sending may start."""
        self._open = True

    def hold(self) -> None:
        """Stop sending (unbinding or closing); what is in flight may still be answered."""
        self._open = False

    def close(self) -> list[Request]:
        """The connection is gone: returns the requests that were in flight on it."""
        self._open = False
        lost = list(self._in_flight.values())
        for request in lost:
            self._sequences.release(request.sequence_number)
        self._in_flight.clear()
        self._pause_step = self.limits.throttle_pause
        self._paused_until = float("-inf")
        return lost

    def drain(self) -> list[Request]:
        """Remove and return every request not yet sent (the client is stopping)."""
        waiting = [*self._retry, *self._queue]
        self._retry.clear()
        self._queue.clear()
        return waiting

    def take_sendable(self, now: float) -> list[Request]:
        """The requests to write now, in order, each given a sequence number and deadline."""
        sent: list[Request] = []
        while self._can_send(now):
            request = self._retry.pop(0) if self._retry else self._queue.popleft()
            request.sequence_number = self._sequences.allocate()
            request.deadline = now + self.limits.response_timeout
            request.epoch = self._epoch
            request.sends += 1
            self._in_flight[request.sequence_number] = request
            sent.append(request)
        # Throttled requests were all in flight once: together they never exceed the window.
        assert len(self._in_flight) + len(self._retry) <= self.limits.window
        return sent

    def on_response(self, response: Pdu, now: float) -> Answer | None:
        """Match a response (or generic_nack) to its request; None if nothing awaits it."""
        request = self._in_flight.pop(response.sequence_number, None)
        if request is None:
            return None
        self._sequences.release(request.sequence_number)
        if response.command_status in THROTTLE_STATUSES:
            self._throttled(request, now)
            return Answer(request, response, final=False)
        if request.epoch == self._epoch:
            self._pause_step = self.limits.throttle_pause  # a success after the last pause
        return Answer(request, response, final=True)

    def expire(self, now: float) -> list[Request]:
        """Remove and return the requests in flight past their deadline."""
        late = [r for r in self._in_flight.values() if r.deadline <= now + EPSILON]
        for request in late:
            del self._in_flight[request.sequence_number]
            self._sequences.release(request.sequence_number)
        return late

    def next_wakeup(self) -> float | None:
        """When something may change by time alone: a deadline, a pause end, a token."""
        times = [r.deadline for r in self._in_flight.values()]
        if self._open and self.waiting and len(self._in_flight) < self.limits.window:
            ready = self._paused_until
            if self._bucket is not None:
                ready = max(ready, self._bucket.available_at())
            times.append(ready)
        return min(times) if times else None

    # --- rules

    def _can_send(self, now: float) -> bool:
        if not (self._open and self.waiting and len(self._in_flight) < self.limits.window):
            return False
        if self.paused(now):
            return False
        return self._bucket is None or self._bucket.try_take(now)

    def _throttled(self, request: Request, now: float) -> None:
        bisect.insort(self._retry, request, key=lambda r: r.ticket)
        if request.epoch != self._epoch:
            return  # sent before the current pause began: that pause already covers it
        self._paused_until = now + self._pause_step
        self._pause_step = min(self._pause_step * 2, self.limits.throttle_pause_max)
        self._epoch += 1


class Lifecycle(Enum):
    """An ESME client's life: started once, stopped once."""

    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class ConnectionState(Enum):
    """Where one SMPP connection stands; moves only along ``TRANSITIONS``."""

    CONNECTED = "connected"  # TCP (or TLS) up, nothing sent yet
    BINDING = "binding"  # bind_* sent, waiting for bind_*_resp
    BOUND = "bound"
    UNBINDING = "unbinding"  # unbind sent, waiting for unbind_resp
    CLOSING = "closing"  # we asked the transport to close
    CLOSED = "closed"


S = ConnectionState
TRANSITIONS: dict[ConnectionState, frozenset[ConnectionState]] = {
    S.CONNECTED: frozenset({S.BINDING, S.CLOSING, S.CLOSED}),
    S.BINDING: frozenset({S.BOUND, S.CLOSING, S.CLOSED}),
    S.BOUND: frozenset({S.UNBINDING, S.CLOSING, S.CLOSED}),
    S.UNBINDING: frozenset({S.CLOSING, S.CLOSED}),
    S.CLOSING: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
}


def check_transition(current: ConnectionState, new: ConnectionState) -> ConnectionState:
    """``new`` if the move from ``current`` is allowed; raises ``AssertionError`` if not."""
    if new not in TRANSITIONS[current]:
        raise AssertionError(f"connection state {current.value} -> {new.value} not allowed")
    return new
