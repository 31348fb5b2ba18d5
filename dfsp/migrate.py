"""Bring a DFSP database's schema to the latest migration, from the service itself
(``await migrate(engine)``; see ``ussdloop.migrations``)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from ussdloop.migrations import upgrade

MIGRATIONS = Path(__file__).with_name("migrations")


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    await upgrade(engine, MIGRATIONS, "dfsp.migrate", revision)
