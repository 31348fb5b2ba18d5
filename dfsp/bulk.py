"""Bulk payments at a DFSP: a maker uploads a batch, a different checker approves it,
the runner (``dfsp.bulk_runner``) pays it row by row (SPEC section 3, "Bulk payments").

Use cases (each checks the acting customer's PIN, so a wrong one counts toward the
lock-out and changes nothing):

- ``upload``: a customer with the ``maker`` role sends the CSV of
  ``dfsp.domain.bulk``, the account to pay from and the end of retries; every row is
  checked now and the batch is kept as a ``draft`` with its validation report: a
  malformed row, a bad MSISDN, a payee whose registration does not match the row
  (name, national ID and date of birth here; the name only for a payee of another
  DFSP, through the central directory), a user number nobody has, an ineligible payee
  (the centre's rules: fraud, blacklist) are ``failed`` with the reason; an MSISDN of
  nobody here is ``invited`` (the runner sends an SMS and pays once they on-board).
- ``approve`` / ``reject``: a customer with the ``checker`` role who holds the source
  account and is not the maker; the approval (with the checker's PIN) authorises every
  payment of the batch: the runner pays without any PIN (``Payments.send_authorised``).
- ``cancel``: the maker or a checker stops a batch; the runner marks what is left.
- ``batch`` / ``report_csv``: the status with per-row states and totals, the report.

Roles are given by the DFSP: ``grant_role`` (a row of ``bulk_roles``), or by user
number in the settings (``BulkSettings.makers`` / ``checkers``).
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dfsp import bulk_store as db
from dfsp.customers import Customers
from dfsp.domain.bulk import (
    BatchNotFound,
    BatchState,
    BulkRoleMissing,
    InvalidEndDate,
    MakerCannotCheck,
    ParsedRow,
    Reason,
    RowState,
    check_batch_move,
    parse_batch_file,
    person_mismatch,
    reason_text,
    spreadsheet_safe,
)
from dfsp.domain.customers import Customer
from dfsp.domain.fees import TransactionType
from dfsp.domain.payments import FraudViolation, PaymentError, SendNotAllowed, UnknownReceiver
from dfsp.domain.pins import Pin
from dfsp.domain.transfers import CurrencyMismatch
from dfsp.interledger import ClearingUnavailable, TransferNotAllowed
from dfsp.payments import Payments
from ussdloop.config import ConfigError
from ussdloop.money import Money

MAKER: Final = "maker"
CHECKER: Final = "checker"
ROLES: Final = frozenset({MAKER, CHECKER})
CHECK_CONCURRENCY: Final = 8  # payees looked up at once while a file is checked
MAX_NOTE_CHARS: Final = 200
MAX_ROWS_IN_FLIGHT: Final = 64  # the bulk runner's bound on rows paid at once
REPORT_HEADER: Final = (
    "sequenceNumber",
    "identifier",
    "firstName",
    "lastName",
    "amount",
    "state",
    "reason",
    "transferId",
    "fee",
    "paidAt",
)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class BulkSettings:
    """``[dfsps.X.bulk]``: pacing and retries of bulk payments, and who has which role."""

    rows_per_second: float = 10.0  # 0: no throttle
    rows_in_flight: int = 8  # rows paid one by one at once: invited payees, retries (1..MAX)
    retry_interval: timedelta = timedelta(minutes=5)  # no retry sooner than this
    default_window: timedelta = timedelta(days=1)  # the end of retries when none is given
    max_window: timedelta = timedelta(days=31)
    makers: tuple[str, ...] = ()  # user numbers given the maker role by configuration
    checkers: tuple[str, ...] = ()
    idle_wake: float = 5.0  # seconds the runner sleeps when nothing is due

    def __post_init__(self) -> None:
        if self.rows_per_second < 0:
            raise ValueError("rows_per_second must not be negative (0: no throttle)")
        if not 1 <= self.rows_in_flight <= MAX_ROWS_IN_FLIGHT:
            raise ValueError(f"rows_in_flight must be 1 to {MAX_ROWS_IN_FLIGHT}")
        if self.retry_interval <= timedelta(0) or self.idle_wake <= 0:
            raise ValueError("retry_interval and idle_wake must be above zero")
        if not timedelta(0) < self.default_window <= self.max_window:
            raise ValueError("0 < default_window <= max_window is needed")

    @classmethod
    def from_toml(cls, data: Mapping[str, Any], key: str = "bulk") -> BulkSettings:
        known = {
            "rows_per_second",
            "rows_in_flight",
            "retry_seconds",
            "default_hours",
            "makers",
            "checkers",
        }
        for name in data:
            if name not in known:
                raise ConfigError(f"{key}.{name}", f"unknown setting (known: {sorted(known)})")
        try:
            return cls(
                rows_per_second=float(data.get("rows_per_second", 10.0)),
                rows_in_flight=int(data.get("rows_in_flight", 8)),
                retry_interval=timedelta(seconds=float(data.get("retry_seconds", 300))),
                default_window=timedelta(hours=float(data.get("default_hours", 24))),
                makers=tuple(str(n) for n in data.get("makers", ())),
                checkers=tuple(str(n) for n in data.get("checkers", ())),
            )
        except (TypeError, ValueError) as error:
            raise ConfigError(key, str(error)) from None


@dataclass(frozen=True)
class RowView:
    line: int
    sequence: int | None
    identifier: str
    first_name: str
    last_name: str
    amount: Money | None
    state: RowState
    reason: str | None
    transfer_id: str | None
    fee: Money | None
    paid_at: datetime | None
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class Totals:
    rows: int
    by_state: Mapping[str, int]
    paid: Money
    fees: Money
    open: Money  # still to pay (pending, waiting, invited)

    @property
    def finished_rows(self) -> int:
        return self.by_state.get(RowState.PAID, 0) + self.by_state.get(RowState.FAILED, 0)


@dataclass(frozen=True)
class BatchView:
    id: str
    state: BatchState
    maker_id: str
    checker_id: str | None
    account_id: str
    end_at: datetime
    created_at: datetime
    note: str | None
    totals: Totals
    rows: tuple[RowView, ...] = field(repr=False)


class Bulk:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        customers: Customers,
        payments: Payments,
        *,
        currency: str,
        clock: Clock,
        settings: BulkSettings | None = None,
    ) -> None:
        self.settings = settings or BulkSettings()
        self._sessions = sessions
        self._customers = customers
        self._payments = payments
        self._currency = currency
        self._clock = clock
        self.on_approved: Callable[[], None] = lambda: None  # wakes the runner

    # --- roles ---------------------------------------------------------------------

    async def grant_role(self, customer_id: str, role: str) -> None:
        """Give a customer a bulk role (``maker`` or ``checker``); again is a no-op."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {sorted(ROLES)}")
        await self._customers.customer(customer_id)
        await db.grant_role(self._sessions, customer_id, role, self._clock())

    async def has_role(self, customer: Customer, role: str) -> bool:
        configured = self.settings.makers if role == MAKER else self.settings.checkers
        number = str(customer.user_number)
        return await db.has_role(self._sessions, customer.id, number, role, configured)

    # --- maker and checker ---------------------------------------------------------

    async def upload(
        self,
        maker_id: str,
        pin: Pin | str,
        account_id: str,
        csv_text: str,
        *,
        end_at: datetime | None = None,
    ) -> BatchView:
        """Check the file and keep it as a draft with its validation report."""
        maker = await self._customers.customer(maker_id)
        await self._customers.check_pin(maker_id, pin)
        await self._require_role(maker, MAKER)
        account = next(
            (a for a in await self._customers.accounts_of(maker_id) if a.id == account_id), None
        )
        if account is None or not account.permissions.can_send:
            raise SendNotAllowed(account_id, "you cannot pay a batch from this account")
        now = self._clock()
        end = end_at or now + self.settings.default_window
        if not now < end <= now + self.settings.max_window:
            days = self.settings.max_window.days
            raise InvalidEndDate(f"the end of retries must be after now and within {days} days")
        parsed = parse_batch_file(csv_text, account.currency, today=now.date())
        checked = await self._check_rows(maker, account_id, parsed)
        batch_id = str(uuid.uuid4())
        async with self._sessions.begin() as session:
            session.add(
                db.BatchRow(
                    id=batch_id,
                    maker_id=maker.id,
                    account_id=account_id,
                    currency=account.currency,
                    state=BatchState.DRAFT.value,
                    checker_id=None,
                    note=None,
                    end_at=end,
                    created_at=now,
                    decided_at=None,
                    finished_at=None,
                )
            )
            await session.flush()
            session.add_all(
                _row_record(batch_id, row, state, reason, now) for row, state, reason in checked
            )
        return await self.batch_view(batch_id)

    async def approve(self, batch_id: str, checker_id: str, pin: Pin | str) -> BatchView:
        """The checker's approval: the runner pays the batch from now on."""
        await self._decide(batch_id, checker_id, pin, BatchState.APPROVED, None)
        self.on_approved()
        return await self.batch_view(batch_id)

    async def reject(
        self, batch_id: str, checker_id: str, pin: Pin | str, note: str = ""
    ) -> BatchView:
        await self._decide(
            batch_id, checker_id, pin, BatchState.REJECTED, note[:MAX_NOTE_CHARS] or None
        )
        return await self.batch_view(batch_id)

    async def cancel(self, batch_id: str, customer_id: str, pin: Pin | str) -> BatchView:
        """Stop a batch not finished yet; its open rows become ``failed`` (cancelled)."""
        await self._viewer(batch_id, customer_id, pin)
        async with self._sessions.begin() as session:
            batch = await _locked(session, batch_id)
            check_batch_move(BatchState(batch.state), BatchState.CANCELLED)
            if batch.state == BatchState.DRAFT:
                await _close_open_rows(session, batch_id, "the batch was cancelled")
            batch.state, batch.decided_at = BatchState.CANCELLED.value, self._clock()
        self.on_approved()  # the runner closes the rows left of a running batch
        return await self.batch_view(batch_id)

    async def batch(self, batch_id: str, customer_id: str, pin: Pin | str) -> BatchView:
        """The batch's state, rows and totals, for its maker or a checker of its account."""
        await self._viewer(batch_id, customer_id, pin)
        return await self.batch_view(batch_id)

    async def report_csv(self, batch_id: str, customer_id: str, pin: Pin | str) -> str:
        """Per row: the result, its reason, the transfer id and fee (CSV)."""
        return report_text(await self.batch(batch_id, customer_id, pin))

    async def batch_view(self, batch_id: str) -> BatchView:
        """The batch as stored, without any check (the runner and tests)."""
        async with self._sessions() as session:
            batch = await db.batch(session, batch_id)
            if batch is None:
                raise BatchNotFound(batch_id)
            rows = await db.rows_of(session, batch_id)
            return _view(batch, rows)

    # --- helpers -------------------------------------------------------------------

    async def _decide(
        self, batch_id: str, checker_id: str, pin: Pin | str, target: BatchState, note: str | None
    ) -> None:
        async with self._sessions() as session:
            batch = await db.batch(session, batch_id)
        if batch is None:
            raise BatchNotFound(batch_id)
        checker = await self._customers.customer(checker_id)
        await self._customers.check_pin(checker_id, pin)
        await self._require_role(checker, CHECKER)
        if checker.id == batch.maker_id:
            raise MakerCannotCheck("the maker of a batch cannot approve or reject it")
        if not await self._holds(checker.id, batch.account_id):
            raise BulkRoleMissing("only a holder of the batch's account can approve or reject it")
        async with self._sessions.begin() as session:
            row = await _locked(session, batch_id)
            check_batch_move(BatchState(row.state), target)
            if target is BatchState.REJECTED:
                await _close_open_rows(session, batch_id, "the batch was rejected")
            row.state, row.checker_id, row.decided_at = target.value, checker.id, self._clock()
            row.note = note

    async def _viewer(self, batch_id: str, customer_id: str, pin: Pin | str) -> None:
        async with self._sessions() as session:
            batch = await db.batch(session, batch_id)
        customer = await self._customers.customer(customer_id)
        await self._customers.check_pin(customer_id, pin)
        if batch is None:
            raise BatchNotFound(batch_id)
        if customer.id == batch.maker_id:
            return
        if not (
            await self.has_role(customer, CHECKER)
            and await self._holds(customer.id, batch.account_id)
        ):
            raise BatchNotFound(batch_id)  # not theirs to see: as if there were none

    async def _holds(self, customer_id: str, account_id: str) -> bool:
        return any(a.id == account_id for a in await self._customers.accounts_of(customer_id))

    async def _require_role(self, customer: Customer, role: str) -> None:
        if not await self.has_role(customer, role):
            raise BulkRoleMissing(f"the DFSP has not given this customer the bulk {role} role")

    async def _check_rows(
        self, maker: Customer, account_id: str, rows: Sequence[ParsedRow]
    ) -> list[tuple[ParsedRow, RowState, str | None]]:
        gate = asyncio.Semaphore(CHECK_CONCURRENCY)

        async def check(row: ParsedRow) -> tuple[ParsedRow, RowState, str | None]:
            async with gate:
                state, reason, number = await self.check_payee(maker, account_id, row)
            if number is not None and row.user_number is None:
                row = ParsedRow(**{**row.__dict__, "user_number": number})
            return row, state, reason

        return list(await asyncio.gather(*(check(row) for row in rows)))

    async def check_payee(
        self, maker: Customer, account_id: str, row: ParsedRow
    ) -> tuple[RowState, str | None, str | None]:
        """The state of a row as checked now, its reason, and the payee's user number."""
        if row.problem is not None or row.amount is None:
            return RowState.FAILED, row.problem, None
        today = self._clock().date()
        number = row.user_number
        if row.msisdn is not None:
            local = await self._customers.by_msisdn(row.msisdn)
            if local is None:
                detail = "nobody has an account with this number: an SMS invites them"
                return RowState.INVITED, reason_text(Reason.NO_ACCOUNT, detail), None
            number = str(local.user_number)
        else:
            local = await self._customers.by_user_number(str(number))
        assert number is not None
        try:
            quote = await self._payments.quote_send(
                maker.id, account_id, number, row.amount, kind=TransactionType.BULK
            )
        except UnknownReceiver:
            return (
                RowState.FAILED,
                reason_text(Reason.UNKNOWN_PAYEE, "nobody has this user number"),
                None,
            )
        except (TransferNotAllowed, FraudViolation) as error:  # the centre's rules, a blacklist
            return RowState.FAILED, reason_text(Reason.INELIGIBLE, str(error)), None
        except ClearingUnavailable:
            return (
                RowState.PENDING,
                reason_text(Reason.TEMPORARY, "the payee could not be checked now"),
                number,
            )
        except (SendNotAllowed, CurrencyMismatch, PaymentError) as error:
            return RowState.FAILED, reason_text(Reason.NOT_PAYABLE, str(error)), None
        if local is not None:
            mismatch = person_mismatch(
                row,
                registered_name=f"{local.first_name} {local.last_name}",
                national_id=local.national_id,
                date_of_birth=local.date_of_birth,
                today=today,
            )
        else:
            mismatch = person_mismatch(
                row,
                registered_name=quote.receiver_name,
                national_id=None,
                date_of_birth=None,
                today=today,
            )
        if mismatch is not None:
            return RowState.FAILED, mismatch, None
        return RowState.PENDING, None, number


