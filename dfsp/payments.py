"""Payments inside one DFSP: send money, check balance, ministatement (SPEC sections 1-3,
"Send money", "Limits and tiers", "Fees").

``quote_send`` resolves the receiver by user number and prices the transfer (the quote
shown before the PIN); ``send`` checks the PIN, the limits of the sender's tier (after
the automatic upgrade their balance and age may have earned: ``Customers.upgrade_tier``)
and the receiver's maximum balance in the receiver's own tier, and moves the
money in one ledger transfer: the principal to the receiver's primary account (or, between
one's own accounts, the chosen one) and the fee, as its own posting, into the DFSP's fee
account. ``send`` is idempotent on its transfer id: a retry returns the same result. ``hold`` is
``send`` in two phases (the funds held until the ledger executes or rejects the transfer):
how a pending transaction is approved (``dfsp.invoices``).

The same quote and send serve every kind of payment (``TransactionType``): ``p2p``; an
invoice or an agent cash-out paid to a given account of the payee (``to_account_id``);
an agent's cash-in. Each is a ledger transfer of that kind whose memo says who sent it,
to whom, the principal and whether it stayed within the sender's own accounts: limit
usage is computed from these transfers (``dfsp.domain.limits.usage_from``) and
statements name the counterparty from them.

Notices (``dfsp.domain.notices``), when a sink is given, are posted once the money has
moved, keyed ``transfer:<id>:sender`` / ``transfer:<id>:receiver`` (a retry posts the
same keys again; the sink keeps one): ``sent`` and ``received``, or ``cash_in`` to the
customer of a cash-in, ``cash_out`` to the customer of a cash-out. An own-account
transfer gets one ``sent``; the payee of an invoice is told by ``dfsp.invoices``.

Every new transfer (``send``, ``hold``: so also an invoice approval, a cash-in and a
cash-out) first passes the forensic gate (``DfspForensic.require``), before the PIN:
while the DFSP's forensic log is unavailable it is refused with
``ForensicLogUnavailable`` and nothing changes. The ledger logs what then moves
(``dfsp.forensic_events``).

Concurrency: one sender's limit check and transfer (for a payment to another DFSP: the
local hold, not the clearing round trip) are serialised, within this process on a lock
per sending customer (from a fixed set) and across DFSP processes sharing PostgreSQL on
an advisory lock of the sender (``_sender_lock``).
"""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clearing.connector import Outgoing
from dfsp import store
from dfsp.clearing_ledger import CLEARING_ACCOUNT, PaymentHold
from dfsp.customers import Customers
from dfsp.domain.accounts import AccountKind
from dfsp.domain.customers import Customer, CustomerAccount, Payee
from dfsp.domain.fees import FeeLine, FeeSource, FeeTable, Route, TransactionType
from dfsp.domain.identifiers import InvalidIdentifier
from dfsp.domain.limits import (
    PastTransfer,
    check_balance,
    check_transfer,
    usage_from,
    week_window,
)
from dfsp.domain.notices import Notice, NoticeSink
from dfsp.domain.payments import (
    InvalidAmount,
    LimitExceeded,
    PaymentError,
    PaymentOrder,
    QuoteChanged,
    ReceiverBlocked,
    RemoteReceiver,
    SenderBlocked,
    SendNotAllowed,
    SendQuote,
    SendResult,
    StatementNotAllowed,
    StatementRow,
    UnknownReceiver,
)
from dfsp.domain.pins import Pin
from dfsp.domain.transfers import (
    CurrencyMismatch,
    InvalidRequest,
    LedgerError,
    Posting,
    Transfer,
    TransferRequest,
    TransferState,
    UnknownTransfer,
)
from dfsp.forensic import DfspForensic
from dfsp.ledger import Ledger
from ussdloop.money import Money

if TYPE_CHECKING:
    from dfsp.interledger import Interledger

PAYMENT_KIND = TransactionType.P2P.value
# The ledger kinds of payments (their memo names the sender): what the limits count.
PAYMENT_KINDS = frozenset(
    kind.value for kind in TransactionType if kind is not TransactionType.BULK
)
FEE_NAME = "fee"
MAX_STATEMENT_ROWS = 32
SENDER_LOCKS = 64  # sends of customers sharing a lock queue behind each other
SENDER_LOCK_SPACE = 0x5553  # the first key of the senders' advisory locks ("US")
Clock = Callable[[], datetime]


