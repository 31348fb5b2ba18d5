"""Database engines for the services: SQLite (embedded default, WAL) or PostgreSQL (asyncpg).

One database per service, as in production. ``create_engine`` accepts the URL forms an
operator writes (``postgresql://user@host/db``, ``sqlite:///var/dfsp1.db``) and picks the
asyncio driver; SQLite gets WAL, foreign keys and a busy timeout on every connection.
A ``schema`` puts a PostgreSQL service (or a test) in its own namespace.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator

SQLITE_BUSY_TIMEOUT_MS = 5000

# A session whose connection carries this execution option only reads: on SQLite it
# begins a deferred transaction, so readers do not queue behind writers.
READ_ONLY = {"read_only": True}

# Constraint names every service's models use, so migrations can name what they change.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def sqlite_url(data_dir: str | Path, service: str) -> str:
    """The embedded default: ``<data_dir>/<service>.db``."""
    return f"sqlite+aiosqlite:///{Path(data_dir) / f'{service}.db'}"


def async_url(url: str) -> str:
    """The same database through its asyncio driver."""
    parsed = make_url(url)
    driver = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}.get(
        parsed.drivername, parsed.drivername
    )
    if driver == "sqlite":
        driver = "sqlite+aiosqlite"
    if driver not in ("postgresql+asyncpg", "sqlite+aiosqlite"):
        raise ValueError(
            f"unsupported database URL {parsed.drivername}://...: use postgresql or sqlite"
        )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def create_engine(url: str, *, schema: str | None = None, **options: Any) -> AsyncEngine:
    url = async_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **options)
    connect_args: dict[str, Any] = {}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(url, connect_args=connect_args, pool_pre_ping=True, **options)


def create_service_engine(url: str, *, schema: str | None = None, **options: Any) -> AsyncEngine:
    """A service's database engine: ``create_engine`` plus, on SQLite, ``BEGIN IMMEDIATE``
    for write transactions (SQLite has no row locks: writers queue on the database lock
    within the busy timeout instead of failing with "database is locked" when a reader
    upgrades). Sessions that only read say so with ``READ_ONLY``."""
    engine = create_engine(url, schema=schema, **options)
    if engine.dialect.name == "sqlite":
        sync_engine = engine.sync_engine
        event.listen(sync_engine, "connect", _leave_transactions_to_sqlalchemy)
        event.listen(sync_engine, "begin", _begin_sqlite_transaction)
    return engine


def serialises_sqlite_writers(engine: AsyncEngine) -> bool:
    """False for a SQLite engine not made by ``create_service_engine``."""
    return engine.dialect.name != "sqlite" or event.contains(
        engine.sync_engine, "begin", _begin_sqlite_transaction
    )


def _leave_transactions_to_sqlalchemy(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy's documented recipe: stop the driver emitting its own (deferred) BEGIN.
    dbapi_connection.isolation_level = None


def _begin_sqlite_transaction(connection: Connection) -> None:
    read_only = connection.get_execution_options().get("read_only", False)
    connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on PostgreSQL and SQLite alike.
    (SQLite keeps no offset: values are stored as naive UTC, so they compare in order.)"""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("only aware datetimes are stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_engine(url: str, **options: Any) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, **options)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    """Sessions for units of work: ``async with factory.begin() as session: ...``."""
    return async_sessionmaker(engine, expire_on_commit=False)
