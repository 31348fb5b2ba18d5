"""Money: integer minor units with their currency, decimal strings on the wire, never floats.

``Money.parse("12.5", "USD")`` is 1250 cents; ``str`` gives the wire form ``"12.50"``;
``screen_text()`` the USSD form (``"25"`` for whole amounts, ``"12.50"`` otherwise,
SPEC section 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ISO 4217 minor-unit digits of the currencies a network is likely to configure.
CURRENCY_SCALES: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "TZS": 2,
    "KES": 2,
    "ZAR": 2,
    "NGN": 2,
    "GHS": 2,
    "INR": 2,
    "UGX": 0,
    "RWF": 0,
    "XOF": 0,
    "XAF": 0,
    "JPY": 0,
}
MAX_MINOR = 2**63 - 1  # fits every ledger column and ILP's unsigned 64-bit amounts
_DECIMAL = re.compile(r"(-?)(\d{1,19})(?:\.(\d+))?")


class MoneyError(ValueError):
    """An amount or currency that cannot be accepted, said in words a person can act on."""


def currency_scale(currency: str) -> int:
    try:
        return CURRENCY_SCALES[currency]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r}") from None


@dataclass(frozen=True, slots=True)
class Money:
    currency: str
    minor: int

    def __post_init__(self) -> None:
        currency_scale(self.currency)
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise MoneyError(f"amounts are whole minor units, not {type(self.minor).__name__}")
        if abs(self.minor) > MAX_MINOR:
            raise MoneyError("amount too large")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(currency, 0)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """A decimal string such as ``"12"``, ``"12.5"`` or ``"-0.01"``; no more decimals
        than the currency has, no exponent, no grouping."""
        scale = currency_scale(currency)
        match = _DECIMAL.fullmatch(text.strip())
        if match is None:
            raise MoneyError(f"{text!r} is not an amount")
        sign, whole, fraction = match.groups()
        fraction = fraction or ""
        if len(fraction) > scale:
            raise MoneyError(f"{currency} amounts have at most {scale} decimals")
        minor = int(whole) * 10**scale + int(fraction.ljust(scale, "0") or "0")
        return cls(currency, -minor if sign else minor)

    @property
    def scale(self) -> int:
        return currency_scale(self.currency)

    def __str__(self) -> str:
        """The wire form: always the currency's decimals (``"1000.00"``)."""
        sign = "-" if self.minor < 0 else ""
        whole, fraction = divmod(abs(self.minor), 10**self.scale)
        if not self.scale:
            return f"{sign}{whole}"
        return f"{sign}{whole}.{fraction:0{self.scale}d}"

    def screen_text(self) -> str:
        """The USSD form: whole amounts without decimals (``"25"``), others with (``"12.50"``)."""
        if self.minor % 10**self.scale == 0:
            return str(self.minor // 10**self.scale)
        return str(self)

    def with_currency(self) -> str:
        """As screens and SMS write an amount: ``"25 USD"``, ``"12.50 USD"``."""
        return f"{self.screen_text()} {self.currency}"

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot mix {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.currency, self.minor + other.minor)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.currency, self.minor - other.minor)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.minor >= other.minor

    def __neg__(self) -> Money:
        return Money(self.currency, -self.minor)

    @property
    def is_positive(self) -> bool:
        return self.minor > 0
