"""Pending transactions as pure rules (SPEC section 3, "Pending transactions")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dfsp.domain.accounts import AccountKind, Permissions
from dfsp.domain.customers import CustomerRole
from dfsp.domain.fees import TransactionType
from dfsp.domain.invoices import (
    TRANSITIONS,
    ApprovalFate,
    BuyerIsPayee,
    Invoice,
    InvoiceAccountNotAllowed,
    InvoiceKind,
    InvoiceNotPending,
    InvoiceState,
    NotAgent,
    NotInvoiceBuyer,
    NotMerchant,
    UnknownBuyer,
    approval_fate,
    check_amount,
    check_buyer,
    check_payee,
)
from dfsp.domain.payments import InvalidAmount
from dfsp.domain.transfers import TransferState
from ussdloop.money import Money

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
SIGNATORY = Permissions(can_view=True, can_invoice=True, can_send=True, can_manage=True)
NON_SIGNATORY = Permissions(can_view=True, can_invoice=True, can_send=False, can_manage=False)


def invoice(**changes: object) -> Invoice:
    fields: dict[str, object] = {
        "id": "inv-1",
        "kind": InvoiceKind.INVOICE,
        "payee_customer_id": "merchant",
        "payee_account_id": "shop",
        "buyer_customer_id": "buyer",
        "amount": Money.parse("100", "USD"),
        "state": InvoiceState.PENDING,
        "created_at": NOW,
    }
    fields.update(changes)
    return Invoice(**fields)  # type: ignore[arg-type]


def test_only_a_merchant_invoices_and_only_an_agent_asks_for_a_cash_out() -> None:
    regular = AccountKind.REGULAR
    check_payee(InvoiceKind.INVOICE, "m", CustomerRole.MERCHANT, "a", regular, SIGNATORY)
    check_payee(InvoiceKind.CASH_OUT, "g", CustomerRole.AGENT, "a", regular, SIGNATORY)
    for role in (CustomerRole.CUSTOMER, CustomerRole.AGENT):
        with pytest.raises(NotMerchant):
            check_payee(InvoiceKind.INVOICE, "c", role, "a", regular, SIGNATORY)
    with pytest.raises(NotAgent):
        check_payee(InvoiceKind.CASH_OUT, "m", CustomerRole.MERCHANT, "a", regular, SIGNATORY)


def test_a_non_signatory_invoices_but_never_from_a_commission_or_foreign_account() -> None:
    merchant = CustomerRole.MERCHANT
    check_payee(InvoiceKind.INVOICE, "m", merchant, "a", AccountKind.REGULAR, NON_SIGNATORY)
    with pytest.raises(InvoiceAccountNotAllowed):
        check_payee(InvoiceKind.INVOICE, "m", merchant, "a", None, None)
    with pytest.raises(InvoiceAccountNotAllowed):
        check_payee(
            InvoiceKind.CASH_OUT, "g", CustomerRole.AGENT, "c", AccountKind.COMMISSION, SIGNATORY
        )
    with pytest.raises(InvoiceAccountNotAllowed):
        check_payee(
            InvoiceKind.CASH_OUT, "g", CustomerRole.AGENT, "a", AccountKind.REGULAR, NON_SIGNATORY
        )


def test_an_invoice_for_zero_or_to_nobody_or_to_oneself_is_refused() -> None:
    for text in ("0", "-1"):
        with pytest.raises(InvalidAmount):
            check_amount(Money.parse(text, "USD"))
        with pytest.raises(InvalidAmount):
            invoice(amount=Money.parse(text, "USD"))
    with pytest.raises(UnknownBuyer):
        check_buyer("merchant", None, "99999999")
    with pytest.raises(BuyerIsPayee):
        check_buyer("merchant", "merchant", "12345678")
    assert check_buyer("merchant", "buyer", "12345678") == "buyer"


def test_states_only_move_forward_from_pending() -> None:
    assert TRANSITIONS[InvoiceState.PENDING] == {InvoiceState.PAID, InvoiceState.REJECTED}
    assert not TRANSITIONS[InvoiceState.PAID] and not TRANSITIONS[InvoiceState.REJECTED]
    paid = invoice().approving("t1").paid("t1", NOW)
    assert (paid.state, paid.approval, paid.decided_at) == (InvoiceState.PAID, "t1", NOW)
    rejected = invoice().rejected(NOW)
    for decided in (paid, rejected):
        with pytest.raises(InvoiceNotPending):
            decided.rejected(NOW)
        with pytest.raises(InvoiceNotPending):
            decided.approving("t2")
    with pytest.raises(ValueError):
        invoice().approving("t1").paid("t2", NOW)  # paid only by its own approval
    with pytest.raises(ValueError):
        invoice(state=InvoiceState.PAID)  # a paid invoice names its transfer


def test_only_the_buyer_answers_a_pending_invoice() -> None:
    assert invoice().answerable_by("buyer") == invoice()
    with pytest.raises(NotInvoiceBuyer):
        invoice().answerable_by("merchant")
    with pytest.raises(InvoiceNotPending):
        invoice().rejected(NOW).answerable_by("buyer")


def test_an_approval_can_be_replaced_only_once_it_can_no_longer_pay() -> None:
    later = NOW + timedelta(minutes=2)
    assert approval_fate(TransferState.EXECUTED, None, NOW) is ApprovalFate.PAID
    assert approval_fate(TransferState.PREPARED, later, NOW) is ApprovalFate.LIVE
    assert approval_fate(TransferState.PREPARED, later, later) is ApprovalFate.STALE
    for state in (TransferState.REJECTED, TransferState.EXPIRED):
        assert approval_fate(state, later, NOW) is ApprovalFate.DEAD


def test_each_kind_is_priced_by_its_own_fees() -> None:
    assert InvoiceKind.INVOICE.transaction_type is TransactionType.INVOICE
    assert InvoiceKind.CASH_OUT.transaction_type is TransactionType.CASH_OUT
