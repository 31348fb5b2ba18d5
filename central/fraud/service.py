"""Fraud sharing use cases: report, blacklist, unblacklist, read a user's standing.

A user's score is the highest of the DFSPs' latest reports about them (a DFSP's new
report replaces its previous one, so a DFSP can lower its own score). A user is blocked
when the score is 100 or the user number is blacklisted: another DFSP may not be added
to the user in the directory, and the rules refuse transfers from or to them.
``standing(session, numbers)`` reads inside another component's transaction (the
directory checks in the same transaction that adds the DFSP).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from central.directory.numbers import is_user_number
from central.errors import ForbiddenError, ValidationError
from central.fraud.store import BlacklistRow, FraudReportRow
from ussdloop import db

MAX_SCORE: Final = 100  # a score of 100 blocks the user
MAX_REASON: Final = 200
MAX_LOOKUP: Final = 100  # user numbers read at once
Clock = Callable[[], datetime]
log = logging.getLogger(__name__)


class FraudViolationError(ForbiddenError):
    """The user is blocked: blacklisted, or scored 100 by a DFSP."""


@dataclass(frozen=True)
class FraudReport:
    dfsp: str
    score: int
    reason: str
    reported_at: datetime


@dataclass(frozen=True)
class FraudStanding:
    user_number: str
    score: int  # the highest of the DFSPs' latest reports; 0 without reports
    blacklisted: bool
    reason: str | None  # of the last blacklist change (None: never blacklisted)
    changed_by: str | None
    changed_at: datetime | None
    reports: tuple[FraudReport, ...]

    @property
    def blocked(self) -> bool:
        return self.blacklisted or self.score >= MAX_SCORE


def check_user_number(user_number: str) -> str:
    if not is_user_number(user_number):
        raise ValidationError(f"{user_number!r} is not a user number (8 digits, not 0 first)")
    return user_number


def check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise ValidationError(f"a reason is 1 to {MAX_REASON} characters")
    return reason


class Fraud:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def report(self, dfsp: str, user_number: str, score: int, reason: str) -> FraudStanding:
        check_user_number(user_number)
        reason = check_reason(reason)
        if isinstance(score, bool) or not 0 <= score <= MAX_SCORE:
            raise ValidationError(f"a score is a whole number from 0 to {MAX_SCORE}")
        for attempt in range(2):  # two first reports at once: the loser updates
            try:
                async with self._sessions.begin() as session:
                    row = await session.get(
                        FraudReportRow, (dfsp, user_number), with_for_update=True
                    )
                    if row is None:
                        row = FraudReportRow(dfsp=dfsp, user_number=user_number)
                        session.add(row)
                    row.score, row.reason, row.reported_at = score, reason, self._clock()
                break
            except IntegrityError:
                if attempt:
                    raise
        log.info("event=fraud_reported user_number=%s dfsp=%s score=%d", user_number, dfsp, score)
        return await self.standing(user_number)

    async def blacklist(self, user_number: str, reason: str, by: str) -> FraudStanding:
        return await self._set_blacklisted(user_number, True, reason, by)

    async def unblacklist(self, user_number: str, reason: str, by: str) -> FraudStanding:
        return await self._set_blacklisted(user_number, False, reason, by)

    async def standing(self, user_number: str) -> FraudStanding:
        return (await self.lookup([user_number]))[0]

    async def lookup(self, user_numbers: Sequence[str]) -> list[FraudStanding]:
        """The standing of each user number, in order (one never reported is clean), read
        in one transaction; 1 to ``MAX_LOOKUP`` numbers."""
        if not 0 < len(user_numbers) <= MAX_LOOKUP:
            raise ValidationError(f"1 to {MAX_LOOKUP} user numbers at once")
        for number in user_numbers:
            check_user_number(number)
        async with self._reading() as session:
            found = await standings(session, user_numbers)
        return [found[number] for number in user_numbers]

    async def _set_blacklisted(
        self, user_number: str, blacklisted: bool, reason: str, by: str
    ) -> FraudStanding:
        check_user_number(user_number)
        reason = check_reason(reason)
        for attempt in range(2):
            try:
                async with self._sessions.begin() as session:
                    row = await session.get(BlacklistRow, user_number, with_for_update=True)
                    if row is None:
                        row = BlacklistRow(user_number=user_number)
                        session.add(row)
                    row.blacklisted, row.reason = blacklisted, reason
                    row.changed_by, row.changed_at = by, self._clock()
                break
            except IntegrityError:
                if attempt:
                    raise
        log.info(
            "event=fraud_blacklist_changed user_number=%s blacklisted=%s by=%s",
            user_number,
            blacklisted,
            by,
        )
        return await self.standing(user_number)

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=db.READ_ONLY)
            yield session


async def standings(
    session: AsyncSession, user_numbers: Collection[str]
) -> dict[str, FraudStanding]:
    """The standing of each user number, read in ``session``'s transaction."""
    numbers = set(user_numbers)
    reports: dict[str, list[FraudReport]] = {number: [] for number in numbers}
    rows = await session.scalars(
        select(FraudReportRow)
        .where(FraudReportRow.user_number.in_(numbers))
        .order_by(FraudReportRow.reported_at.desc(), FraudReportRow.dfsp)
    )
    for row in rows:
        reports[row.user_number].append(
            FraudReport(row.dfsp, row.score, row.reason, row.reported_at)
        )
    blacklist = {
        row.user_number: row
        for row in await session.scalars(
            select(BlacklistRow).where(BlacklistRow.user_number.in_(numbers))
        )
    }
    answer = {}
    for number in numbers:
        entry = blacklist.get(number)
        answer[number] = FraudStanding(
            user_number=number,
            score=max((report.score for report in reports[number]), default=0),
            blacklisted=entry is not None and entry.blacklisted,
            reason=None if entry is None else entry.reason,
            changed_by=None if entry is None else entry.changed_by,
            changed_at=None if entry is None else entry.changed_at,
            reports=tuple(reports[number]),
        )
    return answer
