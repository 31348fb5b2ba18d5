"""The auditor's records (SQLAlchemy models and queries; the use cases are
``dfsp.auditing``).

``fraud_checks`` (migration 0010): every fraud check an auditor recorded, and every
blacklisting and unblacklisting, oldest first, with who (``actor``: the auditor's user
number and name) and why. A customer's last row is their "last fraud check". The
blacklist flag itself is ``customers.blacklisted`` (``dfsp.customer_store``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ColumnElement,
    Index,
    Integer,
    String,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dfsp.customer_store import CustomerRow
from dfsp.store import Base, UTCDateTime

_SERIAL = BigInteger().with_variant(Integer, "sqlite")
MAX_COMMENT_CHARS = 500


class CheckAction(enum.StrEnum):
    CHECK = "check"
    BLACKLIST = "blacklist"
    UNBLACKLIST = "unblacklist"


class FraudCheckRow(Base):
    __tablename__ = "fraud_checks"
    __table_args__ = (
        CheckConstraint("action IN ('check', 'blacklist', 'unblacklist')", name="known_action"),
        CheckConstraint("score IS NULL OR (score >= 0 AND score <= 100)", name="score_range"),
        Index("ix_fraud_checks_customer", "customer_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(String(MAX_COMMENT_CHARS))
    score: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class FraudCheck:
    action: CheckAction
    actor: str
    comment: str
    score: int | None
    at: datetime


def check_value(row: FraudCheckRow) -> FraudCheck:
    return FraudCheck(CheckAction(row.action), row.actor, row.comment, row.score, row.at)


def add_check(
    session: AsyncSession,
    customer_id: str,
    action: CheckAction,
    *,
    actor: str,
    comment: str,
    score: int | None,
    at: datetime,
) -> None:
    session.add(
        FraudCheckRow(
            customer_id=customer_id,
            action=action.value,
            actor=actor,
            comment=comment,
            score=score,
            at=at,
        )
    )


async def checks_of(session: AsyncSession, customer_id: str, limit: int) -> list[FraudCheck]:
    """The customer's latest checks, newest first."""
    query = (
        select(FraudCheckRow)
        .where(FraudCheckRow.customer_id == customer_id)
        .order_by(FraudCheckRow.seq.desc())
        .limit(limit)
    )
    return [check_value(row) for row in await session.scalars(query)]


async def customers_by_national_id(
    session: AsyncSession, national_id: str, limit: int
) -> list[CustomerRow]:
    """Everyone registered with this (normalised) national ID: names may differ."""
    query = (
        select(CustomerRow)
        .where(CustomerRow.national_id == national_id)
        .order_by(CustomerRow.created_at)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def unchecked_since(
    session: AsyncSession, cutoff: datetime | None, limit: int
) -> list[tuple[CustomerRow, datetime | None]]:
    """Customers never checked, then those whose last check is before ``cutoff`` (None:
    only those never checked), longest unchecked first, with their last check's time."""
    last = (
        select(FraudCheckRow.customer_id, func.max(FraudCheckRow.at).label("last_at"))
        .group_by(FraudCheckRow.customer_id)
        .subquery()
    )
    stale: ColumnElement[bool] = last.c.last_at.is_(None)
    if cutoff is not None:
        stale = or_(stale, last.c.last_at < cutoff)
    query = (
        select(CustomerRow, last.c.last_at)
        .outerjoin(last, last.c.customer_id == CustomerRow.id)
        .where(stale)
        .order_by(last.c.last_at.is_not(None), last.c.last_at, CustomerRow.created_at)
        .limit(limit)
    )
    return [(row, at) for row, at in await session.execute(query)]
