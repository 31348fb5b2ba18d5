"""The DFSP's double-entry ledger with two-phase transfers.

``Ledger`` is the money core of every DFSP journey. Each call is one database
transaction; every money-moving call is idempotent on its client-supplied id and safe
under concurrent writers:

- the account rows a transfer touches are locked (``SELECT ... FOR UPDATE``) in id
  order, after the transfer row where there is one; on SQLite, write transactions begin
  ``IMMEDIATE`` (``dfsp.store.create_store_engine``), so writers queue;
- a balance changes in the same transaction as the entries that explain it;
- ``prepare`` holds the debited funds (``available = balance - held``); a decision
  (execute, reject, expire) happens once, and a retry of the same decision returns the
  transfer as it is;
- time is the ledger's injected clock: a transfer is expired when the ledger that holds
  the money says so, whatever the caller's clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from twisted.logger import Logger

from dfsp import store
from dfsp.domain.transfers import (
    AccountConflict,
    AccountKind,
    Entry,
    InvalidRequest,
    LedgerAccount,
    LedgerError,
    Posting,
    Transfer,
    TransferConflict,
    TransferExpired,
    TransferRequest,
    TransferState,
    UnknownAccount,
    UnknownTransfer,
    accounts_of,
    assert_sound,
    check_currency_code,
    check_expiry,
    check_hold,
    check_id,
    credits_by_account,
    debits_by_account,
    decide,
    entry_amounts,
    is_expired,
    limit_minor,
    reason_text,
    total_minor,
)
from dfsp.store import AccountRow, EntryRow, PostingRow, TransferRow
from ussdloop import db
from ussdloop.money import Money

MAX_STATEMENT_ENTRIES = 100
MAX_EXPIRE_BATCH = 500

_log = Logger()
T = TypeVar("T")
Clock = Callable[[], datetime]


class Ledger:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        bind = sessions.kw.get("bind")
        if isinstance(bind, AsyncEngine) and not db.serialises_sqlite_writers(bind):
            raise ValueError("a SQLite ledger needs its engine from dfsp.store.create_store_engine")
        self._sessions = sessions
        self._clock = clock

    # --- accounts -----------------------------------------------------------------

    async def open_account(
        self,
        account_id: str,
        *,
        currency: str,
        kind: AccountKind,
        owner: str,
        name: str = "",
        allow_negative: bool = False,
        balance_limit: Money | None = None,
    ) -> LedgerAccount:
        """Open an account with a zero balance; opening it again with the same
        attributes returns it (a retry), with others raises ``AccountConflict``
        (the balance limit is not compared: ``set_balance_limit`` changes it)."""
        check_id(account_id, "an account id")
        kind = AccountKind(kind)
        limit = limit_minor(balance_limit, check_currency_code(currency))
        if not 0 < len(owner) <= 128 or len(name) > 64:
            raise InvalidRequest("an owner is 1 to 128 characters, a name at most 64")

        async def attempt() -> LedgerAccount:
            async with self._sessions.begin() as session:
                row = await session.get(AccountRow, account_id)
                if row is None:
                    row = AccountRow(
                        id=account_id,
                        owner=owner,
                        name=name,
                        kind=kind.value,
                        currency=currency,
                        allow_negative=allow_negative,
                        balance_minor=0,
                        held_minor=0,
                        incoming_minor=0,
                        balance_limit_minor=limit,
                        created_at=self._now(),
                    )
                    session.add(row)
                    await session.flush()
                    _log.info("ledger_account_opened account_id={account_id}", account_id=row.id)
                else:
                    stored = (row.owner, row.name, row.kind, row.currency, row.allow_negative)
                    if stored != (owner, name, kind, currency, allow_negative):
                        raise AccountConflict(account_id)
                return store.account_value(row)

        return await _again_after_duplicate(attempt)

    async def set_balance_limit(self, account_id: str, limit: Money | None) -> LedgerAccount:
        """The most the account may hold (its balance plus prepared credits); ``None``
        for no limit. A lower limit refuses new credits, it takes nothing away."""
        async with self._sessions.begin() as session:
            row = (await store.lock_accounts(session, [account_id]))[account_id]
            row.balance_limit_minor = limit_minor(limit, row.currency)
            await session.flush()
            return store.account_value(row)

    async def account(self, account_id: str) -> LedgerAccount:
        async with self.reading() as session:
            return store.account_value(await _account_row(session, account_id))

    async def accounts(self) -> list[LedgerAccount]:
        """Every account of the ledger, oldest first (reports: the books of the DFSP)."""
        query = select(store.AccountRow).order_by(store.AccountRow.created_at, store.AccountRow.id)
        async with self.reading() as session:
            return [store.account_value(row) for row in await session.scalars(query)]

    async def accounts_among(self, account_ids: Iterable[str]) -> dict[str, LedgerAccount]:
        """The accounts among ``account_ids`` that exist, by id (one read for many)."""
        query = select(store.AccountRow).where(store.AccountRow.id.in_(sorted(set(account_ids))))
        async with self.reading() as session:
            return {row.id: store.account_value(row) for row in await session.scalars(query)}

    async def balance(self, account_id: str) -> tuple[Money, Money]:
        """``(balance, available)``: available is the balance less the held funds."""
        account = await self.account(account_id)
        return account.balance, account.available

    async def statement(self, account_id: str, limit: int = 10) -> list[Entry]:
        """The account's latest entries, newest first (at most 100)."""
        limit = max(1, min(limit, MAX_STATEMENT_ENTRIES))
        async with self.reading() as session:
            account = await _account_row(session, account_id)
            rows = await store.latest_entries(session, account_id, limit)
            return [store.entry_value(row, account.currency) for row in rows]

    async def total_balance(self, currency: str) -> Money:
        """The sum of every account's balance in ``currency``: zero, always."""
        async with self.reading() as session:
            return Money(currency, await store.sum_of_balances(session, currency))

    async def audit(self) -> list[str]:
        """Disagreements between balances, holds, entries and transfers (none expected)."""
        async with self.reading() as session:
            return await store.audit(session)

    # --- transfers ----------------------------------------------------------------

    async def transfer(self, transfer_id: str) -> Transfer:
        async with self.reading() as session:
            row = await store.find_transfer(session, transfer_id)
            if row is None:
                raise UnknownTransfer(transfer_id)
            return store.transfer_value(row)

    async def states(self, transfer_ids: Iterable[str]) -> dict[str, TransferState]:
        """The state of each of these transfers that exists, by id (one read for many)."""
        query = select(TransferRow.id, TransferRow.state).where(
            TransferRow.id.in_(sorted(set(transfer_ids)))
        )
        async with self.reading() as session:
            return {tid: TransferState(state) for tid, state in await session.execute(query)}

    async def prepare(
        self,
        transfer_id: str,
        postings: Iterable[Posting],
        *,
        kind: str,
        expires_at: datetime,
        memo: Mapping[str, Any] | None = None,
    ) -> Transfer:
        """Hold the debited funds until the transfer is decided or ``expires_at``.

        The same id with the same postings and kind returns the existing transfer, in
        whatever state it is now; with other content it raises ``TransferConflict``.
        """
        transfer, _ = await self._prepare(
            transfer_id, postings, kind=kind, expires_at=expires_at, memo=memo
        )
        return transfer

    async def _prepare(
        self,
        transfer_id: str,
        postings: Iterable[Posting],
        *,
        kind: str,
        expires_at: datetime,
        memo: Mapping[str, Any] | None = None,
    ) -> tuple[Transfer, TransferState | None]:
        """``prepare``, and the transfer's state before it (None: held by this call), read
        in its transaction, so the forensic ledger needs no read of its own."""
        request = TransferRequest.checked(transfer_id, postings, kind, memo)

        async def attempt() -> tuple[Transfer, TransferState | None]:
            async with self._sessions.begin() as session:
                row = await _existing(session, request)
                if row is None:
                    accounts = await store.lock_accounts(session, accounts_of(request.postings))
                    row = await _existing(session, request)  # a concurrent twin committed
                    if row is None:
                        now = self._now()
                        check_expiry(expires_at, now)
                        held = _hold(session, request, accounts, expires_at, now)
                        return store.transfer_value(held), None
                transfer = store.transfer_value(row)
                return transfer, transfer.state  # prepare leaves a stored transfer as it is

        return await _again_after_duplicate(attempt)

    async def execute(self, transfer_id: str) -> Transfer:
        """Apply a prepared transfer: balances move, holds are released, entries are
        written. At or after its expiry it is marked expired and ``TransferExpired``
        raised; a second execute returns it; execute after reject is refused."""
        transfer, before = await self._execute(transfer_id)
        decide(transfer_id, before, TransferState.EXECUTED)  # refuses one rejected or expired
        return _executed(transfer, before)

    async def execute_if_prepared(self, transfer_id: str) -> Transfer:
        """``execute`` of a prepared transfer; one decided already, whatever the decision,
        is returned as it is (the clearing commits what the centre executed, once)."""
        return _executed(*await self._execute(transfer_id))

    async def execute_many_if_prepared(
        self, transfer_ids: Sequence[str]
    ) -> list[Transfer | LedgerError]:
        """``execute_if_prepared`` of many transfers in one database transaction (the
        clearing commits a batch the centre executed): each in its id's place, one this
        call expired as ``TransferExpired``, an unknown id as ``UnknownTransfer``."""
        outcomes = await self._execute_many(transfer_ids)
        return [_executed_or_expired(outcome, before) for outcome, before in outcomes]

    async def _execute(self, transfer_id: str) -> tuple[Transfer, TransferState]:
        """``_execute_many`` of one transfer: ``UnknownTransfer`` raised."""
        [(outcome, before)] = await self._execute_many([transfer_id])
        if isinstance(outcome, LedgerError):
            raise outcome
        assert before is not None, "a stored transfer has a state"
        return outcome, before

    async def _execute_many(
        self, transfer_ids: Sequence[str]
    ) -> list[tuple[Transfer | LedgerError, TransferState | None]]:
        """Execute (or, past its expiry, expire) each prepared transfer in one
        transaction, leaving one decided already as it is; each transfer, and its state
        before, read under its lock (what the forensic ledger records depends on it), or
        ``UnknownTransfer`` (state None) in its place. Transfers, then accounts, are
        locked once."""
        ids = _distinct(transfer_ids)
        async with self._sessions.begin() as session:
            found = await store.find_transfers(session, ids, lock=True)
            before = {tid: TransferState(row.state) for tid, row in found.items()}
            prepared = [row for row in found.values() if before[row.id] is TransferState.PREPARED]
            if prepared:
                accounts = await _lock_accounts_of(session, prepared)
                entries: list[dict[str, Any]] = []
                now = self._now()
                for row in prepared:
                    _apply_execution(row, accounts, now, entries)
                await _insert_entries(session, entries)
            return [
                (store.transfer_value(found[tid]), before[tid])
                if tid in found
                else (UnknownTransfer(tid), None)
                for tid in ids
            ]

    async def transfer_now(
        self,
        transfer_id: str,
        postings: Iterable[Posting],
        *,
        kind: str,
        memo: Mapping[str, Any] | None = None,
    ) -> Transfer:
        """Prepare and execute in one transaction (a payment inside this DFSP). A retry
        returns the executed transfer; an existing prepared twin is executed."""
        return _executed(*await self._transfer_now(transfer_id, postings, kind=kind, memo=memo))

    async def _transfer_now(
        self,
        transfer_id: str,
        postings: Iterable[Posting],
        *,
        kind: str,
        memo: Mapping[str, Any] | None = None,
    ) -> tuple[Transfer, TransferState | None]:
        """``transfer_now`` without raising ``TransferExpired`` for a prepared twin this
        call expired; the transfer, and its state before (None: made by this call)."""
        request = TransferRequest.checked(transfer_id, postings, kind, memo)

        async def attempt() -> tuple[Transfer, TransferState | None]:
            async with self._sessions.begin() as session:
                row = await _existing(session, request, lock=True)  # transfer, then accounts
                accounts = await store.lock_accounts(session, accounts_of(request.postings))
                before = None if row is None else TransferState(row.state)
                if row is None:
                    if await _existing(session, request) is not None:
                        raise _TwinCommitted  # start again, locking the twin first
                    row = _hold(session, request, accounts, None, self._now())
                await self._execute_locked(session, row, accounts)
                return store.transfer_value(row), before

        return await _again_after_duplicate(attempt)

    async def transfer_many(
        self, requests: Sequence[TransferRequest]
    ) -> list[Transfer | LedgerError]:
        """``transfer_now`` of many transfers in one database transaction (a bulk batch's
        payments inside this DFSP), each idempotent on its id as ``transfer_now`` is.
        One refused (its funds, a conflicting twin, expired) has its error in its place
        and moves nothing; the others go on. Transfers, then accounts, are locked once."""
        outcomes = await self._many(requests, expires_at=None, execute=True)
        return [_executed_or_expired(outcome, before) for outcome, before in outcomes]

    async def prepare_many(
        self, requests: Sequence[TransferRequest], *, expires_at: datetime
    ) -> list[Transfer | LedgerError]:
        """``prepare`` of many transfers, all until ``expires_at``, in one database
        transaction (a bulk batch's payments to other DFSPs), each idempotent on its id
        as ``prepare`` is; one refused has its error in its place, the others go on."""
        check_expiry(expires_at, self._now())
        outcomes = await self._many(requests, expires_at=expires_at, execute=False)
        return [outcome for outcome, _ in outcomes]

    async def _many(
        self, requests: Sequence[TransferRequest], *, expires_at: datetime | None, execute: bool
    ) -> list[tuple[Transfer | LedgerError, TransferState | None]]:
        """Hold (and, with ``execute``, execute: past its expiry, expire) each request in
        one database transaction, after locking the stored transfers, then every account,
        once; each one's transfer or refusal (made before any change to it), with the
        state it had before (None: held by this call), in its request's place."""
        ids = _distinct([request.id for request in requests])

        async def attempt() -> list[tuple[Transfer | LedgerError, TransferState | None]]:
            async with self._sessions.begin() as session:
                found = await store.find_transfers(session, ids, lock=True)
                accounts = await store.lock_accounts(
                    session, [a for request in requests for a in accounts_of(request.postings)]
                )
                if await store.find_transfers(session, [i for i in ids if i not in found]):
                    raise _TwinCommitted  # start again, locking the twins first
                now = self._now()
                entries: list[dict[str, Any]] = []
                outcomes: list[tuple[TransferRow | LedgerError, TransferState | None]] = []
                for request in requests:
                    row = found.get(request.id)
                    before = None if row is None else TransferState(row.state)
                    try:
                        if row is not None and not request.same_as(
                            row.kind, store.postings_of(row)
                        ):
                            raise TransferConflict(request.id)
                        if row is None:
                            row = _hold(session, request, accounts, expires_at, now)
                        if execute:
                            _apply_execution(row, accounts, now, entries)
                        outcomes.append((row, before))
                    except LedgerError as refusal:
                        outcomes.append((refusal, before))
                await _insert_entries(session, entries)
                return [
                    (store.transfer_value(o) if isinstance(o, TransferRow) else o, before)
                    for o, before in outcomes
                ]

        # Each attempt that meets a new twin finds one more id stored the next time.
        return await _again_after_duplicate(attempt, retries=len(ids))

    async def reject(self, transfer_id: str, reason: str) -> Transfer:
        """Release the held funds, recording why; a second reject returns the transfer,
        reject after execute (or expiry) is refused with ``InvalidTransition``."""
        transfer, before = await self._reject(transfer_id, reason)
        decide(transfer_id, before, TransferState.REJECTED)  # refuses one executed or expired
        return transfer

    async def reject_if_prepared(self, transfer_id: str, reason: str) -> Transfer:
        """``reject`` of a prepared transfer; one decided already, whatever the decision,
        is returned as it is (the clearing releases what the centre did not execute)."""
        transfer, _ = await self._reject(transfer_id, reason)
        return transfer

    async def _reject(self, transfer_id: str, reason: str) -> tuple[Transfer, TransferState]:
        """Reject a prepared transfer in one transaction, leaving one decided already as
        it is; the transfer, and its state before, read under its lock."""
        async with self._sessions.begin() as session:
            row = await _locked_transfer(session, transfer_id)
            before = TransferState(row.state)
            if before is TransferState.PREPARED:
                accounts = await _lock_accounts_of(session, [row])
                _release(row, accounts)
                _decided(row, TransferState.REJECTED, self._now(), reason_text(reason))
            return store.transfer_value(row), before

    async def expire_due(
        self, now: datetime | None = None, *, limit: int = MAX_EXPIRE_BATCH
    ) -> list[str]:
        """Expire prepared transfers whose time is up (by the ledger's clock unless
        ``now`` is given) and release their holds; the ids expired, at most ``limit``
        (call again while the list is full)."""
        now = self._now() if now is None else now
        if now.tzinfo is None:
            raise ValueError("expire_due needs an aware datetime")
        limit = max(1, min(limit, MAX_EXPIRE_BATCH))
        async with self._sessions.begin() as session:
            rows = await store.lock_due_transfers(session, now, limit)
            if rows:
                accounts = await _lock_accounts_of(session, rows)
                for row in rows:
                    _release(row, accounts)
                    _decided(row, TransferState.EXPIRED, now, "expired")
        return [row.id for row in rows]

    # --- helpers ------------------------------------------------------------------

    async def _execute_locked(
        self,
        session: AsyncSession,
        row: TransferRow,
        accounts: dict[str, AccountRow] | None = None,
    ) -> None:
        """Execute (or, past its expiry, expire) a locked transfer; one decided already is
        left as it is, or refused (rejected, expired) as ``decide`` says."""
        if TransferState(row.state) is not TransferState.PREPARED:
            _apply_execution(row, {}, self._now(), [])
            return
        if accounts is None:
            accounts = await _lock_accounts_of(session, [row])
        entries: list[dict[str, Any]] = []
        _apply_execution(row, accounts, self._now(), entries)
        await _insert_entries(session, entries)

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the ledger's clock must give aware datetimes")
        return now

    @asynccontextmanager
    async def recording_after(self) -> AsyncIterator[None]:
        """What the ledger logs of the transfers made inside is logged on leaving (a
        ledger that logs nothing: nothing to do). ``Payments`` wraps its sender's lock
        in it, so the lock is not held while the log is written."""
        yield

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only session (SQLite: a deferred transaction that queues behind no one)."""
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=store.READ_ONLY)
            yield session


async def _existing(
    session: AsyncSession, request: TransferRequest, *, lock: bool = False
) -> TransferRow | None:
    """The transfer already stored under the request's id, if it is the same one."""
    row = await store.find_transfer(session, request.id, lock=lock)
    if row is not None and not request.same_as(row.kind, store.postings_of(row)):
        raise TransferConflict(request.id)
    return row


