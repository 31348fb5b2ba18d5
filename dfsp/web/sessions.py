"""Back-office sessions in the DFSP's database, so they survive a restart and every
process of the DFSP serves the same logins (``web_sessions``, migration 0012).

A random token in a cookie names a session; only its SHA-256 is stored, so a copy of
the database opens no session. A logged-in session carries its own random CSRF token
for the forms and lives ``ttl`` after its last use (at most ``max_sessions`` are kept:
the ones closest to expiry go first when a login needs room).

Before login nothing is stored (a visitor must not be able to fill the table): the
cookie holds a random token and the login form's CSRF token is its HMAC under the
DFSP's secret (``web_secret``), so any process checks it and no other site can forge
it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Integer, LargeBinary, String, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from dfsp.store import Base, UTCDateTime

TOKEN_BYTES: Final = 32
DEFAULT_TTL: Final = timedelta(minutes=30)
MAX_SESSIONS: Final = 10_000
MAX_TOKEN_CHARS: Final = 64
MIN_TOKEN_CHARS: Final = 32


class WebSessionRow(Base):
    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    csrf: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(36))
    user_number: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(201))
    roles: Mapped[str] = mapped_column(String(64))  # comma-separated
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class WebSecretRow(Base):
    """The DFSP's key for the login form's CSRF tokens (one row, made by the migration)."""

    __tablename__ = "web_secret"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary(64))


@dataclass
class WebSession:
    """A browser's session: anonymous (before login: only the login form's CSRF token)
    or of one customer."""

    token: str
    csrf: str
    expires_at: datetime
    customer_id: str | None = None
    user_number: str | None = None
    name: str = ""
    roles: frozenset[str] = field(default_factory=frozenset)  # at login (for the menu)

    def csrf_matches(self, presented: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), presented.encode())


class SessionStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        *,
        ttl: timedelta = DEFAULT_TTL,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        assert ttl > timedelta(0) and max_sessions > 0
        self._db = sessions
        self._clock = clock
        self._ttl = ttl
        self._max = max_sessions
        self._secret: bytes | None = None

    async def anonymous(self) -> WebSession:
        """A new visitor's session (nothing stored)."""
        return await self._anonymous(secrets.token_urlsafe(TOKEN_BYTES))

    async def open(
        self, customer_id: str, user_number: str, name: str, roles: frozenset[str]
    ) -> WebSession:
        """A new logged-in session with fresh tokens (a login always gets a new one)."""
        session = WebSession(
            token=secrets.token_urlsafe(TOKEN_BYTES),
            csrf=secrets.token_urlsafe(TOKEN_BYTES),
            expires_at=self._clock() + self._ttl,
            customer_id=customer_id,
            user_number=user_number,
            name=name,
            roles=roles,
        )
        async with self._db.begin() as db:
            await self._make_room(db)
            db.add(
                WebSessionRow(
                    token_hash=_hash(session.token),
                    csrf=session.csrf,
                    customer_id=customer_id,
                    user_number=user_number,
                    name=name,
                    roles=",".join(sorted(roles)),
                    expires_at=session.expires_at,
                )
            )
        return session

    async def find(self, token: str | None) -> WebSession | None:
        """The live logged-in session of this token (its expiry moved on); else the
        anonymous session the token names; None for no (or a malformed) token."""
        if not token or not MIN_TOKEN_CHARS <= len(token) <= MAX_TOKEN_CHARS:
            return None
        now = self._clock()
        async with self._db.begin() as db:
            row = await db.get(WebSessionRow, _hash(token), with_for_update=True)
            if row is not None and row.expires_at > now:
                row.expires_at = now + self._ttl
                return WebSession(
                    token=token,
                    csrf=row.csrf,
                    expires_at=row.expires_at,
                    customer_id=row.customer_id,
                    user_number=row.user_number,
                    name=row.name,
                    roles=frozenset(filter(None, row.roles.split(","))),
                )
            if row is not None:
                await db.delete(row)  # expired
        return await self._anonymous(token)

    async def close(self, token: str) -> None:
        async with self._db.begin() as db:
            await db.execute(delete(WebSessionRow).where(WebSessionRow.token_hash == _hash(token)))

    async def _anonymous(self, token: str) -> WebSession:
        digest = hmac.new(await self._key(), b"login:" + token.encode(), hashlib.sha256)
        return WebSession(
            token=token, csrf=digest.hexdigest(), expires_at=self._clock() + self._ttl
        )

    async def _key(self) -> bytes:
        if self._secret is None:
            async with self._db() as db:
                self._secret = await db.scalar(select(WebSecretRow.secret))
            assert self._secret is not None, "migration 0012 makes the secret"
        return self._secret

    async def _make_room(self, db: AsyncSession) -> None:
        await db.execute(delete(WebSessionRow).where(WebSessionRow.expires_at <= self._clock()))
        live = int(await db.scalar(select(func.count()).select_from(WebSessionRow)) or 0)
        if live >= self._max:
            oldest = (
                select(WebSessionRow.token_hash)
                .order_by(WebSessionRow.expires_at)
                .limit(live - self._max + 1)
            )
            doomed = list(await db.scalars(oldest))
            await db.execute(delete(WebSessionRow).where(WebSessionRow.token_hash.in_(doomed)))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
