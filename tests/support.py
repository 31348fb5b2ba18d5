"""Helpers shared by the tests: running asyncio test bodies on Twisted's asyncio reactor."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest_twisted

from ussdloop.aio import as_deferred


def asyncio_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., Any]:
    """Run the test body as an asyncio task on Twisted's asyncio reactor.

    pytest-twisted drives a bare coroutine itself, and asyncio futures refuse to be
    awaited from it; wrapping the body in a task makes asyncio code await normally.
    """

    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> None:
        await as_deferred(fn(*args, **kwargs))

    return pytest_twisted.ensureDeferred(run)


async def until(condition: Callable[[], bool], timeout: float = 5.0, step: float = 0.01) -> None:
    """Wait (in real time, polling) until ``condition()`` holds; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
