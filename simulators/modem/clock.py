"""The slice of Twisted's ``IReactorTime`` the simulator uses, as typing protocols.

Every timer in the simulator (dialogue timers, response timeouts, throttling pauses,
fault delays) goes through an injected clock, so tests drive time with
``twisted.internet.task.Clock`` and never sleep. Twisted's own interfaces are zope
interfaces, which mypy cannot check without a plugin; these protocols match both the
reactor and ``task.Clock``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Timer(Protocol):
    """A scheduled call (Twisted's ``IDelayedCall``)."""

    def cancel(self) -> None: ...

    def active(self) -> bool: ...


class ReactorClock(Protocol):
    """``seconds`` and ``callLater``: a reactor or a ``task.Clock``."""

    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., object], *args: object, **kw: object
    ) -> Any: ...


def cancel(timer: Timer | None) -> None:
    """Cancel ``timer`` if it is still pending."""
    if timer is not None and timer.active():
        timer.cancel()