class Payments:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ledger: Ledger,
        customers: Customers,
        *,
        fees: FeeTable,
        clock: Clock,
        fee_account: str,
        tz: tzinfo = UTC,
        notices: NoticeSink | None = None,
        interledger: Interledger | None = None,
        forensic: DfspForensic | None = None,  # None: no forensic log, nothing refused
    ) -> None:
        self._sessions = sessions
        self._ledger = ledger
        self._customers = customers
        self._fees = fees
        self._clock = clock
        self._fee_account = fee_account
        self._tz = tz
        self._notices = notices
        self._interledger = interledger  # None: payments stay inside this DFSP
        self._forensic = forensic
        self._sender_locks = [asyncio.Lock() for _ in range(SENDER_LOCKS)]

    def use_fees(self, fees: FeeTable) -> None:
        """Quote with these fees from now on (an auditor's change: ``dfsp.rule_book``)."""
        self._fees = fees

    # --- send money -------------------------------------------------------------------

    async def quote_send(
        self,
        sender_customer_id: str,
        sender_account_id: str,
        receiver_user_number: str,
        amount: Money,
        *,
        to_account_id: str | None = None,
        kind: TransactionType = TransactionType.P2P,
    ) -> SendQuote:
        """The receiver's name and the fees of a ``kind`` payment. ``to_account_id`` picks
        the account paid: one of one's own accounts when the receiver is the sender
        (default: their primary account), or one the receiver holds (an invoice's)."""
        if amount.minor <= 0:
            raise InvalidAmount("the amount must be above zero")
        sender, source = await self._sender(sender_customer_id, sender_account_id)
        try:
            receiver = await self._customers.by_user_number(receiver_user_number)
        except InvalidIdentifier:
            receiver = None
        if receiver is None:
            if self._interledger is None or to_account_id is not None:
                raise UnknownReceiver(receiver_user_number)
            return await self._remote_quote(sender, source, receiver_user_number, amount, kind)
        if receiver.blacklisted:
            raise ReceiverBlocked(str(receiver.user_number))
        target = await self._target(receiver.id, sender.id, source, to_account_id)
        paid = _Paid(target.id, target.ledger_account_id, target.currency)
        return self._local_quote(sender, source, receiver, paid, amount, kind, to_account_id)

    def _local_quote(
        self,
        sender: Customer,
        source: CustomerAccount,
        receiver: Customer,
        target: _Paid,
        amount: Money,
        kind: TransactionType,
        to_account_id: str | None = None,
    ) -> SendQuote:
        if source.currency != amount.currency:
            raise CurrencyMismatch(source.id, amount.currency, source.currency)
        if target.currency != amount.currency:
            raise CurrencyMismatch(target.account_id, amount.currency, target.currency)
        route = Route.OWN_ACCOUNTS if receiver.id == sender.id else Route.SAME_DFSP
        return SendQuote(
            sender_customer_id=sender.id,
            sender_account_id=source.id,
            sender_name=f"{sender.first_name} {sender.last_name}",
            sender_ledger_account_id=source.ledger_account_id,
            receiver_user_number=str(receiver.user_number),
            receiver_customer_id=receiver.id,
            receiver_name=f"{receiver.first_name} {receiver.last_name}",
            receiver_account_id=target.account_id,
            receiver_ledger_account_id=target.ledger_account_id,
            quote=self._fees.quote(kind, amount, route),
            to_account_id=to_account_id,
        )

    async def _sender(
        self, sender_customer_id: str, sender_account_id: str
    ) -> tuple[Customer, CustomerAccount]:
        """The sender, not blacklisted, and their account they may send from."""
        sender = await self._customers.customer(sender_customer_id)
        if sender.blacklisted:
            raise SenderBlocked()
        source = _account(await self._customers.accounts_of(sender.id), sender_account_id)
        if source is None or not source.permissions.can_send:
            raise SendNotAllowed(sender_account_id)
        return sender, source

    async def send(self, quote: SendQuote, pin: Pin | str, transfer_id: str) -> SendResult:
        """Pay the quote after the PIN and the limits; a retry with the same transfer id
        returns the first result (it never pays twice)."""
        await self._require_forensic()  # before the PIN: a refusal costs no attempt
        await self._confirm(quote, pin)
        return await self._send_confirmed(quote, transfer_id)

    async def send_authorised(self, quote: SendQuote, transfer_id: str) -> SendResult:
        """``send`` without a PIN, for a payment its payer authorised beforehand: a row of
        a bulk batch its checker approved with their PIN (``dfsp.bulk``). Pass a fresh
        quote. The limits apply; a bulk payee is told, its payer is not (per row)."""
        await self._require_forensic()
        return await self._send_confirmed(quote, transfer_id)

    async def send_bulk(
        self, sender_customer_id: str, sender_account_id: str, orders: Sequence[PaymentOrder]
    ) -> list[BulkOutcome]:
        """``quote_send`` and ``send_authorised`` of many ``bulk`` payments from one
        account, read, checked and paid together. Payees here: read at once, paid in one
        ledger transaction (``Ledger.transfer_many``) and told in one post. Payees at
        other DFSPs: found, priced and asked for payment requests in one call to each
        service (``Interledger.bulk_payments``), held in one ledger transaction, then
        each cleared through the centre. The limits are checked once under the sender's
        lock. Each order's outcome is in its place: its result or its refusal (what
        ``send_authorised`` would raise). A refusal of them all (the sender, their
        account, the forensic gate) is raised."""
        await self._require_forensic()
        sender, source = await self._sender(sender_customer_id, sender_account_id)
        payees = await self._customers.payees(order.receiver_user_number for order in orders)
        outcomes: list[BulkOutcome | None] = [None] * len(orders)
        local: list[_BulkPayment] = []
        elsewhere: list[int] = []
        for index, order in enumerate(orders):
            payee = payees.get(order.receiver_user_number)
            try:
                if order.amount.minor <= 0:
                    raise InvalidAmount("the amount must be above zero")
                if payee is not None:
                    local.append(self._bulk_payment(index, sender, source, payee, order))
                elif self._interledger is None:
                    raise UnknownReceiver(order.receiver_user_number)
                elif not _is_uuid(order.transfer_id):
                    raise InvalidRequest("a payment to another DFSP needs a UUID as its id")
                else:
                    elsewhere.append(index)
            except (PaymentError, LedgerError) as refusal:
                outcomes[index] = refusal
        remote = await self._remote_payments(sender, source, orders, elsewhere, outcomes)
        async with self._ledger.recording_after(), self._sender_lock(sender.id):
            made = await self._ledger.states(p.transfer_id for p in [*local, *remote])
            refused = await self._bulk_limits(sender.id, [*local, *remote], made)
            local = [p for p in local if p.index not in refused]
            remote = [p for p in remote if p.index not in refused]
            paid = await self._ledger.transfer_many([p.request for p in local if p.request])
            held = await self._hold_bulk(remote)
        outcomes = [refused.get(index, outcome) for index, outcome in enumerate(outcomes)]
        for payment, transfer in zip(local, paid, strict=True):
            outcomes[payment.index] = payment.outcome(transfer)
        await self._tell_bulk_payees(
            [p for p, t in zip(local, paid, strict=True) if isinstance(t, Transfer)]
        )
        for payment, outcome in await self._clear_bulk(remote, held, made):
            outcomes[payment.index] = outcome
        decided = [outcome for outcome in outcomes if outcome is not None]
        assert len(decided) == len(orders), "every bulk order has its outcome"
        return decided

    def _bulk_payment(
        self,
        index: int,
        sender: Customer,
        source: CustomerAccount,
        payee: Payee,
        order: PaymentOrder,
    ) -> _BulkPayment:
        """A bulk order to a customer here, quoted, with its transfer asked for."""
        quote = self._bulk_quote(sender, source, payee, order.amount)
        postings = _postings(quote, self._fee_account)
        request = TransferRequest.checked(
            order.transfer_id, postings, quote.quote.kind.value, _memo(quote)
        )
        return _BulkPayment(index, quote, request.id, request, payee=payee)

    async def _remote_payments(
        self,
        sender: Customer,
        source: CustomerAccount,
        orders: Sequence[PaymentOrder],
        indexes: Sequence[int],
        outcomes: list[BulkOutcome | None],
    ) -> list[_BulkPayment]:
        """The orders at ``indexes`` (to customers of other DFSPs) quoted, with their
        payment requests; each refusal put in ``outcomes``."""
        if not indexes:
            return []
        assert self._interledger is not None
        if source.currency != orders[indexes[0]].amount.currency:
            raise CurrencyMismatch(source.id, orders[indexes[0]].amount.currency, source.currency)
        try:
            found = await self._interledger.bulk_payments(
                str(sender.user_number), sender.name, [orders[i] for i in indexes]
            )
        except PaymentError as unavailable:  # the centre: every one of them
            found = [unavailable] * len(indexes)
        payments = []
        for index, remote in zip(indexes, found, strict=True):
            if isinstance(remote, PaymentError):
                outcomes[index] = remote
                continue
            fee = remote.payee_fee
            quote = self._remote_send_quote(
                sender,
                source,
                remote.receiver,
                orders[index].amount,
                TransactionType.BULK,
                payee_fees=(FeeLine(FeeSource.RECEIVER, fee),) if fee.minor else (),
                scheme_fee=remote.outgoing.scheme_fee,
            )
            tid = orders[index].transfer_id
            payments.append(_BulkPayment(index, quote, tid, outgoing=remote.outgoing))
        return payments

    async def _hold_bulk(self, remote: Sequence[_BulkPayment]) -> list[Transfer | LedgerError]:
        if not remote:
            return []
        assert self._interledger is not None
        holds = [
            PaymentHold(
                p.outgoing,
                p.quote.sender_ledger_account_id,
                p.quote.fee.minor,
                _memo(p.quote) | {"bulk": True},
            )  # as ``_send_remote`` holds one
            for p in remote
            if p.outgoing is not None
        ]
        return await self._interledger.hold_bulk(holds)

    async def _clear_bulk(
        self,
        remote: Sequence[_BulkPayment],
        held: Sequence[Transfer | LedgerError],
        made: Mapping[str, TransferState],
    ) -> list[tuple[_BulkPayment, BulkOutcome]]:
        """The centre's outcome of each held bulk payment to another DFSP, the new ones
        prepared there in one call (one held before: its state now, it is on its way)."""
        outcomes: list[tuple[_BulkPayment, BulkOutcome]] = []
        to_clear: list[_BulkPayment] = []
        for payment, hold in zip(remote, held, strict=True):
            if isinstance(hold, LedgerError):
                outcomes.append((payment, hold))
            elif payment.transfer_id in made:
                now = await self._ledger.transfer(payment.transfer_id)
                outcomes.append((payment, payment.outcome(now)))
            else:
                to_clear.append(payment)
        if to_clear:
            assert self._interledger is not None
            states = await self._interledger.clear_many(
                [p.outgoing for p in to_clear if p.outgoing is not None]
            )
            for payment, state in zip(to_clear, states, strict=True):
                # An error: the runner decides from the ledger's state.
                cleared = state if isinstance(state, Exception) else payment.result(state)
                outcomes.append((payment, cleared))
        return outcomes

    def _bulk_quote(
        self, sender: Customer, source: CustomerAccount, payee: Payee, amount: Money
    ) -> SendQuote:
        """``quote_send``'s quote of a bulk payment (of a positive amount) to a customer
        here."""
        receiver = payee.customer
        if receiver.blacklisted:
            raise ReceiverBlocked(str(receiver.user_number))
        if payee.account_id is None or payee.ledger_account_id is None or payee.currency is None:
            raise UnknownReceiver(receiver.id)
        if receiver.id == sender.id and payee.account_id == source.id:
            raise SendNotAllowed(source.id, "choose another of your accounts")
        target = _Paid(payee.account_id, payee.ledger_account_id, payee.currency)
        return self._local_quote(sender, source, receiver, target, amount, TransactionType.BULK)

    async def _bulk_limits(
        self, sender_id: str, payments: Sequence[_BulkPayment], made: Mapping[str, object]
    ) -> dict[int, LimitExceeded]:
        """``_check_limits`` of each bulk payment not ``made`` yet, in order (under the
        sender's lock): the refused ones by index. A payee here paid twice has the first
        payment counted against their maximum balance when the second is checked (a
        payee at another DFSP: their DFSP checks)."""
        checked = [p for p in payments if p.transfer_id not in made and not p.quote.own_accounts]
        if not checked:
            return {}
        sender_tier = await self._customers.upgrade_tier(sender_id)
        # Bulk payments are not in the usage (``PAYMENT_KINDS``): the same for each row.
        usage = usage_from(
            await self._past_transfers(sender_id),
            self._clock(),
            tz=self._tz,
            currency=checked[0].quote.currency,
        )
        accounts = await self._ledger.accounts_among(p.credited for p in checked if p.payee)
        coming = {account_id: 0 for account_id in accounts}  # paid earlier in this call
        refusals: dict[int, LimitExceeded] = {}
        for payment in checked:
            amount, received = payment.quote.amount, payment.quote.quote.credit
            violation = check_transfer(sender_tier.limits, usage, amount, own_account=False)
            if violation is None and payment.payee is not None:
                account = accounts[payment.credited]
                after = account.balance + account.incoming + received
                after = Money(after.currency, after.minor + coming[account.id])
                limits = self._customers.tiers.tier(payment.payee.tier).limits
                violation = check_balance(limits, after, received=received)
            if violation is not None:
                refusals[payment.index] = LimitExceeded(violation)
            elif payment.payee is not None:
                coming[payment.credited] += received.minor
        return refusals

    async def _tell_bulk_payees(self, paid: Sequence[_BulkPayment]) -> None:
        """The payees' ``received`` notices (a bulk payer has the batch's report), each
        with the balance just after their payment: the balance now, less what came to
        them later in the same call."""
        if self._notices is None or not paid:
            return
        accounts = await self._ledger.accounts_among(p.credited for p in paid)
        available = {account_id: account.available for account_id, account in accounts.items()}
        notices = []
        for payment in reversed(paid):
            quote, credit = payment.quote, payment.quote.quote.credit
            balance = available[payment.credited]
            args = {"amount": _text(credit), "sender": quote.sender_name, "balance": _text(balance)}
            available[payment.credited] = Money(balance.currency, balance.minor - credit.minor)
            key = f"transfer:{payment.transfer_id}:receiver"
            notices.append(Notice(key, quote.receiver_customer_id, "received", args))
        await self._notices.post(notices[::-1])

    async def _send_confirmed(self, quote: SendQuote, transfer_id: str) -> SendResult:
        if quote.remote is not None:
            return await self._send_remote(quote, quote.remote, transfer_id)
        async with self._ledger.recording_after(), self._sender_lock(quote.sender_customer_id):
            if not await self._exists(transfer_id):
                await self._check_limits(quote)
            transfer = await self._ledger.transfer_now(
                transfer_id,
                _postings(quote, self._fee_account),
                kind=quote.quote.kind.value,
                memo=_memo(quote),
            )
        if transfer.state is TransferState.EXECUTED and self._notices is not None:
            notices = await self.notices_of(quote, transfer.id)
            if quote.quote.kind is TransactionType.BULK:  # the payer has the batch's report
                notices = [n for n in notices if n.customer_id != quote.sender_customer_id]
            await self._notices.post(notices)
        return SendResult(transfer.state, transfer.id, quote.receiver_name, quote.amount, quote.fee)

    async def hold(
        self,
        quote: SendQuote,
        pin: Pin | str,
        transfer_id: str,
        *,
        expires_at: datetime,
        memo: Mapping[str, Any] | None = None,
    ) -> Transfer:
        """``send`` in two phases: after the PIN and the limits, hold the funds in a
        prepared ledger transfer until ``expires_at``; the caller executes or rejects it
        (``Ledger.execute`` / ``Ledger.reject``). A retry returns the same transfer, in
        whatever state it is now; nothing is posted (the caller tells, once executed)."""
        await self._require_forensic()
        await self._confirm(quote, pin)
        async with self._sender_lock(quote.sender_customer_id):
            if not await self._exists(transfer_id):
                await self._check_limits(quote)
            return await self._ledger.prepare(
                transfer_id,
                _postings(quote, self._fee_account),
                kind=quote.quote.kind.value,
                expires_at=expires_at,
                memo={**_memo(quote), **(memo or {})},
            )

    async def notices_of(self, quote: SendQuote, transfer_id: str) -> list[Notice]:
        """What the sender and the receiver of an executed payment are told (the
        balances read now); the payee of an invoice is told by ``dfsp.invoices``."""
        kind = quote.quote.kind
        sent = await self._available(quote.sender_ledger_account_id)
        amount, fee = _text(quote.amount), _text(quote.fee)
        if kind is TransactionType.CASH_OUT:
            args = {"amount": amount, "fee": fee, "agent": quote.receiver_name, "balance": sent}
            notices = [
                Notice(f"transfer:{transfer_id}:sender", quote.sender_customer_id, "cash_out", args)
            ]
        else:
            args = {"amount": amount, "fee": fee, "receiver": quote.receiver_name, "balance": sent}
            notices = [
                Notice(f"transfer:{transfer_id}:sender", quote.sender_customer_id, "sent", args)
            ]
        if quote.own_accounts or kind is TransactionType.INVOICE:
            return notices
        received = await self._available(quote.receiver_ledger_account_id)
        credit = _text(quote.quote.credit)
        key, receiver = f"transfer:{transfer_id}:receiver", quote.receiver_customer_id
        if kind is TransactionType.CASH_IN:
            args = {"amount": credit, "agent": quote.sender_name, "balance": received}
            notices.append(Notice(key, receiver, "cash_in", args))
        else:
            args = {"amount": credit, "sender": quote.sender_name, "balance": received}
            notices.append(Notice(key, receiver, "received", args))
        return notices

    async def receiver(self, user_number: str) -> tuple[str, str | None]:
        """The name of whoever has ``user_number`` and, for a customer of another DFSP,
        that DFSP (None: a customer here); ``UnknownReceiver`` when no one has it."""
        try:
            customer = await self._customers.by_user_number(user_number)
        except InvalidIdentifier:
            raise UnknownReceiver(user_number) from None
        if customer is not None:
            return f"{customer.first_name} {customer.last_name}", None
        if self._interledger is None:
            raise UnknownReceiver(user_number)
        remote = await self._interledger.remote_receiver(user_number)
        return remote.name, remote.dfsp

    # --- payments to other DFSPs ---------------------------------------------------

    async def _remote_quote(
        self,
        sender: Customer,
        source: CustomerAccount,
        user_number: str,
        amount: Money,
        kind: TransactionType,
    ) -> SendQuote:
        assert self._interledger is not None
        if source.currency != amount.currency:
            raise CurrencyMismatch(source.id, amount.currency, source.currency)
        receiver = await self._interledger.remote_receiver(user_number)
        code = "invoice" if kind is TransactionType.INVOICE else "p2p"
        payee_fee, scheme_fee = await self._interledger.fees_for(
            receiver, str(sender.user_number), amount, code
        )
        payee_fees = (FeeLine(FeeSource.RECEIVER, payee_fee),) if payee_fee.minor else ()
        return self._remote_send_quote(
            sender, source, receiver, amount, kind, payee_fees=payee_fees, scheme_fee=scheme_fee
        )

    def _remote_send_quote(
        self,
        sender: Customer,
        source: CustomerAccount,
        receiver: RemoteReceiver,
        amount: Money,
        kind: TransactionType,
        *,
        payee_fees: tuple[FeeLine, ...],
        scheme_fee: Money,
    ) -> SendQuote:
        return SendQuote(
            sender_customer_id=sender.id,
            sender_account_id=source.id,
            sender_name=f"{sender.first_name} {sender.last_name}",
            sender_ledger_account_id=source.ledger_account_id,
            receiver_user_number=receiver.user_number,
            receiver_customer_id="",
            receiver_name=receiver.name,
            receiver_account_id="",
            receiver_ledger_account_id=CLEARING_ACCOUNT,
            quote=self._fees.quote(
                kind, amount, Route.CROSS_DFSP, payee_fees=payee_fees, scheme_fee=scheme_fee
            ),
            remote=receiver,
        )

    async def send_for_invoice(
        self, quote: SendQuote, pin: Pin | str, transfer_id: str, *, invoice_id: str
    ) -> SendResult:
        """``send`` of an invoice quote to a merchant at another DFSP: the payment
        request and the hold's memo carry that DFSP's ``invoice_id`` (``dfsp.invoices_across``)."""
        await self._require_forensic()
        await self._confirm(quote, pin)
        if quote.remote is None:
            raise InvalidRequest("only an invoice of another DFSP is paid through clearing")
        return await self._send_remote(quote, quote.remote, transfer_id, invoice_id=invoice_id)

    async def _send_remote(
        self,
        quote: SendQuote,
        receiver: RemoteReceiver,
        transfer_id: str,
        *,
        invoice_id: str | None = None,
    ) -> SendResult:
        """Hold and clear through the centre; a retry reports the transfer's state now.
        The sender's lock covers the limit check and the hold (after which the limits
        count the payment and the funds are held), not the wait for the centre's outcome:
        a sender's other payments go on meanwhile."""
        assert self._interledger is not None
        if not _is_uuid(transfer_id):
            raise InvalidRequest("a payment to another DFSP needs a UUID as its transfer id")
        if await self._exists(transfer_id):
            return await self._remote_result(quote, transfer_id)
        transfer_code = "invoice" if quote.quote.kind is TransactionType.INVOICE else "p2p"
        outgoing = await self._interledger.request_payment(
            transfer_id=transfer_id,
            receiver=receiver,
            amount=quote.amount,
            scheme_fee=quote.quote.scheme_fee,
            payer_name=quote.sender_name,
            transfer_code=transfer_code,
            invoice_id=invoice_id,
        )
        async with self._ledger.recording_after(), self._sender_lock(quote.sender_customer_id):
            if await self._exists(transfer_id):  # a twin held it meanwhile
                return await self._remote_result(quote, transfer_id)
            await self._check_limits(quote)
            await self._interledger.hold(
                outgoing,
                local_fee=quote.fee,
                payer_ledger_account=quote.sender_ledger_account_id,
                transfer_code=transfer_code,
                memo=_memo(quote)
                | ({"invoice_id": invoice_id} if invoice_id is not None else {})
                | ({"bulk": True} if quote.quote.kind is TransactionType.BULK else {}),
            )
        state = TransferState(await self._interledger.clear(outgoing))
        return SendResult(state, transfer_id, quote.receiver_name, quote.amount, quote.fee)

    async def _remote_result(self, quote: SendQuote, transfer_id: str) -> SendResult:
        state = (await self._ledger.transfer(transfer_id)).state
        return SendResult(state, transfer_id, quote.receiver_name, quote.amount, quote.fee)

    # --- balance and statement ---------------------------------------------------------

    async def balance(self, customer_id: str, account_id: str, pin: Pin | str) -> Money:
        """The available balance of an account the customer may view."""
        account = await self._viewable(customer_id, account_id, pin)
        return (await self._ledger.balance(account.ledger_account_id))[1]

    async def ministatement(
        self, customer_id: str, account_id: str, pin: Pin | str, limit: int = 8
    ) -> list[StatementRow]:
        """The latest movements, newest first; a payment's fee is its own ``fee`` row,
        after the payment's row."""
        ledger_id = (await self._viewable(customer_id, account_id, pin)).ledger_account_id
        return await self.statement(ledger_id, limit)

    async def statement(self, ledger_id: str, limit: int = 8) -> list[StatementRow]:
        """``ministatement`` of a ledger account, without a holder's PIN: for the
        auditor's desk (``dfsp.auditing``)."""
        limit = max(1, min(limit, MAX_STATEMENT_ROWS))
        rows: list[StatementRow] = []
        seen: set[str] = set()
        for entry in await self._ledger.statement(ledger_id, limit):
            if entry.transfer_id not in seen:
                seen.add(entry.transfer_id)
                transfer = await self._ledger.transfer(entry.transfer_id)
                rows.extend(_statement_rows(transfer, ledger_id, self._fee_account))
        return rows[:limit]

    # --- helpers -----------------------------------------------------------------------

    async def _target(
        self, receiver_id: str, sender_id: str, source: CustomerAccount, to_account_id: str | None
    ) -> CustomerAccount:
        chosen = next(
            (
                a
                for a in await self._customers.accounts_of(receiver_id)
                if a.id == to_account_id or (to_account_id is None and a.primary)
            ),
            None,
        )
        if receiver_id != sender_id:
            if chosen is None or chosen.kind is not AccountKind.REGULAR:
                raise UnknownReceiver(receiver_id)
        elif chosen is None or chosen.id == source.id:
            raise SendNotAllowed(source.id, "choose another of your accounts")
        return chosen

    async def _require_forensic(self) -> None:
        """No new transfer while the forensic log is unavailable (``ForensicLogUnavailable``)."""
        if self._forensic is not None:
            await self._forensic.require()

    async def _confirm(self, quote: SendQuote, pin: Pin | str) -> None:
        """The PIN is right and the quote still holds."""
        await self._customers.check_pin(quote.sender_customer_id, pin)
        fresh = await self.quote_send(
            quote.sender_customer_id,
            quote.sender_account_id,
            quote.receiver_user_number,
            quote.amount,
            to_account_id=quote.to_account_id,
            kind=quote.quote.kind,
        )
        if fresh != quote:
            raise QuoteChanged("the receiver or the fees changed: check the new quote")

    async def _available(self, ledger_account_id: str) -> str:
        return _text((await self._ledger.balance(ledger_account_id))[1])

    async def _viewable(self, customer_id: str, account_id: str, pin: Pin | str) -> CustomerAccount:
        await self._customers.check_pin(customer_id, pin)
        account = _account(await self._customers.accounts_of(customer_id), account_id)
        if account is None or not account.permissions.can_view:
            raise StatementNotAllowed(account_id)
        return account

    async def _exists(self, transfer_id: str) -> bool:
        try:
            await self._ledger.transfer(transfer_id)
        except UnknownTransfer:
            return False
        return True

    async def _check_limits(self, quote: SendQuote) -> None:
        if quote.own_accounts:
            return
        sender_tier = await self._customers.upgrade_tier(quote.sender_customer_id)
        usage = usage_from(
            await self._past_transfers(quote.sender_customer_id),
            self._clock(),
            tz=self._tz,
            currency=quote.currency,
        )
        violation = check_transfer(sender_tier.limits, usage, quote.amount, own_account=False)
        if violation is None and quote.remote is None:  # a remote receiver's DFSP checks theirs
            receiver_tier = await self._customers.tier_of(quote.receiver_customer_id)
            account = await self._ledger.account(quote.receiver_ledger_account_id)
            received = quote.quote.credit
            after = account.balance + account.incoming + received
            violation = check_balance(receiver_tier.limits, after, received=received)
        if violation is not None:
            raise LimitExceeded(violation)

    async def _past_transfers(self, customer_id: str) -> list[PastTransfer]:
        """This week's payments from any account the customer holds, sent by them."""
        held = await self._customers.ledger_accounts_held_by(customer_id)
        since = week_window(self._clock(), self._tz)[0]
        debited = select(store.PostingRow.transfer_id).where(
            store.PostingRow.debit_account.in_(held)
        )
        row = store.TransferRow  # the columns the limits need, not the transfers
        query = select(row.created_at, row.currency, row.state, row.memo).where(
            row.id.in_(debited), row.kind.in_(PAYMENT_KINDS), row.created_at >= since
        )
        async with self._reading() as session:
            found = (await session.execute(query)).all()
        return [
            PastTransfer(
                at=at,
                amount=Money(currency, int(memo["principal_minor"])),
                state=TransferState(state),
                own_accounts=bool(memo["own_accounts"]),
            )
            for at, currency, state, stored_memo in found
            if (memo := stored_memo or {}).get("sender") == customer_id
        ]

    @asynccontextmanager
    async def _sender_lock(self, customer_id: str) -> AsyncIterator[None]:
        """One sender's limit check and transfer at a time: in this process on one of a
        fixed set of locks (shared by hash), and across DFSP processes sharing a
        PostgreSQL database on a transaction-level advisory lock of the sender, held on
        its own connection until the transfer is committed. (SQLite serves one process.)"""
        key = zlib.crc32(customer_id.encode())
        async with self._sender_locks[key % SENDER_LOCKS]:
            if self._sessions.kw["bind"].dialect.name != "postgresql":
                yield
                return
            async with self._sessions() as session, session.begin():
                signed = key - (1 << 32) if key >= 1 << 31 else key  # an int4 key
                await session.execute(select(func.pg_advisory_xact_lock(SENDER_LOCK_SPACE, signed)))
                yield

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=store.READ_ONLY)
            yield session


