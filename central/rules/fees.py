"""The scheme fee: a stair-step schedule, pure (no I/O).

The band holding the amount gives the whole fee, ``flat + percent of the amount``; the
percent part is rounded half up to the minor unit, then the flat part added. The fee
applies only across DFSPs (``fee_for(amount, same_dfsp=True)`` is zero). Configured in
``[central]`` as ``scheme_fee = { bands = [{ up_to = "100", flat = "0.50" },
{ flat = "1", percent = "0.5" }] }``: ``up_to`` increasing, inclusive, the last band
without one; an empty table means no scheme fee.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

from ussdloop.config import ConfigError
from ussdloop.money import Money, MoneyError

MAX_BANDS: Final = 32
_PERCENT: Final = re.compile(r"\d{1,3}(?:\.\d{1,6})?")
_BAND_KEYS: Final = {"up_to", "flat", "percent"}


def round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


@dataclass(frozen=True, slots=True)
class FeeBand:
    up_to: Money | None  # inclusive; None: no upper bound
    flat: Money
    rate: Fraction = Fraction(0)  # 0.5 % is Fraction(1, 200)

    def fee_for(self, amount: Money) -> Money:
        return self.flat + Money(amount.currency, round_half_up(amount.minor * self.rate))


@dataclass(frozen=True, slots=True)
class SchemeFee:
    currency: str
    bands: tuple[FeeBand, ...] = ()

    def __post_init__(self) -> None:
        assert len(self.bands) <= MAX_BANDS
        bounds = [band.up_to for band in self.bands]
        assert not bounds or bounds[-1] is None, "the last band is unbounded"
        assert all(b is not None for b in bounds[:-1]), "only the last band is unbounded"

    def fee_for(self, amount: Money, *, same_dfsp: bool) -> Money:
        if amount.currency != self.currency:
            raise MoneyError(f"the scheme fee is in {self.currency}, not {amount.currency}")
        if same_dfsp or not self.bands:
            return Money.zero(self.currency)
        band = next(b for b in self.bands if b.up_to is None or amount <= b.up_to)
        return band.fee_for(amount)


def scheme_fee_from_config(
    config: Mapping[str, Any], currency: str, key: str = "central.scheme_fee"
) -> SchemeFee:
    """The schedule of ``config``; ConfigError naming the key at fault."""
    unknown = sorted(set(config) - {"bands"})
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", "unknown key (known: bands)")
    raw = config.get("bands", [])
    if not isinstance(raw, list) or len(raw) > MAX_BANDS:
        raise ConfigError(f"{key}.bands", f"a list of at most {MAX_BANDS} bands")
    bands: list[FeeBand] = []
    for index, item in enumerate(raw):
        at = f"{key}.bands[{index}]"
        if not isinstance(item, dict) or set(item) - _BAND_KEYS:
            raise ConfigError(at, "a band is a table of up_to, flat and percent")
        last = index == len(raw) - 1
        if last != ("up_to" not in item):
            raise ConfigError(f"{at}.up_to", "every band but the last has up_to; the last not")
        up_to = None if last else _amount(item["up_to"], currency, f"{at}.up_to")
        if up_to is not None and bands and bands[-1].up_to is not None and up_to <= bands[-1].up_to:
            raise ConfigError(f"{at}.up_to", "must be above the previous band's")
        bands.append(
            FeeBand(
                up_to,
                _amount(item.get("flat", "0"), currency, f"{at}.flat"),
                _rate(item.get("percent", "0"), f"{at}.percent"),
            )
        )
    return SchemeFee(currency, tuple(bands))


def _amount(value: Any, currency: str, key: str) -> Money:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(key, f"an amount as a decimal string, got {value!r}")
    try:
        amount = Money.parse(str(value), currency)
    except MoneyError as error:
        raise ConfigError(key, str(error)) from None
    if amount.minor < 0:
        raise ConfigError(key, "must not be negative")
    return amount


def _rate(value: Any, key: str) -> Fraction:
    text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _PERCENT.fullmatch(text):
        raise ConfigError(key, f'a percent such as "0.5", got {value!r}')
    rate = Fraction(text) / 100
    if rate > 1:
        raise ConfigError(key, "at most 100")
    return rate
