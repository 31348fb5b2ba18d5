"""The one bridge between Twisted Deferreds and asyncio, on Twisted's asyncio reactor.

Twisted runs on the asyncio loop (``asyncioreactor``), so both worlds share one thread.
Code is ``async def`` everywhere; only the Twisted edge converts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")


def install_asyncio_reactor() -> None:
    """Install Twisted's asyncio reactor on the current asyncio loop, once per process."""
    import sys

    if "twisted.internet.reactor" in sys.modules:
        from twisted.internet import reactor

        if type(reactor).__name__ != "AsyncioSelectorReactor":
            raise RuntimeError("a non-asyncio Twisted reactor is already installed")
        return
    from twisted.internet import asyncioreactor

    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)


def as_deferred(coro: Coroutine[Any, Any, T]) -> Deferred[T]:
    """Run an asyncio coroutine as a Deferred (for Twisted callers)."""
    return Deferred.fromFuture(asyncio.ensure_future(coro))


async def wait_deferred(d: Deferred[T]) -> T:
    """Await a Deferred from asyncio code."""
    return await d.asFuture(asyncio.get_running_loop())
