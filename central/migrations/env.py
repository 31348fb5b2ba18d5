"""Alembic environment of the central database.

At run time ``central.migrate.migrate(engine)`` runs the migrations on a connection of
the service's own async engine and hands it over in ``config.attributes["connection"]``.
During development the Alembic command line works too: with an ini file holding
``script_location = central/migrations``, name the database with ``-x url=...``, e.g.
``alembic -c dev.ini -x url=sqlite:///var/central.db heads``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import central.directory.store  # the directory's models
import central.fraud.store  # noqa: F401  (the fraud component's models)
from central.forensic import store as forensic_store  # noqa: F401  (the forensic records)
from central.kms import store as kms_store  # noqa: F401  (the KMS keys)
from central.ledger import store as ledger_store  # noqa: F401  (the ledger's models)
from central.store import Base
from ussdloop.db import create_service_engine

config = context.config
target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them: let later migrations use batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_command_line(url: str) -> None:
    engine = create_service_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("the central migrations run against a database, not as an SQL script")
connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("name the database: alembic ... -x url=sqlite:///var/central.db")
    asyncio.run(run_from_command_line(url))
