"""Invoices of merchants at other DFSPs to customers here, the buyer's DFSP's side (SPEC
section 3 "Pending transactions"; REFERENCE 1.5(c)); ``sent`` (``dfsp.invoices_sent_across``)
is the merchant's side, for invoices of merchants here to buyers elsewhere.

The reference is kept in ``remote_invoices`` (``receive``, idempotent on the merchant's
DFSP and invoice id) and the buyer told (``invoice_received``, pushed). The buyer picks
the paying account; the quote is a cross-DFSP invoice payment (this DFSP's sender fee,
the scheme fee, the merchant DFSP's receiver fee) and the approval pays it through
clearing (``Payments.send_for_invoice``) with the merchant's invoice id. Too little
money: refused at the hold, the invoice stays pending. One approval at a time per
invoice (a lock; ``approval`` records the transfer, and a live one makes another give
way); a payment decided later marks it paid (``debited``). A rejection is kept, then
sent to the merchant's DFSP (``merchant_told``, retried by ``retry`` while it is away).
"""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from twisted.logger import Logger

from dfsp import invoice_store as store
from dfsp.customers import Customers
from dfsp.domain.customers import Customer
from dfsp.domain.fees import TransactionType
from dfsp.domain.identifiers import InvalidIdentifier
from dfsp.domain.invoices import (
    InvoiceBeingPaid,
    InvoiceNotPending,
    InvoiceState,
    NotInvoiceBuyer,
    PendingInvoice,
    RemoteInvoice,
    UnknownBuyer,
    UnknownInvoice,
)
from dfsp.domain.notices import Notice, NoticeSink
from dfsp.domain.payments import SendQuote, SendResult, UnknownReceiver
from dfsp.domain.pins import Pin
from dfsp.domain.transfers import CurrencyMismatch, TransferState, UnknownTransfer
from dfsp.interledger import ClearingUnavailable, Interledger
from dfsp.invoices_sent_across import InvoicesSentAcross
from dfsp.ledger import Ledger
from dfsp.payments import Payments
from dfsp.store import READ_ONLY
from ussdloop.money import Money

MAX_RETRIED: Final = 16  # untold rejections retried per round
MAX_PENDING_LISTED: Final = 32
INVOICE_LOCKS: Final = 64  # approvals and rejections of invoices sharing a lock queue
MAX_MEMO_CHARS: Final = 160

_log = Logger()
Clock = Callable[[], datetime]


