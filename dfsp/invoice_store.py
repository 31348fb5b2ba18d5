"""Pending transactions (invoices and agent cash-out requests): the table and its queries.

Table ``invoices`` (migration 0004, on the shared ``dfsp.store.Base``): one row per
pending transaction, tied to the payee's customer account; ``approval`` is the ledger
transfer of the approval under way (or the one that paid it). The pending lists read
by buyer or payee and state (an index each).

Concurrency: ``lock_invoice`` is ``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the
DFSP's engine serialises writers with ``BEGIN IMMEDIATE`` (see ``dfsp.store``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, aliased, mapped_column

from dfsp.customer_store import CustomerRow
from dfsp.domain.invoices import Invoice, InvoiceKind, InvoiceState, PendingInvoice
from dfsp.store import Base, UTCDateTime
from ussdloop.money import Money


class InvoiceRow(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="positive"),
        CheckConstraint("state IN ('pending', 'paid', 'rejected')", name="known_state"),
        CheckConstraint("kind IN ('invoice', 'cash_out')", name="known_kind"),
        CheckConstraint("state <> 'paid' OR approval IS NOT NULL", name="paid_by_transfer"),
        Index("ix_invoices_buyer_state", "buyer_customer_id", "state"),
        Index("ix_invoices_payee_state", "payee_customer_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    payee_customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    payee_account_id: Mapped[str] = mapped_column(ForeignKey("customer_accounts.id"))
    buyer_customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    approval: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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
    )


def save(row: InvoiceRow, invoice: Invoice) -> None:
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
        .join(other, other.id == theirs)
        .where(mine == customer_id, InvoiceRow.state == InvoiceState.PENDING.value)
        .order_by(InvoiceRow.created_at.desc(), InvoiceRow.id.desc())
        .limit(limit)
    )
    rows = (await session.execute(query)).all()
    return [PendingInvoice(invoice_value(row), f"{first} {last}") for row, first, last in rows]
