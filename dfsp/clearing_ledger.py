"""The DFSP's ledger as the clearing connector sees it (``clearing.connector.LocalLedger``).

A payment to another DFSP is held in this ledger as one prepared transfer: the payer's
account pays the principal and the scheme fee to the DFSP's clearing account (what
leaves through the centre) and its local fee to the fee account. A payment from another
DFSP is held as the clearing account paying the payee (the principal less this DFSP's
receiver fee) and the fee account. Both are decided by the centre's state: the hold's
own expiry is only a backstop a day later, so the ledger's sweep never decides a
transfer the centre may still execute.

The memo of these transfers says which side this DFSP is on (``clearing``), the
centre's expiry (``central_expires_at``), the names and principal for statements and
notices, and which postings are fees (``fee_postings``).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clearing.connector import Outgoing, PayeeRefused
from clearing.payment_requests import SECRET_BYTES, PaymentDetails
from dfsp import store
from dfsp.customers import Customers
from dfsp.domain.customers import Payee
from dfsp.domain.fees import FeeTable, Route, TransactionType
from dfsp.domain.transfers import (
    InvalidRequest,
    LedgerError,
    Posting,
    Transfer,
    TransferRequest,
    TransferState,
    UnknownTransfer,
)
from dfsp.ledger import Ledger

CLEARING_ACCOUNT: Final = "clearing"
# Payees' fraud screening: for each user number that may not receive, why (blacklisted,
# score 100); the numbers not in the answer may receive.
Screen = Callable[[Sequence[str]], Awaitable[dict[str, str]]]
BACKSTOP: Final = timedelta(days=1)  # a held clearing transfer's own expiry
PAYER, PAYEE = "payer", "payee"


@dataclass(frozen=True)
class PaymentHold:
    """One payment of ``ClearingLedger.hold_payments``."""

    outgoing: Outgoing
    payer_account: str
    local_fee_minor: int
    memo: Mapping[str, Any]


class ClearingLedger:
    def __init__(
        self,
        ledger: Ledger,
        customers: Customers,
        fees: FeeTable,
        *,
        fee_account: str,
        state: ClearingState,
        screen: Screen | None = None,
    ) -> None:
        self._ledger = ledger
        self._customers = customers
        self._fees = fees
        self._fee_account = fee_account
        self._state = state
        self._screen = screen  # None: no fraud screening of payees (a DFSP on its own)

    async def hold_payment(
        self,
        outgoing: Outgoing,
        *,
        payer_account: str,
        local_fee_minor: int,
        kind: str,
        memo: Mapping[str, Any],
    ) -> None:
        """Hold the payer's funds for ``outgoing`` (idempotent on its transfer id)."""
        request = self._hold_of(PaymentHold(outgoing, payer_account, local_fee_minor, memo), kind)
        await self._ledger.prepare(
            request.id,
            request.postings,
            kind=request.kind,
            expires_at=outgoing.expires_at + BACKSTOP,
            memo=request.memo,
        )

    async def hold_payments(
        self, holds: Sequence[PaymentHold], *, kind: str
    ) -> list[Transfer | LedgerError]:
        """``hold_payment`` of many payments (a bulk batch's rows to other DFSPs) in one
        ledger transaction; each refusal (the payer's funds) in its payment's place."""
        if not holds:
            return []
        requests = [self._hold_of(hold, kind) for hold in holds]
        backstop = max(h.outgoing.expires_at for h in holds) + BACKSTOP
        return await self._ledger.prepare_many(requests, expires_at=backstop)

    def _hold_of(self, hold: PaymentHold, kind: str) -> TransferRequest:
        outgoing, payer_account = hold.outgoing, hold.payer_account
        postings = [Posting(payer_account, CLEARING_ACCOUNT, outgoing.amount.minor)]
        fee_postings = []
        if outgoing.scheme_fee.minor:
            fee_postings.append(len(postings))
            postings.append(Posting(payer_account, CLEARING_ACCOUNT, outgoing.scheme_fee.minor))
        if hold.local_fee_minor:
            fee_postings.append(len(postings))
            postings.append(Posting(payer_account, self._fee_account, hold.local_fee_minor))
        memo = {
            **hold.memo,
            "clearing": PAYER,
            "payee_dfsp": outgoing.payee_dfsp,
            "central_expires_at": outgoing.expires_at.isoformat(),
            "fee_postings": fee_postings,
        }
        return TransferRequest.checked(outgoing.transfer_id, postings, kind, memo)

    def use_fees(self, fees: FeeTable) -> None:
        self._fees = fees

    async def hold_credits(
        self, credits: Sequence[tuple[str, PaymentDetails]]
    ) -> list[PayeeRefused | None]:
        """Check each payee and hold the credit of each payment from another DFSP
        (transfer id, details), idempotent on the transfer id: the payees read once,
        screened once, the credits held in one ledger transaction. In each payment's
        place its refusal, or None: held (now or before). Each transfer id once
        (``InvalidRequest``: nothing is held)."""
        if len({transfer_id for transfer_id, _ in credits}) != len(credits):
            raise InvalidRequest("a transfer id appears twice among the credits")
        payees = await self._customers.payees(details.payee_user_number for _, details in credits)
        refusals = {
            index: refusal
            for index, (_, details) in enumerate(credits)
            if (refusal := _refusal_of(payees.get(details.payee_user_number), details))
        }
        numbers = {  # as stored, the one form the centre answers for
            index: str(payees[details.payee_user_number].customer.user_number)
            for index, (_, details) in enumerate(credits)
            if index not in refusals
        }
        screened = await self._screened(list(numbers.values()))
        requests: dict[int, TransferRequest] = {}
        for index, number in numbers.items():
            transfer_id, details = credits[index]
            if number in screened:
                refusals[index] = PayeeRefused(f"the payee may not receive: {screened[number]}")
                continue
            try:
                payee = payees[details.payee_user_number]
                requests[index] = self._credit_of(transfer_id, details, payee)
            except PayeeRefused as refusal:
                refusals[index] = refusal
        refusals |= await self._hold_requests(requests, credits)
        return [refusals.get(index) for index in range(len(credits))]

    async def _screened(self, user_numbers: Sequence[str]) -> dict[str, str]:
        """Why each of these payees may not receive, by number (one call for all)."""
        if self._screen is None or not user_numbers:
            return {}
        return await self._screen(list(dict.fromkeys(user_numbers)))

    def _credit_of(
        self, transfer_id: str, details: PaymentDetails, payee: Payee
    ) -> TransferRequest:
        """The hold of a credit to a payee who may receive: the clearing account pays the
        payee the amount less this DFSP's receiver fee, and the fee account the fee."""
        if payee.ledger_account_id is None:
            raise PayeeRefused("the payee has no account")
        kind = (
            TransactionType.INVOICE if details.transfer_code == "invoice" else TransactionType.P2P
        )
        fees = self._fees.payee_fees(kind, details.amount, Route.CROSS_DFSP)
        fee_minor = sum(line.amount.minor for line in fees)
        if fee_minor >= details.amount.minor:
            raise PayeeRefused("the receiver fee takes the whole amount")
        postings = [
            Posting(CLEARING_ACCOUNT, payee.ledger_account_id, details.amount.minor - fee_minor)
        ]
        if fee_minor:
            postings.append(Posting(CLEARING_ACCOUNT, self._fee_account, fee_minor))
        customer = payee.customer
        memo = {
            "clearing": PAYEE,
            "sender_name": details.payer_name,
            "sender_dfsp": details.payer_dfsp,
            "receiver": customer.id,
            "receiver_user_number": str(customer.user_number),
            "receiver_name": f"{customer.first_name} {customer.last_name}",
            "principal_minor": details.amount.minor,
            "own_accounts": False,
            "invoice_id": details.invoice_id,
            "fee_postings": [1] if fee_minor else [],
        }
        try:
            return TransferRequest.checked(transfer_id, postings, kind.value, memo)
        except LedgerError as error:
            raise PayeeRefused(str(error)) from None

    async def _hold_requests(
        self, requests: Mapping[int, TransferRequest], credits: Sequence[tuple[str, PaymentDetails]]
    ) -> dict[int, PayeeRefused]:
        """Hold the credits' requests (by the index of their payment) in one ledger
        transaction, until a backstop after the last central expiry; the refusals."""
        if not requests:
            return {}
        backstop = max(credits[index][1].expires_at for index in requests) + BACKSTOP
        outcomes = await self._ledger.prepare_many(list(requests.values()), expires_at=backstop)
        return {
            index: PayeeRefused(str(outcome))
            for index, outcome in zip(requests, outcomes, strict=True)
            if isinstance(outcome, LedgerError)
        }

    async def commit_many(self, transfer_ids: Sequence[str]) -> list[Transfer | LedgerError]:
        """Execute the holds of transfers the centre executed, in one ledger transaction;
        each one's refusal (unknown here, expired) in its place."""
        return await self._ledger.execute_many_if_prepared(transfer_ids)

    async def release(self, transfer_id: str, reason: str) -> Transfer | None:
        try:
            return await self._ledger.reject_if_prepared(transfer_id, reason)
        except UnknownTransfer:
            return None  # nothing was held here (refused before the hold)

    async def in_flight(self) -> list[str]:
        query = select(store.TransferRow.id, store.TransferRow.memo).where(
            store.TransferRow.state == TransferState.PREPARED.value
        )
        async with self._ledger.reading() as session:
            rows = (await session.execute(query)).all()
        return [row.id for row in rows if (row.memo or {}).get("clearing") in (PAYER, PAYEE)]

    async def deadline(self, transfer_id: str) -> datetime | None:
        try:
            transfer = await self._ledger.transfer(transfer_id)
        except UnknownTransfer:
            return None
        memo = transfer.memo or {}
        if memo.get("clearing") != PAYER:
            return None
        return datetime.fromisoformat(str(memo["central_expires_at"]))

    async def load_cursor(self) -> int:
        return await self._state.load()

    async def save_cursor(self, seq: int) -> None:
        await self._state.save(seq)


