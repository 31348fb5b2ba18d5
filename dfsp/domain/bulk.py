"""Bulk payments, the pure part (SPEC section 3, "Bulk payments"; REFERENCE 1.5(e), 6.5):
the CSV a maker uploads, the states of a batch and of its rows, the retry timing and
the transfer id of each attempt. No I/O: ``dfsp.bulk`` looks payees up and pays.

The CSV: a header ``sequenceNumber,identifier,firstName,lastName,nationalId,dob,amount``
then one payment a line; every field is mandatory. ``identifier`` is a user number
(exactly 8 digits) or an MSISDN (anything else: normalised, ``+`` allowed); ``dob`` is
``YYYY-MM-DD``; ``amount`` a positive decimal with at most 2 decimals. A file has at
most ``MAX_CSV_BYTES`` and ``MAX_ROWS`` rows. A field that starts with ``=``, ``+``,
``-`` or ``@`` (a spreadsheet formula), other than the identifier's leading ``+``, makes
its row malformed. A malformed row is reported and never paid; the others are checked
against the payees' registrations by ``dfsp.bulk``.

Batch states, forward only (``BATCH_TRANSITIONS``): draft -> approved -> running -> done;
draft -> rejected; draft, approved or running -> cancelled.
Row states (``ROW_TRANSITIONS``): pending (to pay now), waiting (a temporary failure:
again at ``next_attempt_at``), invited (no account yet: an SMS went, paid once they
on-board), paid and failed (final, with a reason).

Each attempt of a row pays under ``transfer_id(batch, seq, attempt)``, a UUID5: the
same after a restart, so a row is never paid twice; the attempt number moves on only
once the payer's ledger shows the previous attempt's transfer did not move money.
"""

from __future__ import annotations

import csv
import enum
import io
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from dfsp.domain.identifiers import (
    USER_NUMBER_DIGITS,
    IdentifierError,
    PersonKey,
    UserNumber,
    normalise_msisdn,
    normalise_name,
)
from ussdloop.money import Money, MoneyError

HEADER: Final = (
    "sequenceNumber",
    "identifier",
    "firstName",
    "lastName",
    "nationalId",
    "dob",
    "amount",
)
MAX_CSV_BYTES: Final = 5 * 1024 * 1024
MAX_ROWS: Final = 10_000
MAX_FIELD_CHARS: Final = 100
MAX_SEQUENCE: Final = 10**9
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
MAX_REASON_CHARS: Final = 200
_AMOUNT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,2})?")
_PHONE = re.compile(r"\+[0-9 ().\-]+")
BULK_NAMESPACE: Final = uuid.UUID("6f1c2a5e-3b7d-5c1e-9a4f-0b8d2e6c7a10")


class BulkError(Exception):
    """A bulk request refused; the message says why."""


class InvalidBatchFile(BulkError):
    """The file as a whole is refused (too big, too many rows, no header)."""


class BulkRoleMissing(BulkError):
    """The customer has not been given this bulk role by the DFSP."""


class MakerCannotCheck(BulkError):
    """The maker of a batch approved or rejected it: a different checker must."""


class BatchNotFound(BulkError):
    """No such batch (or not one this customer may see)."""


class BatchStateConflict(BulkError):
    """The batch is not in a state that allows this."""


class InvalidEndDate(BulkError):
    """The end date/time for retries is in the past or too far ahead."""


