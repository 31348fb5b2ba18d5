"""The DFSP's tables (SQLAlchemy 2.x models) and the ledger's queries.

``Base`` is shared by every DFSP table; the schema is made by the Alembic migrations in
``dfsp/migrations`` (``dfsp.migrate``), never by ``create_all``.

Concurrency: the ledger locks the account rows a transfer touches with
``SELECT ... FOR UPDATE`` in id order (PostgreSQL). SQLite has no row locks, so the
DFSP's SQLite engine begins every write transaction with ``BEGIN IMMEDIATE``: writers
queue on the database lock (within the busy timeout) instead of failing with
"database is locked" when a reader upgrades. ``create_store_engine`` sets that up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SQLColumnExpression,
    String,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from dfsp.domain.transfers import (
    AccountKind,
    Entry,
    LedgerAccount,
    Posting,
    Transfer,
    TransferState,
    UnknownAccount,
)
from ussdloop import db
from ussdloop.money import Money

READ_ONLY = db.READ_ONLY
UTCDateTime = db.UTCDateTime
_SERIAL = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER only


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=db.NAMING_CONVENTION)


class ClearingStateRow(Base):
    """The DFSP's clearing state (one row): the secret its payment requests' fulfilments
    are derived from, and the last central notification it handled."""

    __tablename__ = "clearing_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary(64))
    notification_seq: Mapped[int] = mapped_column(BigInteger)


class AccountRow(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("held_minor >= 0", name="held_not_negative"),
        CheckConstraint("incoming_minor >= 0", name="incoming_not_negative"),
        CheckConstraint("allow_negative OR balance_minor >= held_minor", name="covered"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    allow_negative: Mapped[bool]
    balance_minor: Mapped[int] = mapped_column(BigInteger)
    held_minor: Mapped[int] = mapped_column(BigInteger)
    incoming_minor: Mapped[int] = mapped_column(BigInteger)
    balance_limit_minor: Mapped[int | None] = mapped_column(BigInteger)
    # Bumped by every UPDATE, checked in its WHERE: a write without the row lock fails.
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __mapper_args__ = {"version_id_col": version}


class TransferRow(Base):
    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="positive"),
        CheckConstraint(
            "state IN ('prepared', 'executed', 'rejected', 'expired')", name="known_state"
        ),
        Index("ix_ledger_transfers_due", "state", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(255))
    memo: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    postings: Mapped[list[PostingRow]] = relationship(
        order_by="PostingRow.position", lazy="selectin", cascade="all, delete-orphan"
    )


class PostingRow(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="positive"),
        CheckConstraint("debit_account <> credit_account", name="two_accounts"),
        UniqueConstraint("transfer_id", "position"),
    )

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("ledger_transfers.id"))
    position: Mapped[int] = mapped_column(Integer)
    debit_account: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    credit_account: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)


class EntryRow(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_statement", "account_id", "id"),)

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("ledger_transfers.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # signed: negative for a debit
    balance_after_minor: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- engines ------------------------------------------------------------------------


def create_store_engine(url: str, *, schema: str | None = None, **options: Any) -> AsyncEngine:
    """The DFSP's database engine (``ussdloop.db.create_service_engine``)."""
    return db.create_service_engine(url, schema=schema, **options)


# --- queries ------------------------------------------------------------------------


