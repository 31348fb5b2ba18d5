"""The ledger's pure rules: transfer states, postings, funds and limits (no database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dfsp.domain.transfers import (
    ALLOWED_TRANSITIONS,
    MAX_HOLD,
    MAX_MEMO_BYTES,
    MAX_POSTINGS,
    MAX_REASON_LENGTH,
    BalanceLimitExceeded,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidRequest,
    InvalidTransition,
    LedgerError,
    Posting,
    TransferExpired,
    TransferRequest,
    TransferState,
    accounts_of,
    check_balance_limit,
    check_currency,
    check_currency_code,
    check_expiry,
    check_funds,
    check_hold,
    check_id,
    check_memo,
    check_postings,
    credits_by_account,
    debits_by_account,
    decide,
    entry_amounts,
    is_expired,
    limit_minor,
    reason_text,
)
from ussdloop.money import MAX_MINOR, Money

P, X, R, E = (
    TransferState.PREPARED,
    TransferState.EXECUTED,
    TransferState.REJECTED,
    TransferState.EXPIRED,
)
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_prepared_transfer_can_be_executed_rejected_or_expired() -> None:
    assert ALLOWED_TRANSITIONS[P] == {X, R, E}
    for target in (X, R, E):
        assert decide("t1", P, target) is True


@pytest.mark.parametrize("final", [X, R, E])
def test_a_decided_transfer_never_changes_again(final: TransferState) -> None:
    assert ALLOWED_TRANSITIONS[final] == frozenset()
    for target in {X, R, E} - {final}:
        with pytest.raises(InvalidTransition) as refused:
            decide("t1", final, target)
        assert (refused.value.current, refused.value.target) == (final, target)


@pytest.mark.parametrize("final", [X, R, E])
def test_the_same_decision_again_is_a_retry_not_a_change(final: TransferState) -> None:
    assert decide("t1", final, final) is False


def test_nothing_goes_back_to_prepared() -> None:
    for state in TransferState:
        with pytest.raises(InvalidTransition):
            decide("t1", state, P)


def test_executing_an_expired_transfer_says_it_expired() -> None:
    with pytest.raises(TransferExpired) as refused:
        decide("t1", E, X)
    assert isinstance(refused.value, InvalidTransition)
    assert refused.value.transfer_id == "t1"


def test_every_refusal_is_a_ledger_error() -> None:
    assert issubclass(TransferExpired, LedgerError)
    assert issubclass(InsufficientFunds, LedgerError)
    assert issubclass(InvalidRequest, LedgerError)


def test_postings_need_a_positive_whole_amount() -> None:
    for amount in (0, -1, 1.5, True):
        with pytest.raises(InvalidRequest, match="positive whole minor units"):
            check_postings([Posting("alice", "bob", amount)])  # type: ignore[arg-type]
    assert check_postings([Posting("alice", "bob", 1)]) == (Posting("alice", "bob", 1),)


def test_an_account_cannot_post_to_itself() -> None:
    with pytest.raises(InvalidRequest, match="cannot post to itself"):
        check_postings([Posting("alice", "alice", 100)])


def test_a_transfer_has_between_one_and_the_limit_of_postings() -> None:
    with pytest.raises(InvalidRequest):
        check_postings([])
    many = [Posting("alice", "bob", 1)] * (MAX_POSTINGS + 1)
    with pytest.raises(InvalidRequest):
        check_postings(many)
    assert len(check_postings(many[:MAX_POSTINGS])) == MAX_POSTINGS


def test_a_transfer_total_must_fit_the_amount_columns() -> None:
    with pytest.raises(InvalidRequest, match="too large"):
        check_postings([Posting("a", "b", MAX_MINOR), Posting("a", "c", 1)])


@pytest.mark.parametrize("bad", ["", "x" * 65, "has space", "-leading", "naïve"])
def test_ids_are_short_and_plain(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        check_id(bad, "a transfer id")
    assert check_id("txn:2030-01-01/42@dfsp1", "a transfer id")


def test_a_memo_is_a_small_json_object() -> None:
    assert check_memo(None) is None
    assert check_memo({"note": "rent", "n": 1}) == {"n": 1, "note": "rent"}
    with pytest.raises(InvalidRequest):
        check_memo({"when": NOW})
    with pytest.raises(InvalidRequest):
        check_memo({"note": "x" * MAX_MEMO_BYTES})


def test_funds_are_held_for_a_bounded_time_in_the_future() -> None:
    assert check_expiry(NOW + timedelta(seconds=30), NOW)
    assert check_expiry(NOW + MAX_HOLD, NOW)
    for bad in (NOW, NOW - timedelta(seconds=1), NOW + MAX_HOLD + timedelta(seconds=1)):
        with pytest.raises(InvalidRequest):
            check_expiry(bad, NOW)
    with pytest.raises(InvalidRequest, match="time zone"):
        check_expiry(datetime(2030, 1, 2), NOW)


def test_a_transfer_expires_at_its_expiry_time_not_before() -> None:
    at = NOW + timedelta(seconds=30)
    assert not is_expired(at, at - timedelta(microseconds=1))
    assert is_expired(at, at)
    assert not is_expired(None, at)  # one-step transfers never wait


def test_exactly_the_available_amount_may_be_spent_and_one_unit_more_is_refused() -> None:
    check_funds("alice", "USD", 500, 500, allow_negative=False)
    with pytest.raises(InsufficientFunds) as refused:
        check_funds("alice", "USD", 500, 501, allow_negative=False)
    assert refused.value.available == Money("USD", 500)
    assert refused.value.account_id == "alice"
    check_funds("float", "USD", 0, 10**9, allow_negative=True)


def test_a_balance_limit_counts_pending_credits() -> None:
    check_balance_limit("bob", "USD", 1000, 600, 300, 100)
    check_balance_limit("bob", "USD", None, 10**12, 0, 1)
    with pytest.raises(BalanceLimitExceeded) as refused:
        check_balance_limit("bob", "USD", 1000, 600, 300, 101)
    assert refused.value.limit == Money("USD", 1000)


def test_accounts_in_another_currency_are_refused() -> None:
    check_currency("bob", "USD", "USD")
    with pytest.raises(CurrencyMismatch):
        check_currency("bob", "USD", "TZS")


def test_a_principal_and_its_fee_hold_the_sum_on_the_payer() -> None:
    postings = [Posting("alice", "bob", 5000), Posting("alice", "fees", 100)]
    assert debits_by_account(postings) == {"alice": 5100}
    assert credits_by_account(postings) == {"bob": 5000, "fees": 100}
    assert accounts_of(postings) == ["alice", "bob", "fees"]
    assert entry_amounts(postings) == [
        ("alice", -5000),
        ("bob", 5000),
        ("alice", -100),
        ("fees", 100),
    ]


def test_the_same_transfer_is_the_same_kind_and_postings_in_any_order() -> None:
    one = [Posting("alice", "bob", 5000), Posting("alice", "fees", 100)]
    request = TransferRequest.checked("t1", one, "p2p", {"note": "rent"})
    assert request.same_as("p2p", list(reversed(one)))
    assert not request.same_as("invoice", one)
    assert not request.same_as("p2p", [Posting("alice", "bob", 5000)])
    assert not request.same_as("p2p", [Posting("alice", "bob", 5001), one[1]])


def test_a_request_is_checked_as_a_whole() -> None:
    with pytest.raises(InvalidRequest):
        TransferRequest.checked("t 1", [Posting("alice", "bob", 1)], "p2p")
    with pytest.raises(InvalidRequest):
        TransferRequest.checked("t1", [Posting("alice", "bob", 1)], "")
    with pytest.raises(InvalidRequest):
        TransferRequest.checked("t1", [Posting("alice", "bob", 1)], "p2p", {"x": {1, 2}})


@dataclass
class Account:
    id: str
    balance_minor: int = 0
    held_minor: int = 0
    incoming_minor: int = 0
    allow_negative: bool = False
    balance_limit_minor: int | None = None
    currency: str = "USD"


def test_a_hold_needs_one_currency_the_funds_and_room_under_the_limits() -> None:
    accounts = {
        "alice": Account("alice", balance_minor=5_100, held_minor=100),
        "bob": Account("bob", balance_minor=900, incoming_minor=50, balance_limit_minor=10_000),
        "fees": Account("fees"),
    }
    send = [Posting("alice", "bob", 4_900), Posting("alice", "fees", 100)]
    assert check_hold(send, accounts) == "USD"
    with pytest.raises(InsufficientFunds) as refused:
        check_hold([Posting("alice", "bob", 4_901), Posting("alice", "fees", 100)], accounts)
    assert refused.value.available == Money("USD", 5_000)
    accounts["bob"].balance_limit_minor = 5_000
    with pytest.raises(BalanceLimitExceeded):
        check_hold(send, accounts)
    accounts["fees"].currency = "TZS"
    with pytest.raises(CurrencyMismatch):
        check_hold(send, accounts)


def test_account_currencies_and_limits_are_checked_when_accounts_open() -> None:
    assert check_currency_code("USD") == "USD"
    with pytest.raises(InvalidRequest, match="unknown currency"):
        check_currency_code("XYZ")
    assert limit_minor(None, "USD") is None
    assert limit_minor(Money("USD", 500), "USD") == 500
    for bad in (Money("TZS", 500), Money("USD", -1)):
        with pytest.raises(InvalidRequest):
            limit_minor(bad, "USD")


def test_a_rejection_reason_is_kept_short_and_never_empty() -> None:
    assert reason_text("  payee\nunknown ") == "payee unknown"
    assert reason_text("") == "unspecified"
    assert len(reason_text("x" * 1000)) == MAX_REASON_LENGTH


postings_strategy = st.lists(
    st.builds(
        Posting,
        st.sampled_from(["a", "b", "c", "d"]),
        st.sampled_from(["a", "b", "c", "d"]),
        st.integers(1, 10**9),
    ).filter(lambda p: p.debit_account != p.credit_account),
    min_size=1,
    max_size=MAX_POSTINGS,
)


@given(postings_strategy)
def test_every_transfer_is_balanced_and_moves_what_it_holds(postings: list[Posting]) -> None:
    movements = entry_amounts(check_postings(postings))
    assert sum(amount for _, amount in movements) == 0
    for account, held in debits_by_account(postings).items():
        debited = -sum(a for acc, a in movements if acc == account and a < 0)
        assert debited == held
    assert sum(debits_by_account(postings).values()) == sum(credits_by_account(postings).values())
