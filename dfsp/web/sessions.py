"""Back-office login sessions, kept in memory: a random token in a cookie names one,
and each carries its own CSRF token for the forms. Pure: time is an injected clock.

Limits: a session lives ``ttl`` after its last use; at most ``max_sessions`` are kept
(the ones closest to expiry go first when a new one needs room). Sessions do not
survive a restart of the DFSP and are not shared between processes: one DFSP process
serves its back office.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

TOKEN_BYTES: Final = 32
DEFAULT_TTL: Final = timedelta(minutes=30)
MAX_SESSIONS: Final = 10_000
MAX_TOKEN_CHARS: Final = 64


@dataclass
class WebSession:
    """A browser's session: anonymous (before login, for the login form's CSRF token)
    or of one customer."""

    token: str
    csrf: str
    expires_at: datetime
    customer_id: str | None = None
    user_number: str | None = None
    name: str = ""
    roles: frozenset[str] = frozenset()  # back-office roles at login (for the menu)

    def csrf_matches(self, presented: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), presented.encode())


class SessionStore:
    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        ttl: timedelta = DEFAULT_TTL,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        assert ttl > timedelta(0) and max_sessions > 0
        self._clock = clock
        self._ttl = ttl
        self._max = max_sessions
        self._sessions: dict[str, WebSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def open(
        self,
        customer_id: str | None = None,
        user_number: str | None = None,
        name: str = "",
        roles: frozenset[str] = frozenset(),
    ) -> WebSession:
        """A new session with fresh tokens (a login always gets a new one)."""
        self._make_room()
        session = WebSession(
            token=secrets.token_urlsafe(TOKEN_BYTES),
            csrf=secrets.token_urlsafe(TOKEN_BYTES),
            expires_at=self._clock() + self._ttl,
            customer_id=customer_id,
            user_number=user_number,
            name=name,
            roles=roles,
        )
        self._sessions[session.token] = session
        return session

    def find(self, token: str | None) -> WebSession | None:
        """The live session of this token (its expiry moved on), or None."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self._clock()
        if session.expires_at <= now:
            del self._sessions[token]
            return None
        session.expires_at = now + self._ttl
        return session

    def close(self, token: str) -> None:
        self._sessions.pop(token, None)

    def _make_room(self) -> None:
        now = self._clock()
        for token in [t for t, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[token]
        while len(self._sessions) >= self._max:
            oldest = min(self._sessions.values(), key=lambda s: s.expires_at)
            del self._sessions[oldest.token]
