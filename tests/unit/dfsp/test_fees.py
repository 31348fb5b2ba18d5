"""Fees: stair-step schedules, who pays what, the quote shown before the PIN (REFERENCE 6.6)."""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dfsp.domain.fees import (
    FeeBand,
    FeeError,
    FeeLine,
    FeeSchedule,
    FeesExceedAmount,
    FeeSource,
    FeeTable,
    Quote,
    Route,
    TransactionType,
    demo_fee_table,
    round_half_up,
)
from ussdloop.config import ConfigError
from ussdloop.money import Money


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


# 0.01..100.00: 0.50 + 1 %; 100.01..1000.00: 1 + 0.5 %; above: 5 flat.
STAIR_TOML: dict[str, Any] = {
    "bands": [
        {"up_to": "100", "flat": "0.50", "percent": "1"},
        {"up_to": "1000", "flat": "1", "percent": 0.5},
        {"flat": 5},
    ]
}
STAIR = FeeTable.from_toml({"p2p": {"sender": STAIR_TOML}}, "USD").schedule(
    TransactionType.P2P, FeeSource.SENDER
)


# --- schedules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "fee"),
    [
        ("0.01", "0.50"),  # 0.0001 rounds to 0
        ("50", "1.00"),
        ("100", "1.50"),  # the top of the first band
        ("100.01", "1.50"),  # the bottom of the second: 1 + 0.500050 rounds to 1.50
        ("200", "2.00"),
        ("1000", "6.00"),  # the top of the second band
        ("1000.01", "5.00"),  # above: the flat 5 of the last band
        ("1000000", "5.00"),
    ],
)
def test_the_band_holding_the_amount_gives_the_whole_fee(amount: str, fee: str) -> None:
    assert STAIR.fee_for(usd(amount)) == usd(fee)


def test_the_percentage_part_is_rounded_half_up_to_the_cent() -> None:
    half_percent = FeeSchedule("USD", (FeeBand(None, usd("0"), Fraction(1, 200)),))
    assert half_percent.fee_for(usd("1.01")) == usd("0.01")  # 0.505 cent
    assert half_percent.fee_for(usd("0.99")) == usd("0")  # 0.495 cent
    assert half_percent.fee_for(usd("1.00")) == usd("0.01")  # exactly half a cent goes up
    assert round_half_up(Fraction(5, 2)) == 3
    assert round_half_up(Fraction(249, 100)) == 2


def test_a_zero_schedule_charges_nothing() -> None:
    assert FeeSchedule.zero("USD").fee_for(usd("1000")) == usd("0")


def test_fees_are_charged_on_positive_amounts_in_the_schedule_currency() -> None:
    with pytest.raises(FeeError):
        STAIR.fee_for(usd("0"))
    with pytest.raises(ValueError, match="cannot mix"):
        STAIR.fee_for(Money("UGX", 100))


def test_a_schedule_whose_fee_drops_at_a_band_edge_says_it_is_not_monotone() -> None:
    assert not STAIR.is_monotone  # 6.00 at 1000.00, 5.00 at 1000.01
    assert FeeSchedule.flat(usd("1")).is_monotone


# --- quotes -------------------------------------------------------------------------------


def test_the_demo_charges_one_dollar_to_the_sender_of_send_money_and_invoice_payment() -> None:
    fees = demo_fee_table()
    for kind in (TransactionType.P2P, TransactionType.INVOICE):
        quote = fees.quote(kind, usd("25"), Route.SAME_DFSP)
        assert (quote.local_fee, quote.receiver_fee, quote.scheme_fee) == (
            usd("1"),
            usd("0"),
            usd("0"),
        )
        assert (quote.debit, quote.credit) == (usd("26"), usd("25"))
        assert quote.fees == (FeeLine(FeeSource.SENDER, usd("1")),)
    cross = fees.quote(TransactionType.P2P, usd("25"), Route.CROSS_DFSP, payee_fees=())
    assert (cross.scheme_fee, cross.debit) == (usd("0"), usd("26"))
    for kind in (TransactionType.CASH_IN, TransactionType.CASH_OUT, TransactionType.BULK):
        assert fees.quote(kind, usd("25"), Route.SAME_DFSP).fees == ()


