"""Invoices from a merchant here to a buyer at another DFSP, the merchant's DFSP's side
(SPEC section 3 "Pending transactions"; REFERENCE 1.5(c)); ``dfsp.invoices_across`` is
the buyer's side.

The invoice lives here, tied to the merchant's account, its buyer named by user number,
name and DFSP (from the central directory). The buyer's DFSP is told
(``Interledger.send_invoice``); while it cannot be reached the invoice stays untold and
``retry`` tells it later (``buyer_told``: an outbox, nothing is lost); a buyer who is no
longer anywhere gets the invoice rejected. The buyer's DFSP may say the buyer refused
(``rejected_by_buyer``); a payment request for the invoice must match it
(``payable``); the commit of its credit marks it paid and the merchant is told
``invoice_paid`` instead of ``received`` (``credited``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from twisted.logger import Logger

from dfsp import invoice_store as store
from dfsp.customers import Customers
from dfsp.domain.customers import Customer
from dfsp.domain.invoices import (
    Invoice,
    InvoiceKind,
    InvoiceNotPending,
    InvoiceState,
    UnknownBuyer,
    UnknownInvoice,
)
from dfsp.domain.notices import Notice, NoticeSink
from dfsp.domain.payments import RemoteReceiver, UnknownReceiver
from dfsp.interledger import ClearingUnavailable, Interledger
from dfsp.store import READ_ONLY
from ussdloop.money import Money

MAX_RETRIED: Final = 16  # untold invoices retried per round

_log = Logger()
Clock = Callable[[], datetime]


class InvoicesSentAcross:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        customers: Customers,
        interledger: Interledger,
        *,
        clock: Clock,
        notices: NoticeSink | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._sessions = sessions
        self._customers = customers
        self._interledger = interledger
        self._clock = clock
        self._notices = notices
        self._new_id = new_id

    async def create(
        self, merchant: Customer, account_id: str, buyer_user_number: str, amount: Money
    ) -> Invoice:
        """An invoice to a customer of another DFSP, whose DFSP is told (now or later)."""
        try:
            buyer = await self._interledger.remote_receiver(buyer_user_number)
        except UnknownReceiver:
            raise UnknownBuyer(buyer_user_number) from None
        invoice = Invoice(
            id=self._new_id(),
            kind=InvoiceKind.INVOICE,
            payee_customer_id=merchant.id,
            payee_account_id=account_id,
            buyer_customer_id=None,
            amount=amount,
            state=InvoiceState.PENDING,
            created_at=self._clock(),
            buyer_user_number=buyer.user_number,
            buyer_name=buyer.name,
            buyer_dfsp=buyer.dfsp,
        )
        async with self._sessions.begin() as session:
            session.add(store.new_row(invoice))
        _log.info(
            "invoice_created invoice_id={invoice_id} buyer_dfsp={dfsp}",
            invoice_id=invoice.id,
            dfsp=buyer.dfsp,
        )
        await self._tell_buyer(invoice, merchant, buyer)
        return invoice

    async def rejected_by_buyer(self, invoice_id: str, buyer_dfsp: str) -> Invoice:
        """The buyer's DFSP says the buyer refused: the merchant is told (again: no change)."""
        async with self._sessions.begin() as session:
            row = await store.find_invoice(session, invoice_id, lock=True)
            invoice = None if row is None else store.invoice_value(row)
            if row is None or invoice is None or invoice.buyer_dfsp != buyer_dfsp:
                raise UnknownInvoice(invoice_id)
            if invoice.state is InvoiceState.REJECTED:
                return invoice
            invoice = invoice.rejected(self._clock())  # InvoiceNotPending once paid
            store.save(row, invoice)
        _log.info("invoice_rejected invoice_id={invoice_id}", invoice_id=invoice_id)
        await self._post(self._merchant_notice(invoice, "rejected"))
        return invoice

    async def payable(self, invoice_id: str, user_number: str, amount: Money, payer: str) -> None:
        """A payment request of ``payer`` (a DFSP) for the invoice matches it and it is
        still pending (``UnknownInvoice`` / ``InvoiceNotPending`` otherwise)."""
        async with self._reading() as session:
            row = await store.find_invoice(session, invoice_id)
            invoice = None if row is None else store.invoice_value(row)
        if invoice is None or invoice.buyer_dfsp != payer or invoice.amount != amount:
            raise UnknownInvoice(invoice_id)
        merchant = await self._customers.customer(invoice.payee_customer_id)
        if str(merchant.user_number) != user_number:
            raise UnknownInvoice(invoice_id)
        if invoice.state is not InvoiceState.PENDING:
            raise InvoiceNotPending(invoice_id, invoice.state)

    async def credited(self, invoice_id: str, transfer_id: str) -> Notice | None:
        """The credit of ``transfer_id`` committed here paid the invoice; the merchant's
        ``invoice_paid`` (None: not an invoice here, or already decided otherwise)."""
        async with self._sessions.begin() as session:
            row = await store.find_invoice(session, invoice_id, lock=True)
            if row is None or not store.invoice_value(row).buyer_elsewhere:
                return None
            invoice = store.invoice_value(row)
            if invoice.state is InvoiceState.PENDING:
                invoice = invoice.approving(transfer_id).paid(transfer_id, self._clock())
                store.save(row, invoice)
                _log.info(
                    "invoice_paid invoice_id={invoice_id} transfer_id={transfer_id}",
                    invoice_id=invoice_id,
                    transfer_id=transfer_id,
                )
            elif invoice.approval != transfer_id:
                _log.warn(
                    "invoice_paid_after_decision invoice_id={invoice_id} state={state}",
                    invoice_id=invoice_id,
                    state=invoice.state,
                )
                return None  # the money arrived all the same: the merchant hears "received"
        return self._merchant_notice(invoice, "paid")

    async def retry(self) -> None:
        """Tell the buyers' DFSPs the invoices they could not be told yet (a batch)."""
        async with self._reading() as session:
            invoices = await store.untold_invoices(session, MAX_RETRIED)
        for invoice in invoices:
            merchant = await self._customers.customer(invoice.payee_customer_id)
            await self._tell_buyer(invoice, merchant, None)

    async def _tell_buyer(
        self, invoice: Invoice, merchant: Customer, buyer: RemoteReceiver | None
    ) -> None:
        """Tell the buyer's DFSP; a buyer no longer anywhere rejects the invoice."""
        assert invoice.buyer_user_number is not None and invoice.buyer_dfsp is not None
        name = merchant.name
        try:
            if buyer is None:
                buyer = await self._interledger.remote_receiver(invoice.buyer_user_number)
            await self._interledger.send_invoice(
                buyer,
                invoice_id=invoice.id,
                merchant_name=name,
                merchant_user_number=str(merchant.user_number),
                amount=invoice.amount,
                memo=f"Invoice from {name} for {invoice.amount.with_currency()}",
            )
        except UnknownReceiver:
            _log.warn("invoice_buyer_gone invoice_id={invoice_id}", invoice_id=invoice.id)
            async with self._sessions.begin() as session:
                await store.mark_buyer_told(session, invoice.id)
            await self.rejected_by_buyer(invoice.id, invoice.buyer_dfsp)
            return
        except ClearingUnavailable as error:
            _log.info(
                "invoice_notice_retry invoice_id={invoice_id} error={error}",
                invoice_id=invoice.id,
                error=str(error),
            )
            return
        async with self._sessions.begin() as session:
            await store.mark_buyer_told(session, invoice.id)

    def _merchant_notice(self, invoice: Invoice, outcome: str) -> Notice:
        args = {
            "amount": invoice.amount.with_currency(),
            "buyer": str(invoice.buyer_name),
            "reference": invoice.id,
        }
        key = f"invoice:{invoice.id}:{outcome}"
        return Notice(key, invoice.payee_customer_id, f"invoice_{outcome}", args)

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=READ_ONLY)
            yield session

    async def _post(self, *notices: Notice) -> None:
        if self._notices is not None and notices:
            await self._notices.post(notices)
