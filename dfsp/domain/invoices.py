"""Pending transactions (invoices) as values and rules, no I/O (SPEC section 1 journey 2,
section 3 "Pending transactions"; REFERENCE 2.5, 2.6, 6.4).

A pending transaction is asked for by its payee and paid (or refused) by its payer:

- an ``INVOICE``: a merchant asks a buyer to pay into one of the merchant's accounts;
- a ``CASH_OUT``: an agent, handing out cash, asks the customer to pay the agent's main
  account (the customer confirms with their own PIN on their own phone).

States, explicit (``TRANSITIONS``): ``pending -> paid | rejected``, nothing after that.

Across DFSPs (SPEC section 3: the invoice lives at the merchant's DFSP, a notice with
its reference goes to the buyer's DFSP): the merchant's DFSP keeps an ``Invoice`` whose
buyer is named by user number, name and DFSP (``buyer_dfsp``, no customer id); the
buyer's DFSP keeps a ``RemoteInvoice``, the reference it was told of, which it answers
and pays through clearing.
While pending, an approval may hold a ledger transfer for it (``approval``, the id of
that prepared transfer); the invoice becomes paid only with that transfer executed, and
another approval (or a rejection) may replace it only once it can no longer execute
(``approval_fate``).

The refusals are ``InvoiceError`` subclasses (a ``PaymentError``, so callers map them
with the other payment refusals); a zero amount is ``dfsp.domain.payments.InvalidAmount``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from dfsp.domain.accounts import AccountKind, Permissions
from dfsp.domain.customers import CustomerRole
from dfsp.domain.fees import TransactionType
from dfsp.domain.payments import InvalidAmount, PaymentError
from dfsp.domain.transfers import TransferState
from ussdloop.money import Money

MAX_PENDING_LISTED = 32  # the most pending transactions one list returns, newest first


class InvoiceKind(enum.StrEnum):
    INVOICE = "invoice"
    CASH_OUT = "cash_out"

    @property
    def transaction_type(self) -> TransactionType:
        """Which fees apply when it is paid."""
        return TransactionType(self.value)

    @property
    def payee_role(self) -> CustomerRole:
        """Who may ask for it."""
        return CustomerRole.MERCHANT if self is InvoiceKind.INVOICE else CustomerRole.AGENT


class InvoiceState(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    REJECTED = "rejected"


TRANSITIONS: Final[dict[InvoiceState, frozenset[InvoiceState]]] = {
    InvoiceState.PENDING: frozenset({InvoiceState.PAID, InvoiceState.REJECTED}),
    InvoiceState.PAID: frozenset(),
    InvoiceState.REJECTED: frozenset(),
}


# --- errors -------------------------------------------------------------------------


class InvoiceError(PaymentError):
    """Base of the pending-transaction refusals; each maps to one screen or HTTP error."""


class NotMerchant(InvoiceError):
    """Only merchants send invoices."""

    role = CustomerRole.MERCHANT

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"only a {self.role} can do this")
        self.customer_id = customer_id


class NotAgent(NotMerchant):
    """Only agents cash in and ask for a cash-out."""

    role = CustomerRole.AGENT


class InvoiceAccountNotAllowed(InvoiceError):
    """The account is not one the payee may ask to be paid into (not theirs, a
    commission account, or for a cash-out not one they may send from)."""

    def __init__(self, account_id: str) -> None:
        super().__init__("you cannot ask for payment into this account")
        self.account_id = account_id


class UnknownBuyer(InvoiceError):
    def __init__(self, user_number: str) -> None:
        super().__init__(f"no customer with user number {user_number!r}")
        self.user_number = user_number


class BuyerIsPayee(InvoiceError):
    def __init__(self, user_number: str) -> None:
        super().__init__("you cannot ask yourself for payment")
        self.user_number = user_number


class UnknownInvoice(InvoiceError):
    def __init__(self, invoice_id: str) -> None:
        super().__init__(f"no pending transaction {invoice_id!r}")
        self.invoice_id = invoice_id


class NotInvoiceBuyer(InvoiceError):
    """Only the customer an invoice was sent to approves or rejects it."""

    def __init__(self, invoice_id: str, customer_id: str) -> None:
        super().__init__("this pending transaction is not yours to answer")
        self.invoice_id = invoice_id
        self.customer_id = customer_id


class InvoiceNotPending(InvoiceError):
    def __init__(self, invoice_id: str, state: InvoiceState) -> None:
        super().__init__(f"this pending transaction is already {state}")
        self.invoice_id = invoice_id
        self.state = state


class ApprovalExpired(InvoiceError):
    """This approval's hold on the funds ran out (or was released): approve again."""

    def __init__(self, invoice_id: str, transfer_id: str) -> None:
        super().__init__("the approval timed out, please approve again")
        self.invoice_id = invoice_id
        self.transfer_id = transfer_id


