"""Per-tier limits and the checks a transfer must pass; pure, the caller supplies the figures.

Five limits (SPEC section 3, "Limits and tiers"), each "none" or a value: transfers per
day (a count), amount per day, amount per week, maximum single transfer, maximum balance.
Amount limits apply to the principal, not the fees. Days and weeks are calendar windows
in the DFSP's time zone; a week starts on Monday at 00:00.

What counts toward them (SPEC section 3): every outgoing transfer that was attempted
counts toward the count limit, whatever became of it (prepared, executed, rejected,
expired: cancelled or rejected transfers count); only money that moved or is held
(prepared or executed) counts toward the amount limits; refunds and transfers between
one's own accounts never count, and own-account transfers are never limited at all.
``usage_from`` applies these rules to the customer's past transfers; a caller that
computes usage another way (a SQL query) must apply the same ones.

Configuration, one TOML table per tier (every key is required; ``"none"`` for no limit):

    limits = { transfers_per_day = 25, amount_per_day = "1000", amount_per_week = "5000",
               max_transfer = "500", max_balance = "none" }
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from dfsp.domain.fees import amount_setting
from dfsp.domain.transfers import TransferState
from ussdloop.config import ConfigError
from ussdloop.money import Money, MoneyError


class LimitName(enum.StrEnum):
    TRANSFERS_PER_DAY = "transfers_per_day"
    AMOUNT_PER_DAY = "amount_per_day"
    AMOUNT_PER_WEEK = "amount_per_week"
    MAX_TRANSFER = "max_transfer"
    MAX_BALANCE = "max_balance"


@dataclass(frozen=True, slots=True)
class Limits:
    """A tier's limits; None is "none" (no limit). The default is no limit at all."""

    transfers_per_day: int | None = None
    amount_per_day: Money | None = None
    amount_per_week: Money | None = None
    max_transfer: Money | None = None
    max_balance: Money | None = None

    def __post_init__(self) -> None:
        count = self.transfers_per_day
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise ValueError("transfers_per_day is a whole number or None")
        if count is not None and count < 0:
            raise ValueError("transfers_per_day must not be negative")
        currencies = {amount.currency for amount in self._amounts() if amount is not None}
        if len(currencies) > 1:
            raise MoneyError(f"limits mix currencies: {', '.join(sorted(currencies))}")
        if any(amount is not None and amount.minor < 0 for amount in self._amounts()):
            raise ValueError("amount limits must not be negative")

    def _amounts(self) -> tuple[Money | None, ...]:
        return (self.amount_per_day, self.amount_per_week, self.max_transfer, self.max_balance)

    @classmethod
    def from_toml(cls, data: Any, currency: str, key: str = "limits") -> Limits:
        """Build from a TOML table; every mistake is a ``ConfigError`` naming its key."""
        if not isinstance(data, dict):
            raise ConfigError(key, f"expected a table, got {data!r}")
        names = [name.value for name in LimitName]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"{key}.{unknown[0]}", f"unknown key (known: {', '.join(names)})")
        for name in names:
            if name not in data:
                raise ConfigError(f"{key}.{name}", 'missing (write "none" for no limit)')

        def amount(name: str) -> Money | None:
            value = data[name]
            return None if value == "none" else amount_setting(value, currency, f"{key}.{name}")

        return cls(
            transfers_per_day=_count_setting(data["transfers_per_day"], f"{key}.transfers_per_day"),
            amount_per_day=amount("amount_per_day"),
            amount_per_week=amount("amount_per_week"),
            max_transfer=amount("max_transfer"),
            max_balance=amount("max_balance"),
        )


def _count_setting(value: Any, key: str) -> int | None:
    if value == "none":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(key, f'expected "none" or a whole number from 0, got {value!r}')
    return value


@dataclass(frozen=True, slots=True)
class Usage:
    """What the payer has used in the current windows, counted by the rules above."""

    count_today: int
    amount_today: Money
    amount_this_week: Money

    @classmethod
    def nothing(cls, currency: str) -> Usage:
        return cls(0, Money.zero(currency), Money.zero(currency))