def _row_record(
    batch_id: str, row: ParsedRow, state: RowState, reason: str | None, now: datetime
) -> db.PaymentRow:
    return db.PaymentRow(
        batch_id=batch_id,
        line=row.line,
        sequence=row.sequence,
        identifier=row.identifier[:100],
        first_name=row.first_name[:100],
        last_name=row.last_name[:100],
        national_id=row.national_id[:100],
        dob=row.dob[:100],
        amount_minor=None if row.amount is None else row.amount.minor,
        msisdn=row.msisdn,
        user_number=row.user_number,
        state=state.value,
        reason=reason,
        attempt=0,
        next_attempt_at=None if state is RowState.FAILED else now,
        transfer_id=None,
        fee_minor=None,
        paid_at=None,
        invited_at=None,
    )


async def _locked(session: AsyncSession, batch_id: str) -> db.BatchRow:
    batch = await db.batch(session, batch_id, lock=True)
    if batch is None:
        raise BatchNotFound(batch_id)
    return batch


async def _close_open_rows(session: AsyncSession, batch_id: str, why: str) -> None:
    for row in await db.rows_of(session, batch_id):
        if RowState(row.state) in (RowState.PENDING, RowState.WAITING, RowState.INVITED):
            row.state, row.reason = RowState.FAILED.value, reason_text(Reason.CANCELLED, why)
            row.next_attempt_at = None


