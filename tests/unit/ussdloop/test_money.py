"""Money: integer minor units, decimal strings on the wire, the USSD screen form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ussdloop.money import MAX_MINOR, Money, MoneyError


def test_decimal_strings_become_minor_units() -> None:
    assert Money.parse("12.5", "USD") == Money("USD", 1250)
    assert Money.parse("1000", "USD").minor == 100_000
    assert Money.parse("-0.01", "USD").minor == -1
    assert Money.parse("5000", "UGX").minor == 5000


@pytest.mark.parametrize("text", ["1.234", "1e3", "1,000", "", "abc", "12.", ".5", "0x10"])
def test_what_is_not_a_usd_amount_is_refused_with_a_clear_error(text: str) -> None:
    with pytest.raises(MoneyError):
        Money.parse(text, "USD")


def test_a_currency_without_decimals_takes_none() -> None:
    with pytest.raises(MoneyError, match="at most 0 decimals"):
        Money.parse("10.5", "UGX")


def test_the_wire_form_always_has_the_currency_decimals() -> None:
    assert str(Money("USD", 100_000)) == "1000.00"
    assert str(Money("USD", -4400)) == "-44.00"
    assert str(Money("UGX", 5000)) == "5000"


def test_the_screen_form_drops_decimals_of_whole_amounts_only() -> None:
    assert Money("USD", 2500).screen_text() == "25"
    assert Money("USD", 1250).screen_text() == "12.50"


def test_floats_unknown_currencies_and_mixed_currencies_are_refused() -> None:
    with pytest.raises(MoneyError):
        Money("USD", 1.5)  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="unknown currency"):
        Money("ZZZ", 1)
    with pytest.raises(MoneyError, match="cannot mix"):
        _ = Money("USD", 1) + Money("EUR", 1)
    with pytest.raises(MoneyError, match="cannot mix"):
        _ = Money("USD", 1) < Money("EUR", 2)


@given(st.integers(-MAX_MINOR, MAX_MINOR), st.sampled_from(["USD", "UGX", "TZS"]))
def test_the_wire_form_parses_back_to_the_same_amount(minor: int, currency: str) -> None:
    amount = Money(currency, minor)
    assert Money.parse(str(amount), currency) == amount
    assert Money.parse(amount.screen_text(), currency) == amount


@given(st.integers(-(10**12), 10**12), st.integers(-(10**12), 10**12))
def test_addition_and_subtraction_are_exact(a: int, b: int) -> None:
    x, y = Money("USD", a), Money("USD", b)
    assert (x + y) - y == x
    assert (x + y).minor == a + b
