"""What a DFSP writes to its forensic chain (``dfsp.forensic``), recorded where the
events happen: the ledger, the tiers and the pending transactions, each a subclass that
logs after its parent's use case committed (best effort: ``DfspForensic.record``).

Ledger (subject = the transfer id; data: ``kind``, ``state``, ``side`` (``local``, or
``payer`` / ``payee`` of a payment between DFSPs), ``amount`` (the principal),
``total``, ``fees``, ``currency``, the parties' user numbers ``sender`` / ``receiver``
where known, ``payerDfsp`` / ``payeeDfsp``, ``reason``, ``invoice``):

- ``transfer.executed``: a one-step payment inside the DFSP (send, cash-in);
- ``transfer.held``: funds held (a send to another DFSP, an invoice approval, a credit
  held for a payment from another DFSP);
- ``transfer.committed``: a held transfer executed;
- ``transfer.released``: a held transfer rejected or expired (``state`` says which).

Customers: ``tier.changed`` (subject = the user number; ``from``, ``to``, ``by``:
``auditor`` with the auditor's name and reason, or ``automatic``).
Invoices (subject = the invoice id): ``invoice.created``, ``invoice.paid`` (with the
paying ``transfer``), ``invoice.rejected``.
The auditor's desk writes its own, inside each change's transaction (``dfsp.auditing``;
subject = the user number; ``by``, ``reason``, ``score``): ``fraud.checked``,
``customer.blacklisted``, ``customer.unblacklisted``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dfsp.customers import Customers
from dfsp.domain.invoices import Invoice
from dfsp.domain.payments import SendResult
from dfsp.domain.tiers import Tier, TierChange
from dfsp.domain.transfers import (
    LedgerError,
    Posting,
    Transfer,
    TransferRequest,
    TransferState,
)
from dfsp.forensic import DfspForensic
from dfsp.invoices import Invoices
from dfsp.ledger import MAX_EXPIRE_BATCH, Ledger
from ussdloop.money import Money

Clock = Callable[[], datetime]
USER_NUMBERS_KEPT: Final = 4096  # the parties' user numbers the ledger's records remember


@dataclass
class _Deferred:
    """The records made inside ``ForensicLedger.recording_after``, to write on leaving."""

    records: list[tuple[str, Transfer]] = field(default_factory=list)
    open: bool = True


_deferred: ContextVar[_Deferred | None] = ContextVar("forensic_records_deferred", default=None)


class ForensicLedger(Ledger):
    """The DFSP's ledger, logging every transfer that moves or holds money."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        forensic: DfspForensic,
        fee_account: str,
    ) -> None:
        super().__init__(sessions, clock)
        self._forensic = forensic
        self._fee_account = fee_account
        self._customers: Customers | None = None
        self._user_numbers: OrderedDict[str, str] = OrderedDict()  # customer id -> number

    def name_parties_with(self, customers: Customers) -> None:
        """Where the records find the parties' user numbers (built after the ledger)."""
        self._customers = customers

    async def _prepare(
        self,
        transfer_id: str,
        postings: Iterable[Posting],
        *,
        kind: str,
        expires_at: datetime,
        memo: Mapping[str, Any] | None = None,
    ) -> tuple[Transfer, TransferState | None]:
        transfer, before = await super()._prepare(
            transfer_id, postings, kind=kind, expires_at=expires_at, memo=memo
        )
        if before is None:  # held by this call, not found by a retry
            await self._record("transfer.held", transfer)
        return transfer, before

    async def _execute_many(
        self, transfer_ids: Sequence[str]
    ) -> list[tuple[Transfer | LedgerError, TransferState | None]]:
        """(``execute`` and ``execute_if_prepared`` come here too, with one id.)"""
        outcomes = await super()._execute_many(transfer_ids)
        await self._record_all(
            (_decision_event(outcome), outcome)
            for outcome, before in outcomes
            if isinstance(outcome, Transfer) and before is TransferState.PREPARED
        )  # those decided by this call
        return outcomes

    async def _transfer_now(
        self,
        transfer_id: str,
        postings: Iterable[Posting],
        *,
        kind: str,
        memo: Mapping[str, Any] | None = None,
    ) -> tuple[Transfer, TransferState | None]:
        transfer, before = await super()._transfer_now(transfer_id, postings, kind=kind, memo=memo)
        if before is None:  # made and executed by this call
            await self._record("transfer.executed", transfer)
        elif before is TransferState.PREPARED:  # a prepared twin, decided by this call
            await self._record(_decision_event(transfer), transfer)
        return transfer, before

    async def _many(
        self, requests: Sequence[TransferRequest], *, expires_at: datetime | None, execute: bool
    ) -> list[tuple[Transfer | LedgerError, TransferState | None]]:
        outcomes = await super()._many(requests, expires_at=expires_at, execute=execute)
        made = "transfer.executed" if execute else "transfer.held"
        await self._record_all(
            (made if before is None else _decision_event(outcome), outcome)
            for outcome, before in outcomes
            if isinstance(outcome, Transfer)
            and (before is None or (execute and before is TransferState.PREPARED))
        )  # those made, or decided, by this call
        return outcomes

    async def _reject(self, transfer_id: str, reason: str) -> tuple[Transfer, TransferState]:
        transfer, before = await super()._reject(transfer_id, reason)
        if before is TransferState.PREPARED:  # rejected by this call
            await self._record("transfer.released", transfer)
        return transfer, before

    async def expire_due(
        self, now: datetime | None = None, *, limit: int = MAX_EXPIRE_BATCH
    ) -> list[str]:
        expired = await super().expire_due(now, limit=limit)
        await self._record_all(
            [("transfer.released", await self.transfer(transfer_id)) for transfer_id in expired]
        )
        return expired

    @asynccontextmanager
    async def recording_after(self) -> AsyncIterator[None]:
        """The records of the transfers made inside this task (and the tasks it starts)
        are written on leaving, in the order made, even when leaving with an error: the
        money moved. (Best effort as always; the next transfer's gate sees a failure.)"""
        deferred = _Deferred()
        token = _deferred.set(deferred)
        try:
            yield
        finally:
            _deferred.reset(token)
            deferred.open = False  # a task started inside that records later: at once
            await self._record_all(deferred.records)

    async def _record(self, event: str, transfer: Transfer) -> None:
        await self._record_all([(event, transfer)])

    async def _record_all(self, records: Iterable[tuple[str, Transfer]]) -> None:
        """Record the events (in few appends), or keep them for ``recording_after``."""
        deferred = _deferred.get()
        if deferred is not None and deferred.open:
            deferred.records.extend(records)
            return
        entries = [(event, t.id, await self._data(t)) for event, t in records]
        await self._forensic.record_many(entries)

    async def _data(self, transfer: Transfer) -> dict[str, Any]:
        memo = dict(transfer.memo or {})
        currency = transfer.amount.currency
        fee_postings = set(memo.get("fee_postings", ()))
        fees = sum(
            posting.amount_minor
            for index, posting in enumerate(transfer.postings)
            if index in fee_postings or posting.credit_account == self._fee_account
        )
        principal = int(memo.get("principal_minor", transfer.amount.minor))
        # The number paid, as the payment's memo keeps it (a memo without it: read).
        receiver = memo.get("receiver_user_number") or await self._user_number(memo.get("receiver"))
        data = {
            "kind": transfer.kind,
            "state": transfer.state.value,
            "side": memo.get("clearing", "local"),
            "amount": str(Money(currency, principal)),
            "total": str(transfer.amount),
            "fees": str(Money(currency, fees)),
            "currency": currency,
            "sender": await self._user_number(memo.get("sender")),
            "receiver": receiver,
            "payerDfsp": memo.get("sender_dfsp"),
            "payeeDfsp": memo.get("payee_dfsp"),
            "reason": transfer.reason,
            "invoice": memo.get("invoice") or memo.get("invoice_id"),
        }
        return {name: value for name, value in data.items() if value is not None}

    async def _user_number(self, customer_id: object) -> str | None:
        """The party's user number: a customer's never changes, so each one found is
        remembered (the least recently used of ``USER_NUMBERS_KEPT`` go)."""
        if self._customers is None or not isinstance(customer_id, str) or not customer_id:
            return None
        number = self._user_numbers.get(customer_id)
        if number is not None:
            self._user_numbers.move_to_end(customer_id)
            return number
        number = await user_number_of(self._customers, customer_id)
        if number is not None:
            self._user_numbers[customer_id] = number
            if len(self._user_numbers) > USER_NUMBERS_KEPT:
                self._user_numbers.popitem(last=False)
        return number