async def lock_accounts(session: AsyncSession, account_ids: Sequence[str]) -> dict[str, AccountRow]:
    """The accounts, locked for update in id order (the one lock order of the ledger)."""
    ordered = sorted(set(account_ids))
    query = (
        select(AccountRow)
        .where(AccountRow.id.in_(ordered))
        .order_by(AccountRow.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    rows = {row.id: row for row in (await session.scalars(query)).all()}
    for account_id in ordered:
        if account_id not in rows:
            raise UnknownAccount(account_id)
    return rows


async def find_transfer(
    session: AsyncSession, transfer_id: str, *, lock: bool = False
) -> TransferRow | None:
    query = select(TransferRow).where(TransferRow.id == transfer_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(query)).one_or_none()


async def find_transfers(
    session: AsyncSession, transfer_ids: Sequence[str], *, lock: bool = False
) -> dict[str, TransferRow]:
    """The transfers among ``transfer_ids`` that exist, by id (locked in id order)."""
    query = select(TransferRow).where(TransferRow.id.in_(sorted(set(transfer_ids))))
    if lock:
        query = query.order_by(TransferRow.id).with_for_update()
        query = query.execution_options(populate_existing=True)
    return {row.id: row for row in (await session.scalars(query)).all()}


async def lock_due_transfers(session: AsyncSession, now: datetime, limit: int) -> list[TransferRow]:
    """Prepared transfers whose time is up, locked; rows another transaction holds are
    skipped (the next sweep sees them if they are still prepared)."""
    query = (
        select(TransferRow)
        .where(TransferRow.state == TransferState.PREPARED.value, TransferRow.expires_at <= now)
        .order_by(TransferRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(query)).all())


async def latest_entries(session: AsyncSession, account_id: str, limit: int) -> list[EntryRow]:
    query = (
        select(EntryRow)
        .where(EntryRow.account_id == account_id)
        .order_by(EntryRow.id.desc())
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def sum_of_balances(session: AsyncSession, currency: str) -> int:
    query = select(func.coalesce(func.sum(AccountRow.balance_minor), 0)).where(
        AccountRow.currency == currency
    )
    return int((await session.execute(query)).scalar_one())


async def audit(session: AsyncSession) -> list[str]:
    """Every way the stored ledger disagrees with itself (empty when consistent): each
    balance is the sum of its entries, each hold the sum of its prepared debits, each
    pending credit the sum of its prepared credits, and each currency sums to zero."""
    prepared = (
        select(PostingRow)
        .join(TransferRow)
        .where(TransferRow.state == TransferState.PREPARED.value)
        .subquery()
    )
    entries = await _sums(session, EntryRow.account_id, EntryRow.amount_minor)
    debits = await _sums(session, prepared.c.debit_account, prepared.c.amount_minor)
    credits = await _sums(session, prepared.c.credit_account, prepared.c.amount_minor)
    problems: list[str] = []
    totals: dict[str, int] = {}
    for row in (await session.scalars(select(AccountRow).order_by(AccountRow.id))).all():
        totals[row.currency] = totals.get(row.currency, 0) + row.balance_minor
        expected = {
            "balance": (row.balance_minor, entries.get(row.id, 0)),
            "held": (row.held_minor, debits.get(row.id, 0)),
            "incoming": (row.incoming_minor, credits.get(row.id, 0)),
        }
        for what, (stored, derived) in expected.items():
            if stored != derived:
                problems.append(f"account {row.id}: {what} {stored} but its rows say {derived}")
    problems.extend(
        f"{currency} accounts sum to {total}, not 0" for currency, total in totals.items() if total
    )
    return problems


async def _sums(
    session: AsyncSession, key: SQLColumnExpression[str], amount: SQLColumnExpression[int]
) -> dict[str, int]:
    rows = await session.execute(select(key, func.sum(amount)).group_by(key))
    return {account_id: int(total) for account_id, total in rows}


# --- rows as domain values ----------------------------------------------------------


def account_value(row: AccountRow) -> LedgerAccount:
    limit = row.balance_limit_minor
    return LedgerAccount(
        id=row.id,
        owner=row.owner,
        name=row.name,
        kind=AccountKind(row.kind),
        currency=row.currency,
        allow_negative=row.allow_negative,
        balance=Money(row.currency, row.balance_minor),
        held=Money(row.currency, row.held_minor),
        incoming=Money(row.currency, row.incoming_minor),
        balance_limit=None if limit is None else Money(row.currency, limit),
        created_at=row.created_at,
    )


def transfer_value(row: TransferRow) -> Transfer:
    return Transfer(
        id=row.id,
        state=TransferState(row.state),
        kind=row.kind,
        amount=Money(row.currency, row.amount_minor),
        postings=postings_of(row),
        created_at=row.created_at,
        expires_at=row.expires_at,
        decided_at=row.decided_at,
        reason=row.reason,
        memo=row.memo,
    )


def postings_of(row: TransferRow) -> tuple[Posting, ...]:
    return tuple(Posting(p.debit_account, p.credit_account, p.amount_minor) for p in row.postings)


def entry_value(row: EntryRow, currency: str) -> Entry:
    return Entry(
        transfer_id=row.transfer_id,
        account_id=row.account_id,
        amount=Money(currency, row.amount_minor),
        balance_after=Money(currency, row.balance_after_minor),
        kind=row.kind,
        created_at=row.created_at,
    )