class InvoicesAcross:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ledger: Ledger,
        customers: Customers,
        payments: Payments,
        interledger: Interledger,
        *,
        clock: Clock,
        notices: NoticeSink | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._sessions = sessions
        self._ledger = ledger
        self._customers = customers
        self._payments = payments
        self._interledger = interledger
        self._clock = clock
        self._notices = notices
        self._new_id = new_id
        self._locks = [asyncio.Lock() for _ in range(INVOICE_LOCKS)]
        self.sent = InvoicesSentAcross(  # invoices of merchants here to buyers elsewhere
            sessions, customers, interledger, clock=clock, notices=notices, new_id=new_id
        )

    # --- merchant side: ``sent`` ----------------------------------------------------------

    async def credited(self, invoice_id: str, transfer_id: str) -> Notice | None:
        """Merchant side (``InvoiceHooks``): ``InvoicesSentAcross.credited``."""
        return await self.sent.credited(invoice_id, transfer_id)

    # --- buyer side ---------------------------------------------------------------------

    async def receive(
        self,
        *,
        merchant_dfsp: str,
        merchant_invoice_id: str,
        merchant_name: str,
        merchant_user_number: str,
        buyer_user_number: str,
        amount: Money,
        memo: str,
    ) -> RemoteInvoice:
        """Keep a merchant's invoice for a customer here and tell them (again: the same)."""
        buyer = await self._customer(buyer_user_number)
        if amount.currency != self._interledger.currency:
            raise CurrencyMismatch(buyer.id, amount.currency, self._interledger.currency)
        invoice = RemoteInvoice(
            id=self._new_id(),
            merchant_dfsp=merchant_dfsp,
            merchant_invoice_id=merchant_invoice_id,
            merchant_user_number=merchant_user_number,
            merchant_name=merchant_name,
            buyer_customer_id=buyer.id,
            amount=amount,
            state=InvoiceState.PENDING,
            created_at=self._clock(),
            memo=memo[:MAX_MEMO_CHARS],
        )
        try:
            async with self._sessions.begin() as session:
                found = await store.find_remote_by_reference(
                    session, merchant_dfsp, merchant_invoice_id
                )
                if found is None:
                    session.add(store.new_remote_row(invoice))
                else:
                    invoice = store.remote_value(found)
        except IntegrityError:  # the same notice, taken concurrently
            async with self._reading() as session:
                found = await store.find_remote_by_reference(
                    session, merchant_dfsp, merchant_invoice_id
                )
                assert found is not None
                invoice = store.remote_value(found)
        if invoice.buyer_customer_id != buyer.id or invoice.amount != amount:
            raise UnknownInvoice(merchant_invoice_id)  # a reused reference
        args = {
            "amount": amount.with_currency(),
            "merchant": merchant_name,
            "reference": invoice.id,
        }
        key = f"invoice:{invoice.id}:received"
        await self._post(Notice(key, buyer.id, "invoice_received", args, push=True))
        return invoice

    async def find(self, invoice_id: str) -> RemoteInvoice | None:
        async with self._reading() as session:
            row = await store.find_remote(session, invoice_id)
            return None if row is None else store.remote_value(row)

    async def incoming(self, customer_id: str) -> list[PendingInvoice]:
        async with self._reading() as session:
            return await store.remote_pending(session, customer_id, MAX_PENDING_LISTED)

    async def quote(
        self, buyer_customer_id: str, invoice_id: str, paying_account_id: str
    ) -> SendQuote:
        invoice = (await self._remote(invoice_id)).answerable_by(buyer_customer_id)
        return await self._quote(invoice, paying_account_id)

    async def approve(
        self,
        buyer_customer_id: str,
        invoice_id: str,
        paying_account_id: str,
        pin: Pin | str,
        transfer_id: str,
    ) -> SendResult:
        """Pay the invoice through clearing from the account; a retry with the same
        transfer id reports that payment and never pays twice."""
        async with self._lock(invoice_id):
            invoice = await self._remote(invoice_id)
            if invoice.buyer_customer_id != buyer_customer_id:
                raise NotInvoiceBuyer(invoice_id, buyer_customer_id)
            if invoice.state is InvoiceState.PAID and invoice.approval == transfer_id:
                transfer = await self._ledger.transfer(transfer_id)
                fees = transfer.amount - invoice.amount
                return SendResult(
                    transfer.state, transfer_id, invoice.merchant_name, invoice.amount, fees
                )
            invoice.answerable_by(buyer_customer_id)
            if invoice.approval not in (None, transfer_id):
                await self._settle(invoice)
            quote = await self._quote(invoice, paying_account_id)
            await self._claim(invoice_id, invoice.approval, transfer_id)
            result = await self._payments.send_for_invoice(
                quote, pin, transfer_id, invoice_id=invoice.merchant_invoice_id
            )
            if result.status is TransferState.EXECUTED:
                await self._paid(invoice_id, transfer_id)
            return result

    async def reject(self, buyer_customer_id: str, invoice_id: str) -> RemoteInvoice:
        """Refuse the invoice; the merchant's DFSP is told (now or by ``retry``)."""
        async with self._lock(invoice_id):
            invoice = await self._remote(invoice_id)
            if invoice.buyer_customer_id != buyer_customer_id:
                raise NotInvoiceBuyer(invoice_id, buyer_customer_id)
            if invoice.state is InvoiceState.REJECTED:
                return invoice
            invoice.answerable_by(buyer_customer_id)
            if invoice.approval is not None:
                await self._settle(invoice)
            async with self._sessions.begin() as session:
                row = await self._locked(session, invoice_id)
                invoice = store.remote_value(row).rejected(self._clock())
                store.save(row, invoice)
                row.merchant_told = False
        _log.info("remote_invoice_rejected invoice_id={invoice_id}", invoice_id=invoice_id)
        await self._tell_merchant(invoice)
        return invoice

    async def debited(
        self, merchant_dfsp: str, invoice_id: str, transfer_id: str, state: str
    ) -> None:
        """The payment ``transfer_id`` of the merchant's invoice was decided through
        clearing: executed, the invoice here is paid."""
        if state != TransferState.EXECUTED.value:
            return  # the approval is dead: the invoice stays pending
        async with self._reading() as session:
            row = await store.find_remote_by_reference(session, merchant_dfsp, invoice_id)
            local_id = None if row is None else row.id
        if local_id is not None:
            await self._paid(local_id, transfer_id)

    # --- both sides: what could not be told yet ----------------------------------------

    async def retry(self) -> None:
        """Tell the other DFSPs what they could not be told before (bounded batches)."""
        await self.sent.retry()
        async with self._reading() as session:
            rejections = await store.untold_rejections(session, MAX_RETRIED)
        for rejection in rejections:
            await self._tell_merchant(rejection)

    # --- helpers ------------------------------------------------------------------------

    async def _tell_merchant(self, invoice: RemoteInvoice) -> None:
        try:
            merchant = await self._interledger.remote_receiver(invoice.merchant_user_number)
            await self._interledger.reject_invoice(merchant, invoice.merchant_invoice_id)
        except UnknownReceiver:
            _log.warn("invoice_merchant_gone invoice_id={invoice_id}", invoice_id=invoice.id)
        except ClearingUnavailable as error:
            _log.info(
                "invoice_rejection_retry invoice_id={invoice_id} error={error}",
                invoice_id=invoice.id,
                error=str(error),
            )
            return
        async with self._sessions.begin() as session:
            row = await self._locked(session, invoice.id)
            row.merchant_told = True

    async def _settle(self, invoice: RemoteInvoice) -> None:
        """Return once the invoice's recorded approval can never pay; ``InvoiceBeingPaid``
        while it may, ``InvoiceNotPending`` (after marking it paid) if it did."""
        assert invoice.approval is not None
        try:
            transfer = await self._ledger.transfer(invoice.approval)
        except UnknownTransfer:
            return  # refused before anything was held (PIN, limits, funds)
        if transfer.state is TransferState.EXECUTED:
            await self._paid(invoice.id, transfer.id)
            raise InvoiceNotPending(invoice.id, InvoiceState.PAID)
        if transfer.state is TransferState.PREPARED:
            raise InvoiceBeingPaid(invoice.id)

    async def _claim(self, invoice_id: str, seen: str | None, transfer_id: str) -> None:
        """Record ``transfer_id`` as the approval paying the invoice, on its locked row:
        if another process recorded its own since we read ``seen``, that one is under
        way (``InvoiceBeingPaid``), so the invoice is never paid twice."""
        async with self._sessions.begin() as session:
            row = await self._locked(session, invoice_id)
            invoice = store.remote_value(row)
            if invoice.approval not in (seen, transfer_id):
                raise InvoiceBeingPaid(invoice_id)
            store.save(row, invoice.approving(transfer_id))

    async def _paid(self, invoice_id: str, transfer_id: str) -> None:
        async with self._sessions.begin() as session:
            row = await self._locked(session, invoice_id)
            invoice = store.remote_value(row)
            if invoice.state is InvoiceState.PENDING or invoice.approval == transfer_id:
                store.save(row, invoice.paid(transfer_id, self._clock()))
            else:
                _log.warn(
                    "remote_invoice_paid_after_decision invoice_id={invoice_id}",
                    invoice_id=invoice_id,
                )

    async def _quote(self, invoice: RemoteInvoice, paying_account_id: str) -> SendQuote:
        quote = await self._payments.quote_send(
            invoice.buyer_customer_id,
            paying_account_id,
            invoice.merchant_user_number,
            invoice.amount,
            kind=TransactionType.INVOICE,
        )
        if quote.remote is None or quote.remote.dfsp != invoice.merchant_dfsp:
            raise UnknownReceiver(invoice.merchant_user_number)  # the merchant moved
        return quote

    async def _customer(self, user_number: str) -> Customer:
        try:
            customer = await self._customers.by_user_number(user_number)
        except InvalidIdentifier:
            customer = None
        if customer is None:
            raise UnknownBuyer(user_number)
        return customer

    async def _remote(self, invoice_id: str) -> RemoteInvoice:
        invoice = await self.find(invoice_id)
        if invoice is None:
            raise UnknownInvoice(invoice_id)
        return invoice

    async def _locked(self, session: AsyncSession, invoice_id: str) -> store.RemoteInvoiceRow:
        row = await store.find_remote(session, invoice_id, lock=True)
        if row is None:
            raise UnknownInvoice(invoice_id)
        return row

    @asynccontextmanager
    async def _lock(self, invoice_id: str) -> AsyncIterator[None]:
        """One approval or rejection of an invoice at a time in this process."""
        async with self._locks[zlib.crc32(invoice_id.encode()) % INVOICE_LOCKS]:
            yield

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=READ_ONLY)
            yield session

    async def _post(self, *notices: Notice) -> None:
        if self._notices is not None and notices:
            await self._notices.post(notices)