def _executed(transfer: Transfer, before: TransferState | None) -> Transfer:
    """The transfer an execution returned, or ``TransferExpired`` if that execution
    found it prepared and expired it (the expiry stands: it was committed)."""
    if before is TransferState.PREPARED and transfer.state is TransferState.EXPIRED:
        raise TransferExpired(transfer.id)
    return transfer


def _executed_or_expired(
    outcome: Transfer | LedgerError, before: TransferState | None
) -> Transfer | LedgerError:
    """``_executed`` of one of many: its ``TransferExpired`` in its place."""
    if isinstance(outcome, LedgerError):
        return outcome
    try:
        return _executed(outcome, before)
    except TransferExpired as expired:
        return expired


def _apply_execution(
    row: TransferRow, accounts: dict[str, AccountRow], now: datetime, entries: list[dict[str, Any]]
) -> bool:
    """Execute (or, past its expiry, expire) a transfer whose accounts are locked, its
    entries added to ``entries`` for the caller to insert; False if expired. A transfer
    decided already is left as it is."""
    state = TransferState(row.state)
    expiring = state is TransferState.PREPARED and is_expired(row.expires_at, now)
    target = TransferState.EXPIRED if expiring else TransferState.EXECUTED
    if not decide(row.id, state, target):
        return True
    _release(row, accounts)
    if expiring:
        _decided(row, TransferState.EXPIRED, now, "expired")
        return False
    for account_id, amount in entry_amounts(store.postings_of(row)):
        account = accounts[account_id]
        account.balance_minor += amount
        entries.append(
            {
                "transfer_id": row.id,
                "account_id": account_id,
                "amount_minor": amount,
                "balance_after_minor": account.balance_minor,
                "kind": row.kind,
                "created_at": now,
            }
        )
    assert_sound(accounts.values())
    _decided(row, TransferState.EXECUTED, now, None)
    return True


