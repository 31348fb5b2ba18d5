"""Limits: what a transfer may do within its tier, and the usage that counts (SPEC 3, SM-LIM)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dfsp.domain.limits import (
    LimitName,
    Limits,
    LimitViolation,
    PastTransfer,
    Usage,
    check_balance,
    check_transfer,
    day_window,
    usage_from,
    week_window,
)
from dfsp.domain.transfers import TransferState
from ussdloop.config import ConfigError
from ussdloop.money import Money

NAIROBI = ZoneInfo("Africa/Nairobi")  # UTC+3, no daylight saving
LONDON = ZoneInfo("Europe/London")
# Wednesday 2024-01-17, mid-morning in Nairobi
NOW = datetime(2024, 1, 17, 10, 0, tzinfo=NAIROBI)


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


def sent(
    amount: str,
    at: datetime = NOW,
    state: TransferState = TransferState.EXECUTED,
    *,
    own_accounts: bool = False,
    refund: bool = False,
) -> PastTransfer:
    return PastTransfer(at, usd(amount), state, own_accounts=own_accounts, refund=refund)


def usage(transfers: list[PastTransfer], now: datetime = NOW) -> Usage:
    return usage_from(transfers, now, tz=NAIROBI, currency="USD")


# --- SM-LIM: max transfers per day = 2, max transfer size = 2 ------------------------------

SM_LIM = Limits(transfers_per_day=2, max_transfer=usd("2"))


def test_the_third_transfer_and_the_oversize_one_are_refused_own_accounts_still_work() -> None:
    history: list[PastTransfer] = []
    for _ in range(2):  # (a) the max number of transfers in a day succeeds
        assert check_transfer(SM_LIM, usage(history), usd("1"), own_account=False) is None
        history.append(sent("1"))

    # (b) one more fails
    third = check_transfer(SM_LIM, usage(history), usd("1"), own_account=False)
    assert third == LimitViolation(LimitName.TRANSFERS_PER_DAY, 2, 0)

    fresh = Usage.nothing("USD")
    # (c) sending exactly the max size succeeds; (d) more fails
    assert check_transfer(SM_LIM, fresh, usd("2"), own_account=False) is None
    oversize = check_transfer(SM_LIM, fresh, usd("2.01"), own_account=False)
    assert oversize == LimitViolation(LimitName.MAX_TRANSFER, usd("2"), usd("2"))

    # (e) exceeding limits when sending to yourself works, and does not count
    for _ in range(3):
        assert check_transfer(SM_LIM, usage(history), usd("500"), own_account=True) is None
        history.append(sent("500", own_accounts=True))
    assert usage(history).count_today == 2


def test_cancelled_and_rejected_transfers_count_toward_the_count_but_move_no_amount() -> None:
    history = [
        sent("1", state=TransferState.REJECTED),
        sent("1", state=TransferState.EXPIRED),
        sent("1", state=TransferState.PREPARED),
    ]
    assert usage(history) == Usage(3, usd("1"), usd("1"))
    assert check_transfer(SM_LIM, usage(history[:2]), usd("1"), own_account=False) == (
        LimitViolation(LimitName.TRANSFERS_PER_DAY, 2, 0)
    )


def test_refunds_do_not_count() -> None:
    history = [sent("1", refund=True), sent("1", refund=True), sent("1")]
    assert usage(history) == Usage(1, usd("1"), usd("1"))
    assert check_transfer(SM_LIM, usage(history), usd("1"), own_account=False) is None


def test_limits_set_to_none_never_refuse() -> None:
    busy = Usage(10**6, usd("100000000"), usd("100000000"))
    assert check_transfer(Limits(), busy, usd("10000000"), own_account=False) is None
    assert check_balance(Limits(), usd("10000000000"), received=usd("1")) is None
    everything_none = {name.value: "none" for name in LimitName}
    assert Limits.from_toml(everything_none, "USD") == Limits()


def test_amounts_per_day_and_week_say_what_is_left() -> None:
    limits = Limits(amount_per_day=usd("100"), amount_per_week=usd("300"))
    assert (
        check_transfer(limits, Usage(1, usd("60"), usd("60")), usd("40"), own_account=False) is None
    )
    assert check_transfer(
        limits, Usage(1, usd("60"), usd("60")), usd("40.01"), own_account=False
    ) == (LimitViolation(LimitName.AMOUNT_PER_DAY, usd("100"), usd("40")))
    assert check_transfer(limits, Usage(1, usd("0"), usd("250")), usd("51"), own_account=False) == (
        LimitViolation(LimitName.AMOUNT_PER_WEEK, usd("300"), usd("50"))
    )


def test_a_limit_of_zero_refuses_every_transfer() -> None:
    frozen = Limits(transfers_per_day=0)
    assert check_transfer(frozen, Usage.nothing("USD"), usd("1"), own_account=False) == (
        LimitViolation(LimitName.TRANSFERS_PER_DAY, 0, 0)
    )


def test_the_payee_may_not_go_over_the_max_balance_except_between_own_accounts() -> None:
    limits = Limits(max_balance=usd("1000"))
    assert check_balance(limits, usd("1000"), received=usd("100")) is None
    assert check_balance(limits, usd("1000.01"), received=usd("100")) == LimitViolation(
        LimitName.MAX_BALANCE, usd("1000"), usd("99.99")
    )
    assert check_balance(limits, usd("5000"), received=usd("100"), own_account=True) is None


# --- windows ------------------------------------------------------------------------------


def test_the_week_starts_on_monday_at_midnight_in_the_dfsp_time_zone() -> None:
    monday = datetime(2024, 1, 15, 0, 0, tzinfo=NAIROBI)
    assert week_window(NOW, NAIROBI) == (
        monday.astimezone(UTC),
        (monday + timedelta(days=7)).astimezone(UTC),
    )
    history = [
        sent("1", at=monday - timedelta(seconds=1)),  # Sunday 23:59:59: last week
        sent("2", at=monday),  # Monday 00:00: this week
        sent("4", at=datetime(2024, 1, 14, 21, 30, tzinfo=UTC)),  # Monday 00:30 in Nairobi
    ]
    assert usage(history).amount_this_week == usd("6")
    sunday_night = monday - timedelta(minutes=1)
    assert usage(history, now=sunday_night).amount_this_week == usd("1")


def test_the_day_starts_at_midnight_in_the_dfsp_time_zone() -> None:
    history = [
        sent("1", at=datetime(2024, 1, 16, 20, 59, tzinfo=UTC)),  # 23:59 on the 16th in Nairobi
        sent("2", at=datetime(2024, 1, 16, 21, 0, tzinfo=UTC)),  # 00:00 on the 17th in Nairobi
    ]
    assert usage(history) == Usage(1, usd("2"), usd("3"))


def test_a_day_when_clocks_go_forward_is_23_hours_long() -> None:
    clocks_change = datetime(2024, 3, 31, 12, 0, tzinfo=LONDON)
    start, end = day_window(clocks_change, LONDON)
    assert end - start == timedelta(hours=23)
    assert start == datetime(2024, 3, 31, 0, 0, tzinfo=UTC)


def test_times_without_a_time_zone_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        usage([], now=datetime(2024, 1, 17, 10, 0))
    with pytest.raises(ValueError, match="time zone"):
        usage([sent("1", at=datetime(2024, 1, 17, 9, 0))])


@given(st.lists(st.integers(-14 * 24 * 60, 14 * 24 * 60), max_size=20))
def test_today_is_part_of_this_week(offsets: list[int]) -> None:
    history = [sent("1", at=NOW + timedelta(minutes=m)) for m in offsets]
    used = usage(history)
    assert used.amount_today <= used.amount_this_week
    assert used.amount_today.minor == used.count_today * 100


# --- configuration ------------------------------------------------------------------------

VALID = {
    "transfers_per_day": 25,
    "amount_per_day": "1000",
    "amount_per_week": 5000,
    "max_transfer": "500.50",
    "max_balance": "none",
}


def test_limits_are_read_from_toml() -> None:
    assert Limits.from_toml(VALID, "USD") == Limits(
        transfers_per_day=25,
        amount_per_day=usd("1000"),
        amount_per_week=usd("5000"),
        max_transfer=usd("500.50"),
        max_balance=None,
    )


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        ({"transfers_per_day": "many"}, "transfers_per_day", "none"),
        ({"transfers_per_day": -1}, "transfers_per_day", "whole number"),
        ({"max_transfer": 2.5}, "max_transfer", "1.50"),
        ({"amount_per_day": "-1"}, "amount_per_day", "negative"),
        ({"max_balance": None}, "max_balance", "missing"),
        ({"amount_per_month": "1"}, "amount_per_month", "unknown key"),
    ],
)
def test_configuration_mistakes_name_the_key(
    change: dict[str, object], key: str, problem: str
) -> None:
    data = {**VALID, **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ConfigError, match=problem) as caught:
        Limits.from_toml(data, "USD", "tiers[0].limits")
    assert caught.value.key == f"tiers[0].limits.{key}"
