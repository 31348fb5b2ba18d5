"""The central ledger's use cases: one database transaction each.

Lock order, the one order of the ledger: the transfer rows first (``FOR UPDATE``, in id
order), then the position accounts of their DFSPs in name order. A prepare has no
transfer row to lock yet: it locks the payer's and payee's accounts (name order), so a
payer's concurrent prepares queue on its account and each sees the others' holds when it
checks the net debit cap. On SQLite, write transactions begin ``IMMEDIATE``
(``create_service_engine``) and so run one at a time.

Every state change writes its notifications in the same transaction; after the
commit it is written to central's forensic chain (``transfer.prepared``,
``transfer.executed``, ``transfer.rejected``, ``transfer.expired``; subject = the
transfer id; best effort: the money has moved, a failure is logged and leaves the chain
unavailable) and then ``wake`` hands the new notifications to the connected sockets of
the DFSPs concerned, so
the record precedes whatever the DFSPs do next. A new prepare is refused with
``ServiceUnavailableError`` (503) while the chain is unavailable. A settlement is
logged as ``settlement.closed`` (subject = its id). Expiry is decided by
this service's clock only: the sweep (``expire_due``) and every access to a prepared
transfer past its ``expires_at``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from central.component import EventLog
from central.errors import (
    AlreadyExistsError,
    ForbiddenError,
    NotFoundError,
    ServiceUnavailableError,
    UnprocessableEntityError,
    ValidationError,
)
from central.ledger.domain import (
    FEE_ACCOUNT,
    Prepare,
    TransferState,
    assert_balanced,
    check_net_debit_cap,
    check_not_expired,
    may_become,
)
from central.ledger.store import (
    LedgerAccountRow,
    LedgerEntryRow,
    LedgerNotificationRow,
    LedgerSettlementRow,
    LedgerTransferRow,
)
from central.ledger.wire import notification_body, request_digest
from central.participants import Status
from central.store import ParticipantRow
from clearing.ilp.conditions import fulfills
from ussdloop import db
from ussdloop.forensic import Entry, ForensicUnavailable
from ussdloop.http import HttpError
from ussdloop.money import Money

MAX_EXPIRE_BATCH: Final = 500
MAX_NOTIFICATIONS: Final = 500
EXPIRED_REASON: Final = "expired"
PAUSED_REASON: Final = "dfsp paused"

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class LedgerNotice:
    """A notification as committed: its DFSP, its number there and its body."""

    dfsp: str
    seq: int
    body: dict[str, Any]


Wake = Callable[[Iterable[LedgerNotice]], None]


@dataclass(frozen=True)
class PositionTotals:
    account: str
    payments_minor: int
    receipts_minor: int

    @property
    def net_minor(self) -> int:
        return self.receipts_minor - self.payments_minor


@dataclass(frozen=True)
class SettlementTotals:
    id: str
    transfers: int
    settled_at: datetime
    nets_minor: list[tuple[str, int]]  # (account, net), summing to zero


@dataclass
class _Change:
    """What a transaction changed: the transfer and the notifications it wrote (their
    DFSPs are woken after commit)."""

    row: LedgerTransferRow
    notices: tuple[LedgerNotice, ...] = ()
    refusal: UnprocessableEntityError | None = None


@dataclass(frozen=True)
class _Verdict:
    """A decision on a locked transfer: move it to ``state`` (None: leave it as it is),
    and refuse the call when ``refusal`` is set (an expired transfer is both)."""

    row: LedgerTransferRow
    state: TransferState | None = None
    reason: str | None = None
    fulfilment: bytes | None = None
    refusal: UnprocessableEntityError | None = None


Decide = Callable[[LedgerTransferRow], _Verdict]


class CentralLedger:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        currency: str,
        wake: Wake = lambda notices: None,
        forensic: EventLog | None = None,  # None: nothing is logged, nothing refused
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._currency = currency
        self._wake = wake
        self._forensic = forensic

    # --- prepare ------------------------------------------------------------------

    async def prepare(self, caller: str, prepare: Prepare) -> tuple[LedgerTransferRow, bool]:
        """Hold the transfer; ``(transfer, created)``. The same request again answers the
        transfer as it is now; another request with the same id is ``AlreadyExistsError``."""
        if caller != prepare.payer:
            raise ForbiddenError("only the debited DFSP may prepare a transfer")
        digest = request_digest(prepare)
        if self._forensic is not None and not self._forensic.available:
            # A retry is answered even so; only a new transfer waits for the chain.
            # (Otherwise the prepare's own transaction finds a retry's twin: no read.)
            existing = await self._stored(prepare.id)
            if existing is not None:
                return await self._retried(existing, digest), False
            await self._require_forensic()
        try:
            change = await self._prepare_opening(prepare, digest)
        except IntegrityError:  # a concurrent twin stored the id first
            existing = await self._stored(prepare.id)
            if existing is None:
                raise
            return await self._retried(existing, digest), False
        await self._after_all([change])
        if change.notices:
            log.info(
                "event=ledger_transfer_prepared transfer_id=%s payer=%s payee=%s",
                prepare.id,
                prepare.payer,
                prepare.payee,
            )
            return change.row, True
        return await self._retried(change.row, digest), False

    async def prepare_many(
        self, caller: str, prepares: Sequence[Prepare]
    ) -> list[tuple[LedgerTransferRow, bool] | HttpError]:
        """``prepare`` of many transfers of one payer (a bulk payment's) in one
        transaction: the accounts locked and the net debit position read once, then each
        checked in turn (expiry, payee, cap); each refusal in its place."""
        if any(prepare.payer != caller for prepare in prepares):
            raise ForbiddenError("only the debited DFSP may prepare a transfer")
        if len({prepare.id for prepare in prepares}) != len(prepares):
            raise ValidationError("a transfer id appears twice")
        digests = [request_digest(prepare) for prepare in prepares]
        try:
            if self._forensic is not None and not self._forensic.available:
                raise _OneByOne  # retries are answered, new transfers wait for the chain
            changes = await self._prepare_batch_once(caller, prepares, digests)
            if changes is None:
                await self._open_accounts([caller, *(p.payee for p in prepares)])
                changes = await self._prepare_batch_once(caller, prepares, digests)
                assert changes is not None, "the accounts were just opened"
        except (_OneByOne, IntegrityError):  # a concurrent twin stored an id first
            return [await self._prepare_or_refusal(caller, prepare) for prepare in prepares]
        await self._after_all(changes)
        return [
            await self._prepared(change, digest)
            for change, digest in zip(changes, digests, strict=True)
        ]

    async def _prepare_or_refusal(
        self, caller: str, prepare: Prepare
    ) -> tuple[LedgerTransferRow, bool] | HttpError:
        try:
            return await self.prepare(caller, prepare)
        except HttpError as refusal:
            return refusal

    async def _prepared(
        self, change: _Change | HttpError, digest: str
    ) -> tuple[LedgerTransferRow, bool] | HttpError:
        """A batch prepare's answer for one transfer, once the batch committed (and
        was logged)."""
        if isinstance(change, HttpError):
            return change
        if change.notices:
            return change.row, True
        try:
            return await self._retried(change.row, digest), False
        except HttpError as refusal:
            return refusal

    async def _prepare_batch_once(
        self, payer: str, prepares: Sequence[Prepare], digests: Sequence[str]
    ) -> list[_Change | HttpError] | None:
        """The prepares in one transaction; None when an account is not open yet."""
        names = {payer, *(prepare.payee for prepare in prepares)}
        async with self._sessions.begin() as session:
            accounts = await _lock_accounts(session, names, missing_ok=True)
            if len(accounts) < len(names):
                return None
            ids = [prepare.id for prepare in prepares]
            query = select(LedgerTransferRow).where(LedgerTransferRow.id.in_(ids))
            twins = {row.id: row for row in await session.scalars(query)}
            now, position = self._clock(), await _net_debit_position(session, payer)
            payer_rows: dict[str, ParticipantRow] = {}  # by payee: read once each
            changes: list[_Change | HttpError] = []
            for prepare, digest in zip(prepares, digests, strict=True):
                if prepare.id in twins:
                    changes.append(_Change(twins[prepare.id]))
                    continue
                try:
                    check_not_expired(prepare.expires_at, now)
                    payer_row = payer_rows.get(prepare.payee)
                    if payer_row is None:
                        payer_row = await _payer_to_active_payee(session, payer, prepare.payee)
                        payer_rows[prepare.payee] = payer_row
                    if payer_row.status != Status.ACTIVE.value:
                        raise ForbiddenError(f"the DFSP {payer_row.name!r} is paused")
                    cap = payer_row.net_debit_cap_minor
                    check_net_debit_cap(position, prepare.debit_minor, cap, self._currency)
                except HttpError as refusal:
                    changes.append(refusal)
                    continue
                position += prepare.debit_minor
                row = _transfer_row(prepare, digest, now)
                session.add(row)
                changes.append(_Change(row, self._notify(session, row, accounts, now)))
            await session.flush()  # the transfers before their entries
            for prepare, change in zip(prepares, changes, strict=True):
                if isinstance(change, _Change) and change.notices:
                    session.add_all(_entry_rows(prepare))
            return changes

    async def _prepare_opening(self, prepare: Prepare, digest: str) -> _Change:
        """Prepare; before a DFSP's first transfer, open its position account (opening
        it on every prepare would cost a transaction each time)."""
        change = await self._prepare_once(prepare, digest)
        if change is None:
            await self._open_accounts([prepare.payer, prepare.payee])
            change = await self._prepare_once(prepare, digest)
            assert change is not None, "the accounts were just opened"
        return change

    async def _prepare_once(self, prepare: Prepare, digest: str) -> _Change | None:
        """The prepare in one transaction; None when an account is not open yet."""
        names = {prepare.payer, prepare.payee}
        async with self._sessions.begin() as session:
            accounts = await _lock_accounts(session, names, missing_ok=True)
            if len(accounts) < len(names):
                return None
            twin = await session.get(LedgerTransferRow, prepare.id)
            if twin is not None:
                return _Change(twin)
            now = self._clock()
            check_not_expired(prepare.expires_at, now)
            payer = await _payer_to_active_payee(session, prepare.payer, prepare.payee)
            if payer.status != Status.ACTIVE.value:
                raise ForbiddenError(f"the DFSP {payer.name!r} is paused")
            position = await _net_debit_position(session, prepare.payer)
            check_net_debit_cap(
                position, prepare.debit_minor, payer.net_debit_cap_minor, self._currency
            )
            row = _transfer_row(prepare, digest, now)
            session.add(row)
            await session.flush()
            session.add_all(_entry_rows(prepare))
            return _Change(row, self._notify(session, row, accounts, now))

    async def _stored(self, transfer_id: str) -> LedgerTransferRow | None:
        async with self._reading() as session:
            return await session.get(LedgerTransferRow, transfer_id)

    async def _retried(self, row: LedgerTransferRow, digest: str) -> LedgerTransferRow:
        if row.request_digest != digest:
            raise AlreadyExistsError(f"the transfer {row.id} exists with other content")
        return await self._current(row)

    # --- decisions ----------------------------------------------------------------

    async def fulfil(
        self, caller: str | None, transfer_id: str, preimage: bytes
    ) -> LedgerTransferRow:
        """Execute when ``preimage`` hashes to the condition before the transfer expires
        (by this ledger's clock); the same fulfilment again answers the transfer."""
        return await self._decide(caller, transfer_id, _fulfilment(preimage))

    async def fulfil_many(
        self, caller: str | None, fulfilments: Sequence[tuple[str, bytes]]
    ) -> list[LedgerTransferRow | HttpError]:
        """``fulfil`` of many transfers (``(id, preimage)``, a payee's batch) in one
        transaction; each refusal in its place, the others go on."""
        if len({transfer_id for transfer_id, _ in fulfilments}) != len(fulfilments):
            raise ValidationError("a transfer id appears twice")
        decisions = [(transfer_id, _fulfilment(preimage)) for transfer_id, preimage in fulfilments]
        return [_answer(change) for change in await self._decide_many(caller, decisions)]

    async def reject(self, caller: str | None, transfer_id: str, reason: str) -> LedgerTransferRow:
        """Reject a prepared transfer (a DFSP of the transfer, or the centre with
        ``caller`` None); rejecting it again answers it as it is."""
        return await self._decide(caller, transfer_id, _rejection(reason))

    async def _decide(
        self, caller: str | None, transfer_id: str, decide: Decide
    ) -> LedgerTransferRow:
        (change,) = await self._decide_many(caller, [(transfer_id, decide)])
        answer = _answer(change)
        if isinstance(answer, HttpError):
            raise answer
        return answer

    async def _decide_many(
        self, caller: str | None, decisions: Sequence[tuple[str, Decide]]
    ) -> list[_Change | HttpError]:
        """Decide the transfers in one transaction, in the ledger's lock order: the
        transfer rows, then the accounts of those that change, in name order. A transfer
        past its time is expired (and the call refused) whatever the decision; one not
        found, or not the caller's, is refused in its place. After the commit, each change
        is logged and its DFSPs woken."""
        async with self._sessions.begin() as session:
            rows = await _locked_transfers(session, [transfer_id for transfer_id, _ in decisions])
            now = self._clock()
            verdicts = [
                _verdict(rows.get(transfer_id), transfer_id, caller, now, decide)
                for transfer_id, decide in decisions
            ]
            moving = [v.row for v in verdicts if isinstance(v, _Verdict) and v.state is not None]
            accounts = await _lock_accounts(session, _dfsps_of(moving))
            changes = [
                verdict
                if isinstance(verdict, HttpError)
                else self._carry_out(session, verdict, accounts, now)
                for verdict in verdicts
            ]
        await self._after_all(changes)
        return changes

    def _carry_out(
        self,
        session: AsyncSession,
        verdict: _Verdict,
        accounts: dict[str, LedgerAccountRow],
        now: datetime,
    ) -> _Change:
        """Move the transfer as decided (its accounts locked) and notify its DFSPs."""
        row = verdict.row
        if verdict.state is None:
            return _Change(row, refusal=verdict.refusal)
        current = TransferState(row.state)
        if not may_become(current, verdict.state):
            raise AssertionError(f"transfer {row.id}: {current} cannot become {verdict.state}")
        if (verdict.state is TransferState.EXECUTED) != (verdict.fulfilment is not None):
            raise AssertionError("a transfer executes with its fulfilment, and only then")
        row.state = verdict.state.value
        if verdict.state is TransferState.EXECUTED:
            row.executed_at = now
            row.fulfilment = verdict.fulfilment
        else:
            row.decided_at = now
            row.reason = verdict.reason
        log.info("event=ledger_transfer_%s transfer_id=%s reason=%s", row.state, row.id, row.reason)
        return _Change(row, self._notify(session, row, accounts, now), verdict.refusal)

    # --- expiry and pause ---------------------------------------------------------

    async def expire_due(self) -> int:
        """Expire the prepared transfers past their time (at most a batch); how many."""
        now = self._clock()
        async with self._reading() as session:
            due = await session.scalars(
                select(LedgerTransferRow.id)
                .where(
                    LedgerTransferRow.state == TransferState.PREPARED.value,
                    LedgerTransferRow.expires_at <= now,
                )
                .order_by(LedgerTransferRow.expires_at)
                .limit(MAX_EXPIRE_BATCH)
            )
            ids = list(due)
        expired = 0
        for transfer_id in ids:
            expired += await self._expire(transfer_id)
        return expired

    async def _expire(self, transfer_id: str) -> int:
        """1 when the transfer was prepared and due, and is now expired; else 0."""
        (change,) = await self._decide_many(None, [(transfer_id, _as_is)])
        return 1 if isinstance(change, _Change) and change.notices else 0

    async def reject_pending_of(self, dfsp: str, reason: str = PAUSED_REASON) -> int:
        """Reject every prepared transfer the DFSP pays or is paid by (it was paused).
        Waits for the DFSP's prepares in flight (its account lock), so none is missed."""
        async with self._sessions.begin() as session:
            await _lock_accounts(session, [dfsp], missing_ok=True)
            pending = await session.scalars(
                select(LedgerTransferRow.id).where(
                    LedgerTransferRow.state == TransferState.PREPARED.value,
                    or_(LedgerTransferRow.payer == dfsp, LedgerTransferRow.payee == dfsp),
                )
            )
            ids = list(pending)
        rejected = 0
        for transfer_id in ids:
            try:
                await self.reject(None, transfer_id, reason)
                rejected += 1
            except UnprocessableEntityError:
                pass  # decided meanwhile
        return rejected

    # --- reading ------------------------------------------------------------------

    async def get(self, caller: str | None, transfer_id: str) -> LedgerTransferRow:
        async with self._reading() as session:
            row = await session.get(LedgerTransferRow, transfer_id)
        if row is None:
            raise NotFoundError(f"no transfer {transfer_id}")
        _check_party(row, caller)
        return await self._current(row)

    async def _current(self, row: LedgerTransferRow) -> LedgerTransferRow:
        """The transfer, expired first if its time is up by this ledger's clock."""
        if row.state == TransferState.PREPARED.value and row.expires_at <= self._clock():
            await self._expire(row.id)
            async with self._reading() as session:
                found = await session.get(LedgerTransferRow, row.id)
            assert found is not None
            return found
        return row

    async def positions(self) -> list[PositionTotals]:
        async with self._reading() as session:
            names = list(
                await session.scalars(select(LedgerAccountRow.name).order_by(LedgerAccountRow.name))
            )
            totals = await _executed_unsettled(session)
        return [totals.get(name, PositionTotals(name, 0, 0)) for name in names]

    async def position(self, dfsp: str) -> PositionTotals:
        async with self._reading() as session:
            if dfsp != FEE_ACCOUNT and await session.get(ParticipantRow, dfsp) is None:
                raise NotFoundError(f"no DFSP named {dfsp!r}")
            totals = await _executed_unsettled(session, dfsp)
        return totals.get(dfsp, PositionTotals(dfsp, 0, 0))

    async def settle(self) -> SettlementTotals:
        """Close the window: every executed, unsettled transfer is settled by it."""
        settlement_id = str(uuid.uuid4())
        async with self._sessions.begin() as session:
            now = self._clock()
            result = await session.execute(
                update(LedgerTransferRow)
                .where(
                    LedgerTransferRow.state == TransferState.EXECUTED.value,
                    LedgerTransferRow.settlement_id.is_(None),
                )
                .values(settlement_id=settlement_id)
                .execution_options(synchronize_session=False)
            )
            count = int(getattr(result, "rowcount", 0) or 0)
            session.add(LedgerSettlementRow(id=settlement_id, transfer_count=count, settled_at=now))
        log.info("event=ledger_settled settlement_id=%s transfers=%d", settlement_id, count)
        totals = await self.settlement(settlement_id)
        nets = {account: self._money(net) for account, net in totals.nets_minor}
        await self._log_all(
            [("settlement.closed", settlement_id, {"transfers": count, "nets": nets})]
        )
        return totals

    async def settlement(self, settlement_id: str) -> SettlementTotals:
        async with self._reading() as session:
            row = await session.get(LedgerSettlementRow, settlement_id)
            if row is None:
                raise NotFoundError(f"no settlement {settlement_id}")
            nets = await session.execute(
                select(LedgerEntryRow.account, func.sum(LedgerEntryRow.amount_minor))
                .join(LedgerTransferRow, LedgerTransferRow.id == LedgerEntryRow.transfer_id)
                .where(LedgerTransferRow.settlement_id == settlement_id)
                .group_by(LedgerEntryRow.account)
                .order_by(LedgerEntryRow.account)
            )
            lines = [(account, int(net)) for account, net in nets]
        assert_balanced(lines)
        return SettlementTotals(row.id, row.transfer_count, row.settled_at, lines)

    async def notifications_after(
        self, dfsp: str, after: int, limit: int = 100
    ) -> list[tuple[int, dict[str, Any]]]:
        """The DFSP's notifications numbered above ``after``, in order (at most 500)."""
        limit = max(1, min(limit, MAX_NOTIFICATIONS))
        async with self._reading() as session:
            rows = await session.scalars(
                select(LedgerNotificationRow)
                .where(LedgerNotificationRow.dfsp == dfsp, LedgerNotificationRow.seq > after)
                .order_by(LedgerNotificationRow.seq)
                .limit(limit)
            )
            return [(row.seq, json.loads(row.body)) for row in rows]

    async def latest_notification(self, dfsp: str) -> int:
        async with self._reading() as session:
            seq = await session.scalar(
                select(LedgerAccountRow.notified_seq).where(LedgerAccountRow.name == dfsp)
            )
        return int(seq or 0)

    # --- helpers ------------------------------------------------------------------

    def _notify(
        self,
        session: AsyncSession,
        row: LedgerTransferRow,
        accounts: dict[str, LedgerAccountRow],
        now: datetime,
    ) -> tuple[LedgerNotice, ...]:
        """Address the transfer's new state to each of its DFSPs (numbered per DFSP under
        its account lock, so the numbers follow the commits)."""
        body = notification_body(row, self._currency)
        text = json.dumps(body)
        notices = []
        for dfsp in sorted({row.payer, row.payee}):
            account = accounts[dfsp]
            account.notified_seq += 1
            notices.append(LedgerNotice(dfsp, account.notified_seq, body))
            session.add(
                LedgerNotificationRow(
                    dfsp=dfsp,
                    seq=account.notified_seq,
                    transfer_id=row.id,
                    state=row.state,
                    body=text,
                    created_at=now,
                )
            )
        return tuple(notices)

    async def _after_all(self, changes: Sequence[_Change | HttpError]) -> None:
        """Log the committed state changes (in few appends), then wake the DFSPs they
        concern with what was written for them."""
        moved = [c for c in changes if isinstance(c, _Change) and c.notices]
        await self._log_all(
            [(f"transfer.{c.row.state}", c.row.id, self._record(c.row)) for c in moved]
        )
        for change in moved:
            self._wake(change.notices)

    def _record(self, row: LedgerTransferRow) -> dict[str, Any]:
        """What the forensic record of a transfer's new state says."""
        return {
            "state": row.state,
            "payer": row.payer,
            "payee": row.payee,
            "amount": self._money(row.amount_minor),
            "fee": self._money(row.fee_minor),
            "reason": row.reason,
        }

    async def _require_forensic(self) -> None:
        """Refuse a new transfer while central's forensic chain is unavailable."""
        assert self._forensic is not None
        if not await self._forensic.check():
            raise ServiceUnavailableError(
                "the central forensic log is unavailable: no transfer is taken until it is back"
            )

    async def _log_all(self, entries: Sequence[Entry]) -> None:
        """Best effort: the state changes are committed; a failure leaves the chain
        unavailable (so the next prepare is refused) and is logged."""
        if self._forensic is None or not entries:
            return
        try:
            await self._forensic.write_many(entries)
        except ForensicUnavailable:
            subjects = ",".join(subject for _, subject, _ in entries)
            log.warning(
                "event=forensic_write_failed records=%d subjects=%s", len(entries), subjects
            )

    def _money(self, minor: int) -> str:
        return str(Money(self._currency, minor))

    async def _open_accounts(self, names: list[str]) -> None:
        """The DFSPs' position accounts, opened on first use (a DFSP must be registered)."""
        async with self._sessions.begin() as session:
            dialect = (await session.connection()).dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            for name in sorted(set(names)):
                if await session.get(ParticipantRow, name) is None:
                    raise UnprocessableEntityError(f"no DFSP named {name!r}")
                await session.execute(
                    insert(LedgerAccountRow)
                    .values(name=name, notified_seq=0, created_at=self._clock())
                    .on_conflict_do_nothing(index_elements=["name"])
                )

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=db.READ_ONLY)
            yield session


