"""One ESME connection seen from the SMSC: bind state, commands, the MO window.

Sans-I/O in the h11 sense: bytes come in through ``data_received``, bytes go out
through the injected ``write`` callable, and the connection is closed through ``close``;
``smsc.SmscProtocol`` is the thin Twisted shell. Time comes from an injected clock.

The link's states and their allowed transitions are explicit (``LinkState``,
``_TRANSITIONS``). Network-to-ESME messages (``deliver_sm``) go through a window of
``window`` outstanding PDUs; an ``ESME_RTHROTTLED``/``ESME_RMSGQFUL`` answer pauses the
link for ``retry_pause`` seconds and the PDU is sent again in its original order.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from gateway.smpp.constants import INTERFACE_VERSION_34, CommandId, CommandStatus, Tag
from gateway.smpp.pdu import Pdu, PduError, PduStream, encode, generic_nack, request
from simulators.modem.clock import ReactorClock, Timer, cancel
from simulators.modem.faults import Faults

log = logging.getLogger(__name__)

S = CommandStatus
MAX_QUEUE = 10_000  # deliver_sm waiting for a window slot, per connection
MAX_ATTEMPTS = 5  # sends of one deliver_sm answered "throttled" / "queue full"
MAX_SEQUENCE = 0x7FFFFFFF
RETRY_STATUSES = frozenset({S.ESME_RTHROTTLED, S.ESME_RMSGQFUL})

DeliveryResult = Callable[[int | None], None]
"""Called once per delivery: the deliver_sm_resp status, or None when no answer came
(response timeout, connection lost, link closed before the PDU could be sent)."""


class BindType(Enum):
    TRANSMITTER = "transmitter"
    RECEIVER = "receiver"
    TRANSCEIVER = "transceiver"

    @property
    def can_submit(self) -> bool:
        return self is not BindType.RECEIVER

    @property
    def can_receive(self) -> bool:
        return self is not BindType.TRANSMITTER


BIND_TYPES = {
    CommandId.BIND_TRANSMITTER: BindType.TRANSMITTER,
    CommandId.BIND_RECEIVER: BindType.RECEIVER,
    CommandId.BIND_TRANSCEIVER: BindType.TRANSCEIVER,
}


class LinkState(Enum):
    OPEN = "open"  # connected, not bound
    BOUND = "bound"
    UNBINDING = "unbinding"  # the SMSC sent unbind and waits for unbind_resp
    CLOSED = "closed"


_TRANSITIONS: dict[LinkState, frozenset[LinkState]] = {
    LinkState.OPEN: frozenset({LinkState.BOUND, LinkState.CLOSED}),
    LinkState.BOUND: frozenset({LinkState.UNBINDING, LinkState.CLOSED}),
    LinkState.UNBINDING: frozenset({LinkState.CLOSED}),
    LinkState.CLOSED: frozenset(),
}


@dataclass(frozen=True)
class SubmitOutcome:
    """The network's answer to a ``submit_sm``: the response status and message id, and
    the effects to run once the response has been written (so a delivery receipt or a
    handset's acknowledgement never overtakes the ``submit_sm_resp``)."""

    status: int
    message_id: str = ""
    after: Callable[[], None] | None = None


class LinkOwner(Protocol):
    """What a link needs from the SMSC around it (``smsc.SmscFactory``)."""

    def authenticate(
        self, system_id: str, password: str, bind_type: BindType
    ) -> tuple[CommandStatus, int]:
        """The bind status and, when it is ESME_ROK, the account's window."""
        ...

    def bound(self, link: SmscLink) -> None: ...

    def closed(self, link: SmscLink) -> None: ...

    def submit(self, link: SmscLink, pdu: Pdu) -> SubmitOutcome: ...


@dataclass(eq=False)
class _Delivery:
    pdu: Pdu
    on_result: DeliveryResult
    order: int
    attempts: int = 1
    timer: Timer | None = field(default=None, repr=False)


class SmscLink:
    """The SMSC end of one SMPP connection."""

    def __init__(
        self,
        owner: LinkOwner,
        clock: ReactorClock,
        faults: Faults,
        *,
        write: Callable[[bytes], None],
        close: Callable[[], None],
        system_id: str = "USSDLOOP",
        response_timeout: float = 10.0,
        retry_pause: float = 1.0,
        unbind_timeout: float = 2.0,
        peer: str = "",
    ) -> None:
        self._owner = owner
        self._clock = clock
        self._faults = faults
        self._write = write
        self._close = close
        self._smsc_id = system_id
        self._response_timeout = response_timeout
        self._retry_pause = retry_pause
        self._unbind_timeout = unbind_timeout
        self.peer = peer
        self.state = LinkState.OPEN
        self.bind_type: BindType | None = None
        self.system_id = ""  # the bound account
        self.window = 1
        self._stream = PduStream()
        self._sequence = 0
        self._queue: list[tuple[int, _Delivery]] = []  # heap by original order
        self._outstanding: dict[int, _Delivery] = {}
        self._order = 0
        self._pause: Timer | None = None
        self._unbind_timer: Timer | None = None
        self._requests: dict[CommandId, Callable[[Pdu], None]] = {
            CommandId.BIND_TRANSMITTER: self._bind,
            CommandId.BIND_RECEIVER: self._bind,
            CommandId.BIND_TRANSCEIVER: self._bind,
            CommandId.SUBMIT_SM: self._submit,
            CommandId.DATA_SM: self._submit,
            CommandId.ENQUIRE_LINK: self._enquire_link,
            CommandId.UNBIND: self._unbind_requested,
        }

    # --- state ---------------------------------------------------------------------------

    @property
    def receives(self) -> bool:
        """Whether network-to-ESME messages may be delivered on this link now."""
        return (
            self.state is LinkState.BOUND
            and self.bind_type is not None
            and self.bind_type.can_receive
        )

    @property
    def pending(self) -> int:
        """deliver_sm queued or outstanding on this link."""
        return len(self._queue) + len(self._outstanding)

    def _move(self, new: LinkState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise AssertionError(f"link {self.state.name} -> {new.name} is not allowed")
        self.state = new

    # --- bytes in -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.state is LinkState.CLOSED:
            return
        for item in self._stream.feed(data):
            if isinstance(item, PduError):
                self._reject(item)
            elif item.command_id.is_response:
                self._response(item)
            else:
                self._request(item)
            if self.state is LinkState.CLOSED:
                return

    def _request(self, pdu: Pdu) -> None:
        handler = self._requests.get(pdu.command_id)
        if handler is None:
            self._send(pdu.response(S.ESME_RINVCMDID))
            return
        try:
            handler(pdu)
        except Exception:  # a bug of ours must not take the ESME's link down
            log.exception(
                "event=smsc_request_failed peer=%s command=%s", self.peer, pdu.command_id.name
            )
            self._send(pdu.response(S.ESME_RSYSERR))

    def connection_lost(self) -> None:
        if self.state is not LinkState.CLOSED:
            self._finish(close=False)

    def _reject(self, error: PduError) -> None:
        """Answer a PDU that could not be decoded, as SMPP v3.4 section 5.1.3 asks."""
        log.info(
            "event=smpp_pdu_rejected peer=%s status=%s reason=%r",
            self.peer,
            error.status.name,
            error.reason,
        )
        try:
            command: CommandId | None = CommandId(error.command_id)
        except ValueError:
            command = None
        if error.fatal or command is None or command.is_response:
            self._send(generic_nack(error.sequence_number, error.status))
        else:  # a readable request: its own response (generic_nack for those without one)
            self._send(Pdu(command.response, error.sequence_number, error.status))
        if command is CommandId.DELIVER_SM_RESP:
            self._settle(error.sequence_number, error.status)
        if error.fatal:  # the stream cannot be re-synchronised
            self._finish(close=True)

    # --- requests from the ESME ----------------------------------------------------------

    def _bind(self, pdu: Pdu) -> None:
        if self.state is not LinkState.OPEN:
            self._send(pdu.response(S.ESME_RALYBND))
            return
        bind_type = BIND_TYPES[pdu.command_id]
        system_id = str(pdu.get("system_id", ""))
        status, window = self._owner.authenticate(
            system_id, str(pdu.get("password", "")), bind_type
        )
        if status != S.ESME_ROK:
            log.info(
                "event=esme_bind_refused peer=%s system_id=%s bind_type=%s status=%s",
                self.peer,
                system_id,
                bind_type.value,
                status.name,
            )
            self._send(pdu.response(status))
            return
        self._move(LinkState.BOUND)
        self.bind_type, self.system_id, self.window = bind_type, system_id, window
        response = pdu.response(system_id=self._smsc_id)
        response.tlvs.append((Tag.SC_INTERFACE_VERSION, bytes((INTERFACE_VERSION_34,))))
        self._send(response)
        log.info(
            "event=esme_bound peer=%s system_id=%s bind_type=%s",
            self.peer,
            system_id,
            bind_type.value,
        )
        self._owner.bound(self)

    def _submit(self, pdu: Pdu) -> None:
        if (
            self.state is not LinkState.BOUND
            or self.bind_type is None
            or not self.bind_type.can_submit
        ):
            self._send(pdu.response(S.ESME_RINVBNDSTS))
            return
        if self._faults.drops_mt():
            return
        if self._faults.throttles():
            self._send(pdu.response(S.ESME_RTHROTTLED))
            return
        outcome = self._owner.submit(self, pdu)
        if outcome.status == S.ESME_ROK:
            self._send(pdu.response(message_id=outcome.message_id))
        else:
            self._send(pdu.response(outcome.status))
        if outcome.after is not None:
            outcome.after()

    def _enquire_link(self, pdu: Pdu) -> None:
        if not self._faults.ignore_enquire_link:
            self._send(pdu.response())

    def _unbind_requested(self, pdu: Pdu) -> None:
        if self.state is LinkState.OPEN:
            self._send(pdu.response(S.ESME_RINVBNDSTS))
            return
        self._send(pdu.response())
        log.info("event=esme_unbound peer=%s system_id=%s", self.peer, self.system_id)
        self._finish(close=True)

    # --- responses from the ESME -----------------------------------------------------------

    def _response(self, pdu: Pdu) -> None:
        command = pdu.command_id
        if command in (CommandId.DELIVER_SM_RESP, CommandId.GENERIC_NACK):
            self._settle(pdu.sequence_number, pdu.command_status)
        elif command is CommandId.UNBIND_RESP and self.state is LinkState.UNBINDING:
            self._finish(close=True)
        # enquire_link_resp and anything unexpected: nothing to do

    # --- network-to-ESME messages ----------------------------------------------------------

    def deliver(self, pdu: Pdu, on_result: DeliveryResult) -> bool:
        """Queue a ``deliver_sm`` (its sequence number is assigned when it is sent).

        False when the link cannot take it (not a receiving bind, or the queue is full).
        """
        if not self.receives or self.pending >= MAX_QUEUE:
            return False
        self._order += 1
        heapq.heappush(self._queue, (self._order, _Delivery(pdu, on_result, self._order)))
        self._pump()
        return True

    def _pump(self) -> None:
        while (
            self._queue
            and self._pause is None
            and len(self._outstanding) < self.window
            and self.state is LinkState.BOUND
        ):
            _, delivery = heapq.heappop(self._queue)
            sequence = self._next_sequence()
            delivery.pdu.sequence_number = sequence
            delivery.timer = self._clock.callLater(
                self._response_timeout, self._timed_out, sequence
            )
            self._outstanding[sequence] = delivery
            self._send(delivery.pdu)

    def _settle(self, sequence: int, status: int) -> None:
        delivery = self._outstanding.pop(sequence, None)
        if delivery is None:
            return
        cancel(delivery.timer)
        if status in RETRY_STATUSES and delivery.attempts < MAX_ATTEMPTS:
            delivery.attempts += 1
            heapq.heappush(self._queue, (delivery.order, delivery))
            if self._pause is None:
                self._pause = self._clock.callLater(self._retry_pause, self._resume)
            return
        delivery.on_result(status)
        self._pump()

    def _resume(self) -> None:
        self._pause = None
        self._pump()

    def _timed_out(self, sequence: int) -> None:
        delivery = self._outstanding.pop(sequence, None)
        if delivery is not None:
            log.info("event=deliver_sm_timeout peer=%s sequence=%d", self.peer, sequence)
            delivery.on_result(None)
            self._pump()

    # --- closing ---------------------------------------------------------------------------

    def unbind(self) -> None:
        """The SMSC ends the session: unbind, then close on unbind_resp (or after a while)."""
        if self.state is LinkState.BOUND:
            self._move(LinkState.UNBINDING)
            self._send(request(CommandId.UNBIND, self._next_sequence()))
            self._unbind_timer = self._clock.callLater(self._unbind_timeout, self._finish, True)
        elif self.state is LinkState.OPEN:
            self._finish(close=True)

    def _finish(self, close: bool) -> None:
        """Closed: every delivery not yet answered fails, the owner forgets the link."""
        if self.state is LinkState.CLOSED:
            return
        self._move(LinkState.CLOSED)
        cancel(self._pause)
        cancel(self._unbind_timer)
        self._pause = self._unbind_timer = None
        self._owner.closed(self)
        failed = list(self._outstanding.values()) + [d for _, d in sorted(self._queue)]
        self._outstanding.clear()
        self._queue.clear()
        for delivery in failed:
            cancel(delivery.timer)
            delivery.on_result(None)
        if close:
            self._close()

    # --- bytes out -------------------------------------------------------------------------

    def write_raw(self, data: bytes) -> None:
        """Bytes as they are, whatever they hold (fault injection toward the ESME)."""
        if self.state is not LinkState.CLOSED:
            self._write(data)

    def _next_sequence(self) -> int:
        self._sequence = self._sequence % MAX_SEQUENCE + 1
        return self._sequence

    def _send(self, pdu: Pdu) -> None:
        self._write(encode(pdu))