class InvoiceBeingPaid(InvoiceError):
    """Another approval of the invoice is under way: try again in a moment."""

    def __init__(self, invoice_id: str) -> None:
        super().__init__("this pending transaction is being paid, try again shortly")
        self.invoice_id = invoice_id


# --- values -------------------------------------------------------------------------


@dataclass(frozen=True)
class Invoice:
    id: str
    kind: InvoiceKind
    payee_customer_id: str  # the merchant (or agent)
    payee_account_id: str  # the customer account the principal goes to
    buyer_customer_id: str | None  # who is asked to pay (None: a customer of buyer_dfsp)
    amount: Money
    state: InvoiceState
    created_at: datetime
    approval: str | None = None  # the ledger transfer of the latest approval, if any
    decided_at: datetime | None = None
    buyer_user_number: str | None = None  # a buyer at another DFSP: who, and where
    buyer_name: str | None = None
    buyer_dfsp: str | None = None

    def __post_init__(self) -> None:
        if self.amount.minor <= 0:
            raise InvalidAmount("the amount must be above zero")
        if self.payee_customer_id == self.buyer_customer_id:
            raise ValueError("an invoice has two different parties")
        if self.state is InvoiceState.PAID and self.approval is None:
            raise ValueError("a paid invoice names the transfer that paid it")
        remote = (self.buyer_user_number, self.buyer_name, self.buyer_dfsp)
        if (self.buyer_customer_id is None) != all(part is not None for part in remote):
            raise ValueError("the buyer is a customer here or one named at another DFSP")
        if self.buyer_customer_id is None and self.kind is not InvoiceKind.INVOICE:
            raise ValueError("only an invoice goes to a buyer at another DFSP")

    @property
    def buyer_elsewhere(self) -> bool:
        """The buyer is a customer of another DFSP (``buyer_dfsp``), who pays through
        clearing."""
        return self.buyer_customer_id is None

    def answerable_by(self, customer_id: str) -> Invoice:
        """The invoice, if ``customer_id`` may approve or reject it now."""
        if customer_id != self.buyer_customer_id:
            raise NotInvoiceBuyer(self.id, customer_id)
        if self.state is not InvoiceState.PENDING:
            raise InvoiceNotPending(self.id, self.state)
        return self

    def approving(self, transfer_id: str) -> Invoice:
        """The invoice with ``transfer_id`` (held in the ledger) as its approval."""
        if self.state is not InvoiceState.PENDING:
            raise InvoiceNotPending(self.id, self.state)
        return replace(self, approval=transfer_id)

    def paid(self, transfer_id: str, at: datetime) -> Invoice:
        """Paid by its approval ``transfer_id`` (executed in the ledger)."""
        if self.approval != transfer_id:
            raise ValueError(f"{transfer_id!r} is not the approval of invoice {self.id!r}")
        return self._moved(InvoiceState.PAID, at)

    def rejected(self, at: datetime) -> Invoice:
        return self._moved(InvoiceState.REJECTED, at)

    def _moved(self, state: InvoiceState, at: datetime) -> Invoice:
        if state not in TRANSITIONS[self.state]:
            raise InvoiceNotPending(self.id, self.state)
        return replace(self, state=state, decided_at=at)