class _OneByOne(Exception):
    """A batch of prepares is taken one at a time (see ``CentralLedger.prepare_many``)."""


def _transfer_row(prepare: Prepare, digest: str, now: datetime) -> LedgerTransferRow:
    return LedgerTransferRow(
        id=prepare.id,
        payer=prepare.payer,
        payee=prepare.payee,
        amount_minor=prepare.amount_minor,
        fee_minor=prepare.fee_minor,
        condition=prepare.condition,
        expires_at=prepare.expires_at,
        state=TransferState.PREPARED.value,
        reason=None,
        fulfilment=None,
        memo=json.dumps(prepare.memo),
        debit_memo=None if prepare.debit_memo is None else json.dumps(prepare.debit_memo),
        request_digest=digest,
        prepared_at=now,
        executed_at=None,
        decided_at=None,
        settlement_id=None,
    )


def _entry_rows(prepare: Prepare) -> list[LedgerEntryRow]:
    entries = prepare.entries()
    assert_balanced(entries)
    return [
        LedgerEntryRow(transfer_id=prepare.id, account=account, amount_minor=amount)
        for account, amount in entries
    ]


def _final(row: LedgerTransferRow) -> UnprocessableEntityError:
    return UnprocessableEntityError(f"the transfer is already {row.state}")


