"""The bulk runner: one asyncio task in the DFSP process that pays approved batches'
rows through ``Payments`` (``dfsp.bulk`` keeps the batches).

- Pacing: at most ``BulkSettings.rows_per_second`` payments a second (0: no throttle),
  timed on the injected clock and ``sleep``, so tests never wait.
- Chunks: due rows are taken ``CHUNK_ROWS`` at a time (a second's worth when
  throttled). A chunk's first attempts to customers of this DFSP are paid together by
  ``Payments.send_bulk`` (one read of the payees, one limit check under the payer's
  lock, one ledger transaction) and saved in one transaction; that is what makes a
  batch fast. The other rows (payees at other DFSPs, invited payees, attempts whose
  transfer exists already) are then handled one by one.
- Concurrency: at most ``BulkSettings.rows_in_flight`` rows are handled one by one at
  once (a payment to another DFSP mostly waits for the centre's outcome, outside the
  payer's lock: ``Payments``); each such row is handled by one task, and the due rows
  are read again only once every row of the round is back, so no row is in two tasks.
- Idempotence: each attempt of a row pays under ``dfsp.domain.bulk.transfer_id(batch,
  sequence, attempt)``. Before paying, the payer's ledger is asked about the current
  attempt's transfer: executed -> the row is paid (a restart after the payment but
  before the row was saved); prepared -> in flight, looked at again shortly; rejected
  or expired -> no money moved, the next attempt gets a new id. So a row is never paid
  twice, whatever the crash.
- Temporary failures (the centre or the payee's DFSP unreachable, funds, limits, a
  refused or expired transfer) make a row ``waiting``, tried again no sooner than
  ``retry_interval`` later, until the batch's end; then it is ``failed`` for good.
  Refusals that will not change (ineligible, unknown payee) fail it at once.
- An ``invited`` row (an MSISDN with no customer) gets one SMS (``bulk_invite``), and
  is looked at every ``retry_interval``: once someone registers that MSISDN and matches
  the row, it is paid; at the end it is ``failed`` (``no_account``).
- A batch with no open row left is ``done``; a cancelled one has its open rows closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from twisted.logger import Logger

from dfsp import bulk_store as db
from dfsp.bulk import Bulk, BulkSettings
from dfsp.customers import Customers
from dfsp.domain.bulk import (
    BatchState,
    ParsedRow,
    Reason,
    RetryPolicy,
    RowState,
    check_batch_move,
    check_row_move,
    person_mismatch,
    reason_text,
    transfer_id,
)
from dfsp.domain.customers import Customer, CustomerError
from dfsp.domain.fees import TransactionType
from dfsp.domain.notices import Notice, NoticeSink, to_msisdn
from dfsp.domain.payments import (
    FraudViolation,
    InvalidAmount,
    PaymentOrder,
    SendNotAllowed,
    SendResult,
    UnknownReceiver,
)
from dfsp.domain.transfers import CurrencyMismatch, InvalidRequest, TransferState, UnknownTransfer
from dfsp.interledger import TransferNotAllowed
from dfsp.ledger import Ledger
from dfsp.payments import Payments
from ussdloop.money import Money

IN_FLIGHT_RECHECK: Final = timedelta(seconds=1)  # a prepared transfer is looked at again
CHUNK_ROWS: Final = 50  # rows paid together (``Payments.send_bulk``): one ledger transaction
FINAL_ERRORS: Final = {
    TransferNotAllowed: Reason.INELIGIBLE,
    FraudViolation: Reason.INELIGIBLE,  # blacklisted since the upload
    UnknownReceiver: Reason.UNKNOWN_PAYEE,
    SendNotAllowed: Reason.NOT_PAYABLE,
    InvalidAmount: Reason.NOT_PAYABLE,
    CurrencyMismatch: Reason.NOT_PAYABLE,
    InvalidRequest: Reason.NOT_PAYABLE,
    CustomerError: Reason.NOT_PAYABLE,
}
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
_log = Logger()


class BulkRunner:
    def __init__(
        self,
        bulk: Bulk,
        sessions: async_sessionmaker[AsyncSession],
        customers: Customers,
        payments: Payments,
        ledger: Ledger,
        *,
        notices: NoticeSink | None,
        short_code: str,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._bulk = bulk
        self._sessions = sessions
        self._customers = customers
        self._payments = payments
        self._ledger = ledger
        self._notices = notices
        self._short_code = short_code
        self._clock = clock
        self._sleep = sleep
        self._next_slot: datetime | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rows_handled = 0  # payments attempted and rows looked at, since start
        self.rows_in_flight = 0  # rows being handled now
        self.most_in_flight = 0  # the most rows handled at once, since start
        bulk.on_approved = self._wake.set

    @property
    def bulk(self) -> Bulk:
        return self._bulk

    @property
    def settings(self) -> BulkSettings:
        return self._bulk.settings

    # --- life cycle --------------------------------------------------------------

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("BulkRunner already started")
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                wait = await self.step()
            except Exception as error:  # the database: log, wait, go on
                _log.error("bulk_runner_failed error={error!r}", error=error)
                wait = self.settings.idle_wake
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    # --- one round -----------------------------------------------------------------

    async def step(self) -> float:
        """Handle every row due now, in every batch to run; the seconds until the next
        row is due (``idle_wake`` at most)."""
        wait = self.settings.idle_wake
        async with self._sessions() as session:
            batches = await db.batches_in(session, [BatchState.APPROVED, BatchState.RUNNING])
            ids = [(b.id, BatchState(b.state)) for b in batches]
            cancelled = await db.cancelled_with_open_rows(session)
        for batch_id in cancelled:
            await self._close_cancelled(batch_id)
        for batch_id, state in ids:
            if state is BatchState.APPROVED:
                await self._move(batch_id, BatchState.RUNNING)
            due = await self._run_batch(batch_id)
            if due is not None:
                wait = min(wait, max(0.0, (due - self._clock()).total_seconds()))
        return wait

    async def _run_batch(self, batch_id: str) -> datetime | None:
        """Pay what is due; when the next row is due (None: the batch is done or stopped)."""
        while True:
            async with self._sessions() as session:
                batch = await db.batch(session, batch_id)
                assert batch is not None
                if batch.state != BatchState.RUNNING:
                    return None
                rows = await db.due_rows(session, batch_id, self._clock())
                session.expunge_all()
            if not rows:
                break
            maker = await self._customers.customer(batch.maker_id)
            await self._pay_rows(batch, maker, rows)
        async with self._sessions() as session:
            count, earliest = await db.next_due(session, batch_id)
        if count == 0:
            await self._move(batch_id, BatchState.DONE)
            return None
        return earliest

    async def _pay_rows(
        self, batch: db.BatchRow, maker: Customer, rows: Sequence[db.PaymentRow]
    ) -> None:
        """Handle ``rows`` in order, in paced chunks: first a chunk's payments to
        customers here, all at once (``Payments.send_bulk``), then its other rows one by
        one, at most ``rows_in_flight`` at once; once all are back, the first error any
        raised (the database: the runner logs it)."""
        size = self._chunk_rows()
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            await self._pace(len(chunk))
            await self._pay_one_by_one(batch, maker, await self._pay_chunk(batch, maker, chunk))

    def _chunk_rows(self) -> int:
        """Rows paid together: at most a second's worth when throttled."""
        rate = self.settings.rows_per_second
        return CHUNK_ROWS if rate <= 0 else max(1, min(CHUNK_ROWS, int(rate)))

    async def _pace(self, count: int) -> None:
        """Wait until the last of ``count`` rows may go, at ``rows_per_second``."""
        rate = self.settings.rows_per_second
        if rate <= 0:
            return
        now = self._clock()
        first = self._next_slot if self._next_slot is not None and self._next_slot > now else now
        last = first + timedelta(seconds=(count - 1) / rate)
        if last > now:
            await self._sleep((last - now).total_seconds())
        self._next_slot = last + timedelta(seconds=1 / rate)

    async def _pay_chunk(
        self, batch: db.BatchRow, maker: Customer, rows: Sequence[db.PaymentRow]
    ) -> list[db.PaymentRow]:
        """Pay the rows that are first attempts to customers here in one go and save
        them together; the rows left to ``_handle`` one by one (invited payees, payees
        at other DFSPs, attempts whose transfer exists: a restart or a retry)."""
        fresh = [row for row in rows if RowState(row.state) is not RowState.INVITED]
        made = await self._ledger.states(self._transfer_id(batch, row) for row in fresh)
        fresh = [row for row in fresh if self._transfer_id(batch, row) not in made]
        if fresh:
            await self._send_chunk(batch, maker, fresh)
        return [row for row in rows if row not in fresh]

    async def _send_chunk(
        self, batch: db.BatchRow, maker: Customer, rows: Sequence[db.PaymentRow]
    ) -> None:
        orders = [
            PaymentOrder(
                self._transfer_id(batch, row),
                row.user_number or "",
                Money(batch.currency, row.amount_minor or 0),
            )
            for row in rows
        ]
        try:
            outcomes: Sequence[SendResult | Exception] = await self._payments.send_bulk(
                maker.id, batch.account_id, orders
            )
        except Exception as error:  # every row's: each is failed or retried for it
            outcomes = [error] * len(rows)
        changes = []
        for row, order, outcome in zip(rows, orders, outcomes, strict=True):
            if not isinstance(outcome, SendResult):
                await self._failed_attempt(batch, row, order.transfer_id, outcome)
            elif outcome.status is TransferState.EXECUTED:
                assert outcome.payer_fees is not None
                row.transfer_id, row.fee_minor = outcome.transfer_id, outcome.payer_fees.minor
                row.paid_at = self._clock()
                changes.append(_Change(row, RowState.PAID, None))
            elif outcome.status is TransferState.PREPARED:  # the centre has not decided yet
                recheck = self._clock() + IN_FLIGHT_RECHECK
                changes.append(_Change(row, RowState.WAITING, row.reason, recheck))
            else:
                await self._retry(batch, row, f"the transfer was {outcome.status}")
        await self._save_all(batch.id, changes)
        self.rows_handled += len(rows)

    async def _pay_one_by_one(
        self, batch: db.BatchRow, maker: Customer, rows: Sequence[db.PaymentRow]
    ) -> None:
        """``_handle`` each row, at most ``rows_in_flight`` at once."""
        slots = asyncio.Semaphore(self.settings.rows_in_flight)
        tasks: list[asyncio.Task[None]] = []

        async def one(row: db.PaymentRow) -> None:
            self.rows_in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.rows_in_flight)
            try:
                await self._handle(batch, maker, row)
                self.rows_handled += 1
            finally:
                self.rows_in_flight -= 1
                slots.release()

        try:
            for row in rows:
                await slots.acquire()
                tasks.append(asyncio.ensure_future(one(row)))
        finally:  # even when stopped: the rows in flight finish (never half-saved)
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            raise errors[0]

    @staticmethod
    def _transfer_id(batch: db.BatchRow, row: db.PaymentRow) -> str:
        """The transfer of the row's current attempt."""
        assert row.sequence is not None
        return transfer_id(batch.id, row.sequence, row.attempt)

    # --- one row -------------------------------------------------------------------

    async def _handle(self, batch: db.BatchRow, maker: Customer, row: db.PaymentRow) -> None:
        now = self._clock()
        if RowState(row.state) is RowState.INVITED and not await self._onboarded(
            batch, maker, row, now
        ):
            return
        assert row.sequence is not None and row.amount_minor is not None and row.user_number
        tid = transfer_id(batch.id, row.sequence, row.attempt)
        done = await self._ledger_state(tid)
        if done is TransferState.EXECUTED:
            await self._paid(row, tid, await self._fee_of(tid, row.amount_minor))
            return
        if done is TransferState.PREPARED:
            await self._save(row, RowState.WAITING, row.reason, next_at=now + IN_FLIGHT_RECHECK)
            return
        if done is not None:  # rejected or expired: no money moved, the next attempt
            row.attempt += 1
            tid = transfer_id(batch.id, row.sequence, row.attempt)
        amount = Money(batch.currency, row.amount_minor)
        try:
            quote = await self._payments.quote_send(
                maker.id, batch.account_id, row.user_number, amount, kind=TransactionType.BULK
            )
            result = await self._payments.send_authorised(quote, tid)
        except Exception as error:
            await self._failed_attempt(batch, row, tid, error)
            return
        if result.status is TransferState.EXECUTED:
            await self._paid(row, tid, quote.quote.payer_fees.minor)
        elif result.status is TransferState.PREPARED:
            await self._save(row, RowState.WAITING, row.reason, next_at=now + IN_FLIGHT_RECHECK)
        else:
            await self._retry(batch, row, f"the transfer was {result.status}")

    async def _failed_attempt(
        self, batch: db.BatchRow, row: db.PaymentRow, tid: str, error: Exception
    ) -> None:
        final = next((r for kind, r in FINAL_ERRORS.items() if isinstance(error, kind)), None)
        if final is not None:
            await self._save(row, RowState.FAILED, reason_text(final, str(error)))
            return
        if await self._ledger_state(tid) in (TransferState.PREPARED, TransferState.EXECUTED):
            # the money may move after all: look again, never pay under a new id
            await self._save(
                row, RowState.WAITING, row.reason, next_at=self._clock() + IN_FLIGHT_RECHECK
            )
            return
        _log.info(
            "bulk_row_retry batch_id={batch_id} line={line} error={error}",
            batch_id=batch.id,
            line=row.line,
            error=f"{type(error).__name__}: {error}",
        )
        await self._retry(batch, row, f"{type(error).__name__}: {error}")

    async def _retry(self, batch: db.BatchRow, row: db.PaymentRow, why: str) -> None:
        """A temporary failure: again after the interval, or failed at the end."""
        row.attempt += 1 if RowState(row.state) is not RowState.INVITED else 0
        at = RetryPolicy(self.settings.retry_interval).next_attempt(self._clock(), batch.end_at)
        if at is None:
            await self._save(row, RowState.FAILED, reason_text(Reason.END_REACHED, why))
        else:
            await self._save(row, RowState.WAITING, reason_text(Reason.TEMPORARY, why), next_at=at)

    async def _onboarded(
        self, batch: db.BatchRow, maker: Customer, row: db.PaymentRow, now: datetime
    ) -> bool:
        """Whether an invited payee has an account now (the row is then ``pending``);
        otherwise the invitation goes (once) and the row waits, or fails at the end."""
        assert row.msisdn is not None
        payee = await self._customers.by_msisdn(row.msisdn)
        if payee is None:
            if row.invited_at is None:
                await self._invite(batch, maker, row)
                row.invited_at = now
            if now >= batch.end_at:
                why = "no account was opened before the end of the batch"
                await self._save(row, RowState.FAILED, reason_text(Reason.NO_ACCOUNT, why))
            else:
                next_at = min(now + self.settings.retry_interval, batch.end_at)
                await self._save(row, RowState.INVITED, row.reason, next_at=next_at)
            return False
        mismatch = person_mismatch(
            _parsed(row),
            registered_name=f"{payee.first_name} {payee.last_name}",
            national_id=payee.national_id,
            date_of_birth=payee.date_of_birth,
            today=now.date(),
        )
        if mismatch is not None:
            await self._save(row, RowState.FAILED, mismatch)
            return False
        row.user_number = str(payee.user_number)
        await self._save(row, RowState.PENDING, None, next_at=now)
        return True

    async def _invite(self, batch: db.BatchRow, maker: Customer, row: db.PaymentRow) -> None:
        if self._notices is None or row.amount_minor is None or row.msisdn is None:
            return
        amount = Money(batch.currency, row.amount_minor)
        args = {
            "payer": f"{maker.first_name} {maker.last_name}",
            "amount": f"{amount.screen_text()} {amount.currency}",
            "date": batch.end_at.date().isoformat(),
        }
        key = f"bulk:{batch.id}:{row.line}:invite"
        await self._notices.post([Notice(key, to_msisdn(row.msisdn), "bulk_invite", args)])

    # --- saving --------------------------------------------------------------------

    async def _paid(self, row: db.PaymentRow, tid: str, fee_minor: int) -> None:
        row.transfer_id, row.fee_minor, row.paid_at = tid, fee_minor, self._clock()
        await self._save(row, RowState.PAID, None)

    async def _save(
        self,
        row: db.PaymentRow,
        state: RowState,
        reason: str | None,
        *,
        next_at: datetime | None = None,
    ) -> None:
        await self._save_all(row.batch_id, [_Change(row, state, reason, next_at)])

    async def _save_all(self, batch_id: str, changes: Sequence[_Change]) -> None:
        """Save rows of one batch in one transaction; a row closed meanwhile (a cancelled
        batch) is left as it is."""
        if not changes:
            return
        for change in changes:
            check_row_move(RowState(change.row.state), change.state)
        async with self._sessions.begin() as session:
            stored = await db.lock_rows(session, batch_id, [c.row.line for c in changes])
            for change in changes:
                _apply(stored[change.row.line], change)
        for change in changes:
            row = change.row
            row.state, row.reason, row.next_attempt_at = (
                change.state.value,
                change.reason,
                change.next_at,
            )

    async def _move(self, batch_id: str, target: BatchState) -> None:
        async with self._sessions.begin() as session:
            batch = await db.batch(session, batch_id, lock=True)
            assert batch is not None
            if batch.state == target:
                return
            check_batch_move(BatchState(batch.state), target)
            batch.state = target.value
            if target is BatchState.DONE:
                batch.finished_at = self._clock()
        _log.info(
            "bulk_batch_moved batch_id={batch_id} state={state}", batch_id=batch_id, state=target
        )

    async def _close_cancelled(self, batch_id: str) -> None:
        async with self._sessions.begin() as session:
            for row in await db.rows_of(session, batch_id):
                if RowState(row.state) not in (
                    RowState.PENDING,
                    RowState.WAITING,
                    RowState.INVITED,
                ):
                    continue
                tid = transfer_id(batch_id, row.sequence or 0, row.attempt)
                state = await self._ledger_state(tid)
                if state is TransferState.EXECUTED:
                    row.state, row.transfer_id, row.paid_at = (
                        RowState.PAID.value,
                        tid,
                        self._clock(),
                    )
                    assert row.amount_minor is not None
                    row.fee_minor = await self._fee_of(tid, row.amount_minor)
                elif state is not TransferState.PREPARED:  # prepared: in flight, next round
                    row.state = RowState.FAILED.value
                    row.reason = reason_text(Reason.CANCELLED, "the batch was cancelled")
                    row.next_attempt_at = None

    async def _ledger_state(self, tid: str) -> TransferState | None:
        try:
            return (await self._ledger.transfer(tid)).state
        except UnknownTransfer:
            return None

    async def _fee_of(self, tid: str, principal_minor: int) -> int:
        """What the payer paid on top of the principal, from the ledger's transfer."""
        transfer = await self._ledger.transfer(tid)
        return max(0, transfer.amount.minor - principal_minor)