def _refusal_of(payee: Payee | None, details: PaymentDetails) -> PayeeRefused | None:
    """Why this DFSP will not pay the payee, whatever the centre's screening answers."""
    if payee is None:
        return PayeeRefused(f"no customer with user number {details.payee_user_number}")
    if payee.customer.blacklisted:  # by this DFSP's auditor
        return PayeeRefused("the payee may not receive: blacklisted by their DFSP")
    return None


class ClearingState:
    """The DFSP's clearing state in its database: the payment-request secret (made at
    first start, kept across restarts so fulfilments can be recomputed) and the last
    central notification handled."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def secret(self) -> bytes:
        async with self._sessions.begin() as session:
            row = await self._row(session)
            return row.secret

    async def load(self) -> int:
        async with self._sessions.begin() as session:
            return (await self._row(session)).notification_seq

    async def save(self, seq: int) -> None:
        """Move the cursor forward to ``seq`` (never back): one UPDATE, after every
        notification; the row is read (made) only when that changed nothing."""
        moved = (
            update(store.ClearingStateRow)
            .where(store.ClearingStateRow.id == 1, store.ClearingStateRow.notification_seq < seq)
            .values(notification_seq=seq)
        )
        async with self._sessions.begin() as session:
            result = await session.execute(moved)
            if not getattr(result, "rowcount", 0):
                row = await self._row(session)
                row.notification_seq = max(row.notification_seq, seq)

    @staticmethod
    async def _row(session: AsyncSession) -> store.ClearingStateRow:
        row = await session.get(store.ClearingStateRow, 1, with_for_update=True)
        if row is None:
            row = store.ClearingStateRow(
                id=1, secret=secrets.token_bytes(SECRET_BYTES), notification_seq=0
            )
            session.add(row)
            await session.flush()
        return row