def _verdict(
    row: LedgerTransferRow | None,
    transfer_id: str,
    caller: str | None,
    now: datetime,
    decide: Decide,
) -> _Verdict | HttpError:
    """The decision on one transfer of a call: refused when not found or not the
    caller's; expired when its time is up by the ledger's clock; else ``decide``'s."""
    if row is None:
        return NotFoundError(f"no transfer {transfer_id}")
    try:
        _check_party(row, caller)
    except ForbiddenError as refusal:
        return refusal
    if row.state == TransferState.PREPARED.value and row.expires_at <= now:
        expired = UnprocessableEntityError("the transfer expired")
        return _Verdict(row, TransferState.EXPIRED, EXPIRED_REASON, refusal=expired)
    return decide(row)


def _fulfilment(preimage: bytes) -> Decide:
    def decide(row: LedgerTransferRow) -> _Verdict:
        state = TransferState(row.state)
        if state is TransferState.EXECUTED and row.fulfilment == preimage:
            return _Verdict(row)
        if state is not TransferState.PREPARED:
            return _Verdict(row, refusal=_final(row))
        if not fulfills(preimage, row.condition):
            mismatch = "the fulfilment does not match the execution condition"
            return _Verdict(row, refusal=UnprocessableEntityError(mismatch))
        return _Verdict(row, TransferState.EXECUTED, fulfilment=preimage)

    return decide


