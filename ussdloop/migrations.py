"""Running a service's Alembic migrations from the service itself, and the Alembic
environment every service's ``migrations/env.py`` runs (``run_environment``).

``await upgrade(engine, script_location, lock_name)`` brings the schema to every head
of the migrations in ``script_location`` (a service whose components keep their own
branches has several heads) on one connection of the service's async engine, in one
transaction: no ``alembic.ini`` is needed at run time. On PostgreSQL, nodes that start
together take turns (an advisory lock per schema), so the schema is migrated once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from ussdloop.db import create_service_engine


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


def run_environment(metadata: MetaData, service: str) -> None:
    """The body of a service's ``env.py``. At run time ``upgrade`` hands over a
    connection of the service's own engine in ``config.attributes["connection"]``; during
    development the Alembic command line works too, naming the database with
    ``-x url=...`` (e.g. ``alembic -c dev.ini -x url=sqlite:///var/dfsp1.db check``)."""
    if context.is_offline_mode():
        raise SystemExit(f"the {service} migrations run against a database, not as a script")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection, metadata)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit(f"name the database: alembic ... -x url=sqlite:///var/{service}.db")
    asyncio.run(_run_from_command_line(url, metadata))


def _run(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters tables by copying them: let later migrations use batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_command_line(url: str, metadata: MetaData) -> None:
    engine = create_service_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run, metadata)
    finally:
        await engine.dispose()
