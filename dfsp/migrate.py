"""Bring a DFSP database's schema to the latest migration, from the service itself.

``await migrate(engine)`` runs the Alembic migrations packaged in ``dfsp/migrations``
on one connection of the service's async engine, in one transaction: no ``alembic.ini``
is needed at run time. On PostgreSQL, nodes that start together take turns (an advisory
lock per schema), so the schema is migrated once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext('dfsp.migrate:' || current_schema()))")
            )
        await connection.run_sync(_upgrade, revision)


def _upgrade(connection: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
