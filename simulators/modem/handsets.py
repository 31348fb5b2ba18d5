"""Virtual handsets: the subscriber's side of USSD dialogues and the SMS inbox.

A ``Handset`` is what the control API, the AT modem, the web phone and the load
generator drive. ``dial``/``reply`` are coroutines that return the network's next
screen; ``dial_nowait``/``reply_nowait``/``cancel_nowait`` are the same actions without
waiting, for drivers that follow the screens through ``subscribe`` (the AT modem's
unsolicited ``+CUSD:``, the load generator). Every screen and every SMS is also
announced to subscribers, solicited or not.

The network (``ussd_centre.UssdCentre``) moves the handset between states through
``show``/``await_network``; the handset itself only checks that the subscriber's
action fits its state.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from simulators.modem.clock import ReactorClock, Timer, cancel

log = logging.getLogger(__name__)

MAX_INBOX = 500  # SMS kept per handset; a full inbox makes deliveries fail, as on a phone
_MSISDN = re.compile(r"\d{1,20}")
_MSISDN_NOISE = str.maketrans("", "", " -.()")


class HandsetState(Enum):
    IDLE = "idle"
    WAITING = "waiting"  # for the network's answer
    OPEN = "open"  # a screen awaits the subscriber's input


@dataclass(frozen=True)
class Screen:
    text: str
    expects_reply: bool  # True: the dialogue is open and waits for the subscriber
    network_initiated: bool = False
    ended_reason: str | None = None  # None, "released", "timeout", "aborted", "network_error"
    data_coding: int | None = None  # of the PDU that carried it; None: the network's own


@dataclass(frozen=True)
class Sms:
    id: str
    sender: str
    text: str
    received_at: float  # from the injected clock


@dataclass(frozen=True)
class UssdScreenEvent:
    screen: Screen


@dataclass(frozen=True)
class SmsEvent:
    sms: Sms
    index: int  # position in ``Handset.sms``


HandsetEvent = UssdScreenEvent | SmsEvent


class HandsetError(Exception):
    """The subscriber's action does not fit the handset's state or input rules."""


class HandsetBusy(HandsetError):
    """A dialogue is in progress (or the handset waits for the network)."""


class NoDialogue(HandsetError):
    """There is no open dialogue to reply to or cancel."""


class InvalidInput(HandsetError):
    """The text cannot be sent in one USSD unit (too long, or not encodable)."""


def normalise_msisdn(msisdn: str) -> str:
    """``+256 700-000 001`` -> ``256700000001``; ValueError if it is not a phone number."""
    digits = msisdn.translate(_MSISDN_NOISE).removeprefix("+")
    if not _MSISDN.fullmatch(digits):
        raise ValueError(f"{msisdn!r} is not an MSISDN (1-20 digits, optional leading +)")
    return digits


class Switch(Protocol):
    """The USSD centre as a handset sees it."""

    def originate(self, handset: Handset, code: str) -> None: ...

    def answer(self, handset: Handset, text: str) -> None: ...

    def release(self, handset: Handset) -> None: ...

    def give_up(self, handset: Handset) -> None: ...


class Handset:
    """One subscriber's phone, with its MSISDN."""

    def __init__(self, msisdn: str, switch: Switch, clock: ReactorClock) -> None:
        self.msisdn = msisdn
        self.state = HandsetState.IDLE
        self.screen: Screen | None = None
        self.sms: list[Sms] = []
        self._switch = switch
        self._clock = clock
        self._listeners: list[Callable[[HandsetEvent], None]] = []
        self._waiter: asyncio.Future[Screen] | None = None

    def __repr__(self) -> str:
        return f"Handset({self.msisdn!r}, {self.state.name})"

    # --- the subscriber's actions ----------------------------------------------------------

    async def dial(self, code: str, timeout: float | None = None) -> Screen:
        """Dial a service code (``*123#``, ``*123*1#``) and return the first screen.

        An unknown code, a short code with no application bound, or no answer within
        ``timeout`` seconds gives an ended ``Screen`` rather than an exception.
        """
        self._check_idle()
        return await self._until_screen(lambda: self._switch.originate(self, code), timeout)

    async def reply(self, text: str, timeout: float | None = None) -> Screen:
        """Answer the open screen and return the next one."""
        self._check_open()
        return await self._until_screen(lambda: self._switch.answer(self, text), timeout)

    async def cancel(self) -> None:
        """The subscriber ends the dialogue (the application gets an abort)."""
        self.cancel_nowait()

    def dial_nowait(self, code: str) -> None:
        """``dial`` without waiting: the screen arrives as a ``UssdScreenEvent``."""
        self._check_idle()
        self._switch.originate(self, code)

    def reply_nowait(self, text: str) -> None:
        self._check_open()
        self._switch.answer(self, text)

    def cancel_nowait(self) -> None:
        if self.state is HandsetState.IDLE:
            raise NoDialogue(f"{self.msisdn} has no dialogue to cancel")
        self._switch.release(self)

    def subscribe(self, listener: Callable[[HandsetEvent], None]) -> Callable[[], None]:
        """Call ``listener`` for every screen and SMS; returns the unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _check_idle(self) -> None:
        if self.state is not HandsetState.IDLE:
            raise HandsetBusy(f"{self.msisdn} is in a dialogue ({self.state.value})")

    def _check_open(self) -> None:
        if self.state is HandsetState.IDLE:
            raise NoDialogue(f"{self.msisdn} has no open dialogue")
        if self.state is HandsetState.WAITING:
            raise HandsetBusy(f"{self.msisdn} is waiting for the network")

    async def _until_screen(self, action: Callable[[], None], timeout: float | None) -> Screen:
        waiter: asyncio.Future[Screen] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        timer: Timer | None = None
        try:
            action()  # may show a screen at once (an unknown code): the waiter is done
            if timeout is not None and not waiter.done():
                timer = self._clock.callLater(timeout, self._waited_too_long, waiter)
            return await waiter
        finally:
            cancel(timer)
            if self._waiter is waiter:
                self._waiter = None

    def _waited_too_long(self, waiter: asyncio.Future[Screen]) -> None:
        if waiter.done():
            return
        if self.state is not HandsetState.IDLE:
            self._switch.give_up(self)  # ends the dialogue: shows a "timeout" screen
        if not waiter.done():
            waiter.set_result(Screen("", False, ended_reason="timeout"))

    # --- the network's side ----------------------------------------------------------------

    def show(self, screen: Screen, state: HandsetState) -> None:
        """A screen from the network (or the end of the dialogue)."""
        self.screen = screen
        self.state = state
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(screen)
        self._emit(UssdScreenEvent(screen))

    def await_network(self) -> None:
        """The handset sent a unit and waits for the network's answer."""
        self.state = HandsetState.WAITING

    def receive_sms(self, sms: Sms) -> bool:
        """Store an SMS; False when the inbox is full (the delivery fails)."""
        if len(self.sms) >= MAX_INBOX:
            return False
        self.sms.append(sms)
        self._emit(SmsEvent(sms, len(self.sms) - 1))
        return True

    def _emit(self, event: HandsetEvent) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("event=handset_listener_failed msisdn=%s", mask(self.msisdn))


def mask(msisdn: str) -> str:
    """An MSISDN fit for logs: the last three digits only."""
    return "*" * max(len(msisdn) - 3, 0) + msisdn[-3:]
