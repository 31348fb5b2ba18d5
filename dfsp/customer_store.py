"""The DFSP's customers, their accounts, holders and primary accounts (SQLAlchemy models).

Tables (made by migration 0002, on the shared ``dfsp.store.Base``):
- ``customers``: one row per registered person; the user number, the MSISDN and the
  normalised person key (names, date of birth, national ID) are each unique;
- ``customer_accounts``: an account of the ``AccountBook`` and its ledger account;
  ``seq`` gives the opening order ("oldest first");
- ``account_holders``: who holds an account and with which rights, in the order added;
- ``primary_accounts``: each customer's one primary account (the primary key is the
  customer), which must be an account they hold;
- ``tier_changes`` (migration 0005, with ``customers.tier`` and ``tier_held``): every
  change of a customer's tier, oldest first;
- ``customers.blacklisted`` (migration 0010): set and cleared by an auditor
  (``dfsp.auditing``), whose checks are in ``dfsp.audit_store``.

Also here: a customer row as the value callers see (``Customer``, from
``dfsp.domain.customers``) and ``LocalUserNumbers``, the user-number allocator over the
customers table.

Concurrency: a use case locks the customer rows it involves, then the account rows, each
in id order (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers are serialised by
``BEGIN IMMEDIATE``, see ``dfsp.store``).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    delete,
    exists,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, mapped_column

from dfsp.domain.accounts import Account, AccountBook, AccountKind, Holder
from dfsp.domain.customers import Customer, CustomerRole
from dfsp.domain.identifiers import PersonKey, UserNumber, allocate_user_number
from dfsp.domain.tiers import RecordedTierChange, TierChangeReason
from dfsp.store import READ_ONLY, AccountRow, Base, UTCDateTime

_SERIAL = BigInteger().with_variant(Integer, "sqlite")


class CustomerRow(Base):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint(
            "person_first_name",
            "person_last_name",
            "date_of_birth",
            "national_id",
            name="uq_customers_person",
        ),
        CheckConstraint("role IN ('customer', 'merchant', 'agent')", name="known_role"),
        CheckConstraint("pin_failures >= 0", name="pin_failures_not_negative"),
        Index("ix_customers_national_id", "national_id"),  # the auditor's look-up
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_number: Mapped[str] = mapped_column(String(8), unique=True)
    msisdn: Mapped[str] = mapped_column(String(15), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))  # as typed, for display
    last_name: Mapped[str] = mapped_column(String(100))
    person_first_name: Mapped[str] = mapped_column(String(100))  # normalised (PersonKey)
    person_last_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[date] = mapped_column(Date)
    national_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    pin_hash: Mapped[str] = mapped_column(String(255))
    pin_failures: Mapped[int] = mapped_column(Integer)
    pin_locked: Mapped[bool] = mapped_column(Boolean)
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tier: Mapped[str | None] = mapped_column(String(32))  # None: the table's first tier
    tier_held: Mapped[bool] = mapped_column(Boolean, server_default=false())
    blacklisted: Mapped[bool] = mapped_column(Boolean, server_default=false())


class CustomerAccountRow(Base):
    __tablename__ = "customer_accounts"
    __table_args__ = (CheckConstraint("kind IN ('regular', 'commission')", name="known_kind"),)

    seq: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    ledger_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"), unique=True)
    name: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    owner_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    closed: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HolderRow(Base):
    __tablename__ = "account_holders"
    __table_args__ = (UniqueConstraint("account_id", "customer_id"),)

    seq: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("customer_accounts.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    signatory: Mapped[bool] = mapped_column(Boolean)


class PrimaryAccountRow(Base):
    __tablename__ = "primary_accounts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["account_id", "customer_id"],
            ["account_holders.account_id", "account_holders.customer_id"],
        ),
    )

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(36), index=True)


class TierChangeRow(Base):
    __tablename__ = "tier_changes"
    __table_args__ = (
        CheckConstraint("reason IN ('automatic', 'auditor')", name="known_reason"),
        CheckConstraint(
            "(reason = 'automatic' AND actor IS NULL)"
            " OR (reason = 'auditor' AND actor IS NOT NULL)",
            name="auditor_named",
        ),
    )

    seq: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)  # outlives the customer
    from_tier: Mapped[str] = mapped_column(String(32))
    to_tier: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(200))
    held: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class NewAccount:
    """What a new account row needs beyond its ``Account`` value."""

    ledger_account_id: str
    created_at: datetime


# --- customers ----------------------------------------------------------------------


async def find_customer(
    session: AsyncSession, customer_id: str, *, lock: bool = False
) -> CustomerRow | None:
    query = select(CustomerRow).where(CustomerRow.id == customer_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(query)).one_or_none()


async def find_customer_by(
    session: AsyncSession, *, msisdn: str | None = None, user_number: str | None = None
) -> CustomerRow | None:
    query = select(CustomerRow)
    if msisdn is not None:
        query = query.where(CustomerRow.msisdn == msisdn)
    if user_number is not None:
        query = query.where(CustomerRow.user_number == user_number)
    return (await session.scalars(query)).one_or_none()


async def customers_by_user_numbers(
    session: AsyncSession, user_numbers: Collection[str]
) -> dict[str, CustomerRow]:
    """The customers with these user numbers, by user number."""
    query = select(CustomerRow).where(CustomerRow.user_number.in_(sorted(set(user_numbers))))
    return {row.user_number: row for row in (await session.scalars(query)).all()}


async def primary_accounts(
    session: AsyncSession, customer_ids: Collection[str]
) -> dict[str, CustomerAccountRow]:
    """Each customer's open primary account (one they hold), by customer id."""
    query = (
        select(PrimaryAccountRow.customer_id, CustomerAccountRow)
        .join(CustomerAccountRow, CustomerAccountRow.id == PrimaryAccountRow.account_id)
        .where(
            PrimaryAccountRow.customer_id.in_(sorted(set(customer_ids))), ~CustomerAccountRow.closed
        )
    )
    return {customer_id: row for customer_id, row in (await session.execute(query)).all()}


