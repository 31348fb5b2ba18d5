"""Participants: registering the DFSPs of the network, their credentials, pausing them.

A DFSP is registered by the switch operator and gets a generated key and secret, shown
once; the secret is kept only as its SHA-256 (it is 256 random bits, so a fast hash
cannot be reversed by guessing, and checking it costs nothing per request). A DFSP
name is what ILP addresses use for it (``private.l1p.ZZZ.<name>``): 1 to 20 of
``A-Z a-z 0-9 _ ~ -``. A paused DFSP keeps its credentials; the components decide what
it may still do (its users look unknown in the directory, the ledger cancels its
pending transfers and refuses new ones).

Every request of a DFSP is authenticated, so a verified credential is remembered for
``VERIFIED_FOR`` (at most ``VERIFIED_MAX`` of them, keyed on the key and the secret's
hash, never the secret): a DFSP's payment costs several calls to the centre, each of
which would otherwise read the participant again. A change made here (register, pause,
cap) forgets them all at once; the bound only matters for a change made by another
central process sharing the database, which this one sees within those seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from central.errors import AlreadyExistsError, NotFoundError, ValidationError
from central.store import ParticipantRow
from ussdloop import db

NAME: Final = re.compile(r"[A-Za-z0-9_~-]{1,20}")
VERIFIED_FOR: Final = timedelta(seconds=2)  # how long a verified credential is remembered
VERIFIED_MAX: Final = 64  # credentials remembered at most (the least recently used go)
Clock = Callable[[], datetime]


class Status(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


@dataclass(frozen=True)
class Participant:
    name: str
    status: Status
    net_debit_cap_minor: int | None  # None: no cap
    created_at: datetime

    @property
    def active(self) -> bool:
        return self.status is Status.ACTIVE


@dataclass(frozen=True)
class Credentials:
    """What a newly registered DFSP authenticates with (HTTP Basic): shown once."""

    name: str
    key: str
    secret: str


class Participants:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock
        # (key, secret hash) -> (the participant, until when it is remembered)
        self._verified: OrderedDict[tuple[str, str], tuple[Participant, datetime]] = OrderedDict()
        self._generation = 0  # + 1 at each change: a read begun before it is not remembered

    async def register(self, name: str, *, net_debit_cap_minor: int | None = None) -> Credentials:
        if not NAME.fullmatch(name):
            raise ValidationError("a DFSP name is 1 to 20 of A-Z a-z 0-9 _ ~ -")
        credentials = Credentials(name, f"{name}-{secrets.token_hex(6)}", secrets.token_urlsafe(32))
        now = self._clock()
        row = ParticipantRow(
            name=name,
            key=credentials.key,
            secret_hash=_hash(credentials.secret),
            status=Status.ACTIVE.value,
            net_debit_cap_minor=net_debit_cap_minor,
            created_at=now,
            changed_at=now,
        )
        try:
            async with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            raise AlreadyExistsError(f"the DFSP {name!r} already exists") from None
        return credentials

    async def authenticate(self, key: str, secret: str) -> Participant | None:
        """The participant these credentials belong to, or None (a refusal is never
        remembered: a wrong secret costs a read each time)."""
        secret_hash = _hash(secret)
        remembered = self._remembered((key, secret_hash))
        if remembered is not None:
            return remembered
        generation = self._generation
        async with self._reading() as session:
            row = await session.scalar(select(ParticipantRow).where(ParticipantRow.key == key))
        if row is None or not hmac.compare_digest(row.secret_hash, secret_hash):
            return None
        participant = _participant(row)
        if generation == self._generation:
            self._verified[(key, secret_hash)] = (participant, self._clock() + VERIFIED_FOR)
            while len(self._verified) > VERIFIED_MAX:
                self._verified.popitem(last=False)
        return participant

    def _remembered(self, credential: tuple[str, str]) -> Participant | None:
        found = self._verified.get(credential)
        if found is None:
            return None
        participant, until = found
        if self._clock() >= until:
            del self._verified[credential]
            return None
        self._verified.move_to_end(credential)
        return participant

    async def get(self, name: str) -> Participant:
        async with self._reading() as session:
            row = await session.get(ParticipantRow, name)
        if row is None:
            raise NotFoundError(f"no DFSP named {name!r}")
        return _participant(row)

    async def all(self) -> list[Participant]:
        async with self._reading() as session:
            rows = await session.scalars(select(ParticipantRow).order_by(ParticipantRow.name))
            return [_participant(row) for row in rows]

    async def set_status(self, name: str, status: Status) -> Participant:
        """Pause or unpause; the same status again is no change."""
        return await self._change(name, lambda row: setattr(row, "status", status.value))

    async def set_net_debit_cap(self, name: str, cap_minor: int | None) -> Participant:
        if cap_minor is not None and cap_minor < 0:
            raise ValidationError("a net debit cap is not negative")
        return await self._change(name, lambda row: setattr(row, "net_debit_cap_minor", cap_minor))

    async def _change(self, name: str, change: Callable[[ParticipantRow], object]) -> Participant:
        try:
            async with self._sessions.begin() as session:
                row = await session.get(ParticipantRow, name, with_for_update=True)
                if row is None:
                    raise NotFoundError(f"no DFSP named {name!r}")
                change(row)
                row.changed_at = self._clock()
                return _participant(row)
        finally:  # committed (or not): nothing read before now is remembered
            self._forget_verified()

    def _forget_verified(self) -> None:
        self._verified.clear()
        self._generation += 1

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=db.READ_ONLY)
            yield session


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _participant(row: ParticipantRow) -> Participant:
    return Participant(row.name, Status(row.status), row.net_debit_cap_minor, row.created_at)
