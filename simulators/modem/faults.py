"""Fault injection: what a real mobile network does to an SMPP link on a bad day.

``Faults`` is one object shared by every ESME connection of a simulator; all of it can
be changed while traffic flows (the control API sets attributes, tests do too). The
randomness comes from an injected ``random.Random``, so a seeded run drops the same
PDUs every time.

Where each fault acts:

- ``drop_mo``: that fraction of the ``deliver_sm`` the network sends (USSD units from
  handsets, delivery receipts) is lost before it reaches the ESME; nothing is retried.
- ``drop_mt``: that fraction of the ``submit_sm``/``data_sm`` the ESME sends is lost: no
  effect and no response (the ESME's response timer has to notice).
- ``delay``: every PDU the simulator writes waits that many seconds (order is kept).
- ``throttle(...)``: ``submit_sm``/``data_sm`` answered with ``ESME_RTHROTTLED``.
- ``ignore_enquire_link``: ``enquire_link`` goes unanswered.
- ``disconnect()``: every ESME connection is dropped now (the listener stays up; use
  ``Simulator.restart()`` to restart the whole SMSC).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulators.modem.clock import ReactorClock, Timer, cancel

MAX_DELAY = 600.0  # seconds; a longer "delay" is a disconnect, and should be asked for as one


def _fraction(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ValueError(f"faults.{name} must be a fraction between 0 and 1, got {value!r}")
    return value


def _seconds(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= MAX_DELAY:
        raise ValueError(f"faults.{name} must be between 0 and {MAX_DELAY} s, got {value!r}")
    return value


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"faults.{name} must be a whole number, not negative, got {value!r}")
    return value


def _flag(name: str, value: bool) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"faults.{name} must be true or false, got {value!r}")
    return value


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "drop_mo": _fraction,
    "drop_mt": _fraction,
    "delay": _seconds,
    "ignore_enquire_link": _flag,
    "throttle_fraction": _fraction,
    "throttle_count": _count,
}


@dataclass(init=False)
class Faults:
    """The faults currently injected; all off by default.

    The public fields are the settings (``dataclasses.fields`` lists them for the control
    API); each assignment is checked and a bad value raises ``ValueError``.
    """

    drop_mo: float
    drop_mt: float
    delay: float  # seconds
    ignore_enquire_link: bool
    throttle_fraction: float  # of submissions answered ESME_RTHROTTLED
    throttle_count: int  # the next N submissions answered ESME_RTHROTTLED (first)
    _rng: random.Random = field(repr=False)
    _disconnect: Callable[[], int] | None = field(repr=False)

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()
        self._disconnect = None
        self.clear()

    def __setattr__(self, name: str, value: Any) -> None:
        check = _CHECKS.get(name)
        object.__setattr__(self, name, value if check is None else check(name, value))

    def clear(self) -> None:
        """Turn every fault off."""
        self.drop_mo = self.drop_mt = self.delay = 0.0
        self.ignore_enquire_link = False
        self.throttle_fraction = 0.0
        self.throttle_count = 0

    def throttle(self, amount: float | int) -> None:
        """Answer ``submit_sm`` with ``ESME_RTHROTTLED``.

        A ``float`` is the fraction of submissions throttled from now on (``1.0``: all,
        ``0.0``: none); an ``int`` is a count: the next ``amount`` submissions are
        throttled, then traffic flows again. Either replaces the other.
        """
        if isinstance(amount, bool):
            raise TypeError("faults.throttle takes a fraction (float) or a count (int)")
        if isinstance(amount, int):
            self.throttle_count, self.throttle_fraction = amount, 0.0
        else:
            self.throttle_fraction, self.throttle_count = amount, 0

    def seed(self, seed: int) -> None:
        self._rng.seed(seed)

    def snapshot(self) -> dict[str, Any]:
        """The current settings, JSON-ready (for the control API)."""
        return {name: getattr(self, name) for name in _CHECKS}

    # --- actions ----------------------------------------------------------------------

    def attach(self, disconnect: Callable[[], int]) -> None:
        """Called by the simulator: how ``disconnect()`` reaches the ESME connections."""
        self._disconnect = disconnect

    def disconnect(self) -> int:
        """Drop every ESME connection now; returns how many were dropped."""
        return self._disconnect() if self._disconnect is not None else 0

    # --- decisions (called per PDU: no work when the fault is off) --------------------

    def drops_mo(self) -> bool:
        return self.drop_mo > 0.0 and self._rng.random() < self.drop_mo

    def drops_mt(self) -> bool:
        return self.drop_mt > 0.0 and self._rng.random() < self.drop_mt

    def throttles(self) -> bool:
        if self.throttle_count > 0:
            self.throttle_count -= 1
            return True
        return self.throttle_fraction > 0.0 and self._rng.random() < self.throttle_fraction


class DelayLine:
    """Runs actions after ``faults.delay`` seconds, in the order they were pushed.

    With no delay and nothing waiting an action runs at once. A delay raised or lowered
    mid-stream never lets a later action overtake an earlier one.
    """

    def __init__(self, clock: ReactorClock, faults: Faults) -> None:
        self._clock = clock
        self._faults = faults
        self._waiting: deque[tuple[float, Callable[..., object], tuple[Any, ...]]] = deque()
        self._timer: Timer | None = None

    def push(self, action: Callable[..., object], *args: Any) -> None:
        delay = self._faults.delay
        if delay <= 0.0 and not self._waiting:
            action(*args)
            return
        self._waiting.append((self._clock.seconds() + delay, action, args))
        if self._timer is None:
            self._timer = self._clock.callLater(delay, self._release)

    def _release(self) -> None:
        self._timer = None
        now = self._clock.seconds()
        while self._waiting and self._waiting[0][0] <= now:
            _, action, args = self._waiting.popleft()
            action(*args)
        if self._waiting and self._timer is None:
            self._timer = self._clock.callLater(self._waiting[0][0] - now, self._release)

    def clear(self) -> None:
        cancel(self._timer)
        self._timer = None
        self._waiting.clear()