@dataclass(frozen=True)
class _Change:
    """A row moved to ``state`` (its other fields set on the row beforehand)."""

    row: db.PaymentRow
    state: RowState
    reason: str | None
    next_at: datetime | None = None


def _apply(stored: db.PaymentRow, change: _Change) -> None:
    if RowState(stored.state) not in (RowState.PENDING, RowState.WAITING, RowState.INVITED):
        return  # closed meanwhile (a cancelled batch)
    row = change.row
    stored.state, stored.reason, stored.next_attempt_at = (
        change.state.value,
        change.reason,
        change.next_at,
    )
    stored.attempt, stored.user_number = row.attempt, row.user_number
    stored.transfer_id, stored.fee_minor = row.transfer_id, row.fee_minor
    stored.paid_at, stored.invited_at = row.paid_at, row.invited_at


def _parsed(row: db.PaymentRow) -> ParsedRow:
    return ParsedRow(
        row.line,
        row.sequence,
        row.identifier,
        row.first_name,
        row.last_name,
        row.national_id,
        row.dob,
        None,
    )


def build_bulk(
    sessions: async_sessionmaker[AsyncSession],
    customers: Customers,
    payments: Payments,
    ledger: Ledger,
    notices: NoticeSink | None,
    *,
    currency: str,
    short_code: str,
    settings: BulkSettings,
    clock: Clock,
) -> BulkRunner:
    """The DFSP's bulk payments and their runner (not started: ``BulkRunner.start``);
    ``runner.bulk`` serves the routes (``dfsp.api_bulk.BulkRoutes``)."""
    bulk = Bulk(sessions, customers, payments, currency=currency, clock=clock, settings=settings)
    return BulkRunner(
        bulk,
        sessions,
        customers,
        payments,
        ledger,
        notices=notices,
        short_code=short_code,
        clock=clock,
    )
