"""Pending transactions (invoices and agent cash-out requests): the table and its queries.

Table ``invoices`` (migration 0004, on the shared ``dfsp.store.Base``): one row per
pending transaction, tied to the payee's customer account; ``approval`` is the ledger
transfer of the approval under way (or the one that paid it). The pending lists read
by buyer or payee and state (an index each). A buyer at another DFSP (migration 0007)
is named by ``buyer_user_number``, ``buyer_name`` and ``buyer_dfsp`` instead of
``buyer_customer_id``; ``buyer_told`` is false until that DFSP took the notice (an
outbox: ``untold_invoices``).

Table ``remote_invoices`` (migration 0007): the invoices merchants of other DFSPs sent
to customers here, one per (merchant DFSP, their invoice id); ``merchant_told`` is false
while a rejection has not reached the merchant's DFSP.

Concurrency: ``lock_invoice`` is ``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the
DFSP's engine serialises writers with ``BEGIN IMMEDIATE`` (see ``dfsp.store``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, aliased, mapped_column

from dfsp.customer_store import CustomerRow
from dfsp.domain.invoices import (
    Invoice,
    InvoiceKind,
    InvoiceState,
    PendingInvoice,
    RemoteInvoice,
)
from dfsp.store import Base, UTCDateTime
from ussdloop.money import Money


class InvoiceRow(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="positive"),
        CheckConstraint("state IN ('pending', 'paid', 'rejected')", name="known_state"),
        CheckConstraint("kind IN ('invoice', 'cash_out')", name="known_kind"),
        CheckConstraint("state <> 'paid' OR approval IS NOT NULL", name="paid_by_transfer"),
        CheckConstraint(
            "buyer_customer_id IS NOT NULL OR buyer_dfsp IS NOT NULL",
            name="buyer_here_or_elsewhere",
        ),
        Index("ix_invoices_buyer_state", "buyer_customer_id", "state"),
        Index("ix_invoices_payee_state", "payee_customer_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    payee_customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    payee_account_id: Mapped[str] = mapped_column(ForeignKey("customer_accounts.id"))
    buyer_customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    approval: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    buyer_user_number: Mapped[str | None] = mapped_column(String(32))
    buyer_name: Mapped[str | None] = mapped_column(String(100))
    buyer_dfsp: Mapped[str | None] = mapped_column(String(32))
    buyer_told: Mapped[bool] = mapped_column(Boolean)


class RemoteInvoiceRow(Base):
    __tablename__ = "remote_invoices"
    __table_args__ = (
        UniqueConstraint("merchant_dfsp", "merchant_invoice_id"),
        CheckConstraint("amount_minor > 0", name="positive"),
        CheckConstraint("state IN ('pending', 'paid', 'rejected')", name="known_state"),
        CheckConstraint("state <> 'paid' OR approval IS NOT NULL", name="paid_by_transfer"),
        Index("ix_remote_invoices_buyer_state", "buyer_customer_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    merchant_dfsp: Mapped[str] = mapped_column(String(32))
    merchant_invoice_id: Mapped[str] = mapped_column(String(64))
    merchant_user_number: Mapped[str] = mapped_column(String(32))
    merchant_name: Mapped[str] = mapped_column(String(100))
    buyer_customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    memo: Mapped[str] = mapped_column(String(160))
    state: Mapped[str] = mapped_column(String(16))
    approval: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    merchant_told: Mapped[bool] = mapped_column(Boolean)


def invoice_value(row: InvoiceRow) -> Invoice:
    return Invoice(
        id=row.id,
        kind=InvoiceKind(row.kind),
        payee_customer_id=row.payee_customer_id,
        payee_account_id=row.payee_account_id,
        buyer_customer_id=row.buyer_customer_id,
        amount=Money(row.currency, row.amount_minor),
        state=InvoiceState(row.state),
        created_at=row.created_at,
        approval=row.approval,
        decided_at=row.decided_at,
        buyer_user_number=row.buyer_user_number,
        buyer_name=row.buyer_name,
        buyer_dfsp=row.buyer_dfsp,
    )


def new_row(invoice: Invoice) -> InvoiceRow:
    return InvoiceRow(
        id=invoice.id,
        kind=invoice.kind.value,
        payee_customer_id=invoice.payee_customer_id,
        payee_account_id=invoice.payee_account_id,
        buyer_customer_id=invoice.buyer_customer_id,
        currency=invoice.amount.currency,
        amount_minor=invoice.amount.minor,
        state=invoice.state.value,
        approval=invoice.approval,
        created_at=invoice.created_at,
        decided_at=invoice.decided_at,
        buyer_user_number=invoice.buyer_user_number,
        buyer_name=invoice.buyer_name,
        buyer_dfsp=invoice.buyer_dfsp,
        buyer_told=not invoice.buyer_elsewhere,
    )


def save(row: InvoiceRow | RemoteInvoiceRow, invoice: Invoice | RemoteInvoice) -> None:
    """Write what may change (state, approval, decision time) onto the locked row."""
    assert row.id == invoice.id and row.amount_minor == invoice.amount.minor
    row.state = invoice.state.value
    row.approval = invoice.approval
    row.decided_at = invoice.decided_at


async def find_invoice(
    session: AsyncSession, invoice_id: str, *, lock: bool = False
) -> InvoiceRow | None:
    query = select(InvoiceRow).where(InvoiceRow.id == invoice_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(query)).one_or_none()


async def pending(
    session: AsyncSession, customer_id: str, *, as_buyer: bool, limit: int
) -> list[PendingInvoice]:
    """The customer's pending transactions (as buyer, or as payee), newest first, each
    with the other party's name."""
    other = aliased(CustomerRow)
    mine, theirs = (
        (InvoiceRow.buyer_customer_id, InvoiceRow.payee_customer_id)
        if as_buyer
        else (InvoiceRow.payee_customer_id, InvoiceRow.buyer_customer_id)
    )
    query = (
        select(InvoiceRow, other.first_name, other.last_name)
        .outerjoin(other, other.id == theirs)  # none: a buyer at another DFSP
        .where(mine == customer_id, InvoiceRow.state == InvoiceState.PENDING.value)
        .order_by(InvoiceRow.created_at.desc(), InvoiceRow.id.desc())
        .limit(limit)
    )
    rows = (await session.execute(query)).all()
    return [
        PendingInvoice(invoice_value(row), row.buyer_name or f"{first} {last}")
        for row, first, last in rows
    ]


