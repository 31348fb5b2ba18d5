"""Database engines: SQLite with WAL by default, PostgreSQL through asyncpg in a schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tests.support import asyncio_test
from ussdloop.db import async_url, create_engine, sqlite_url


def test_operator_urls_get_their_asyncio_driver() -> None:
    assert async_url("postgresql://postgres@127.0.0.1:5432/test").startswith(
        "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    assert async_url("sqlite:///var/dfsp1.db") == "sqlite+aiosqlite:///var/dfsp1.db"
    with pytest.raises(ValueError, match="unsupported database URL"):
        async_url("mysql://root@localhost/test")


@asyncio_test
async def test_a_sqlite_database_is_created_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path / "var", "dfsp1"))
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await engine.dispose()
    assert (tmp_path / "var" / "dfsp1.db").exists()


@asyncio_test
async def test_a_postgresql_engine_works_inside_its_own_schema(pg_schema: tuple[str, str]) -> None:
    url, schema = pg_schema
    engine = create_engine(url, schema=schema)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE probe (id integer primary key)"))
            where = await connection.execute(
                text("SELECT table_schema FROM information_schema.tables WHERE table_name='probe'")
            )
            assert where.scalar() == schema
    finally:
        await engine.dispose()