class BatchState(enum.StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    RUNNING = "running"
    DONE = "done"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


BATCH_TRANSITIONS: Final[dict[BatchState, frozenset[BatchState]]] = {
    BatchState.DRAFT: frozenset({BatchState.APPROVED, BatchState.REJECTED, BatchState.CANCELLED}),
    BatchState.APPROVED: frozenset({BatchState.RUNNING, BatchState.CANCELLED}),
    BatchState.RUNNING: frozenset({BatchState.DONE, BatchState.CANCELLED}),
    BatchState.DONE: frozenset(),
    BatchState.REJECTED: frozenset(),
    BatchState.CANCELLED: frozenset(),
}


def check_batch_move(current: BatchState, target: BatchState) -> None:
    if target not in BATCH_TRANSITIONS[current]:
        raise BatchStateConflict(f"a {current} batch cannot become {target}")


class RowState(enum.StrEnum):
    PENDING = "pending"
    WAITING = "waiting"
    INVITED = "invited"
    PAID = "paid"
    FAILED = "failed"


OPEN_ROW_STATES: Final = frozenset({RowState.PENDING, RowState.WAITING, RowState.INVITED})
ROW_TRANSITIONS: Final[dict[RowState, frozenset[RowState]]] = {
    RowState.PENDING: frozenset({RowState.WAITING, RowState.PAID, RowState.FAILED}),
    RowState.WAITING: frozenset(
        {RowState.PENDING, RowState.WAITING, RowState.PAID, RowState.FAILED}
    ),
    RowState.INVITED: frozenset({RowState.PENDING, RowState.INVITED, RowState.FAILED}),
    RowState.PAID: frozenset(),
    RowState.FAILED: frozenset(),
}


def check_row_move(current: RowState, target: RowState) -> None:
    assert target in ROW_TRANSITIONS[current], f"a {current} row cannot become {target}"


class Reason(enum.StrEnum):
    """Why a row is not paid (yet): the report's ``reason`` column starts with one."""

    MALFORMED = "malformed"
    BAD_MSISDN = "bad_msisdn"
    NAME_MISMATCH = "name_mismatch"
    NATIONAL_ID_MISMATCH = "national_id_mismatch"
    DOB_MISMATCH = "dob_mismatch"
    UNKNOWN_PAYEE = "unknown_payee"
    NO_ACCOUNT = "no_account"
    INELIGIBLE = "ineligible"
    NOT_PAYABLE = "not_payable"
    TEMPORARY = "temporary"
    CANCELLED = "cancelled"
    END_REACHED = "end_reached"


@dataclass(frozen=True)
class ParsedRow:
    """One line of the file: well formed when ``problem`` is None."""

    line: int  # in the file, the header being line 1
    sequence: int | None
    identifier: str
    first_name: str
    last_name: str
    national_id: str
    dob: str
    amount: Money | None
    problem: str | None = None  # "malformed: ..." or "bad_msisdn: ..."
    msisdn: str | None = None  # the normalised MSISDN, when the identifier is one
    user_number: str | None = None  # the user number, when the identifier is one


def parse_batch_file(text: str, currency: str, *, today: date) -> list[ParsedRow]:
    """Every line of the file, each well formed or with its problem; ``InvalidBatchFile``
    when the file itself is refused."""
    if len(text.encode("utf-8")) > MAX_CSV_BYTES:
        raise InvalidBatchFile(f"the file is over {MAX_CSV_BYTES // (1024 * 1024)} MB")
    if text.count("\n") > MAX_ROWS + 2:
        raise InvalidBatchFile(f"the file has over {MAX_ROWS} rows")
    lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    if not lines or tuple(field.strip() for field in lines[0]) != HEADER:
        raise InvalidBatchFile("the first line must be the header " + ",".join(HEADER))
    body = [(number, line) for number, line in enumerate(lines[1:], start=2) if any(line)]
    if not body:
        raise InvalidBatchFile("the file has no payments")
    if len(body) > MAX_ROWS:
        raise InvalidBatchFile(f"the file has over {MAX_ROWS} rows")
    rows = [_parse_line(number, line, currency, today) for number, line in body]
    return _mark_repeated_sequences(rows)


def _parse_line(number: int, fields: list[str], currency: str, today: date) -> ParsedRow:
    values = [field.strip() for field in fields] + [""] * (len(HEADER) - len(fields))
    seq_text, identifier, first, last, national_id, dob, amount_text = values[: len(HEADER)]
    row = ParsedRow(number, None, identifier, first, last, national_id, dob, None)

    def bad(problem: str) -> ParsedRow:
        return _with(row, problem=f"{Reason.MALFORMED}: {problem}")

    if len(fields) != len(HEADER):
        return bad(f"expected {len(HEADER)} fields, found {len(fields)}")
    for name, value in zip(HEADER, values, strict=True):
        if not value:
            return bad(f"{name} is empty")
        if len(value) > MAX_FIELD_CHARS:
            return bad(f"{name} is over {MAX_FIELD_CHARS} characters")
        if value.startswith(FORMULA_STARTS) and not (
            name == "identifier" and _PHONE.fullmatch(value)
        ):
            return bad(f"{name} starts with {value[0]!r} (a spreadsheet formula)")
    if not seq_text.isdigit() or not 0 < int(seq_text) < MAX_SEQUENCE:
        return bad("sequenceNumber must be a whole number from 1")
    row = _with(row, sequence=int(seq_text))
    try:
        PersonKey.of(first, last, dob, national_id, today=today)
    except IdentifierError as error:
        return bad(str(error))
    if not _AMOUNT.fullmatch(amount_text):
        return bad("amount must be a number with at most 2 decimals, like 1200 or 12.50")
    try:
        amount = Money.parse(amount_text, currency)
    except MoneyError as error:
        return bad(str(error))
    if amount.minor <= 0:
        return bad("amount must be above zero")
    row = _with(row, amount=amount)
    digits = identifier.replace(" ", "")
    if len(digits) == USER_NUMBER_DIGITS and digits.isdigit():
        return _with(row, user_number=str(UserNumber(digits)))
    try:
        return _with(row, msisdn=normalise_msisdn(identifier))
    except IdentifierError as error:
        return _with(row, problem=f"{Reason.BAD_MSISDN}: {error}")


def _mark_repeated_sequences(rows: list[ParsedRow]) -> list[ParsedRow]:
    seen: set[int] = set()
    marked = []
    for row in rows:
        if row.sequence is not None and row.sequence in seen:
            row = _with(row, problem=f"{Reason.MALFORMED}: sequenceNumber {row.sequence} repeats")
            row = _with(row, sequence=None)
        elif row.sequence is not None:
            seen.add(row.sequence)
        marked.append(row)
    return marked


def _with(row: ParsedRow, **changes: object) -> ParsedRow:
    return ParsedRow(**{**row.__dict__, **changes})


def person_mismatch(
    row: ParsedRow,
    *,
    registered_name: str,
    national_id: str | None,
    date_of_birth: date | None,
    today: date,
) -> str | None:
    """Why a registered payee is not the person of the row (None: the same person). A
    payee at another DFSP is known by name only: pass None for the rest."""
    key = PersonKey.of(row.first_name, row.last_name, row.dob, row.national_id, today=today)
    if normalise_name(f"{key.first_name} {key.last_name}") != normalise_name(registered_name):
        return f"{Reason.NAME_MISMATCH}: the payee is registered as {registered_name}"
    if national_id is not None and key.national_id != national_id.upper():
        return f"{Reason.NATIONAL_ID_MISMATCH}: the national ID differs from the registration"
    if date_of_birth is not None and key.date_of_birth != date_of_birth:
        return f"{Reason.DOB_MISMATCH}: the date of birth differs from the registration"
    return None


def transfer_id(batch_id: str, sequence: int, attempt: int) -> str:
    """The transfer id of one attempt of one row: the same after a restart."""
    return str(uuid.uuid5(BULK_NAMESPACE, f"{batch_id}:{sequence}:{attempt}"))


@dataclass(frozen=True)
class RetryPolicy:
    """When a row is tried again: no sooner than ``interval`` after a temporary failure,
    and never after the batch's end."""

    interval: timedelta

    def next_attempt(self, now: datetime, end_at: datetime) -> datetime | None:
        """When to try again, or None when the end comes first (the failure is final)."""
        at = now + self.interval
        return None if at > end_at else at


def reason_text(reason: Reason, detail: str = "") -> str:
    text = f"{reason}: {detail}" if detail else str(reason)
    return text[:MAX_REASON_CHARS]


def spreadsheet_safe(value: str) -> str:
    """A report cell a spreadsheet will not run as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value