async def untold_invoices(session: AsyncSession, limit: int) -> list[Invoice]:
    """Pending invoices to buyers at other DFSPs whose DFSP has not taken the notice."""
    query = (
        select(InvoiceRow)
        .where(InvoiceRow.buyer_told.is_(False), InvoiceRow.state == InvoiceState.PENDING.value)
        .order_by(InvoiceRow.created_at)
        .limit(limit)
    )
    return [invoice_value(row) for row in (await session.scalars(query)).all()]


async def mark_buyer_told(session: AsyncSession, invoice_id: str) -> None:
    row = await find_invoice(session, invoice_id, lock=True)
    if row is not None:
        row.buyer_told = True


# --- invoices from merchants of other DFSPs ------------------------------------------


def remote_value(row: RemoteInvoiceRow) -> RemoteInvoice:
    return RemoteInvoice(
        id=row.id,
        merchant_dfsp=row.merchant_dfsp,
        merchant_invoice_id=row.merchant_invoice_id,
        merchant_user_number=row.merchant_user_number,
        merchant_name=row.merchant_name,
        buyer_customer_id=row.buyer_customer_id,
        amount=Money(row.currency, row.amount_minor),
        state=InvoiceState(row.state),
        created_at=row.created_at,
        memo=row.memo,
        approval=row.approval,
        decided_at=row.decided_at,
    )


def new_remote_row(invoice: RemoteInvoice) -> RemoteInvoiceRow:
    return RemoteInvoiceRow(
        id=invoice.id,
        merchant_dfsp=invoice.merchant_dfsp,
        merchant_invoice_id=invoice.merchant_invoice_id,
        merchant_user_number=invoice.merchant_user_number,
        merchant_name=invoice.merchant_name,
        buyer_customer_id=invoice.buyer_customer_id,
        currency=invoice.amount.currency,
        amount_minor=invoice.amount.minor,
        memo=invoice.memo,
        state=invoice.state.value,
        approval=invoice.approval,
        created_at=invoice.created_at,
        decided_at=invoice.decided_at,
        merchant_told=True,
    )


async def find_remote(
    session: AsyncSession, invoice_id: str, *, lock: bool = False
) -> RemoteInvoiceRow | None:
    query = select(RemoteInvoiceRow).where(RemoteInvoiceRow.id == invoice_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(query)).one_or_none()


async def find_remote_by_reference(
    session: AsyncSession, merchant_dfsp: str, merchant_invoice_id: str, *, lock: bool = False
) -> RemoteInvoiceRow | None:
    query = select(RemoteInvoiceRow).where(
        RemoteInvoiceRow.merchant_dfsp == merchant_dfsp,
        RemoteInvoiceRow.merchant_invoice_id == merchant_invoice_id,
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(query)).one_or_none()


async def remote_pending(
    session: AsyncSession, customer_id: str, limit: int
) -> list[PendingInvoice]:
    """The pending invoices merchants of other DFSPs sent the customer, newest first."""
    query = (
        select(RemoteInvoiceRow)
        .where(
            RemoteInvoiceRow.buyer_customer_id == customer_id,
            RemoteInvoiceRow.state == InvoiceState.PENDING.value,
        )
        .order_by(RemoteInvoiceRow.created_at.desc(), RemoteInvoiceRow.id.desc())
        .limit(limit)
    )
    rows = (await session.scalars(query)).all()
    return [PendingInvoice(remote_value(row), row.merchant_name) for row in rows]


async def untold_rejections(session: AsyncSession, limit: int) -> list[RemoteInvoice]:
    """Rejected remote invoices whose merchant's DFSP has not heard of the rejection."""
    query = (
        select(RemoteInvoiceRow)
        .where(RemoteInvoiceRow.merchant_told.is_(False))
        .order_by(RemoteInvoiceRow.decided_at)
        .limit(limit)
    )
    return [remote_value(row) for row in (await session.scalars(query)).all()]