def _hold(
    session: AsyncSession,
    request: TransferRequest,
    accounts: dict[str, AccountRow],
    expires_at: datetime | None,
    now: datetime,
) -> TransferRow:
    """Check and hold the funds (accounts already locked); the new prepared transfer."""
    currency = check_hold(request.postings, accounts)
    for account_id, amount in debits_by_account(request.postings).items():
        accounts[account_id].held_minor += amount
    for account_id, amount in credits_by_account(request.postings).items():
        accounts[account_id].incoming_minor += amount
    assert_sound(accounts.values())
    row = TransferRow(
        id=request.id,
        state=TransferState.PREPARED.value,
        kind=request.kind,
        currency=currency,
        amount_minor=total_minor(request.postings),
        created_at=now,
        expires_at=expires_at,
        memo=request.memo,
        postings=[
            PostingRow(
                position=position,
                debit_account=posting.debit_account,
                credit_account=posting.credit_account,
                amount_minor=posting.amount_minor,
            )
            for position, posting in enumerate(request.postings)
        ],
    )
    session.add(row)
    _log.info(
        "ledger_transfer_prepared transfer_id={transfer_id} kind={kind} amount={amount}",
        transfer_id=row.id,
        kind=row.kind,
        amount=f"{Money(currency, row.amount_minor)} {currency}",
    )
    return row