def _decision_event(transfer: Transfer) -> str:
    """The record of a held transfer decided now: executed, or (past its expiry) expired."""
    return "transfer.committed" if transfer.state is TransferState.EXECUTED else "transfer.released"


async def user_number_of(customers: Customers, customer_id: str | None) -> str | None:
    """The customer's user number, or None (no such customer here, or no longer)."""
    if not customer_id:
        return None
    try:
        return str((await customers.customer(customer_id)).user_number)
    except Exception:  # closed meanwhile, or not a customer of this DFSP
        return None


class ForensicCustomers(Customers):
    """The DFSP's customers, logging every change of a customer's tier."""

    def __init__(self, *args: Any, forensic: DfspForensic, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._forensic = forensic

    async def upgrade_tier(self, customer_id: str) -> Tier:
        after, before = await self._upgrade_tier(customer_id)
        if before is not None:  # this call moved the customer up
            data = {"from": before.name, "to": after.name, "by": "automatic"}
            await self._tier_changed(customer_id, data)
        return after

    async def change_tier(
        self, customer_id: str, tier_name: str, *, actor: str, reason: str
    ) -> TierChange:
        change = await super().change_tier(customer_id, tier_name, actor=actor, reason=reason)
        data = {
            "from": change.before.name,
            "to": change.after.name,
            "by": "auditor",
            "auditor": actor,
            "reason": reason,
            "holds": change.holds,
        }
        await self._tier_changed(customer_id, data)
        return change

    async def _tier_changed(self, customer_id: str, data: dict[str, Any]) -> None:
        number = await user_number_of(self, customer_id)
        await self._forensic.record("tier.changed", number or customer_id, data)


class ForensicInvoices(Invoices):
    """The DFSP's pending transactions, logging each one asked, paid or rejected."""

    def __init__(self, *args: Any, forensic: DfspForensic, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._forensic = forensic

    async def ask(self, *args: Any, **kwargs: Any) -> Invoice:
        invoice = await super().ask(*args, **kwargs)
        await self._invoice_record("invoice.created", invoice)
        return invoice

    async def approve(self, *args: Any, **kwargs: Any) -> SendResult:
        result = await super().approve(*args, **kwargs)
        if result.status is TransferState.EXECUTED:
            invoice = await self._invoice(_invoice_id(args, kwargs))
            await self._invoice_record("invoice.paid", invoice)
        return result

    async def reject(self, *args: Any, **kwargs: Any) -> Invoice:
        invoice = await super().reject(*args, **kwargs)
        await self._invoice_record("invoice.rejected", invoice)
        return invoice

    async def _invoice_record(self, event: str, invoice: Invoice) -> None:
        customers = self._customers
        data = {
            "kind": str(invoice.kind),
            "state": str(invoice.state),
            "amount": str(invoice.amount),
            "currency": invoice.amount.currency,
            "payee": await user_number_of(customers, invoice.payee_customer_id),
            "buyer": await user_number_of(customers, invoice.buyer_customer_id),
            "transfer": invoice.approval,
        }
        data = {name: value for name, value in data.items() if value is not None}
        await self._forensic.record(event, invoice.id, data)


def _invoice_id(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """``approve(buyer_customer_id, invoice_id, ...)``'s invoice id."""
    return str(kwargs["invoice_id"] if "invoice_id" in kwargs else args[1])