@dataclass(frozen=True)
class RemoteInvoice:
    """An invoice a merchant of another DFSP sent to a customer here: its reference
    there (``merchant_dfsp``, ``merchant_invoice_id``) and what the buyer is shown. The
    buyer picks the paying account when approving; ``approval`` is the transfer through
    clearing under way (or that paid it)."""

    id: str  # this DFSP's id for it (what the buyer's menus use)
    merchant_dfsp: str
    merchant_invoice_id: str
    merchant_user_number: str
    merchant_name: str
    buyer_customer_id: str
    amount: Money
    state: InvoiceState
    created_at: datetime
    memo: str = ""
    approval: str | None = None
    decided_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.amount.minor <= 0:
            raise InvalidAmount("the amount must be above zero")
        if self.state is InvoiceState.PAID and self.approval is None:
            raise ValueError("a paid invoice names the transfer that paid it")

    @property
    def kind(self) -> InvoiceKind:
        return InvoiceKind.INVOICE

    def answerable_by(self, customer_id: str) -> RemoteInvoice:
        if customer_id != self.buyer_customer_id:
            raise NotInvoiceBuyer(self.id, customer_id)
        if self.state is not InvoiceState.PENDING:
            raise InvoiceNotPending(self.id, self.state)
        return self

    def approving(self, transfer_id: str) -> RemoteInvoice:
        if self.state is not InvoiceState.PENDING:
            raise InvoiceNotPending(self.id, self.state)
        return replace(self, approval=transfer_id)

    def paid(self, transfer_id: str, at: datetime) -> RemoteInvoice:
        """Paid by ``transfer_id`` (executed through clearing); again: unchanged."""
        if self.state is InvoiceState.PAID and self.approval == transfer_id:
            return self
        return replace(self, approval=transfer_id)._moved(InvoiceState.PAID, at)

    def rejected(self, at: datetime) -> RemoteInvoice:
        return self._moved(InvoiceState.REJECTED, at)

    def _moved(self, state: InvoiceState, at: datetime) -> RemoteInvoice:
        if state not in TRANSITIONS[self.state]:
            raise InvoiceNotPending(self.id, self.state)
        return replace(self, state=state, decided_at=at)


@dataclass(frozen=True)
class PendingInvoice:
    """One line of the pending transactions list: the invoice and the other party."""

    invoice: Invoice | RemoteInvoice
    other_name: str  # the merchant's name for the buyer, the buyer's for the merchant


# --- rules --------------------------------------------------------------------------


def check_payee(
    kind: InvoiceKind,
    customer_id: str,
    role: CustomerRole,
    account_id: str,
    account_kind: AccountKind | None,
    permissions: Permissions | None,
) -> None:
    """The payee may ask for ``kind`` into the account (``None``: not one they hold):
    a merchant from an account they may invoice from; an agent into their main account,
    never the commission account."""
    if role is not kind.payee_role:
        raise NotMerchant(customer_id) if kind is InvoiceKind.INVOICE else NotAgent(customer_id)
    if permissions is None or account_kind is not AccountKind.REGULAR:
        raise InvoiceAccountNotAllowed(account_id)
    allowed = permissions.can_invoice if kind is InvoiceKind.INVOICE else permissions.can_send
    if not allowed:
        raise InvoiceAccountNotAllowed(account_id)


def check_amount(amount: Money) -> None:
    if amount.minor <= 0:
        raise InvalidAmount("the amount must be above zero")


def check_buyer(payee_customer_id: str, buyer_customer_id: str | None, user_number: str) -> str:
    """The buyer's id: a customer of this DFSP other than the payee."""
    if buyer_customer_id is None:
        raise UnknownBuyer(user_number)
    if buyer_customer_id == payee_customer_id:
        raise BuyerIsPayee(user_number)
    return buyer_customer_id


class ApprovalFate(enum.Enum):
    """What became of an approval's ledger transfer, as the invoice sees it."""

    PAID = "paid"  # executed: the invoice is paid by it
    LIVE = "live"  # held and not yet expired: it may still be executed
    STALE = "stale"  # held past its expiry: reject it, then it is dead
    DEAD = "dead"  # rejected or expired: it will never pay


def approval_fate(state: TransferState, expires_at: datetime | None, now: datetime) -> ApprovalFate:
    if state is TransferState.EXECUTED:
        return ApprovalFate.PAID
    if state is not TransferState.PREPARED:
        return ApprovalFate.DEAD
    if expires_at is not None and expires_at <= now:
        return ApprovalFate.STALE
    return ApprovalFate.LIVE
