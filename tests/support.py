"""Helpers shared by the tests: running asyncio test bodies on Twisted's asyncio reactor."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest_twisted
from twisted.internet.defer import Deferred


def asyncio_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., Any]:
    """Run the test body as an asyncio task on Twisted's asyncio reactor.

    pytest-twisted drives a bare coroutine itself, and asyncio futures refuse to be
    awaited from it; wrapping the body in a task makes asyncio code await normally.
    """

    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> None:
        body = asyncio.ensure_future(fn(*args, **kwargs))
        loop = asyncio.get_running_loop()
        watchdog = loop.call_later(WATCHDOG_SECONDS, _stuck, body)
        try:
            await Deferred.fromFuture(body)
        finally:
            watchdog.cancel()

    return pytest_twisted.ensureDeferred(run)


WATCHDOG_SECONDS = 240.0  # before pytest-timeout's 300 s (pyproject), which ends the run


def _stuck(body: asyncio.Future[None]) -> None:
    """A test still running after ``WATCHDOG_SECONDS``: print where each asyncio task
    waits (pytest-timeout shows only threads, and an idle event loop's say nothing),
    then cancel the body so the test fails with that output."""
    print(f"still running after {WATCHDOG_SECONDS:.0f} s; the asyncio tasks:", file=sys.stderr)
    for task in asyncio.all_tasks():
        task.print_stack(file=sys.stderr)
    body.cancel()


async def until(condition: Callable[[], bool], timeout: float = 5.0, step: float = 0.01) -> None:
    """Wait (in real time, polling) until ``condition()`` holds; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 5.0, step: float = 0.05
) -> Any:
    """The first truthy result of ``check()`` within ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"nothing within {timeout} s")
        await asyncio.sleep(step)
