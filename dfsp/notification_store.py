"""The DFSP's notice outbox (SQLAlchemy model and queries).

Table ``notice_outbox`` (made by migration 0003, on the shared ``dfsp.store.Base``): one
row per notice, unique on its idempotency ``key``; ``seq`` gives the posting order
("oldest first"). A row moves ``pending`` -> ``delivered`` or ``pending`` -> ``dropped``
(its customer is gone), never back; while pending, ``next_attempt_at`` says when the
delivery loop may try it again and ``attempts`` how often it has failed.

Idempotency holds under concurrent writers: the insert is ``INSERT ... ON CONFLICT
(key) DO NOTHING`` (SQLite and PostgreSQL), so the second of two posts of a key is a
no-op, not an error.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    String,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dfsp.domain.notices import Notice
from dfsp.store import Base, UTCDateTime

_SERIAL = BigInteger().with_variant(Integer, "sqlite")
MAX_ERROR_LENGTH = 255


class OutboxState(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DROPPED = "dropped"


# The allowed transitions of an outbox row: only forward, each once.
TRANSITIONS: dict[OutboxState, frozenset[OutboxState]] = {
    OutboxState.PENDING: frozenset({OutboxState.DELIVERED, OutboxState.DROPPED}),
    OutboxState.DELIVERED: frozenset(),
    OutboxState.DROPPED: frozenset(),
}


class NoticeRow(Base):
    __tablename__ = "notice_outbox"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'delivered', 'dropped')", name="known_state"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_notice_outbox_due", "state", "next_attempt_at", "seq"),
    )

    seq: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    message: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    push: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(MAX_ERROR_LENGTH))


async def insert_notices(session: AsyncSession, notices: Sequence[Notice], now: datetime) -> None:
    """Store the notices; a key already stored is left as it is."""
    if not notices:
        return
    rows = [
        {
            "key": notice.key,
            "customer_id": notice.customer_id,
            "message": notice.message,
            "args": dict(notice.args),
            "push": notice.push,
            "state": OutboxState.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for notice in notices
    ]
    dialect = session.bind.dialect.name if session.bind is not None else ""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(insert(NoticeRow).on_conflict_do_nothing(index_elements=["key"]), rows)


async def claim_due(
    session: AsyncSession, now: datetime, limit: int, lease_until: datetime
) -> list[NoticeRow]:
    """Up to ``limit`` pending rows whose next attempt is due, oldest first, claimed until
    ``lease_until`` (their next attempt moved there) so that no other delivery loop
    takes them meanwhile; rows another transaction holds are skipped."""
    query = (
        select(NoticeRow)
        .where(NoticeRow.state == OutboxState.PENDING.value, NoticeRow.next_attempt_at <= now)
        .order_by(NoticeRow.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list((await session.scalars(query)).all())
    for row in rows:
        row.next_attempt_at = lease_until
    await session.flush()
    return rows


async def next_attempt(session: AsyncSession) -> datetime | None:
    """When the earliest pending row is due (None when nothing is pending)."""
    query = select(func.min(NoticeRow.next_attempt_at)).where(
        NoticeRow.state == OutboxState.PENDING.value
    )
    return (await session.execute(query)).scalar_one_or_none()


async def finish_many(
    session: AsyncSession, state: OutboxState, now: datetime, reasons: Mapping[int, str | None]
) -> None:
    """Move pending rows (by seq) to ``state``, each with its reason (None: none); a row
    not pending any more is left as it is."""
    assert state in TRANSITIONS[OutboxState.PENDING], state
    values: dict[str, Any] = {
        "state": state.value,
        "finished_at": now,
        "last_error": bindparam("b_error"),
    }
    params = [{"b_seq": seq, "b_error": _clip(reason)} for seq, reason in reasons.items()]
    await _update_pending(session, values, params)


@dataclass(frozen=True)
class Postponement:
    """A failed attempt of a pending row: its failures so far and when to try again."""

    seq: int
    attempts: int
    at: datetime
    error: str


async def postpone_many(session: AsyncSession, postponements: Sequence[Postponement]) -> None:
    """Record failed attempts of pending rows and when to try each again."""
    values: dict[str, Any] = {
        "attempts": bindparam("b_attempts"),
        "next_attempt_at": bindparam("b_at"),
        "last_error": bindparam("b_error"),
    }
    params = [
        {"b_seq": p.seq, "b_attempts": p.attempts, "b_at": p.at, "b_error": _clip(p.error)}
        for p in postponements
    ]
    await _update_pending(session, values, params)


async def _update_pending(
    session: AsyncSession, values: Mapping[str, Any], params: Sequence[Mapping[str, Any]]
) -> None:
    """One UPDATE of the pending row ``b_seq`` run for each of ``params``: one executemany,
    as Core runs it (not the ORM's bulk UPDATE by primary key)."""
    if not params:
        return
    statement = (
        update(NoticeRow)
        .where(NoticeRow.seq == bindparam("b_seq"), NoticeRow.state == OutboxState.PENDING.value)
        .values(values)
        .execution_options(dml_strategy="core_only")
    )
    await session.execute(statement, params)


async def count_in_state(session: AsyncSession, state: OutboxState) -> int:
    query = select(func.count()).select_from(NoticeRow).where(NoticeRow.state == state.value)
    return int((await session.execute(query)).scalar_one())


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:MAX_ERROR_LENGTH]
