"""The ledger's rules, without I/O: transfer states, postings, and the ledger's errors.

A transfer moves money between ledger accounts through one or more postings; each
posting debits one account and credits another by the same positive amount, so every
transfer is balanced by construction and the ledger's accounts always sum to zero.
A transfer is prepared (the debited accounts' funds are held), then decided exactly
once: executed, rejected or expired.

Sign convention: an account's balance is its credits minus its debits. A customer's
balance is what the DFSP owes them (never below zero); the float account that funds
customers goes negative (``allow_negative``). ``available = balance - held``.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from ussdloop.money import MAX_MINOR, Money, MoneyError

# Explicit limits: everything the ledger accepts is bounded.
MAX_ID_LENGTH = 64
MAX_KIND_LENGTH = 32
MAX_POSTINGS = 16
MAX_MEMO_BYTES = 2048
MAX_REASON_LENGTH = 255
MAX_HOLD = timedelta(days=7)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]*")


class TransferState(enum.StrEnum):
    PREPARED = "prepared"
    EXECUTED = "executed"
    REJECTED = "rejected"
    EXPIRED = "expired"


# Every transfer starts PREPARED and is decided once; decided states are final.
ALLOWED_TRANSITIONS: Mapping[TransferState, frozenset[TransferState]] = {
    TransferState.PREPARED: frozenset(
        {TransferState.EXECUTED, TransferState.REJECTED, TransferState.EXPIRED}
    ),
    TransferState.EXECUTED: frozenset(),
    TransferState.REJECTED: frozenset(),
    TransferState.EXPIRED: frozenset(),
}


class AccountKind(enum.StrEnum):
    CUSTOMER = "customer"
    FEE = "fee"
    FLOAT = "float"
    COMMISSION = "commission"
    CLEARING = "clearing"


# --- errors -------------------------------------------------------------------------


class LedgerError(Exception):
    """Base of the ledger's refusals; each carries the fields a caller maps to a reply."""


class InvalidRequest(LedgerError):
    """A malformed request (bad id, amount, posting, memo...): nothing was changed."""


class UnknownAccount(LedgerError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"unknown ledger account {account_id!r}")
        self.account_id = account_id


class UnknownTransfer(LedgerError):
    def __init__(self, transfer_id: str) -> None:
        super().__init__(f"unknown transfer {transfer_id!r}")
        self.transfer_id = transfer_id


class AccountConflict(LedgerError):
    """An account id already used for an account with other attributes."""

    def __init__(self, account_id: str) -> None:
        super().__init__(f"account {account_id!r} already exists with other attributes")
        self.account_id = account_id


class TransferConflict(LedgerError):
    """A transfer id already used for a transfer with other content."""

    def __init__(self, transfer_id: str) -> None:
        super().__init__(f"transfer {transfer_id!r} already exists with other content")
        self.transfer_id = transfer_id


class CurrencyMismatch(LedgerError):
    def __init__(self, account_id: str, expected: str, found: str) -> None:
        super().__init__(f"account {account_id!r} holds {found}, the transfer is in {expected}")
        self.account_id = account_id
        self.expected = expected
        self.found = found


class InsufficientFunds(LedgerError):
    def __init__(self, account_id: str, available: Money) -> None:
        super().__init__(f"account {account_id!r} has {available} {available.currency} available")
        self.account_id = account_id
        self.available = available


class BalanceLimitExceeded(LedgerError):
    """A credit would take the account (with its pending credits) above its limit."""

    def __init__(self, account_id: str, limit: Money) -> None:
        super().__init__(f"account {account_id!r} may hold at most {limit} {limit.currency}")
        self.account_id = account_id
        self.limit = limit


class InvalidTransition(LedgerError):
    def __init__(self, transfer_id: str, current: TransferState, target: TransferState) -> None:
        super().__init__(f"transfer {transfer_id!r} is {current}; it cannot become {target}")
        self.transfer_id = transfer_id
        self.current = current
        self.target = target


class TransferExpired(InvalidTransition):
    """Execution refused: the transfer's time ran out (by the ledger's clock)."""

    def __init__(self, transfer_id: str) -> None:
        super().__init__(transfer_id, TransferState.EXPIRED, TransferState.EXECUTED)


# --- values -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Posting:
    """Debit one account and credit another by the same positive amount."""

    debit_account: str
    credit_account: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class LedgerAccount:
    id: str
    owner: str
    name: str
    kind: AccountKind
    currency: str
    allow_negative: bool
    balance: Money
    held: Money
    incoming: Money  # prepared credits not yet executed
    balance_limit: Money | None
    created_at: datetime

    @property
    def available(self) -> Money:
        return self.balance - self.held


