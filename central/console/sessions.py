"""The console's login sessions: kept in this process's memory only (a restart logs
every operator out), each with an expiry and its own CSRF token.

A session is a random 256-bit token (the cookie) and a second random token every form
of that session carries (CSRF). Both are compared in constant time. At most
``MAX_SESSIONS`` live at once: a new login past that drops the oldest. Time comes from
an injected monotonic clock so tests move it instead of sleeping.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MAX_SESSIONS: Final = 32
SESSION_SECONDS: Final = 30 * 60  # idle expiry: each request in time renews it

Clock = Callable[[], float]


@dataclass
class ConsoleSession:
    token: str
    csrf: str
    operator: str  # the operator's key, for the forensic records' "by"
    expires_at: float


class Sessions:
    def __init__(self, clock: Clock = time.monotonic, lifetime: float = SESSION_SECONDS) -> None:
        self._clock = clock
        self._lifetime = lifetime
        self._live: dict[str, ConsoleSession] = {}

    def open(self, operator: str) -> ConsoleSession:
        self._drop_expired()
        while len(self._live) >= MAX_SESSIONS:
            oldest = min(self._live.values(), key=lambda s: s.expires_at)
            del self._live[oldest.token]
        session = ConsoleSession(
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            operator,
            self._clock() + self._lifetime,
        )
        self._live[session.token] = session
        assert len(self._live) <= MAX_SESSIONS
        return session

    def find(self, token: str | None) -> ConsoleSession | None:
        """The live session of this cookie (renewed), or None."""
        if not token or len(token) > 100:
            return None
        found = None
        for candidate in self._live.values():  # constant time per stored token
            if hmac.compare_digest(candidate.token, token):
                found = candidate
        if found is None:
            return None
        now = self._clock()
        if found.expires_at <= now:
            del self._live[found.token]
            return None
        found.expires_at = now + self._lifetime
        return found

    def close(self, token: str) -> None:
        self._live.pop(token, None)

    def __len__(self) -> int:
        return len(self._live)

    def _drop_expired(self) -> None:
        now = self._clock()
        for token in [t for t, s in self._live.items() if s.expires_at <= now]:
            del self._live[token]


def csrf_matches(session: ConsoleSession, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(session.csrf.encode(), sent.encode())
