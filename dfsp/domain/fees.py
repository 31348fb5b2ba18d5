"""Fees: stair-step schedules per transaction type and source, and the quote shown before the PIN.

A schedule is zero or a list of amount bands. The band that holds the amount gives the
whole fee, ``flat + percent of the amount`` (a stair step, not marginal like tax brackets).
Rounding, the one rule used everywhere: the percentage part is rounded half up to the
minor unit (0.5 cent becomes 1 cent, 0.49 cent becomes 0), then the flat part is added.
Each fee is rounded once, so the lines of a quote add up exactly to what moves.

Who pays (SPEC section 3, "Fees"): the sender fee, the agent cash-out fee and the scheme
fee are added to what the payer is debited; the receiver fee and the agent cash-in fee
are kept back from what the payee is credited. So the customer pays the agent fee both
ways: the payee of a cash-in, the payer of a cash-out. The scheme (central) fee applies
only across DFSPs; transfers between one's own accounts carry no fee at all.

Configuration, TOML under ``[fees]``; amounts are decimal strings in the DFSP's currency
(whole numbers are also accepted), percents are decimal strings or numbers:

    [fees.p2p.sender]
    bands = [
      { up_to = "100", flat = "0.50" },                  # 0.01 .. 100.00
      { up_to = "1000", flat = "1", percent = "0.5" },   # 100.01 .. 1000.00
      { flat = "5", percent = "0.25" },                  # the last band has no upper bound
    ]

    [fees.cash_out]
    agent = { bands = [{ flat = "0.30", percent = "1" }] }
    receiver = "zero"                                    # the same as leaving it out

Types: p2p, invoice, cash_in, cash_out, bulk. Sources: sender, receiver, scheme, and
``agent`` in cash_in (the agent cash-in fee) and cash_out (the agent cash-out fee).
"""

from __future__ import annotations

import enum
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ussdloop.config import ConfigError
from ussdloop.money import Money, MoneyError

MAX_BANDS = 32
_PERCENT = re.compile(r"\d{1,3}(?:\.\d{1,6})?")


class TransactionType(enum.StrEnum):
    P2P = "p2p"
    INVOICE = "invoice"
    CASH_IN = "cash_in"
    CASH_OUT = "cash_out"
    BULK = "bulk"


class FeeSource(enum.StrEnum):
    SENDER = "sender"
    RECEIVER = "receiver"
    AGENT_CASH_IN = "agent_cash_in"
    AGENT_CASH_OUT = "agent_cash_out"
    SCHEME = "scheme"

    @property
    def paid_by_payer(self) -> bool:
        """Added to the payer's debit; otherwise kept back from the payee's credit."""
        return self in (FeeSource.SENDER, FeeSource.AGENT_CASH_OUT, FeeSource.SCHEME)


class Route(enum.StrEnum):
    """Where the money goes; own-account transfers exist only within one DFSP."""

    OWN_ACCOUNTS = "own_accounts"
    SAME_DFSP = "same_dfsp"
    CROSS_DFSP = "cross_dfsp"


# The sources a transaction type may configure, by their key under ``fees.<type>``.
_COMMON = {"sender": FeeSource.SENDER, "receiver": FeeSource.RECEIVER, "scheme": FeeSource.SCHEME}
SOURCE_KEYS: Mapping[TransactionType, Mapping[str, FeeSource]] = {
    TransactionType.P2P: _COMMON,
    TransactionType.INVOICE: _COMMON,
    TransactionType.BULK: _COMMON,
    TransactionType.CASH_IN: {**_COMMON, "agent": FeeSource.AGENT_CASH_IN},
    TransactionType.CASH_OUT: {**_COMMON, "agent": FeeSource.AGENT_CASH_OUT},
}


class FeeError(ValueError):
    """A fee that cannot be computed or a schedule that cannot be built."""


class BandError(FeeError):
    """A band that does not fit its schedule; names the band and the field at fault."""

    def __init__(self, index: int, field_name: str, problem: str) -> None:
        super().__init__(f"bands[{index}].{field_name}: {problem}")
        self.index = index
        self.field_name = field_name
        self.problem = problem


class FeesExceedAmount(FeeError):
    """The fees kept back from the payee would take the whole amount (or more)."""

    def __init__(self, amount: Money, kept_back: Money) -> None:
        super().__init__(f"fees of {kept_back} {amount.currency} take the whole of {amount}")
        self.amount = amount
        self.kept_back = kept_back


def round_half_up(value: Fraction) -> int:
    """The rounding rule of every fee: to the nearest minor unit, halves upward."""
    return math.floor(value + Fraction(1, 2))