@dataclass(frozen=True, slots=True)
class Transfer:
    id: str
    state: TransferState
    kind: str
    amount: Money  # the sum of the postings
    postings: tuple[Posting, ...]
    created_at: datetime
    expires_at: datetime | None  # None for a one-step transfer
    decided_at: datetime | None
    reason: str | None
    memo: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Entry:
    """One movement on one account, written when a transfer executes (statements)."""

    transfer_id: str
    account_id: str
    amount: Money  # signed: negative for a debit
    balance_after: Money
    kind: str
    created_at: datetime


class AccountState(Protocol):
    """What the rules read of a ledger account (the store's rows have these fields)."""

    @property
    def id(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def allow_negative(self) -> bool: ...
    @property
    def balance_minor(self) -> int: ...
    @property
    def held_minor(self) -> int: ...
    @property
    def incoming_minor(self) -> int: ...
    @property
    def balance_limit_minor(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """A checked request to move money: what a transfer id stands for."""

    id: str
    postings: tuple[Posting, ...]
    kind: str
    memo: dict[str, Any] | None

    @classmethod
    def checked(
        cls,
        transfer_id: str,
        postings: Iterable[Posting],
        kind: str,
        memo: Mapping[str, Any] | None = None,
    ) -> TransferRequest:
        return cls(
            check_id(transfer_id, "a transfer id"),
            check_postings(postings),
            check_kind(kind),
            check_memo(memo),
        )

    def same_as(self, kind: str, postings: Sequence[Posting]) -> bool:
        """Two requests with one id are the same transfer when they move the same money
        (the same kind and postings, in any order); expiry and memo do not count."""
        return kind == self.kind and sorted(postings) == sorted(self.postings)


# --- rules --------------------------------------------------------------------------


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
        raise InvalidRequest(f"{what} must be 1 to {MAX_ID_LENGTH} characters")
    if not _ID.fullmatch(value):
        raise InvalidRequest(f"{what} {value!r} has characters outside [A-Za-z0-9._:@/-]")
    return value


def check_kind(kind: str) -> str:
    if not isinstance(kind, str) or not 0 < len(kind) <= MAX_KIND_LENGTH:
        raise InvalidRequest(f"a transfer kind is 1 to {MAX_KIND_LENGTH} characters")
    return kind


def check_postings(postings: Iterable[Posting]) -> tuple[Posting, ...]:
    """Refuse an empty or oversize list, non-positive amounts and self-postings."""
    checked = tuple(postings)
    if not 0 < len(checked) <= MAX_POSTINGS:
        raise InvalidRequest(f"a transfer has 1 to {MAX_POSTINGS} postings")
    for posting in checked:
        if not isinstance(posting, Posting):
            raise InvalidRequest("postings must be Posting values")
        check_id(posting.debit_account, "an account id")
        check_id(posting.credit_account, "an account id")
        amount = posting.amount_minor
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise InvalidRequest("posting amounts are positive whole minor units")
        if posting.debit_account == posting.credit_account:
            raise InvalidRequest(f"account {posting.debit_account!r} cannot post to itself")
    if total_minor(checked) > MAX_MINOR:
        raise InvalidRequest("transfer amount too large")
    return checked


def check_memo(memo: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if memo is None:
        return None
    try:
        encoded = json.dumps(dict(memo), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidRequest(f"a memo is a JSON object: {error}") from None
    if len(encoded.encode()) > MAX_MEMO_BYTES:
        raise InvalidRequest(f"a memo is at most {MAX_MEMO_BYTES} bytes of JSON")
    result: dict[str, Any] = json.loads(encoded)
    return result


def check_expiry(expires_at: datetime, now: datetime) -> datetime:
    if expires_at.tzinfo is None:
        raise InvalidRequest("expires_at must carry a time zone")
    if expires_at <= now:
        raise InvalidRequest("expires_at must be in the future")
    if expires_at - now > MAX_HOLD:
        raise InvalidRequest(f"funds are held for at most {MAX_HOLD}")
    return expires_at


def reason_text(reason: str) -> str:
    """A rejection reason as stored: never empty, long ones cut (a reject never fails)."""
    text = " ".join(str(reason).split()) or "unspecified"
    if len(text) > MAX_REASON_LENGTH:
        return text[: MAX_REASON_LENGTH - 1] + "…"
    return text


def total_minor(postings: Iterable[Posting]) -> int:
    return sum(posting.amount_minor for posting in postings)


def debits_by_account(postings: Iterable[Posting]) -> dict[str, int]:
    debits: dict[str, int] = {}
    for posting in postings:
        debits[posting.debit_account] = debits.get(posting.debit_account, 0) + posting.amount_minor
    return debits


def credits_by_account(postings: Iterable[Posting]) -> dict[str, int]:
    credits: dict[str, int] = {}
    for posting in postings:
        account = posting.credit_account
        credits[account] = credits.get(account, 0) + posting.amount_minor
    return credits


def accounts_of(postings: Iterable[Posting]) -> list[str]:
    """Every account the postings touch, sorted: the order in which rows are locked."""
    return sorted({a for p in postings for a in (p.debit_account, p.credit_account)})


def check_currency(account_id: str, expected: str, found: str) -> None:
    if found != expected:
        raise CurrencyMismatch(account_id, expected, found)


def check_funds(
    account_id: str, currency: str, available_minor: int, debit_minor: int, allow_negative: bool
) -> None:
    if not allow_negative and debit_minor > available_minor:
        raise InsufficientFunds(account_id, Money(currency, available_minor))


def check_balance_limit(
    account_id: str,
    currency: str,
    limit_minor: int | None,
    balance_minor: int,
    incoming_minor: int,
    credit_minor: int,
) -> None:
    if limit_minor is not None and balance_minor + incoming_minor + credit_minor > limit_minor:
        raise BalanceLimitExceeded(account_id, Money(currency, limit_minor))


def check_hold(postings: Sequence[Posting], accounts: Mapping[str, AccountState]) -> str:
    """Whether the accounts can take the postings (one currency, the debited funds
    available, credits within balance limits); the transfer's currency."""
    currency = accounts[postings[0].debit_account].currency
    for account in accounts.values():
        check_currency(account.id, currency, account.currency)
    for account_id, amount in debits_by_account(postings).items():
        account = accounts[account_id]
        available = account.balance_minor - account.held_minor
        check_funds(account_id, currency, available, amount, account.allow_negative)
    for account_id, amount in credits_by_account(postings).items():
        account = accounts[account_id]
        check_balance_limit(
            account_id,
            currency,
            account.balance_limit_minor,
            account.balance_minor,
            account.incoming_minor,
            amount,
        )
    return currency


def assert_sound(accounts: Iterable[AccountState]) -> None:
    """The invariants of every account after every change (asserted, not checked:
    a failure is a bug in the ledger)."""
    for account in accounts:
        assert account.held_minor >= 0, f"negative hold on {account.id}"
        assert account.incoming_minor >= 0, f"negative pending credit on {account.id}"
        assert account.allow_negative or account.balance_minor >= account.held_minor, (
            f"account {account.id} overspent"
        )


def check_currency_code(currency: str) -> str:
    try:
        Money.zero(currency)
    except MoneyError as error:
        raise InvalidRequest(str(error)) from None
    return currency


def limit_minor(limit: Money | None, currency: str) -> int | None:
    """A balance limit as stored: ``None`` for none, else a non-negative amount."""
    if limit is None:
        return None
    if limit.currency != currency or limit.minor < 0:
        raise InvalidRequest(f"a balance limit is a non-negative {currency} amount")
    return limit.minor


def is_expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and now >= expires_at


def decide(transfer_id: str, current: TransferState, target: TransferState) -> bool:
    """Whether to move ``current`` to ``target``: True to apply it, False when the
    transfer already is ``target`` (a retry of the same decision). Any other move is
    refused: decided transfers never change again."""
    if target is TransferState.PREPARED:
        raise InvalidTransition(transfer_id, current, target)
    if current is target:
        return False
    if target not in ALLOWED_TRANSITIONS[current]:
        if current is TransferState.EXPIRED and target is TransferState.EXECUTED:
            raise TransferExpired(transfer_id)
        raise InvalidTransition(transfer_id, current, target)
    return True


def entry_amounts(postings: Sequence[Posting]) -> list[tuple[str, int]]:
    """The signed movements of an execution, in posting order (debit then credit).
    They sum to zero: that is the double-entry invariant, asserted here."""
    movements: list[tuple[str, int]] = []
    for posting in postings:
        movements.append((posting.debit_account, -posting.amount_minor))
        movements.append((posting.credit_account, posting.amount_minor))
    assert sum(amount for _, amount in movements) == 0, "unbalanced postings"
    return movements
