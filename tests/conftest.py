"""Shared test settings: hypothesis profile and the external-service URLs."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ussdloop", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.load_profile("ussdloop")


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("USSDLOOP_TEST_REDIS")
    if not url:
        pytest.skip("USSDLOOP_TEST_REDIS is not set: no Redis to test against")
    return url


@pytest.fixture
def pg_url() -> str:
    url = os.environ.get("USSDLOOP_TEST_PG")
    if not url:
        pytest.skip("USSDLOOP_TEST_PG is not set: no PostgreSQL to test against")
    return url


def _run_aside(coro: Any) -> Any:
    """Run an asyncio coroutine to completion on a thread of its own (the test thread's
    loop belongs to Twisted's reactor)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _pg_execute(dsn: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL schema for one test, dropped afterwards: ``(url, schema)``."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _run_aside(_pg_execute(pg_url, f'CREATE SCHEMA "{schema}"'))
    yield pg_url, schema
    # A failed test may leave a transaction open: fail the drop rather than wait forever.
    _run_aside(_pg_execute(pg_url, f"SET lock_timeout = '10s'; DROP SCHEMA \"{schema}\" CASCADE"))