def test_transfers_between_ones_own_accounts_are_exempt() -> None:
    quote = demo_fee_table().quote(TransactionType.P2P, usd("25"), Route.OWN_ACCOUNTS)
    assert (quote.total_fees, quote.debit, quote.credit) == (usd("0"), usd("25"), usd("25"))
    with pytest.raises(FeeError, match="own accounts"):
        Quote(
            TransactionType.P2P,
            Route.OWN_ACCOUNTS,
            usd("25"),
            (FeeLine(FeeSource.SENDER, usd("1")),),
        )


def test_receiver_fees_are_kept_back_from_the_payee_and_may_not_take_it_all() -> None:
    fees = FeeTable.from_toml({"p2p": {"receiver": {"bands": [{"flat": "1"}]}}}, "USD")
    quote = fees.quote(TransactionType.P2P, usd("10"), Route.SAME_DFSP)
    assert (quote.debit, quote.receiver_fee, quote.credit) == (usd("10"), usd("1"), usd("9"))
    with pytest.raises(FeesExceedAmount):
        fees.quote(TransactionType.P2P, usd("1"), Route.SAME_DFSP)


def test_the_customer_pays_the_agent_fee_both_ways() -> None:
    agent_fee = {"agent": {"bands": [{"flat": "0.30"}]}}
    fees = FeeTable.from_toml({"cash_in": agent_fee, "cash_out": agent_fee}, "USD")
    cash_in = fees.quote(TransactionType.CASH_IN, usd("20"), Route.SAME_DFSP)
    assert (cash_in.debit, cash_in.credit) == (usd("20"), usd("19.70"))  # the customer is payee
    assert cash_in.fee(FeeSource.AGENT_CASH_IN) == usd("0.30")
    cash_out = fees.quote(TransactionType.CASH_OUT, usd("20"), Route.SAME_DFSP)
    assert (cash_out.debit, cash_out.credit) == (usd("20.30"), usd("20"))  # the customer pays
    assert cash_out.local_fee == cash_out.fee(FeeSource.AGENT_CASH_OUT) == usd("0.30")


def test_a_cross_dfsp_quote_takes_the_payee_fees_from_the_payee_dfsp() -> None:
    payer = FeeTable.from_toml({"p2p": {"receiver": "zero", "scheme": STAIR_TOML}}, "USD")
    payee = FeeTable.from_toml({"p2p": {"receiver": {"bands": [{"flat": "0.25"}]}}}, "USD")
    amount = usd("50")
    with pytest.raises(FeeError, match="payee's DFSP"):
        payer.quote(TransactionType.P2P, amount, Route.CROSS_DFSP)
    quote = payer.quote(
        TransactionType.P2P,
        amount,
        Route.CROSS_DFSP,
        payee_fees=payee.payee_fees(TransactionType.P2P, amount, Route.CROSS_DFSP),
    )
    assert (quote.scheme_fee, quote.receiver_fee) == (usd("1.00"), usd("0.25"))
    assert (quote.debit, quote.credit) == (usd("51"), usd("49.75"))


# --- REFERENCE 6.6: the fee matrix --------------------------------------------------------

COLUMNS = ("sender", "receiver", "scheme", "agent_cash_in", "agent_cash_out")
# Path, then Sender, Receiver, Center, Agent Cash In, Agent Cash Out ("*": both values).
MATRIX = {
    "FEE-1": ("cross", "0", "stair", "0", "stair", "0"),
    "FEE-2": ("cross", "stair", "0", "stair", "0", "stair"),
    "FEE-3": ("same", "stair", "stair", "0", "0", "stair"),
    "FEE-4": ("same", "0", "0", "stair", "stair", "0"),
    "FEE-5": ("*", "0", "*", "stair", "0", "stair"),
    "FEE-6": ("*", "stair", "*", "0", "stair", "0"),
    "FEE-7": ("cross", "*", "*", "*", "stair", "stair"),
    "FEE-8": ("*", "*", "*", "*", "0", "0"),
}


