"""Run services on Twisted's asyncio reactor until Ctrl-C / SIGTERM, then stop them cleanly."""

from __future__ import annotations

import errno
import gc
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.error import CannotListenError

from ussdloop.aio import as_deferred, install_asyncio_reactor
from ussdloop.config import ConfigError

Stop = Callable[[], Awaitable[None]]


def serve(start: Callable[[], Awaitable[Stop]]) -> int:
    """Start services with ``start`` (which returns their stop) and run until interrupted."""
    reactor = _reactor()

    outcome = {"code": 0}
    stops: list[Stop] = []

    async def starting() -> None:
        try:
            stops.append(await start())
            # What start-up built lives as long as the process: keep the collector off it,
            # so full collections stay short while screens are served.
            gc.freeze()
        except (ConfigError, CannotListenError, OSError, ValueError) as error:
            print(f"ussdloop: cannot start: {_explain(error)}", file=sys.stderr, flush=True)
            outcome["code"] = 1
            reactor.stop()

    async def stopping() -> None:
        for stop in stops:
            await stop()

    reactor.callWhenRunning(lambda: as_deferred(starting()))
    reactor.addSystemEventTrigger("before", "shutdown", lambda: as_deferred(stopping()))
    reactor.run()
    return outcome["code"]


def run_once(job: Callable[[], Awaitable[int]]) -> int:
    """Run ``job`` to completion on the reactor and return its exit code."""
    reactor = _reactor()

    outcome = {"code": 1}

    async def running() -> None:
        try:
            outcome["code"] = await job()
        except (ConfigError, CannotListenError, OSError, ValueError) as error:
            print(f"ussdloop: {_explain(error)}", file=sys.stderr, flush=True)
        finally:
            reactor.stop()

    reactor.callWhenRunning(lambda: as_deferred(running()))
    reactor.run()
    return outcome["code"]


def _explain(error: Any) -> str:
    """A start-up failure in words that say what to fix."""
    text = str(error)
    in_use = isinstance(error, OSError) and error.errno == errno.EADDRINUSE
    if isinstance(error, CannotListenError) or in_use:
        return f"{text} (another process holds that port: stop it, or change the port in --config)"
    return text


def _reactor() -> Any:
    """Twisted's reactor, on the asyncio loop."""
    install_asyncio_reactor()
    from twisted.internet import reactor

    return reactor