async def person_registered(session: AsyncSession, key: PersonKey) -> bool:
    query = select(
        exists().where(
            CustomerRow.person_first_name == key.first_name,
            CustomerRow.person_last_name == key.last_name,
            CustomerRow.date_of_birth == key.date_of_birth,
            CustomerRow.national_id == key.national_id,
        )
    )
    return bool(await session.scalar(query))


def user_number_taken(session: Session, user_number: str) -> bool:
    """For ``session.run_sync``: is the user number a customer's here?"""
    return bool(session.scalar(select(exists().where(CustomerRow.user_number == user_number))))


async def lock_customers(session: AsyncSession, customer_ids: Iterable[str]) -> list[CustomerRow]:
    """The customers that exist among ``customer_ids``, locked in id order."""
    query = (
        select(CustomerRow)
        .where(CustomerRow.id.in_(sorted(set(customer_ids))))
        .order_by(CustomerRow.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list((await session.scalars(query)).all())


async def names_of(session: AsyncSession, customer_ids: Collection[str]) -> dict[str, CustomerRow]:
    query = select(CustomerRow).where(CustomerRow.id.in_(customer_ids))
    return {row.id: row for row in (await session.scalars(query)).all()}


async def delete_customer(session: AsyncSession, customer_id: str) -> None:
    """Remove a customer who holds no open account, with their closed accounts' rows
    (their ledger accounts stay: the money's history is the ledger's)."""
    owned = select(CustomerAccountRow.id).where(CustomerAccountRow.owner_id == customer_id)
    still_open = await session.scalar(
        select(exists().where(CustomerAccountRow.id.in_(owned), ~CustomerAccountRow.closed))
    )
    assert not still_open, "a customer is removed only once their accounts are closed"
    await session.execute(
        delete(PrimaryAccountRow).where(PrimaryAccountRow.customer_id == customer_id)
    )
    await session.execute(
        delete(HolderRow).where(
            or_(HolderRow.customer_id == customer_id, HolderRow.account_id.in_(owned))
        )
    )
    await session.execute(
        delete(CustomerAccountRow).where(CustomerAccountRow.owner_id == customer_id)
    )
    await session.execute(delete(CustomerRow).where(CustomerRow.id == customer_id))


# --- tiers --------------------------------------------------------------------------


async def owned_balance_minor(session: AsyncSession, customer_id: str) -> int:
    """The available money (balance less held funds) of the open accounts the customer
    owns: the balance an upgrade rule looks at."""
    query = (
        select(func.coalesce(func.sum(AccountRow.balance_minor - AccountRow.held_minor), 0))
        .join(CustomerAccountRow, CustomerAccountRow.ledger_account_id == AccountRow.id)
        .where(CustomerAccountRow.owner_id == customer_id, ~CustomerAccountRow.closed)
    )
    return int(await session.scalar(query) or 0)


async def upgrade_tier(
    session: AsyncSession, customer_id: str, stored: str | None, to: str
) -> bool:
    """Move an unheld customer whose stored tier is still ``stored`` to ``to``; False
    when another change came first (the row changed: nothing done)."""
    statement = (
        update(CustomerRow)
        .where(
            CustomerRow.id == customer_id,
            CustomerRow.tier.is_not_distinct_from(stored),
            ~CustomerRow.tier_held,
        )
        .values(tier=to)
        .returning(CustomerRow.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


def add_tier_change(session: AsyncSession, change: RecordedTierChange) -> None:
    session.add(
        TierChangeRow(
            customer_id=change.customer_id,
            from_tier=change.from_tier,
            to_tier=change.to_tier,
            reason=change.reason.value,
            actor=change.actor,
            note=change.note,
            held=change.held,
            at=change.at,
        )
    )


async def tier_changes(session: AsyncSession, customer_id: str) -> list[RecordedTierChange]:
    query = (
        select(TierChangeRow)
        .where(TierChangeRow.customer_id == customer_id)
        .order_by(TierChangeRow.seq)
    )
    return [
        RecordedTierChange(
            customer_id=row.customer_id,
            from_tier=row.from_tier,
            to_tier=row.to_tier,
            reason=TierChangeReason(row.reason),
            actor=row.actor,
            note=row.note,
            held=row.held,
            at=row.at,
        )
        for row in (await session.scalars(query)).all()
    ]


# --- accounts -----------------------------------------------------------------------


async def account_ids_held_by(session: AsyncSession, customer_ids: Iterable[str]) -> set[str]:
    """The open accounts any of the customers holds."""
    query = (
        select(HolderRow.account_id)
        .join(CustomerAccountRow, CustomerAccountRow.id == HolderRow.account_id)
        .where(HolderRow.customer_id.in_(sorted(set(customer_ids))), ~CustomerAccountRow.closed)
    )
    return set((await session.scalars(query)).all())


async def ledger_accounts_held_by(session: AsyncSession, customer_id: str) -> list[str]:
    """The ledger accounts of the open accounts the customer holds."""
    query = (
        select(CustomerAccountRow.ledger_account_id)
        .join(HolderRow, HolderRow.account_id == CustomerAccountRow.id)
        .where(HolderRow.customer_id == customer_id, ~CustomerAccountRow.closed)
        .order_by(CustomerAccountRow.id)
    )
    return list((await session.scalars(query)).all())


async def holders_of(session: AsyncSession, account_id: str) -> set[str]:
    query = select(HolderRow.customer_id).where(HolderRow.account_id == account_id)
    return set((await session.scalars(query)).all())


async def open_accounts(
    session: AsyncSession, account_ids: Iterable[str], *, lock: bool
) -> dict[str, CustomerAccountRow]:
    """The open accounts among ``account_ids`` (locked in id order with ``lock``)."""
    query = (
        select(CustomerAccountRow)
        .where(CustomerAccountRow.id.in_(sorted(set(account_ids))), ~CustomerAccountRow.closed)
        .order_by(CustomerAccountRow.id)
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return {row.id: row for row in (await session.scalars(query)).all()}


async def load_book(
    session: AsyncSession,
    rows: Mapping[str, CustomerAccountRow],
    balances: Mapping[str, int] | None = None,
) -> AccountBook:
    """The ``AccountBook`` of these account rows, oldest first, with their holders (in
    the order added) and who has each as primary; ``balances`` by account id."""
    ids = list(rows)
    holders: dict[str, dict[str, Holder]] = {account_id: {} for account_id in ids}
    query = select(HolderRow).where(HolderRow.account_id.in_(ids)).order_by(HolderRow.seq)
    for holder in (await session.scalars(query)).all():
        holders[holder.account_id][holder.customer_id] = Holder(signatory=holder.signatory)
    primary: dict[str, set[str]] = {account_id: set() for account_id in ids}
    query_primary = select(PrimaryAccountRow).where(PrimaryAccountRow.account_id.in_(ids))
    for row in (await session.scalars(query_primary)).all():
        primary[row.account_id].add(row.customer_id)
    balances = balances or {}
    accounts = [
        Account(
            id=row.id,
            name=row.name,
            currency=row.currency,
            owner_id=row.owner_id,
            holders=holders[row.id],
            kind=AccountKind(row.kind),
            primary_for=frozenset(primary[row.id]),
            balance_minor=balances.get(row.id, 0),
            closed=row.closed,
        )
        for row in sorted(rows.values(), key=lambda r: r.seq)
    ]
    return AccountBook(tuple(accounts))


async def save_book(
    session: AsyncSession,
    before: AccountBook,
    after: AccountBook,
    new: Mapping[str, NewAccount] | None = None,
) -> None:
    """Write what changed from ``before`` to ``after``: removals first (primaries, then
    holders), then accounts, holders and primaries added or changed, so every foreign
    key and the one-primary-per-customer key hold after each statement."""
    new = new or {}
    changed = after.changed_since(before)
    old_primaries = _primary_pairs(before.accounts)
    new_primaries = _primary_pairs(after.accounts)
    for customer_id, account_id in sorted(old_primaries - new_primaries):
        await session.execute(
            delete(PrimaryAccountRow).where(
                PrimaryAccountRow.customer_id == customer_id,
                PrimaryAccountRow.account_id == account_id,
            )
        )
    for account in changed:
        previous = before.find(account.id)
        old_holders = previous.holders if previous else {}
        gone = [c for c in old_holders if c not in account.holders]
        if gone:
            await session.execute(
                delete(HolderRow).where(
                    HolderRow.account_id == account.id, HolderRow.customer_id.in_(gone)
                )
            )
    for account in changed:
        previous = before.find(account.id)
        if previous is None:
            extra = new[account.id]
            await session.execute(
                insert(CustomerAccountRow).values(
                    id=account.id,
                    ledger_account_id=extra.ledger_account_id,
                    name=account.name,
                    currency=account.currency,
                    owner_id=account.owner_id,
                    kind=account.kind.value,
                    closed=account.closed,
                    created_at=extra.created_at,
                )
            )
        elif (previous.name, previous.closed) != (account.name, account.closed):
            await session.execute(
                update(CustomerAccountRow)
                .where(CustomerAccountRow.id == account.id)
                .values(name=account.name, closed=account.closed)
            )
        await _save_holders(session, account, previous.holders if previous else {})
    for customer_id, account_id in sorted(new_primaries - old_primaries):
        await session.execute(
            insert(PrimaryAccountRow).values(customer_id=customer_id, account_id=account_id)
        )


async def _save_holders(session: AsyncSession, account: Account, old: Mapping[str, Holder]) -> None:
    for customer_id, holder in account.holders.items():
        if customer_id not in old:
            await session.execute(
                insert(HolderRow).values(
                    account_id=account.id, customer_id=customer_id, signatory=holder.signatory
                )
            )
        elif old[customer_id] != holder:
            await session.execute(
                update(HolderRow)
                .where(HolderRow.account_id == account.id, HolderRow.customer_id == customer_id)
                .values(signatory=holder.signatory)
            )


def _primary_pairs(accounts: Iterable[Account]) -> set[tuple[str, str]]:
    return {(customer_id, a.id) for a in accounts for customer_id in a.primary_for}


# --- rows as values, user numbers ---------------------------------------------------


def customer_value(row: CustomerRow) -> Customer:
    return Customer(
        id=row.id,
        user_number=UserNumber(row.user_number),
        msisdn=row.msisdn,
        first_name=row.first_name,
        last_name=row.last_name,
        date_of_birth=row.date_of_birth,
        national_id=row.national_id,
        role=CustomerRole(row.role),
        language=row.language,
        pin_locked=row.pin_locked,
        created_at=row.created_at,
        blacklisted=row.blacklisted,
    )


class LocalUserNumbers:
    """A random free 8-digit number among this DFSP's customers."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], rng: random.Random) -> None:
        self._sessions = sessions
        self._rng = rng

    async def allocate(self, msisdn: str, name: str, given: UserNumber | None) -> UserNumber:
        if given is not None:
            return given  # taken here already: the insert refuses it
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=READ_ONLY)
            return await session.run_sync(
                lambda sync: allocate_user_number(self._rng, lambda n: user_number_taken(sync, n))
            )

    async def release(self, number: UserNumber) -> None:
        """Nothing to do: the number is free again once its customer row is gone."""