def _expand() -> list[Any]:
    cases = []
    for name, row in MATRIX.items():
        choices = [
            ("cross", "same")
            if value == "*" and i == 0
            else ("0", "stair")
            if value == "*"
            else (value,)
            for i, value in enumerate(row)
        ]
        for path, *sources in itertools.product(*choices):
            configured = dict(zip(COLUMNS, sources, strict=True))
            label = "-".join(f"{c}={v}" for c, v in configured.items() if v == "stair")
            cases.append(pytest.param(path, configured, id=f"{name}-{path}-{label or 'none'}"))
    return cases


def _config(configured: dict[str, str]) -> dict[str, Any]:
    def stair_or_zero(column: str) -> Any:
        return STAIR_TOML if configured[column] == "stair" else "zero"

    common = {c: stair_or_zero(c) for c in ("sender", "receiver", "scheme")}
    return {
        "p2p": common,
        "cash_in": {**common, "agent": stair_or_zero("agent_cash_in")},
        "cash_out": {**common, "agent": stair_or_zero("agent_cash_out")},
    }


@pytest.mark.parametrize(("path", "configured"), _expand())
@pytest.mark.parametrize(
    "kind", [TransactionType.P2P, TransactionType.CASH_IN, TransactionType.CASH_OUT]
)
def test_each_configured_fee_is_shown_deducted_and_itemised(
    path: str, configured: dict[str, str], kind: TransactionType
) -> None:
    payer_dfsp = FeeTable.from_toml(_config(configured), "USD")
    payee_dfsp = FeeTable.from_toml(_config(configured), "USD")
    amount = usd("250")
    if path == "same":
        quote = payer_dfsp.quote(kind, amount, Route.SAME_DFSP)
    else:
        payee_fees = payee_dfsp.payee_fees(kind, amount, Route.CROSS_DFSP)
        quote = payer_dfsp.quote(kind, amount, Route.CROSS_DFSP, payee_fees=payee_fees)

    applies = {
        "sender": True,
        "receiver": True,
        "scheme": path == "cross",  # same-DFSP must not apply the centre fee
        "agent_cash_in": kind is TransactionType.CASH_IN,
        "agent_cash_out": kind is TransactionType.CASH_OUT,
    }
    expected = {
        FeeSource(column): STAIR.fee_for(amount)
        for column, value in configured.items()
        if value == "stair" and applies[column]
    }
    # itemised for settlement: one line per fee source
    assert {line.source: line.amount for line in quote.fees} == expected
    # shown to the sender and deducted
    payer_side = sum((v.minor for s, v in expected.items() if s.paid_by_payer), 0)
    payee_side = sum((v.minor for s, v in expected.items() if not s.paid_by_payer), 0)
    assert quote.debit == Money("USD", amount.minor + payer_side)
    assert quote.credit == Money("USD", amount.minor - payee_side)


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "key", "problem"),
    [
        ({"bands": [{"up_to": "100"}, {"percent": "abc"}]}, "bands[1].percent", "percent"),
        ({"bands": [{"up_to": "100"}, {"percent": 101}]}, "bands[1].percent", "between 0 and 100"),
        ({"bands": [{"up_to": "100"}, {"up_to": "50"}, {}]}, "bands[1].up_to", "above"),
        ({"bands": [{"up_to": "100"}]}, "bands[0].up_to", "last band"),
        ({"bands": [{}, {}]}, "bands[0].up_to", "only the last"),
        ({"bands": [{"flat": 1.5}]}, "bands[0].flat", "1.50"),
        ({"bands": [{"flat": "1.005"}]}, "bands[0].flat", "at most 2 decimals"),
        ({"bands": [{"flat": "-1"}]}, "bands[0].flat", "negative"),
        ({"bands": [{"fixed": "1"}]}, "bands[0].fixed", "unknown key"),
        ({"bands": [{}] * 33}, "bands", "at most 32"),
        ({"steps": []}, "steps", "unknown key"),
        ("free", "", "zero"),
    ],
)
def test_configuration_mistakes_name_the_key(sender: Any, key: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        FeeTable.from_toml({"p2p": {"sender": sender}}, "USD")
    assert caught.value.key == f"fees.p2p.sender.{key}".rstrip(".")


def test_unknown_types_and_sources_are_named() -> None:
    with pytest.raises(ConfigError, match="unknown transaction type") as caught:
        FeeTable.from_toml({"p2pp": {}}, "USD")
    assert caught.value.key == "fees.p2pp"
    with pytest.raises(ConfigError, match="unknown fee source") as caught:
        FeeTable.from_toml({"p2p": {"agent": "zero"}}, "USD")  # agents: cash_in/cash_out only
    assert caught.value.key == "fees.p2p.agent"


def test_zero_can_be_written_out_or_left_out() -> None:
    table = FeeTable.from_toml({"bulk": {"sender": "zero", "receiver": {"bands": []}}}, "USD")
    assert table == FeeTable("USD")


# --- properties ---------------------------------------------------------------------------

amounts = st.integers(1, 10**12).map(lambda minor: Money("USD", minor))


@st.composite
def schedules(draw: st.DrawFn, monotone: bool = False) -> FeeSchedule:
    edges = sorted(draw(st.sets(st.integers(1, 10**11), max_size=5)))
    bands: list[FeeBand] = []
    for up_to in [*edges, None]:
        rate = Fraction(draw(st.integers(0, 10_000)), 10_000)  # 0.00 % .. 100.00 %
        flat = draw(st.integers(0, 10**6))
        if monotone and bands:
            below = bands[-1]
            assert below.up_to is not None
            start = Money("USD", below.up_to.minor + 1)
            flat += max(0, below.fee_for(below.up_to).minor - round_half_up(start.minor * rate))
        bands.append(
            FeeBand(None if up_to is None else Money("USD", up_to), Money("USD", flat), rate)
        )
    return FeeSchedule("USD", tuple(bands))


@given(schedules(), amounts)
def test_a_fee_is_never_negative(schedule: FeeSchedule, amount: Money) -> None:
    assert schedule.fee_for(amount).minor >= 0


@given(schedules(monotone=True), amounts, amounts)
def test_a_monotone_schedule_never_charges_less_for_more(
    schedule: FeeSchedule, a: Money, b: Money
) -> None:
    assert schedule.is_monotone
    low, high = sorted([a, b])
    assert schedule.fee_for(low) <= schedule.fee_for(high)


@given(
    st.lists(schedules(), min_size=3, max_size=3),
    amounts,
    st.sampled_from([Route.SAME_DFSP, Route.CROSS_DFSP]),
)
def test_rounding_never_creates_or_loses_a_minor_unit(
    sender_receiver_scheme: list[FeeSchedule], amount: Money, route: Route
) -> None:
    sources = (FeeSource.SENDER, FeeSource.RECEIVER, FeeSource.SCHEME)
    table = FeeTable(
        "USD",
        {(TransactionType.P2P, s): f for s, f in zip(sources, sender_receiver_scheme, strict=True)},
    )
    payee_fees = table.payee_fees(TransactionType.P2P, amount, route)
    try:
        quote = table.quote(TransactionType.P2P, amount, route, payee_fees=payee_fees)
    except FeesExceedAmount:
        assert sum(line.amount.minor for line in payee_fees) >= amount.minor
        return
    fees = sum(line.amount.minor for line in quote.fees)
    payer_fees = sum(line.amount.minor for line in quote.fees if line.source.paid_by_payer)
    assert quote.debit.minor == amount.minor + payer_fees
    assert quote.debit.minor == quote.credit.minor + fees
    assert quote.local_fee + quote.scheme_fee == quote.payer_fees