def _view(batch: db.BatchRow, rows: Sequence[db.PaymentRow]) -> BatchView:
    currency = batch.currency

    def money(minor: int | None) -> Money | None:
        return None if minor is None else Money(currency, minor)

    views = tuple(
        RowView(
            line=r.line,
            sequence=r.sequence,
            identifier=r.identifier,
            first_name=r.first_name,
            last_name=r.last_name,
            amount=money(r.amount_minor),
            state=RowState(r.state),
            reason=r.reason,
            transfer_id=r.transfer_id,
            fee=money(r.fee_minor),
            paid_at=r.paid_at,
            next_attempt_at=r.next_attempt_at,
        )
        for r in rows
    )
    return BatchView(
        id=batch.id,
        state=BatchState(batch.state),
        maker_id=batch.maker_id,
        checker_id=batch.checker_id,
        account_id=batch.account_id,
        end_at=batch.end_at,
        created_at=batch.created_at,
        note=batch.note,
        totals=_totals(currency, views),
        rows=views,
    )


def _totals(currency: str, rows: Sequence[RowView]) -> Totals:
    def total(chosen: Callable[[RowView], int]) -> Money:
        return Money(currency, sum(chosen(r) for r in rows))

    open_states = (RowState.PENDING, RowState.WAITING, RowState.INVITED)
    return Totals(
        rows=len(rows),
        by_state=dict(Counter(str(r.state) for r in rows)),
        paid=total(lambda r: r.amount.minor if r.state is RowState.PAID and r.amount else 0),
        fees=total(lambda r: r.fee.minor if r.state is RowState.PAID and r.fee else 0),
        open=total(lambda r: r.amount.minor if r.state in open_states and r.amount else 0),
    )


def report_text(batch: BatchView) -> str:
    """The per-row report as CSV (cells a spreadsheet will not run as formulas)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_HEADER)
    for row in batch.rows:
        cells = (
            "" if row.sequence is None else str(row.sequence),
            row.identifier,
            row.first_name,
            row.last_name,
            "" if row.amount is None else str(row.amount),
            str(row.state),
            row.reason or "",
            row.transfer_id or "",
            "" if row.fee is None else str(row.fee),
            "" if row.paid_at is None else row.paid_at.isoformat(),
        )
        writer.writerow([spreadsheet_safe(cell) for cell in cells])
    return out.getvalue()