def _release(row: TransferRow, accounts: dict[str, AccountRow]) -> None:
    """Take a prepared transfer's holds and pending credits off its accounts."""
    postings = store.postings_of(row)
    for account_id, amount in debits_by_account(postings).items():
        accounts[account_id].held_minor -= amount
    for account_id, amount in credits_by_account(postings).items():
        accounts[account_id].incoming_minor -= amount
    assert_sound(accounts[a] for a in accounts_of(postings))


def _decided(row: TransferRow, state: TransferState, now: datetime, reason: str | None) -> None:
    assert decide(row.id, TransferState(row.state), state), "a transfer is decided once"
    row.state = state.value
    row.decided_at = now
    row.reason = reason
    _log.info(
        "ledger_transfer_decided transfer_id={transfer_id} state={state} reason={reason}",
        state=state.value,
        transfer_id=row.id,
        reason=reason,
    )


async def _locked_transfer(session: AsyncSession, transfer_id: str) -> TransferRow:
    row = await store.find_transfer(session, transfer_id, lock=True)
    if row is None:
        raise UnknownTransfer(transfer_id)
    return row


def _distinct(transfer_ids: Sequence[str]) -> list[str]:
    """The ids of one call on many transfers, each once (``InvalidRequest`` otherwise)."""
    ids = list(transfer_ids)
    if len(set(ids)) != len(ids):
        raise InvalidRequest("a transfer id appears twice among the requests")
    return ids


async def _lock_accounts_of(
    session: AsyncSession, rows: Sequence[TransferRow]
) -> dict[str, AccountRow]:
    """Every account the transfers post to, locked once (in id order)."""
    return await store.lock_accounts(
        session, accounts_of([p for row in rows for p in store.postings_of(row)])
    )


async def _insert_entries(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    """One statement for all the entries (after the flush of the rest)."""
    if entries:
        await session.execute(insert(EntryRow), entries)


async def _account_row(session: AsyncSession, account_id: str) -> AccountRow:
    row = await session.get(AccountRow, account_id)
    if row is None:
        raise UnknownAccount(account_id)
    return row


class _TwinCommitted(Exception):
    """A concurrent request with the same id committed while this one waited for locks."""


async def _again_after_duplicate(attempt: Callable[[], Awaitable[T]], *, retries: int = 1) -> T:
    """Run ``attempt``; while a concurrent twin stored the same id first, run it again,
    at most ``retries`` times (then it finds the twin and answers as a retry would)."""
    for _ in range(retries):
        try:
            return await attempt()
        except (IntegrityError, _TwinCommitted):
            continue
    return await attempt()