BulkOutcome = SendResult | Exception


@dataclass(frozen=True)
class _BulkPayment:
    """One order of ``send_bulk``, quoted, with its transfer asked for: to a ``payee``
    here, or to a customer of another DFSP with the centre's transfer (``outgoing``)."""

    index: int  # its place among the orders
    quote: SendQuote
    transfer_id: str
    request: TransferRequest | None = None  # to a payee here: the ledger transfer
    payee: Payee | None = None
    outgoing: Outgoing | None = None

    @property
    def credited(self) -> str:
        return self.quote.receiver_ledger_account_id

    def outcome(self, transfer: Transfer | LedgerError) -> BulkOutcome:
        if isinstance(transfer, LedgerError):
            return transfer
        return self.result(transfer.state)

    def result(self, state: TransferState) -> SendResult:
        quote = self.quote
        return SendResult(
            state,
            self.transfer_id,
            quote.receiver_name,
            quote.amount,
            quote.fee,
            quote.quote.payer_fees,
        )


class _Paid(NamedTuple):
    """The account a payment inside this DFSP credits."""

    account_id: str
    ledger_account_id: str
    currency: str


def _account(accounts: tuple[CustomerAccount, ...], account_id: str) -> CustomerAccount | None:
    return next((a for a in accounts if a.id == account_id), None)


