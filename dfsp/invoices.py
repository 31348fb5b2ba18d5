"""Pending transactions: invoices (SPEC section 1 journey 2, section 3 "Pending
transactions"), and the same machinery for an agent's cash-out (``dfsp.cash``).

A merchant invoices a buyer (no PIN: creating an invoice moves no money); the buyer
sees it in their incoming list (and gets an ``invoice_received`` USSD push), picks the
paying account, sees the fee (``quote_approval``: the invoice's sender fee, paid by the
approver), then approves with the PIN or rejects. The payment is ``dfsp.payments``'
(PIN, quote, limits, ledger), paid into the invoice's account.

Approval, crash-safe and idempotent on its transfer id, in three steps, each its own
transaction:
1. ``Payments.hold``: the PIN and the limits, then the principal and the fee are held in
   a prepared ledger transfer (expiring after ``APPROVAL_HOLD``). Too little money: the
   ledger refuses and the invoice is untouched (still pending).
2. Claim: under the invoice's row lock, the pending invoice records that transfer as its
   ``approval``. Another approval already recorded is replaced only once it can no
   longer execute (``approval_fate``: rejected, expired, or past its expiry and then
   rejected here); a live one makes this approval give way (``InvoiceBeingPaid``, its
   hold released), an executed one marks the invoice paid (``InvoiceNotPending``).
3. The ledger executes the claimed transfer, then the invoice is marked paid.
A crash between the steps leaves either nothing held, a hold that expires, or an executed
transfer that the next approval or rejection finds and marks paid. So two approvals,
even concurrent ones with different transfer ids, pay an invoice at most once, and a
rejection never crosses a payment (it too gives way to a live approval).

Across DFSPs (``dfsp.invoices_across``, when an ``Interledger`` is given): an invoice to
a user number that is not a customer here goes to a buyer at another DFSP; the invoices
merchants of other DFSPs sent to customers here are listed with the others (``across``
quotes, approves and rejects them).

Notices (when a sink is given), posted after the commit: ``invoice_received`` (push) to
the buyer, key ``invoice:<id>:received``; on payment the payer's ``sent`` (or
``cash_out``) notice of ``Payments.notices_of`` plus ``invoice_paid`` to the merchant,
key ``invoice:<id>:paid`` (an agent's cash-out: ``received`` to the agent); on rejection
``invoice_rejected`` to the payee, key ``invoice:<id>:rejected``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from twisted.logger import Logger

from dfsp import invoice_store as store
from dfsp.customers import Customers
from dfsp.domain.customers import Customer
from dfsp.domain.identifiers import InvalidIdentifier
from dfsp.domain.invoices import (
    MAX_PENDING_LISTED,
    ApprovalExpired,
    ApprovalFate,
    Invoice,
    InvoiceBeingPaid,
    InvoiceError,
    InvoiceKind,
    InvoiceNotPending,
    InvoiceState,
    NotInvoiceBuyer,
    PendingInvoice,
    UnknownInvoice,
    approval_fate,
    check_amount,
    check_buyer,
    check_payee,
)
from dfsp.domain.notices import Notice, NoticeSink
from dfsp.domain.payments import SendQuote, SendResult
from dfsp.domain.pins import Pin
from dfsp.domain.transfers import CurrencyMismatch, InvalidTransition, Transfer, TransferState
from dfsp.interledger import Interledger
from dfsp.invoices_across import InvoicesAcross
from dfsp.ledger import Ledger
from dfsp.payments import Payments
from dfsp.store import READ_ONLY
from ussdloop.money import Money

APPROVAL_HOLD = timedelta(minutes=2)  # how long an approval holds the approver's funds
MAX_CLAIM_ROUNDS = 3  # other approvals replaced in one call before giving way

_log = Logger()
Clock = Callable[[], datetime]


class Invoices:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ledger: Ledger,
        customers: Customers,
        payments: Payments,
        *,
        clock: Clock,
        notices: NoticeSink | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        interledger: Interledger | None = None,
    ) -> None:
        self._sessions = sessions
        self._ledger = ledger
        self._customers = customers
        self._payments = payments
        self._clock = clock
        self._notices = notices
        self._new_id = new_id
        self.across = (  # None: invoices stay inside this DFSP
            None
            if interledger is None
            else InvoicesAcross(
                sessions,
                ledger,
                customers,
                payments,
                interledger,
                clock=clock,
                notices=notices,
                new_id=new_id,
            )
        )

    # --- asking ----------------------------------------------------------------------

    async def create(
        self,
        merchant_customer_id: str,
        merchant_account_id: str,
        buyer_user_number: str,
        amount: Money,
    ) -> Invoice:
        """A pending invoice from a merchant's account to the buyer with this user number
        (of this DFSP, not the merchant); the buyer is told (a USSD push)."""
        return await self.ask(
            InvoiceKind.INVOICE,
            merchant_customer_id,
            merchant_account_id,
            buyer_user_number,
            amount,
        )

    async def ask(
        self,
        kind: InvoiceKind,
        payee_customer_id: str,
        payee_account_id: str,
        buyer_user_number: str,
        amount: Money,
    ) -> Invoice:
        """A pending transaction of ``kind``: an invoice, or an agent's cash-out."""
        check_amount(amount)
        payee = await self._customers.customer(payee_customer_id)
        accounts = await self._customers.accounts_of(payee.id)
        account = next((a for a in accounts if a.id == payee_account_id), None)
        check_payee(
            kind,
            payee.id,
            payee.role,
            payee_account_id,
            None if account is None else account.kind,
            None if account is None else account.permissions,
        )
        assert account is not None
        if account.currency != amount.currency:
            raise CurrencyMismatch(account.id, amount.currency, account.currency)
        buyer = await self._buyer(buyer_user_number)
        if buyer is None and kind is InvoiceKind.INVOICE and self.across is not None:
            return await self.across.sent.create(payee, account.id, buyer_user_number, amount)
        invoice = Invoice(
            id=self._new_id(),
            kind=kind,
            payee_customer_id=payee.id,
            payee_account_id=account.id,
            buyer_customer_id=check_buyer(
                payee.id, None if buyer is None else buyer.id, buyer_user_number
            ),
            amount=amount,
            state=InvoiceState.PENDING,
            created_at=self._clock(),
        )
        async with self._sessions.begin() as session:
            session.add(store.new_row(invoice))
        _log.info(
            "invoice_created invoice_id={invoice_id} kind={kind}", invoice_id=invoice.id, kind=kind
        )
        if kind is InvoiceKind.INVOICE:
            assert invoice.buyer_customer_id is not None
            args = {
                "amount": amount.with_currency(),
                "merchant": payee.name,
                "reference": invoice.id,
            }
            key = f"invoice:{invoice.id}:received"
            notice = Notice(key, invoice.buyer_customer_id, "invoice_received", args, push=True)
            await self._post(notice)
        return invoice

    # --- lists -----------------------------------------------------------------------

    async def incoming(self, customer_id: str) -> list[PendingInvoice]:
        """The pending transactions sent to the customer, newest first, each with the
        merchant's (or agent's) name; those of merchants at other DFSPs among them."""
        pending = await self._pending(customer_id, as_buyer=True)
        if self.across is not None:
            pending += await self.across.incoming(customer_id)
            pending.sort(key=lambda p: (p.invoice.created_at, p.invoice.id), reverse=True)
        return pending[:MAX_PENDING_LISTED]

    async def outgoing(self, customer_id: str) -> list[PendingInvoice]:
        """The pending transactions the customer sent, newest first, with the buyer's name."""
        return await self._pending(customer_id, as_buyer=False)

    async def retry_peers(self) -> None:
        """Tell other DFSPs the invoices and rejections they could not be told yet."""
        if self.across is not None:
            await self.across.retry()

    async def invoice(self, customer_id: str, invoice_id: str) -> Invoice:
        """One invoice, to its buyer or its payee."""
        invoice = await self._invoice(invoice_id)
        if customer_id not in (invoice.buyer_customer_id, invoice.payee_customer_id):
            raise UnknownInvoice(invoice_id)
        return invoice

    # --- answering -------------------------------------------------------------------

    async def quote_approval(
        self, buyer_customer_id: str, invoice_id: str, paying_account_id: str
    ) -> SendQuote:
        """What approving costs from this account (the fee shown before the PIN)."""
        invoice = (await self._invoice(invoice_id)).answerable_by(buyer_customer_id)
        return await self._quote(invoice, paying_account_id)

    async def approve(
        self,
        buyer_customer_id: str,
        invoice_id: str,
        paying_account_id: str,
        pin: Pin | str,
        transfer_id: str,
    ) -> SendResult:
        """Pay the invoice from the account, after the PIN and the limits. A retry with
        the same transfer id returns the same result and never pays twice."""
        invoice = await self._invoice(invoice_id)
        if invoice.buyer_customer_id != buyer_customer_id:
            raise NotInvoiceBuyer(invoice_id, buyer_customer_id)
        if invoice.state is InvoiceState.PAID and invoice.approval == transfer_id:
            return await self._paid(invoice, await self._ledger.transfer(transfer_id))
        invoice.answerable_by(buyer_customer_id)
        if invoice.approval not in (None, transfer_id):
            await self._settle(invoice, invoice.approval)  # give way early to a live one
        quote = await self._quote(invoice, paying_account_id)
        held = await self._payments.hold(
            quote,
            pin,
            transfer_id,
            expires_at=self._clock() + APPROVAL_HOLD,
            memo={"invoice": invoice.id, "paying_account": paying_account_id},
        )
        if held.state not in (TransferState.PREPARED, TransferState.EXECUTED):
            raise ApprovalExpired(invoice_id, transfer_id)
        try:
            await self._claim(invoice_id, transfer_id)
        except InvoiceError:
            await self._release(transfer_id, "the invoice is paid, rejected or being paid")
            raise
        transfer = await self._ledger.execute(transfer_id)  # TransferExpired: stays pending
        return await self._paid(await self._invoice(invoice_id), transfer)

    async def reject(self, buyer_customer_id: str, invoice_id: str) -> Invoice:
        """Refuse the invoice; the merchant is told. Rejecting again returns it."""
        for _ in range(MAX_CLAIM_ROUNDS):
            invoice = await self._invoice(invoice_id)
            if invoice.buyer_customer_id != buyer_customer_id:
                raise NotInvoiceBuyer(invoice_id, buyer_customer_id)
            if invoice.state is InvoiceState.REJECTED:
                break
            invoice.answerable_by(buyer_customer_id)
            if invoice.approval is not None:
                await self._settle(invoice, invoice.approval)
            async with self._sessions.begin() as session:
                row = await self._locked(session, invoice_id)
                current = store.invoice_value(row).answerable_by(buyer_customer_id)
                if current.approval != invoice.approval:
                    continue  # an approval came in meanwhile: look at it first
                invoice = current.rejected(self._clock())
                store.save(row, invoice)
            _log.info("invoice_rejected invoice_id={invoice_id}", invoice_id=invoice_id)
            break
        else:
            raise InvoiceBeingPaid(invoice_id)
        buyer = await self._customers.customer(buyer_customer_id)
        args = {
            "amount": invoice.amount.with_currency(),
            "buyer": buyer.name,
            "reference": invoice.id,
        }
        key = f"invoice:{invoice.id}:rejected"
        await self._post(Notice(key, invoice.payee_customer_id, "invoice_rejected", args))
        return invoice

    # --- helpers ---------------------------------------------------------------------

    async def _claim(self, invoice_id: str, transfer_id: str) -> None:
        """Record ``transfer_id`` as the pending invoice's approval (see the module)."""
        for _ in range(MAX_CLAIM_ROUNDS):
            async with self._sessions.begin() as session:
                row = await self._locked(session, invoice_id)
                invoice = store.invoice_value(row)
                if invoice.state is InvoiceState.PAID and invoice.approval == transfer_id:
                    return
                if invoice.approval in (None, transfer_id):
                    store.save(row, invoice.approving(transfer_id))
                    return
                other = invoice.approval
                invoice.approving(transfer_id)  # InvoiceNotPending once decided
            assert other is not None
            await self._settle(invoice, other)  # dead now: replace it next round
            async with self._sessions.begin() as session:
                row = await self._locked(session, invoice_id)
                invoice = store.invoice_value(row)
                if invoice.approval == other:
                    store.save(row, invoice.approving(transfer_id))
                    return
        raise InvoiceBeingPaid(invoice_id)

    async def _settle(self, invoice: Invoice, approval: str) -> None:
        """Return once the approval ``approval`` can never pay; ``InvoiceBeingPaid`` while it
        still may, and ``InvoiceNotPending`` (after marking the invoice paid) if it did."""
        transfer = await self._ledger.transfer(approval)
        fate = approval_fate(transfer.state, transfer.expires_at, self._clock())
        if fate is ApprovalFate.STALE:
            try:
                transfer = await self._ledger.reject(approval, "invoice approval timed out")
            except InvalidTransition:
                transfer = await self._ledger.transfer(approval)  # executed or expired since
            fate = approval_fate(transfer.state, transfer.expires_at, self._clock())
        if fate is ApprovalFate.LIVE:
            raise InvoiceBeingPaid(invoice.id)
        if fate is ApprovalFate.PAID:
            await self._paid(invoice, transfer)
            raise InvoiceNotPending(invoice.id, InvoiceState.PAID)

    async def _paid(self, invoice: Invoice, transfer: Transfer) -> SendResult:
        """Mark the invoice paid by its executed approval ``transfer`` (again: no change),
        tell both sides, and answer as the approval did."""
        assert transfer.state is TransferState.EXECUTED, "only an executed transfer pays"
        async with self._sessions.begin() as session:
            row = await self._locked(session, invoice.id)
            current = store.invoice_value(row)
            if current.state is InvoiceState.PENDING:
                if current.approval != transfer.id:
                    raise AssertionError(f"invoice {invoice.id} paid by a transfer not claimed")
                store.save(row, current.paid(transfer.id, self._clock()))
                _log.info(
                    "invoice_paid invoice_id={invoice_id} transfer_id={transfer_id}",
                    invoice_id=invoice.id,
                    transfer_id=transfer.id,
                )
            elif current.approval != transfer.id:
                raise AssertionError(f"invoice {invoice.id} paid twice")
        memo = transfer.memo or {}
        quote = await self._quote(invoice, str(memo["paying_account"]))
        await self._post(*await self._paid_notices(invoice, quote, transfer.id))
        fee = transfer.amount - invoice.amount
        return SendResult(transfer.state, transfer.id, quote.receiver_name, invoice.amount, fee)

    async def _paid_notices(
        self, invoice: Invoice, quote: SendQuote, transfer_id: str
    ) -> list[Notice]:
        notices = await self._payments.notices_of(quote, transfer_id)
        if invoice.kind is InvoiceKind.INVOICE:
            args = {
                "amount": invoice.amount.with_currency(),
                "buyer": quote.sender_name,
                "reference": invoice.id,
            }
            key = f"invoice:{invoice.id}:paid"
            notices.append(Notice(key, invoice.payee_customer_id, "invoice_paid", args))
        return notices

    async def _quote(self, invoice: Invoice, paying_account_id: str) -> SendQuote:
        payee = await self._customers.customer(invoice.payee_customer_id)
        if invoice.buyer_customer_id is None:  # paid from the buyer's DFSP, never here
            raise UnknownInvoice(invoice.id)
        return await self._payments.quote_send(
            invoice.buyer_customer_id,
            paying_account_id,
            str(payee.user_number),
            invoice.amount,
            to_account_id=invoice.payee_account_id,
            kind=invoice.kind.transaction_type,
        )

    async def _release(self, transfer_id: str, reason: str) -> None:
        with contextlib.suppress(InvalidTransition):  # executed (it paid) or expired
            await self._ledger.reject(transfer_id, reason)

    async def _buyer(self, user_number: str) -> Customer | None:
        try:
            return await self._customers.by_user_number(user_number)
        except InvalidIdentifier:
            return None

    async def _invoice(self, invoice_id: str) -> Invoice:
        async with self._reading() as session:
            row = await store.find_invoice(session, invoice_id)
            if row is None:
                raise UnknownInvoice(invoice_id)
            return store.invoice_value(row)

    async def _locked(self, session: AsyncSession, invoice_id: str) -> store.InvoiceRow:
        row = await store.find_invoice(session, invoice_id, lock=True)
        if row is None:
            raise UnknownInvoice(invoice_id)
        return row

    async def _pending(self, customer_id: str, *, as_buyer: bool) -> list[PendingInvoice]:
        async with self._reading() as session:
            return await store.pending(
                session, customer_id, as_buyer=as_buyer, limit=MAX_PENDING_LISTED
            )

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=READ_ONLY)
            yield session

    async def _post(self, *notices: Notice) -> None:
        if self._notices is not None and notices:
            await self._notices.post(notices)
