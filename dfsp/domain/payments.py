"""Sending money inside one DFSP, as values and rules (no I/O): the quote the sender sees,
the result of a send, a ministatement line, the typed amount, and the refusals of the
payment use cases (``PaymentError`` and its subclasses, each mapped to one screen or HTTP
error). The use cases are ``dfsp.payments``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from dfsp.domain.fees import Quote, Route
from dfsp.domain.limits import LimitViolation
from dfsp.domain.transfers import TransferState
from ussdloop.money import Money, MoneyError

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class PaymentError(Exception):
    """Base of the payment refusals; each maps to one screen or HTTP error."""


class UnknownReceiver(PaymentError):
    def __init__(self, user_number: str) -> None:
        super().__init__(f"no customer with user number {user_number!r}")
        self.user_number = user_number


class InvalidAmount(PaymentError):
    """Zero, negative, or more decimals than the currency has."""


class SendNotAllowed(PaymentError):
    """The customer may not send from this account (not a signatory, a commission
    account, or not theirs), or to the account chosen."""

    def __init__(self, account_id: str, reason: str = "you cannot send money from this account"):
        super().__init__(reason)
        self.account_id = account_id


class StatementNotAllowed(PaymentError):
    def __init__(self, account_id: str) -> None:
        super().__init__("you cannot view this account")
        self.account_id = account_id


class FraudViolation(PaymentError):
    """An auditor blacklisted a party of the payment: a blacklisted customer may neither
    send nor receive (SPEC section 3, "Fraud and blacklists")."""


class SenderBlocked(FraudViolation):
    def __init__(self) -> None:
        super().__init__("the sender is blacklisted: they cannot send money")


class ReceiverBlocked(FraudViolation):
    def __init__(self, user_number: str) -> None:
        super().__init__(f"the receiver {user_number} is blacklisted: they cannot be paid")
        self.user_number = user_number


class LimitExceeded(PaymentError):
    """A tier limit refuses the transfer; ``violation`` says which and what is left."""

    def __init__(self, violation: LimitViolation) -> None:
        super().__init__(f"limit {violation.limit} ({violation.value}) reached")
        self.violation = violation


class QuoteChanged(PaymentError):
    """The fees or the receiver changed since the quote: show the new quote."""


@dataclass(frozen=True)
class RemoteReceiver:
    """A receiver at another DFSP, as the central directory and their DFSP name them."""

    user_number: str
    name: str
    dfsp: str
    endpoint: str  # the payee DFSP's interledger base URL


@dataclass(frozen=True)
class SendQuote:
    """What the sender sees before the PIN, and what ``send`` pays."""

    sender_customer_id: str
    sender_account_id: str
    sender_name: str
    sender_ledger_account_id: str
    receiver_user_number: str
    receiver_customer_id: str
    receiver_name: str
    receiver_account_id: str
    receiver_ledger_account_id: str
    quote: Quote
    to_account_id: str | None = None  # the account asked for, if not the receiver's primary
    remote: RemoteReceiver | None = None  # the receiver is at another DFSP (through the centre)

    @property
    def own_accounts(self) -> bool:
        return self.quote.route is Route.OWN_ACCOUNTS

    @property
    def currency(self) -> str:
        return self.quote.currency

    @property
    def amount(self) -> Money:
        return self.quote.amount

    @property
    def fee(self) -> Money:
        return self.quote.local_fee

    @property
    def total(self) -> Money:
        return self.quote.debit


@dataclass(frozen=True)
class PaymentOrder:
    """One payment of many from one account (``Payments.send_bulk``): a bulk row's."""

    transfer_id: str
    receiver_user_number: str
    amount: Money


@dataclass(frozen=True)
class SendResult:
    status: TransferState
    transfer_id: str
    receiver_name: str
    amount: Money
    fee: Money  # the payer's own DFSP's fee (the screen's "Local fee")
    payer_fees: Money | None = None  # every fee on top of the amount (a bulk row's report)


@dataclass(frozen=True)
class StatementRow:
    """One ministatement line: the counterparty (or ``fee``), signed amount, when."""

    name: str
    amount: Money
    at: datetime


def parse_amount(text: str, currency: str) -> Money:
    """An amount typed by the sender: positive, at most the currency's decimals."""
    try:
        amount = Money.parse(text, currency)
    except MoneyError as error:
        raise InvalidAmount(str(error)) from None
    if amount.minor <= 0:
        raise InvalidAmount("the amount must be above zero")
    return amount


def format_ministatement_row(row: StatementRow, tz: tzinfo = UTC) -> str:
    """``Name;Amount;Date`` with the currency's decimals and a ``DD-Mon`` date:
    ``tod;-44.00;17-Jan``."""
    day = row.at.astimezone(tz)
    return f"{row.name};{row.amount};{day.day:02d}-{_MONTHS[day.month - 1]}"
