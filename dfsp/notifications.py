"""Notices to customers, kept in an outbox and delivered through the DFSP's gateway.

``Notifications`` is the DFSP's ``NoticeSink``: ``post`` stores each notice in the
``notice_outbox`` table (``dfsp.notification_store``) in one transaction, idempotent on
its key, and wakes the delivery loop. The loop (``start`` / ``stop``, one asyncio task)
claims due rows oldest first, a batch at a time, and delivers a batch together: the
current MSISDN and language of its customers read in one transaction, each text rendered
(``dfsp.notice_texts``) and POSTed to the gateway's ``/notify/sms`` (and ``/notify/push``
for a notice with ``push=True``), and the outcomes recorded in one transaction.

- Within a batch, one customer's notices are sent one after the other, oldest first (so
  their balances arrive in order); different customers' are sent at the same time, at
  most ``batch`` requests at once.
- A row is claimed for ``lease`` seconds before it is sent, so two DFSP nodes (or a
  slow attempt) never send it twice at once; a node that dies mid-send leaves it to be
  sent again when the lease runs out (at least once, not exactly once).
- A failed SMS (gateway unreachable, 5xx, 408/429) is retried with exponential back-off
  capped at ``RetryPolicy.max_delay``, up to ``RetryPolicy.max_attempts`` times; the DFSP
  starts before its gateway, so the first attempts may simply find nobody listening.
- A failed push is not retried once the SMS went: the invoice is in the Pending menu.
- A notice whose customer is gone, whose arguments do not fill its text, or that the
  gateway refuses as bad input (4xx) is dropped, with a log line: trying again would
  not help.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from twisted.logger import Logger

from dfsp import notification_store as outbox
from dfsp.domain.customers import Customer, UnknownCustomer
from dfsp.domain.notices import MSISDN_READER, Notice
from dfsp.notice_texts import DEFAULT_LANGUAGE, RenderError, render_notice
from dfsp.notification_store import NoticeRow, OutboxState
from dfsp.store import READ_ONLY

MAX_NOTICES_PER_POST: Final = 1_000
MAX_BATCH: Final = 500  # also the most requests to the gateway at once
_log = Logger()

Clock = Callable[[], datetime]
Reader = tuple[str, str]  # the MSISDN and language a notice is sent in


class CustomerDirectory(Protocol):
    """What delivery needs of ``dfsp.customers.Customers``."""

    async def customers_among(self, customer_ids: Iterable[str]) -> dict[str, Customer]: ...


@dataclass(frozen=True)
class RetryPolicy:
    initial_delay: float = 1.0  # seconds before the first retry
    factor: float = 2.0
    max_delay: float = 60.0  # the back-off's cap
    max_attempts: int = 2_000  # then the notice is dropped (about 33 hours at the cap)

    def __post_init__(self) -> None:
        if not 0 < self.initial_delay <= self.max_delay:
            raise ValueError("RetryPolicy: 0 < initial_delay <= max_delay is needed")
        if self.factor < 1 or self.max_attempts < 1:
            raise ValueError("RetryPolicy: factor >= 1 and max_attempts >= 1 are needed")

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1, 2, ...)."""
        exponent = min(failures - 1, 64)
        return float(min(self.max_delay, self.initial_delay * self.factor**exponent))


