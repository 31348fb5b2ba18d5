"""Directory use cases: endpoints, registering end users, their DFSPs and primary DFSP,
and looking users up.

Invariants: a user has at least one DFSP (removing the last removes the user) and
exactly one primary; the primary changes only at the current primary's request and is
removed last. Changes to one user run under a lock on the user's row (PostgreSQL
``FOR UPDATE``; SQLite serialises writers), and the unique index over the primary rows
holds the single primary whatever runs concurrently. A new user number is drawn at
random and its insert retried on a collision (the primary key decides).

A lookup answers only for a user whose primary DFSP is active and has an endpoint: the
users of a paused DFSP look unknown (its status is read live, at every lookup).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from central.directory.numbers import is_user_number, random_user_number
from central.directory.store import DfspEndpointRow, UserDfspRow, UserRow
from central.errors import (
    AlreadyExistsError,
    ForbiddenError,
    NotFoundError,
    UnprocessableEntityError,
    ValidationError,
)
from central.fraud.service import FraudStanding, FraudViolationError, standings
from central.participants import Status
from central.store import ParticipantRow
from ussdloop import db
from ussdloop.http import HttpError

MAX_NAME: Final = 64
MAX_URL: Final = 200
MAX_BATCH: Final = 1000  # identifiers per batch lookup
MAX_ALLOCATION_ATTEMPTS: Final = 16  # random user numbers tried before giving up
Clock = Callable[[], datetime]
log = logging.getLogger(__name__)


class UserNumbersExhausted(HttpError):
    """No free user number was found in MAX_ALLOCATION_ATTEMPTS draws."""

    status = 503


@dataclass(frozen=True)
class Resource:
    """Where payments to a user number go: the primary DFSP's receiver for the user."""

    user_number: str
    name: str
    dfsp: str
    spsp_receiver: str


@dataclass(frozen=True)
class Registration:
    user_number: str
    name: str
    primary: bool  # whether the calling DFSP is the user's primary DFSP


def check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ValidationError(f"a name is 1 to {MAX_NAME} printable characters")
    return name


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > MAX_URL:
        raise ValidationError(f"'url' is an http(s) URL of at most {MAX_URL} characters")
    if parts.query or parts.fragment:
        raise ValidationError("'url' is a base URL: no query or fragment")
    return url.rstrip("/")


def known_number(user_number: str) -> str:
    if not is_user_number(user_number):
        raise ValidationError(f"{user_number!r} is not a user number (8 digits, not 0 first)")
    return user_number