@dataclass(frozen=True, slots=True)
class LimitViolation:
    """Which limit a transfer would break, its value, and what is left within it:
    transfers left today, amount left today or this week, the largest transfer
    allowed, or how much more the payee's balance may take."""

    limit: LimitName
    value: int | Money
    remaining: int | Money


def check_transfer(
    limits: Limits, usage: Usage, amount: Money, *, own_account: bool
) -> LimitViolation | None:
    """The first payer-side limit that sending ``amount`` (the principal) would break.

    Transfers between one's own accounts are never limited (``own_account=True``
    always passes); ``usage`` must leave them out, and refunds, and count rejected
    and expired transfers (see ``usage_from``)."""
    if own_account:
        return None
    if limits.max_transfer is not None and amount > limits.max_transfer:
        return LimitViolation(LimitName.MAX_TRANSFER, limits.max_transfer, limits.max_transfer)
    count_limit = limits.transfers_per_day
    if count_limit is not None and usage.count_today >= count_limit:
        return LimitViolation(LimitName.TRANSFERS_PER_DAY, count_limit, 0)
    windows = (
        (LimitName.AMOUNT_PER_DAY, limits.amount_per_day, usage.amount_today),
        (LimitName.AMOUNT_PER_WEEK, limits.amount_per_week, usage.amount_this_week),
    )
    for name, limit, used in windows:
        if limit is not None and used + amount > limit:
            return LimitViolation(name, limit, _left(limit, used))
    return None


def check_balance(
    limits: Limits, balance_after: Money, *, received: Money, own_account: bool = False
) -> LimitViolation | None:
    """Whether the payee may hold ``balance_after`` once ``received`` is credited.

    Transfers between one's own accounts are never limited."""
    limit = limits.max_balance
    if own_account or limit is None or balance_after <= limit:
        return None
    return LimitViolation(LimitName.MAX_BALANCE, limit, _left(limit, balance_after - received))


def _left(limit: Money, used: Money) -> Money:
    return max(limit - used, Money.zero(limit.currency))


# --- usage from past transfers ------------------------------------------------------------

# Every attempt counts toward the count limit; only money moved or held, toward the amounts.
_AMOUNT_STATES = frozenset({TransferState.PREPARED, TransferState.EXECUTED})


@dataclass(frozen=True, slots=True)
class PastTransfer:
    """One outgoing transfer of the customer (any of their accounts), as ``usage_from``
    needs it; ``at`` is when it was made (time-zone aware)."""

    at: datetime
    amount: Money
    state: TransferState
    own_accounts: bool = False
    refund: bool = False


def usage_from(
    transfers: Iterable[PastTransfer], now: datetime, *, tz: tzinfo, currency: str
) -> Usage:
    """The usage at ``now`` from the customer's past outgoing transfers: today's and this
    week's windows in ``tz``; own-account transfers and refunds left out; every state
    counted toward the count, only prepared and executed ones toward the amounts."""
    day = day_window(now, tz)
    week = week_window(now, tz)
    count = 0
    today = Money.zero(currency)
    this_week = Money.zero(currency)
    for transfer in transfers:
        if transfer.own_accounts or transfer.refund:
            continue
        at = _utc(transfer.at, "a transfer's time")
        in_day = day[0] <= at < day[1]
        if in_day:
            count += 1
        if transfer.state in _AMOUNT_STATES:
            if in_day:
                today += transfer.amount
            if week[0] <= at < week[1]:
                this_week += transfer.amount
    return Usage(count, today, this_week)


def day_window(now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The calendar day holding ``now`` in ``tz``, as [start, end) in UTC."""
    today = _utc(now, "now").astimezone(tz).date()
    return _midnight(today, tz), _midnight(today + timedelta(days=1), tz)


def week_window(now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The week holding ``now`` in ``tz``, from Monday 00:00, as [start, end) in UTC."""
    today = _utc(now, "now").astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())
    return _midnight(monday, tz), _midnight(monday + timedelta(days=7), tz)


def _midnight(day: date, tz: tzinfo) -> datetime:
    # Compared in UTC: aware datetimes sharing a tzinfo compare by wall clock, which is
    # wrong across a daylight-saving change.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must carry a time zone")
    return moment.astimezone(UTC)
