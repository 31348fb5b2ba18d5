"""Bring the central database's schema to every component's latest migration
(``await migrate(engine)``; see ``ussdloop.migrations``).

``0001`` makes the participants table; each component (directory, ledger, fraud,
forensic...) keeps its own branch from it (``down_revision = "0001"`` and a
``branch_labels`` of its name), so components change their tables independently and
``heads`` brings them all up to date.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from ussdloop.migrations import upgrade

MIGRATIONS = Path(__file__).with_name("migrations")


async def migrate(engine: AsyncEngine, revision: str = "heads") -> None:
    await upgrade(engine, MIGRATIONS, "central.migrate", revision)