def _postings(quote: SendQuote, fee_account: str) -> list[Posting]:
    source = quote.sender_ledger_account_id
    postings = [Posting(source, quote.receiver_ledger_account_id, quote.quote.credit.minor)]
    if quote.quote.total_fees.minor:
        postings.append(Posting(source, fee_account, quote.quote.total_fees.minor))
    assert sum(p.amount_minor for p in postings) == quote.total.minor, "a payment loses money"
    return postings


def _text(amount: Money) -> str:
    return f"{amount.screen_text()} {amount.currency}"


def _memo(quote: SendQuote) -> dict[str, Any]:
    return {
        "sender": quote.sender_customer_id,
        "sender_name": quote.sender_name,
        "receiver": quote.receiver_customer_id,
        "receiver_user_number": quote.receiver_user_number,
        "receiver_name": quote.receiver_name,
        "principal_minor": quote.amount.minor,
        "own_accounts": quote.own_accounts,
    }


def _statement_rows(
    transfer: Transfer, account_id: str, fee_account: str
) -> Iterator[StatementRow]:
    """The account's movements in one transfer, in posting order (principal, then fee)."""
    memo = transfer.memo or {}
    at, kind = transfer.decided_at or transfer.created_at, transfer.kind
    fee_postings = set(memo.get("fee_postings", ()))  # a payment through the centre says
    for index, posting in enumerate(transfer.postings):
        amount = Money(transfer.amount.currency, posting.amount_minor)
        if posting.debit_account == account_id:
            fee = posting.credit_account == fee_account or index in fee_postings
            yield StatementRow(FEE_NAME if fee else _name(memo, "receiver", kind), -amount, at)
        elif posting.credit_account == account_id:
            yield StatementRow(_name(memo, "sender", kind), amount, at)


def _name(memo: Mapping[str, Any], side: str, kind: str) -> str:
    """The counterparty named in a payment's memo; for other transfers, their kind."""
    return str(memo.get(f"{side}_name") or kind)


def _is_uuid(text: str) -> bool:
    """The canonical lower-case form (the centre's ledger takes nothing else)."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False