def _rejection(reason: str) -> Decide:
    def decide(row: LedgerTransferRow) -> _Verdict:
        state = TransferState(row.state)
        if state is TransferState.REJECTED:
            return _Verdict(row)
        if state is not TransferState.PREPARED:
            return _Verdict(row, refusal=_final(row))
        return _Verdict(row, TransferState.REJECTED, reason)

    return decide


def _as_is(row: LedgerTransferRow) -> _Verdict:
    """Leave the transfer as it is (only its expiry, when due, changes it)."""
    return _Verdict(row)


def _answer(change: _Change | HttpError) -> LedgerTransferRow | HttpError:
    """The caller's answer: the transfer, or why the call is refused."""
    if isinstance(change, HttpError):
        return change
    return change.row if change.refusal is None else change.refusal


def _check_party(row: LedgerTransferRow, caller: str | None) -> None:
    """A DFSP sees and decides only its own transfers (None: the operator or the centre)."""
    if caller is not None and caller not in (row.payer, row.payee):
        raise ForbiddenError("a DFSP may only act on its own transfers")


async def _locked_transfers(
    session: AsyncSession, ids: Sequence[str]
) -> dict[str, LedgerTransferRow]:
    """The transfers found, by id, locked for update in id order (so two batches that
    share transfers queue rather than deadlock)."""
    rows = await session.scalars(
        select(LedgerTransferRow)
        .where(LedgerTransferRow.id.in_(ids))
        .order_by(LedgerTransferRow.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {row.id: row for row in rows}


def _dfsps_of(rows: Iterable[LedgerTransferRow]) -> set[str]:
    return {name for row in rows for name in (row.payer, row.payee)}


async def _lock_accounts(
    session: AsyncSession, names: Iterable[str], *, missing_ok: bool = False
) -> dict[str, LedgerAccountRow]:
    """The position accounts, locked for update one by one in name order."""
    locked: dict[str, LedgerAccountRow] = {}
    for name in sorted(set(names)):
        row = await session.scalar(
            select(LedgerAccountRow)
            .where(LedgerAccountRow.name == name)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if row is None:
            if missing_ok:
                continue
            raise UnprocessableEntityError(f"no ledger account {name!r}")
        locked[name] = row
    return locked


async def _payer_to_active_payee(session: AsyncSession, payer: str, payee: str) -> ParticipantRow:
    """The payer DFSP's row, both read in one query; the payee must be active."""
    rows = {
        row.name: row
        for row in await session.scalars(
            select(ParticipantRow)
            .where(ParticipantRow.name.in_({payer, payee}))
            .execution_options(populate_existing=True)
        )
    }
    for name in (payer, payee):
        if name not in rows:
            raise UnprocessableEntityError(f"no DFSP named {name!r}")
    if rows[payee].status != Status.ACTIVE.value:
        raise UnprocessableEntityError(f"the payee DFSP {payee!r} is paused")
    return rows[payer]


async def _net_debit_position(session: AsyncSession, payer: str) -> int:
    """Executed payments less executed receipts (unsettled), plus prepared payments."""
    counted = or_(
        and_(
            LedgerTransferRow.state == TransferState.EXECUTED.value,
            LedgerTransferRow.settlement_id.is_(None),
        ),
        and_(
            LedgerTransferRow.state == TransferState.PREPARED.value,
            LedgerEntryRow.amount_minor < 0,
        ),
    )
    total = await session.scalar(
        select(func.coalesce(func.sum(-LedgerEntryRow.amount_minor), 0))
        .join(LedgerTransferRow, LedgerTransferRow.id == LedgerEntryRow.transfer_id)
        .where(LedgerEntryRow.account == payer, counted)
    )
    return int(total or 0)


async def _executed_unsettled(
    session: AsyncSession, account: str | None = None
) -> dict[str, PositionTotals]:
    amount = LedgerEntryRow.amount_minor
    query = (
        select(
            LedgerEntryRow.account,
            func.coalesce(func.sum(case((amount < 0, -amount), else_=0)), 0),
            func.coalesce(func.sum(case((amount > 0, amount), else_=0)), 0),
        )
        .join(LedgerTransferRow, LedgerTransferRow.id == LedgerEntryRow.transfer_id)
        .where(
            LedgerTransferRow.state == TransferState.EXECUTED.value,
            LedgerTransferRow.settlement_id.is_(None),
        )
        .group_by(LedgerEntryRow.account)
    )
    if account is not None:
        query = query.where(LedgerEntryRow.account == account)
    rows = await session.execute(query)
    return {name: PositionTotals(name, int(paid), int(got)) for name, paid, got in rows}