@dataclass(frozen=True, slots=True)
class FeeBand:
    """Amounts up to ``up_to`` (inclusive; None: no upper bound) pay ``flat + rate * amount``."""

    up_to: Money | None
    flat: Money
    rate: Fraction = Fraction(0)  # 0.5 % is Fraction(1, 200)

    def __post_init__(self) -> None:
        if self.flat.minor < 0:
            raise FeeError("a flat fee is not negative")
        if not 0 <= self.rate <= 1:
            raise FeeError("a fee's percent is between 0 and 100")

    def fee_for(self, amount: Money) -> Money:
        return self.flat + Money(amount.currency, round_half_up(amount.minor * self.rate))


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Zero (no bands) or bands with increasing ``up_to``, the last one unbounded."""

    currency: str
    bands: tuple[FeeBand, ...] = ()

    def __post_init__(self) -> None:
        if len(self.bands) > MAX_BANDS:
            raise FeeError(f"a schedule has at most {MAX_BANDS} bands")
        previous: Money | None = None
        for index, band in enumerate(self.bands):
            if band.flat.currency != self.currency:
                raise BandError(index, "flat", f"must be in {self.currency}")
            last = index == len(self.bands) - 1
            if band.up_to is None:
                if not last:
                    raise BandError(index, "up_to", "missing (only the last band is unbounded)")
                continue
            if last:
                raise BandError(index, "up_to", "the last band has none: it covers every amount")
            if band.up_to.currency != self.currency or band.up_to.minor <= 0:
                raise BandError(index, "up_to", f"must be a positive {self.currency} amount")
            if previous is not None and band.up_to <= previous:
                raise BandError(index, "up_to", f"must be above the band before ({previous})")
            previous = band.up_to

    @classmethod
    def zero(cls, currency: str) -> FeeSchedule:
        return cls(currency)

    @classmethod
    def flat(cls, fee: Money) -> FeeSchedule:
        return cls(fee.currency, (FeeBand(None, fee),))

    @property
    def is_zero(self) -> bool:
        return not self.bands

    def fee_for(self, amount: Money) -> Money:
        """The fee on a positive ``amount``: the band holding it, rounded half up."""
        if amount.currency != self.currency:
            raise MoneyError(f"cannot mix {self.currency} and {amount.currency}")
        if amount.minor <= 0:
            raise FeeError(f"fees are charged on positive amounts, not {amount}")
        for band in self.bands:
            if band.up_to is None or amount <= band.up_to:
                fee = band.fee_for(amount)
                assert fee.minor >= 0, "a fee is never negative"
                return fee
        return Money.zero(self.currency)

    @property
    def is_monotone(self) -> bool:
        """Whether a larger amount never pays a smaller fee (the step at each band edge
        does not go down; within a band the fee cannot go down)."""
        for below, above in itertools.pairwise(self.bands):
            assert below.up_to is not None
            edge = below.up_to
            if above.fee_for(Money(edge.currency, edge.minor + 1)) < below.fee_for(edge):
                return False
        return True


@dataclass(frozen=True, slots=True)
class FeeLine:
    """One fee of a transfer: its own ledger row and settlement item."""

    source: FeeSource
    amount: Money


@dataclass(frozen=True, slots=True)
class Quote:
    """What a transfer costs, shown before the PIN: only non-zero fees are listed.

    ``debit`` is the total taken from the payer (amount + payer-side fees), ``credit``
    what reaches the payee (amount - payee-side fees); ``debit == credit + total_fees``.
    """

    kind: TransactionType
    route: Route
    amount: Money
    fees: tuple[FeeLine, ...] = ()

    def __post_init__(self) -> None:
        if self.amount.minor <= 0:
            raise FeeError(f"a transfer moves a positive amount, not {self.amount}")
        sources = [line.source for line in self.fees]
        if len(set(sources)) != len(sources):
            raise FeeError("each fee source appears at most once in a quote")
        for line in self.fees:
            if line.amount.currency != self.amount.currency or line.amount.minor <= 0:
                raise FeeError(f"fee lines are positive {self.amount.currency} amounts")
            if line.source not in SOURCE_KEYS[self.kind].values():
                raise FeeError(f"{self.kind} transfers have no {line.source} fee")
        if self.route is Route.OWN_ACCOUNTS and self.fees:
            raise FeeError("transfers between one's own accounts carry no fee")
        if self.route is not Route.CROSS_DFSP and FeeSource.SCHEME in sources:
            raise FeeError("the scheme fee applies only across DFSPs")
        if self.credit.minor <= 0:
            raise FeesExceedAmount(self.amount, self.amount - self.credit)
        assert self.debit - self.credit == self.total_fees, "a quote creates or loses money"

    def fee(self, source: FeeSource) -> Money:
        return self._total(lambda line: line.source is source)

    @property
    def currency(self) -> str:
        return self.amount.currency

    @property
    def local_fee(self) -> Money:
        """The payer's own DFSP's fees: the ``Local fee`` line of the confirm screen."""
        return self.fee(FeeSource.SENDER) + self.fee(FeeSource.AGENT_CASH_OUT)

    @property
    def receiver_fee(self) -> Money:
        return self.fee(FeeSource.RECEIVER) + self.fee(FeeSource.AGENT_CASH_IN)

    @property
    def scheme_fee(self) -> Money:
        return self.fee(FeeSource.SCHEME)

    @property
    def payer_fees(self) -> Money:
        return self._total(lambda line: line.source.paid_by_payer)

    @property
    def payee_fees(self) -> Money:
        return self._total(lambda line: not line.source.paid_by_payer)

    @property
    def total_fees(self) -> Money:
        return self._total(lambda line: True)

    @property
    def debit(self) -> Money:
        return self.amount + self.payer_fees

    @property
    def credit(self) -> Money:
        return self.amount - self.payee_fees

    def _total(self, chosen: Callable[[FeeLine], bool]) -> Money:
        return Money(self.currency, sum(line.amount.minor for line in self.fees if chosen(line)))


@dataclass(frozen=True)
class FeeTable:
    """A DFSP's fees: a schedule per (transaction type, source); absent ones are zero."""

    currency: str
    schedules: Mapping[tuple[TransactionType, FeeSource], FeeSchedule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for (kind, source), schedule in self.schedules.items():
            if source not in SOURCE_KEYS[kind].values():
                raise FeeError(f"{kind} transfers have no {source} fee")
            if schedule.currency != self.currency:
                raise FeeError(f"the {kind} {source} fee must be in {self.currency}")

    def schedule(self, kind: TransactionType, source: FeeSource) -> FeeSchedule:
        schedule = self.schedules.get((kind, source))
        return FeeSchedule.zero(self.currency) if schedule is None else schedule

    def payer_fees(self, kind: TransactionType, amount: Money, route: Route) -> tuple[FeeLine, ...]:
        """The fees this DFSP adds to its payer's debit (sender, agent cash-out, scheme)."""
        if route is Route.OWN_ACCOUNTS:
            return ()
        sources = [FeeSource.SENDER, FeeSource.AGENT_CASH_OUT]
        if route is Route.CROSS_DFSP:
            sources.append(FeeSource.SCHEME)
        return self._lines(kind, amount, sources)

    def payee_fees(self, kind: TransactionType, amount: Money, route: Route) -> tuple[FeeLine, ...]:
        """The fees this DFSP keeps back from its payee's credit (receiver, agent cash-in)."""
        if route is Route.OWN_ACCOUNTS:
            return ()
        return self._lines(kind, amount, [FeeSource.RECEIVER, FeeSource.AGENT_CASH_IN])

    def quote(
        self,
        kind: TransactionType,
        amount: Money,
        route: Route,
        *,
        payee_fees: Sequence[FeeLine] | None = None,
        scheme_fee: Money | None = None,
    ) -> Quote:
        """The quote at the payer's DFSP. Within a DFSP the payee's fees come from this
        table; across DFSPs pass ``payee_fees``, what the payee's DFSP quoted (its
        ``payee_fees(kind, amount, Route.CROSS_DFSP)``), and ``scheme_fee``, what the
        centre's rules charge (in place of this table's scheme line)."""
        if payee_fees is None:
            if route is Route.CROSS_DFSP:
                raise FeeError("a cross-DFSP quote needs the fees of the payee's DFSP")
            payee_fees = self.payee_fees(kind, amount, route)
        if any(line.source.paid_by_payer for line in payee_fees):
            raise FeeError("the payee's DFSP quoted a fee the payer pays")
        payer_fees = self.payer_fees(kind, amount, route)
        if scheme_fee is not None:
            if route is not Route.CROSS_DFSP:
                raise FeeError("the scheme fee applies only across DFSPs")
            payer_fees = tuple(line for line in payer_fees if line.source is not FeeSource.SCHEME)
            if scheme_fee.minor:
                payer_fees += (FeeLine(FeeSource.SCHEME, scheme_fee),)
        return Quote(kind, route, amount, payer_fees + tuple(payee_fees))

    def _lines(
        self, kind: TransactionType, amount: Money, sources: Iterable[FeeSource]
    ) -> tuple[FeeLine, ...]:
        lines = (FeeLine(source, self.schedule(kind, source).fee_for(amount)) for source in sources)
        return tuple(line for line in lines if line.amount.minor > 0)

    @classmethod
    def from_toml(cls, data: Any, currency: str, key: str = "fees") -> FeeTable:
        """Build from the ``[fees]`` table; every mistake is a ``ConfigError`` naming its key."""
        table = _table(data, key)
        schedules: dict[tuple[TransactionType, FeeSource], FeeSchedule] = {}
        for type_name, sources in table.items():
            type_key = f"{key}.{type_name}"
            try:
                kind = TransactionType(type_name)
            except ValueError:
                known = ", ".join(TransactionType)
                raise ConfigError(type_key, f"unknown transaction type (known: {known})") from None
            for source_name, value in _table(sources, type_key).items():
                source_key = f"{type_key}.{source_name}"
                if source_name not in SOURCE_KEYS[kind]:
                    known = ", ".join(SOURCE_KEYS[kind])
                    raise ConfigError(source_key, f"unknown fee source (known: {known})")
                schedule = schedule_from_toml(value, currency, source_key)
                if not schedule.is_zero:
                    schedules[kind, SOURCE_KEYS[kind][source_name]] = schedule
        return cls(currency, schedules)


def schedule_from_toml(data: Any, currency: str, key: str) -> FeeSchedule:
    """``"zero"`` or ``{ bands = [{ up_to = "100", flat = "1", percent = "0.5" }, ...] }``."""
    if data == "zero":
        return FeeSchedule.zero(currency)
    table = _table(data, key, 'expected "zero" or a table with bands')
    unknown = sorted(set(table) - {"bands"})
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", "unknown key (known: bands)")
    raw_bands = table.get("bands", [])
    if not isinstance(raw_bands, list):
        raise ConfigError(f"{key}.bands", f"expected a list of bands, got {raw_bands!r}")
    if len(raw_bands) > MAX_BANDS:
        raise ConfigError(f"{key}.bands", f"at most {MAX_BANDS} bands")
    bands = [_band(raw, currency, f"{key}.bands[{i}]") for i, raw in enumerate(raw_bands)]
    try:
        return FeeSchedule(currency, tuple(bands))
    except BandError as error:
        raise ConfigError(f"{key}.bands[{error.index}].{error.field_name}", error.problem) from None


def _band(data: Any, currency: str, key: str) -> FeeBand:
    table = _table(data, key)
    unknown = sorted(set(table) - {"up_to", "flat", "percent"})
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", "unknown key (known: up_to, flat, percent)")
    up_to = table.get("up_to")
    return FeeBand(
        up_to=None if up_to is None else amount_setting(up_to, currency, f"{key}.up_to"),
        flat=amount_setting(table.get("flat", 0), currency, f"{key}.flat"),
        rate=percent_setting(table.get("percent", 0), f"{key}.percent") / 100,
    )


def amount_setting(value: Any, currency: str, key: str) -> Money:
    """A non-negative configured amount: a decimal string (``"1.50"``) or a whole number."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(key, f'expected an amount such as "1.50", got {value!r}')
    try:
        amount = Money.parse(str(value), currency)
    except MoneyError as error:
        raise ConfigError(key, str(error)) from None
    if amount.minor < 0:
        raise ConfigError(key, "must not be negative")
    return amount


def percent_setting(value: Any, key: str) -> Fraction:
    """A percent from 0 to 100 as an exact fraction: ``"0.5"``, ``0.5`` or ``1``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(key, f"expected a percent such as 0.5, got {value!r}")
    text = repr(value) if isinstance(value, float) else str(value)
    if not _PERCENT.fullmatch(text):
        raise ConfigError(key, f"expected a percent from 0 to 100 such as 0.5, got {value!r}")
    percent = Fraction(text)
    if percent > 100:
        raise ConfigError(key, f"must be between 0 and 100, got {value!r}")
    return percent


def _table(data: Any, key: str, problem: str = "expected a table") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(key, f"{problem}, got {data!r}")
    return data


# SPEC section 7: 1 (USD) flat sender fee on send money and on invoice payment, nothing else.
DEMO_FEES: Mapping[str, Any] = {
    "p2p": {"sender": {"bands": [{"flat": "1"}]}},
    "invoice": {"sender": {"bands": [{"flat": "1"}]}},
}


def demo_fee_table(currency: str = "USD") -> FeeTable:
    return FeeTable.from_toml(dict(DEMO_FEES), currency)
