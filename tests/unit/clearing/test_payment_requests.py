"""Payment requests: the payee's DFSP recomputes the fulfilment from its secret and the
packet, and refuses packets it did not issue or whose details were changed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearing.ilp.conditions import condition_for
from clearing.payment_requests import (
    PaymentDetails,
    PaymentRequestError,
    PaymentRequests,
    encode_packet,
)
from ussdloop.money import Money

SECRET = bytes(range(32))
EXPIRES = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def details(**changes: object) -> PaymentDetails:
    base = PaymentDetails(
        transfer_id="0f8e7a1c-5a0b-4b8e-9d0e-1b2c3d4e5f60",
        payee_user_number="45678901",
        amount=Money("USD", 5000_00),
        expires_at=EXPIRES,
        transfer_code="p2p",
        payer_name="Hamim Ali",
        payer_dfsp="dfsp1",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_the_fulfilment_recomputed_from_the_packet_meets_the_condition() -> None:
    payee = PaymentRequests("dfsp2", SECRET)
    request = payee.request(details())
    assert condition_for(payee.fulfilment(request.packet)) == request.condition
    assert payee.read(request.packet, "USD") == details()
    # Another DFSP instance with the same secret (a restart) recomputes the same.
    assert PaymentRequests("dfsp2", SECRET).fulfilment(request.packet) == payee.fulfilment(
        request.packet
    )


def test_another_secret_or_another_dfsps_packet_does_not_pass() -> None:
    payee = PaymentRequests("dfsp2", SECRET)
    request = payee.request(details())
    other = PaymentRequests("dfsp2", bytes(32))
    assert condition_for(other.fulfilment(request.packet)) != request.condition
    with pytest.raises(PaymentRequestError):
        PaymentRequests("dfsp3", SECRET).read(request.packet, "USD")
    with pytest.raises(PaymentRequestError):
        payee.read(b"\x01\x02garbage", "USD")


def test_bad_details_are_refused() -> None:
    with pytest.raises(PaymentRequestError):
        details(amount=Money("USD", 0))
    with pytest.raises(PaymentRequestError):
        details(transfer_code="pull")
    with pytest.raises(PaymentRequestError):
        details(expires_at=datetime(2026, 11, 25))


@given(
    amount=st.integers(min_value=1, max_value=10**12),
    seconds=st.integers(min_value=0, max_value=10**6),
    invoice=st.one_of(st.none(), st.text(alphabet="abcdef0123456789-", min_size=1, max_size=36)),
    name=st.text(min_size=1, max_size=40),
    changed_amount=st.integers(min_value=1, max_value=10**12),
)
def test_any_request_round_trips_and_a_changed_amount_breaks_the_condition(
    amount: int, seconds: int, invoice: str | None, name: str, changed_amount: int
) -> None:
    payee = PaymentRequests("dfsp2", SECRET)
    original = details(
        amount=Money("USD", amount),
        expires_at=EXPIRES + timedelta(seconds=seconds),
        invoice_id=invoice,
        payer_name=name,
    )
    request = payee.request(original)
    assert payee.read(request.packet, "USD") == original
    if changed_amount != amount:
        forged = encode_packet("dfsp2", replace(original, amount=Money("USD", changed_amount)))
        assert condition_for(payee.fulfilment(forged)) != request.condition
