"""The databases every integration test of a service runs on: SQLite always, PostgreSQL when
USSDLOOP_TEST_PG is set (skipped with the reason otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ussdloop.db import sqlite_url


@dataclass(frozen=True)
class Database:
    url: str
    schema: str | None


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Database:
    return Database(sqlite_url(tmp_path, "service"), None)


@pytest.fixture
def postgresql_database(pg_schema: tuple[str, str]) -> Database:
    return Database(*pg_schema)  # skipped without USSDLOOP_TEST_PG


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Database:
    database: Database = request.getfixturevalue(f"{request.param}_database")
    return database
