"""Bulk payments' tables (SQLAlchemy models and queries; made by migration 0009, on the
shared ``dfsp.store.Base``).

- ``bulk_roles``: the back-office roles (``maker``, ``checker``, ``auditor``) the DFSP
  gave its customers (``has_role`` also takes the ones its configuration names).
- ``bulk_batches``: one uploaded file, its maker, source account, end of retries,
  checker and state (``dfsp.domain.bulk.BatchState``).
- ``bulk_rows``: one line of the file each, keyed (batch, line); ``state`` is a
  ``RowState``, ``attempt`` numbers the transfer id of the current attempt
  (``dfsp.domain.bulk.transfer_id``), ``next_attempt_at`` when the runner looks at it
  again. Rows the runner looks at are found by (state, next_attempt_at).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from dfsp.domain.bulk import OPEN_ROW_STATES, BatchState, RowState
from dfsp.store import Base, UTCDateTime

MAX_ROWS_PER_CLAIM = 100


class BulkRoleRow(Base):
    __tablename__ = "bulk_roles"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BatchRow(Base):
    __tablename__ = "bulk_batches"
    __table_args__ = (Index("ix_bulk_batches_state", "state"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    maker_id: Mapped[str] = mapped_column(String(36))
    account_id: Mapped[str] = mapped_column(String(36))
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(16))
    checker_id: Mapped[str | None] = mapped_column(String(36))
    note: Mapped[str | None] = mapped_column(String(200))
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PaymentRow(Base):
    __tablename__ = "bulk_rows"
    __table_args__ = (Index("ix_bulk_rows_due", "batch_id", "state", "next_attempt_at"),)

    batch_id: Mapped[str] = mapped_column(ForeignKey("bulk_batches.id"), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    sequence: Mapped[int | None] = mapped_column(Integer)
    identifier: Mapped[str] = mapped_column(String(100))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    national_id: Mapped[str] = mapped_column(String(100))
    dob: Mapped[str] = mapped_column(String(100))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    msisdn: Mapped[str | None] = mapped_column(String(16))
    user_number: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    transfer_id: Mapped[str | None] = mapped_column(String(36))
    fee_minor: Mapped[int | None] = mapped_column(BigInteger)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


async def roles_of(session: AsyncSession, customer_id: str) -> set[str]:
    query = select(BulkRoleRow.role).where(BulkRoleRow.customer_id == customer_id)
    return set((await session.scalars(query)).all())


async def has_role(
    sessions: async_sessionmaker[AsyncSession],
    customer_id: str,
    user_number: str,
    role: str,
    configured: Collection[str],
) -> bool:
    """A back-office role given by configuration (``configured`` user numbers) or by a
    row of ``bulk_roles``."""
    if user_number in configured:
        return True
    async with sessions() as session:
        return role in await roles_of(session, customer_id)


async def grant_role(
    sessions: async_sessionmaker[AsyncSession], customer_id: str, role: str, at: datetime
) -> None:
    """Give the role by a row of ``bulk_roles``; again is a no-op."""
    async with sessions.begin() as session:
        if role not in await roles_of(session, customer_id):
            session.add(BulkRoleRow(customer_id=customer_id, role=role, granted_at=at))


async def batch(session: AsyncSession, batch_id: str, *, lock: bool = False) -> BatchRow | None:
    query = select(BatchRow).where(BatchRow.id == batch_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).one_or_none()


async def rows_of(session: AsyncSession, batch_id: str) -> Sequence[PaymentRow]:
    query = select(PaymentRow).where(PaymentRow.batch_id == batch_id).order_by(PaymentRow.line)
    return (await session.scalars(query)).all()


async def lock_rows(
    session: AsyncSession, batch_id: str, lines: Sequence[int]
) -> dict[int, PaymentRow]:
    """These rows of a batch, locked in line order, by line."""
    query = (
        select(PaymentRow)
        .where(PaymentRow.batch_id == batch_id, PaymentRow.line.in_(sorted(set(lines))))
        .order_by(PaymentRow.line)
        .with_for_update()
    )
    return {row.line: row for row in (await session.scalars(query)).all()}


async def batches_in(session: AsyncSession, states: Sequence[BatchState]) -> Sequence[BatchRow]:
    query = (
        select(BatchRow)
        .where(BatchRow.state.in_([s.value for s in states]))
        .order_by(BatchRow.created_at, BatchRow.id)
    )
    return (await session.scalars(query)).all()


async def cancelled_with_open_rows(session: AsyncSession) -> Sequence[str]:
    """The cancelled batches the runner has not closed yet (rows in flight, or left)."""
    open_row = exists().where(
        PaymentRow.batch_id == BatchRow.id,
        PaymentRow.state.in_([s.value for s in OPEN_ROW_STATES]),
    )
    query = select(BatchRow.id).where(BatchRow.state == BatchState.CANCELLED.value, open_row)
    return (await session.scalars(query)).all()


async def due_rows(session: AsyncSession, batch_id: str, now: datetime) -> Sequence[PaymentRow]:
    """The open rows of a batch whose time has come, in file order (a bounded batch)."""
    query = (
        select(PaymentRow)
        .where(
            PaymentRow.batch_id == batch_id,
            PaymentRow.state.in_([s.value for s in OPEN_ROW_STATES]),
            PaymentRow.next_attempt_at <= now,
        )
        .order_by(PaymentRow.line)
        .limit(MAX_ROWS_PER_CLAIM)
    )
    return (await session.scalars(query)).all()


async def next_due(session: AsyncSession, batch_id: str) -> tuple[int, datetime | None]:
    """How many rows of the batch are still open, and the earliest time one is due."""
    open_rows = (
        PaymentRow.batch_id == batch_id,
        PaymentRow.state.in_([s.value for s in OPEN_ROW_STATES]),
    )
    count = await session.scalar(select(func.count()).select_from(PaymentRow).where(*open_rows))
    first = select(PaymentRow.next_attempt_at).where(*open_rows)
    earliest = await session.scalar(first.order_by(PaymentRow.next_attempt_at).limit(1))
    return int(count or 0), earliest


def row_state(row: PaymentRow) -> RowState:
    return RowState(row.state)