@dataclass
class NotificationCounters:
    posted: int = 0  # notices handed to post() (repeats included)
    delivered: int = 0
    dropped: int = 0
    failed_attempts: int = 0  # SMS attempts that will be retried
    failed_pushes: int = 0  # pushes not shown (not retried: the SMS went)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class GatewayRefused(Exception):
    """The gateway answered with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"gateway answered {status}: {body[:200]}")
        self.status = status

    @property
    def permanent(self) -> bool:
        """A 4xx other than 408/429: sending the same request again cannot succeed."""
        return 400 <= self.status < 500 and self.status not in (408, 429)


class Notifications:
    """The DFSP's ``NoticeSink`` and the loop that delivers what was posted.

    ``gateway_url`` is the gateway's USSD-over-HTTP base (``http://host:port``); None or
    unreachable: notices wait. ``short_code`` (``*123#``) goes into the invoice texts.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        customers: CustomerDirectory,
        *,
        gateway_url: str | None,
        short_code: str,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        batch: int = 50,
        lease: float = 60.0,
        request_timeout: float = 10.0,
        idle_wake: float = 60.0,
    ) -> None:
        if not 1 <= batch <= MAX_BATCH or lease <= 2 * request_timeout or idle_wake <= 0:
            raise ValueError(
                f"Notifications: 1 <= batch <= {MAX_BATCH}, lease > 2 * request_timeout and"
                " idle_wake > 0 needed"
            )
        self.gateway_url = gateway_url
        self.short_code = short_code
        self.retry = retry or RetryPolicy()
        self.counters = NotificationCounters()
        self._sessions = sessions
        self._customers = customers
        self._clock = clock or (lambda: datetime.now(UTC))
        self._batch = batch
        self._lease = timedelta(seconds=lease)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._idle_wake = idle_wake
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    # --- NoticeSink -------------------------------------------------------------------

    async def post(self, notices: Sequence[Notice]) -> None:
        """Store the notices for delivery (committed before returning); a key posted
        before is left as it was."""
        if len(notices) > MAX_NOTICES_PER_POST:
            raise ValueError(f"at most {MAX_NOTICES_PER_POST} notices per post")
        unique = list({notice.key: notice for notice in reversed(notices)}.values())[::-1]
        async with self._sessions.begin() as session:
            await outbox.insert_notices(session, unique, self._clock())
        self.counters.posted += len(notices)
        self._wake.set()

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery loop (on the running asyncio loop)."""
        if self._task is not None:
            raise RuntimeError("Notifications already started")
        self._http = aiohttp.ClientSession(timeout=self._timeout)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the loop (an attempt under way is abandoned: its lease runs out)."""
        task, self._task = self._task, None
        http, self._http = self._http, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if http is not None:
            await http.close()

    # --- figures ----------------------------------------------------------------------

    async def delivered(self) -> int:
        """How many notices have been delivered, ever (from the outbox)."""
        return await self.count(OutboxState.DELIVERED)

    async def count(self, state: OutboxState) -> int:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=READ_ONLY)
            return await outbox.count_in_state(session, state)

    # --- delivery ---------------------------------------------------------------------

    async def deliver_due(self) -> float:
        """Attempt every notice due now (a batch at a time); the seconds until the next
        one is due (``idle_wake`` when none is pending)."""
        while True:
            rows = await self._claim()
            await self._deliver_batch(rows)
            if len(rows) < self._batch:
                break
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=READ_ONLY)
            due = await outbox.next_attempt(session)
        if due is None:
            return self._idle_wake
        return min(self._idle_wake, max(0.0, (due - self._clock()).total_seconds()))

    async def _run(self) -> None:
        failures = 0
        while True:
            self._wake.clear()
            try:
                wait = await self.deliver_due()
                failures = 0
            except Exception as error:  # the database: log, back off, go on
                failures += 1
                wait = self.retry.delay(failures)
                _log.error("notice_delivery_loop_failed error={error!r}", error=error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def _claim(self) -> list[NoticeRow]:
        now = self._clock()
        async with self._sessions.begin() as session:
            rows = await outbox.claim_due(session, now, self._batch, now + self._lease)
            session.expunge_all()
        return rows

    async def _deliver_batch(self, rows: Sequence[NoticeRow]) -> None:
        """Attempt a claimed batch: its readers read at once, each reader's notices sent in
        posting order and different readers' at the same time, the outcomes recorded in
        one transaction. Should an attempt raise, the outcomes of the others are still
        recorded (the raiser's row is tried again when its lease runs out)."""
        readers = await self._readers(rows)
        outcomes: list[_Outcome] = []

        async def attempt_in_turn(group: list[NoticeRow]) -> None:
            for row in group:
                outcomes.append(await self._attempt(row, readers.get(row.customer_id)))

        groups = _by_reader(rows)
        results = await asyncio.gather(*map(attempt_in_turn, groups), return_exceptions=True)
        await self._record(outcomes)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _readers(self, rows: Sequence[NoticeRow]) -> dict[str, Reader]:
        """The MSISDN and language of each reader of the rows (a customer gone: left out).
        A reader is a customer, or a phone that is not a customer yet
        (``dfsp.domain.notices.to_msisdn``: a bulk invite), which needs no read."""
        ids = {row.customer_id for row in rows}
        phones = {reader for reader in ids if reader.startswith(MSISDN_READER)}
        readers = {phone: (phone.removeprefix(MSISDN_READER), DEFAULT_LANGUAGE) for phone in phones}
        if ids - phones:
            customers = await self._customers.customers_among(ids - phones)
            readers.update({id_: (c.msisdn, c.language) for id_, c in customers.items()})
        return readers

    async def _attempt(self, row: NoticeRow, reader: Reader | None) -> _Outcome:
        if reader is None:
            return _Outcome(row, OutboxState.DROPPED, _described(UnknownCustomer(row.customer_id)))
        msisdn, language = reader
        try:
            text = render_notice(
                row.message, row.args, language=language, short_code=self.short_code
            )
        except RenderError as error:
            return _Outcome(row, OutboxState.DROPPED, _described(error))
        try:
            await self._send("/notify/sms", msisdn, text)
        except GatewayRefused as error:
            if error.permanent:
                return _Outcome(row, OutboxState.DROPPED, str(error))
            return self._retry_later(row, str(error))
        except (aiohttp.ClientError, TimeoutError, NoGateway) as error:
            return self._retry_later(row, _described(error))
        if row.push:
            await self._push(row, msisdn, text)
        return _Outcome(row, OutboxState.DELIVERED)

    async def _push(self, row: NoticeRow, msisdn: str, text: str) -> None:
        try:
            await self._send("/notify/push", msisdn, text)
        except (GatewayRefused, aiohttp.ClientError, TimeoutError, NoGateway) as error:
            self.counters.failed_pushes += 1
            _log_notice(_log.warn, "notice_push_failed", row, error=_described(error))

    async def _send(self, path: str, msisdn: str, text: str) -> Any:
        if self.gateway_url is None or self._http is None:
            raise NoGateway("no gateway URL configured")
        url = self.gateway_url.rstrip("/") + path
        async with self._http.post(url, json={"msisdn": msisdn, "text": text}) as response:
            if response.status >= 400:
                raise GatewayRefused(response.status, await response.text())
            return await response.json(content_type=None)

    def _retry_later(self, row: NoticeRow, error: str) -> _Outcome:
        failures = row.attempts + 1
        if failures >= self.retry.max_attempts:
            return _Outcome(row, OutboxState.DROPPED, f"gave up after {failures} attempts: {error}")
        return _Outcome(row, OutboxState.PENDING, error)

    async def _record(self, outcomes: Sequence[_Outcome]) -> None:
        """Record the outcomes in one transaction, then count and log each."""
        if not outcomes:
            return
        now = self._clock()
        ended = {
            state: {o.row.seq: o.error or None for o in outcomes if o.state is state}
            for state in (OutboxState.DELIVERED, OutboxState.DROPPED)
        }
        postponed = [
            outbox.Postponement(o.row.seq, o.failures, now + self._backoff(o.failures), o.error)
            for o in outcomes
            if o.state is OutboxState.PENDING
        ]
        async with self._sessions.begin() as session:
            for state, reasons in ended.items():
                await outbox.finish_many(session, state, now, reasons)
            await outbox.postpone_many(session, postponed)
        for outcome in outcomes:
            self._tell(outcome)

    def _backoff(self, failures: int) -> timedelta:
        return timedelta(seconds=self.retry.delay(failures))

    def _tell(self, outcome: _Outcome) -> None:
        """Count the outcome and log it."""
        row = outcome.row
        if outcome.state is OutboxState.DELIVERED:
            self.counters.delivered += 1
            _log_notice(_log.info, "notice_delivered", row, message=row.message)
        elif outcome.state is OutboxState.DROPPED:
            self.counters.dropped += 1
            _log_notice(_log.warn, "notice_dropped", row, reason=outcome.error)
        else:
            self.counters.failed_attempts += 1
            _log_notice(
                _log.info,
                "notice_retry_scheduled",
                row,
                attempts=outcome.failures,
                error=outcome.error,
            )


@dataclass(frozen=True)
class _Outcome:
    """Where an attempt left a notice: DELIVERED, DROPPED (``error`` says why) or PENDING
    (tried again later; ``error`` is the attempt's)."""

    row: NoticeRow
    state: OutboxState
    error: str = ""

    @property
    def failures(self) -> int:
        """The row's failed attempts, this one included."""
        return self.row.attempts + 1


def _by_reader(rows: Sequence[NoticeRow]) -> list[list[NoticeRow]]:
    """The rows grouped by reader, each group in the rows' order."""
    groups: dict[str, list[NoticeRow]] = {}
    for row in rows:
        groups.setdefault(row.customer_id, []).append(row)
    return list(groups.values())


def _log_notice(emit: Callable[..., None], event: str, row: NoticeRow, **fields: object) -> None:
    """Log an event about a notice: its key and reader, then ``fields``."""
    names = ["key", "customer_id", *fields]
    emit(
        " ".join([event, *(f"{name}={{{name}}}" for name in names)]),
        key=row.key,
        customer_id=row.customer_id,
        **fields,
    )


def _described(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


class NoGateway(Exception):
    """No gateway to deliver to (not configured yet)."""
