"""Database engines for the services: SQLite (embedded default, WAL) or PostgreSQL (asyncpg).

One database per service, as in production. ``create_engine`` accepts the URL forms an
operator writes (``postgresql://user@host/db``, ``sqlite:///var/dfsp1.db``) and picks the
asyncio driver; SQLite gets WAL, foreign keys and a busy timeout on every connection.
A ``schema`` puts a PostgreSQL service (or a test) in its own namespace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 5000


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
