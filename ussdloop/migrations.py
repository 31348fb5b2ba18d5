"""Running a service's Alembic migrations from the service itself.

``await upgrade(engine, script_location, lock_name)`` brings the schema to every head
of the migrations in ``script_location`` (a service whose components keep their own
branches has several heads) on one connection of the service's async engine, in one
transaction: no ``alembic.ini`` is needed at run time. On PostgreSQL, nodes that start
together take turns (an advisory lock per schema), so the schema is migrated once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


async def upgrade(
    engine: AsyncEngine, script_location: Path, lock_name: str, revision: str = "heads"
) -> None:
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:name || current_schema()))"),
                {"name": f"{lock_name}:"},
            )
        await connection.run_sync(_upgrade, script_location, revision)


def _upgrade(connection: Connection, script_location: Path, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