class Directory:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        draw: Callable[[], str] = random_user_number,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._draw = draw

    async def set_endpoint(self, dfsp: str, url: str) -> str:
        url = check_url(url)
        try:
            await self._store_endpoint(dfsp, url)
        except IntegrityError:  # a concurrent first announce inserted the row: update it
            await self._store_endpoint(dfsp, url)
        return url

    async def _store_endpoint(self, dfsp: str, url: str) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(DfspEndpointRow, dfsp, with_for_update=True)
            if row is None:
                row = DfspEndpointRow(dfsp=dfsp)
                session.add(row)
            row.url, row.changed_at = url, self._clock()

    async def endpoint(self, dfsp: str) -> str | None:
        async with self._reading() as session:
            row = await session.get(DfspEndpointRow, dfsp)
            return None if row is None else row.url

    async def register_user(self, dfsp: str, name: str) -> Registration:
        """A new user with a fresh user number; ``dfsp`` is their primary DFSP."""
        name = check_name(name)
        for _ in range(MAX_ALLOCATION_ATTEMPTS):
            number = self._draw()
            assert is_user_number(number), number
            now = self._clock()
            try:
                async with self._sessions.begin() as session:
                    session.add(UserRow(user_number=number, name=name, created_at=now))
                    await session.flush()
                    session.add(
                        UserDfspRow(user_number=number, dfsp=dfsp, is_primary=True, added_at=now)
                    )
            except IntegrityError:
                continue  # the number is taken: draw another
            log.info("event=directory_user_registered user_number=%s dfsp=%s", number, dfsp)
            return Registration(number, name, primary=True)
        raise UserNumbersExhausted("no free user number found; try again")

    async def add_dfsp(self, dfsp: str, user_number: str) -> Registration:
        """Add the calling DFSP to an existing user (not primary: the user already has one)."""
        known_number(user_number)
        try:
            async with self._sessions.begin() as session:
                user = await self._locked_user(session, user_number)
                standing = (await standings(session, [user_number]))[user_number]
                if standing.blocked:
                    raise FraudViolationError(f"the user {user_number} is blocked (fraud)")
                if await session.get(UserDfspRow, (user_number, dfsp)) is not None:
                    raise AlreadyExistsError(f"the user {user_number} already has {dfsp!r}")
                session.add(
                    UserDfspRow(
                        user_number=user_number,
                        dfsp=dfsp,
                        is_primary=False,
                        added_at=self._clock(),
                    )
                )
                name = user.name
        except IntegrityError:
            raise AlreadyExistsError(f"the user {user_number} already has {dfsp!r}") from None
        log.info("event=directory_dfsp_added user_number=%s dfsp=%s", user_number, dfsp)
        return Registration(user_number, name, primary=False)

    async def remove_dfsp(self, dfsp: str, user_number: str) -> bool:
        """Remove ``dfsp`` from the user; True when that removed the user (their last DFSP)."""
        known_number(user_number)
        async with self._sessions.begin() as session:
            await self._locked_user(session, user_number)
            link = await session.get(UserDfspRow, (user_number, dfsp))
            if link is None:
                raise NotFoundError(f"the user {user_number} does not have {dfsp!r}")
            count = await session.scalar(
                select(func.count())
                .select_from(UserDfspRow)
                .where(UserDfspRow.user_number == user_number)
            )
            if count == 1:
                await session.execute(
                    delete(UserDfspRow).where(UserDfspRow.user_number == user_number)
                )
                await session.execute(delete(UserRow).where(UserRow.user_number == user_number))
            elif link.is_primary:
                raise UnprocessableEntityError(
                    "the primary DFSP is removed last: make another DFSP primary first"
                )
            else:
                await session.delete(link)
        event = "directory_user_removed" if count == 1 else "directory_dfsp_removed"
        log.info("event=%s user_number=%s dfsp=%s", event, user_number, dfsp)
        return count == 1

    async def set_primary(self, caller: str, user_number: str, target: str) -> None:
        """Make ``target`` the user's primary DFSP; only the current primary may."""
        known_number(user_number)
        async with self._sessions.begin() as session:
            await self._locked_user(session, user_number)
            links = {
                link.dfsp: link
                for link in await session.scalars(
                    select(UserDfspRow).where(UserDfspRow.user_number == user_number)
                )
            }
            current = next((name for name, link in links.items() if link.is_primary), None)
            assert current is not None, f"the user {user_number} has no primary DFSP"
            if caller != current:
                raise ForbiddenError("only the user's primary DFSP may change the primary")
            if target not in links:
                raise NotFoundError(f"the user {user_number} does not have {target!r}")
            if target == current:
                return
            where = UserDfspRow.user_number == user_number
            # Two statements, demote first: the unique index admits one primary at a time.
            await session.execute(update(UserDfspRow).where(where).values(is_primary=False))
            await session.execute(
                update(UserDfspRow)
                .where(and_(where, UserDfspRow.dfsp == target))
                .values(is_primary=True)
            )
        log.info("event=directory_primary_changed user_number=%s dfsp=%s", user_number, target)

    async def lookup(self, user_number: str) -> Resource:
        known_number(user_number)
        found = (await self.lookup_many([user_number]))[user_number]
        if found is None:
            raise NotFoundError("The requested resource could not be found.")
        return found

    async def lookup_many(self, user_numbers: Collection[str]) -> dict[str, Resource | None]:
        """Each number's resource; None for a malformed or unknown number, or a user whose
        primary DFSP is paused or has no endpoint yet."""
        async with self._reading() as session:
            return await _resources(session, user_numbers)

    async def lookup_screened(
        self, user_numbers: Collection[str], parties: Collection[str]
    ) -> tuple[dict[str, Resource | None], dict[str, FraudStanding]]:
        """The resources of ``user_numbers`` (as ``lookup_many``) and the fraud standings
        of ``parties``, read in one transaction (the rules' check of transfers)."""
        async with self._reading() as session:
            return await _resources(session, user_numbers), await standings(session, parties)

    @staticmethod
    async def _locked_user(session: AsyncSession, user_number: str) -> UserRow:
        user = await session.get(UserRow, user_number, with_for_update=True)
        if user is None:
            raise NotFoundError(f"no user {user_number}")
        return user

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=db.READ_ONLY)
            yield session


async def _resources(
    session: AsyncSession, user_numbers: Collection[str]
) -> dict[str, Resource | None]:
    if len(user_numbers) > MAX_BATCH:
        raise ValidationError(f"at most {MAX_BATCH} identifiers at once")
    answer: dict[str, Resource | None] = dict.fromkeys(user_numbers)
    wellformed = [number for number in answer if is_user_number(number)]
    if not wellformed:
        return answer
    query = (
        select(UserRow.user_number, UserRow.name, UserDfspRow.dfsp, DfspEndpointRow.url)
        .join(
            UserDfspRow,
            and_(UserDfspRow.user_number == UserRow.user_number, UserDfspRow.is_primary),
        )
        .join(ParticipantRow, ParticipantRow.name == UserDfspRow.dfsp)
        .join(DfspEndpointRow, DfspEndpointRow.dfsp == UserDfspRow.dfsp)
        .where(UserRow.user_number.in_(wellformed), ParticipantRow.status == Status.ACTIVE.value)
    )
    for number, name, dfsp, url in await session.execute(query):
        answer[number] = Resource(number, name, dfsp, f"{url}/receivers/{number}")
    return answer
