"""Customers as callers see them, and the refusals of the customer use cases (no I/O).

The values (``Customer``, ``CustomerAccount``, ``HolderInfo``) are what ``dfsp.customers``
returns; the errors are its ``CustomerError`` hierarchy, each mapped to one screen or
HTTP error. Also here: the pure steps of registration and account changes
(``first_accounts``, ``book_of``, ``account_view``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from dfsp.domain import accounts as rules
from dfsp.domain.accounts import Account, AccountBook, AccountClosed, AccountKind, Permissions
from dfsp.domain.holders import HolderRemoved, account_info
from dfsp.domain.identifiers import UserNumber

COMMISSION_ACCOUNT_NAME = "commission"


class CustomerRole(enum.StrEnum):
    CUSTOMER = "customer"
    MERCHANT = "merchant"
    AGENT = "agent"


@dataclass(frozen=True)
class Customer:
    id: str
    user_number: UserNumber
    msisdn: str
    first_name: str
    last_name: str
    date_of_birth: date
    national_id: str
    role: CustomerRole
    language: str
    pin_locked: bool
    created_at: datetime
    blacklisted: bool = False  # by an auditor: may neither send nor receive

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class Payee:
    """A customer as a payment to them finds them: their tier, and the account they are
    paid into (their primary account; None when it is not a regular one)."""

    customer: Customer
    tier: str  # the tier's name
    account_id: str | None
    ledger_account_id: str | None
    currency: str | None


@dataclass(frozen=True)
class HolderInfo:
    """One line of account information: a holder, signatories and the owner marked."""

    customer_id: str
    user_number: str
    first_name: str
    last_name: str
    signatory: bool
    owner: bool


@dataclass(frozen=True)
class CustomerAccount:
    """An account as one of its holders sees it (switch account, account information)."""

    id: str
    ledger_account_id: str
    name: str
    currency: str
    kind: AccountKind
    owner_id: str
    primary: bool  # this holder's primary account
    permissions: Permissions  # this holder's rights
    holders: tuple[HolderInfo, ...]


@dataclass(frozen=True)
class ClosedAccount:
    customer_removed: bool  # the closer had no other account: removed from this DFSP
    left_without_account: frozenset[str]  # other holders who now hold no account


class UserNumbers(Protocol):
    """Where user numbers come from: the central directory (which makes them unique
    across DFSPs and names the DFSPs of each), or, for a DFSP on its own, its customers
    table."""

    async def allocate(self, msisdn: str, name: str, given: UserNumber | None) -> UserNumber:
        """A new user number for this person, or ``given`` (one they already have
        elsewhere) now also at this DFSP."""

    async def release(self, number: UserNumber) -> None:
        """This DFSP no longer has the user (a refused registration, a closed last
        account)."""


class HolderName(Protocol):
    """What account information shows of a holder (a customer row or value)."""

    @property
    def user_number(self) -> str: ...

    @property
    def first_name(self) -> str: ...

    @property
    def last_name(self) -> str: ...


# --- errors -------------------------------------------------------------------------


class CustomerError(Exception):
    """Base of the customer refusals; each maps to one screen or HTTP error."""


class AlreadyRegistered(CustomerError):
    def __init__(self, msisdn: str) -> None:
        super().__init__("this phone number is already registered")
        self.msisdn = msisdn


class PersonAlreadyRegistered(CustomerError):
    def __init__(self) -> None:
        super().__init__("this person is already registered here")


class UserNumberTaken(CustomerError):
    def __init__(self, user_number: str) -> None:
        super().__init__(f"user number {user_number} is already taken")
        self.user_number = user_number


class UnknownCustomer(CustomerError):
    def __init__(self, reference: str) -> None:
        super().__init__(f"no such customer {reference!r}")
        self.reference = reference


class TryAgain(CustomerError):
    """Others kept changing the account's holders; nothing was changed."""


class RegistrationRefused(CustomerError):
    """The central services refuse this person (fraud score 100, blacklisted)."""


# --- pure steps ---------------------------------------------------------------------


def first_accounts(
    customer_id: str, account_id: str, commission_id: str | None, name: str, currency: str
) -> AccountBook:
    """A new customer's book: their primary account, and an agent's commission account."""
    if commission_id is None:
        return rules.open_account(
            AccountBook(),
            account_id=account_id,
            owner_id=customer_id,
            name=name,
            currency=currency,
            primary=True,
        )
    return rules.open_agent_accounts(
        AccountBook(),
        agent_id=customer_id,
        main_account_id=account_id,
        commission_account_id=commission_id,
        name=name,
        currency=currency,
        commission_name=COMMISSION_ACCOUNT_NAME,
    )


def book_of(result: object) -> AccountBook:
    """The book a rule returned, alone or in its result."""
    if isinstance(result, AccountBook):
        return result
    if isinstance(result, AccountClosed | HolderRemoved):
        return result.book
    raise TypeError(f"a rule returned {type(result).__name__}, not a book")


def account_view(
    account: Account,
    ledger_account_id: str,
    customer_id: str,
    people: Mapping[str, HolderName],
) -> CustomerAccount:
    """The account as ``customer_id`` sees it, its holders named from ``people``."""
    holders = tuple(
        HolderInfo(
            customer_id=entry.customer_id,
            user_number=people[entry.customer_id].user_number,
            first_name=people[entry.customer_id].first_name,
            last_name=people[entry.customer_id].last_name,
            signatory=entry.signatory,
            owner=entry.owner,
        )
        for entry in account_info(account)
    )
    return CustomerAccount(
        id=account.id,
        ledger_account_id=ledger_account_id,
        name=account.name,
        currency=account.currency,
        kind=account.kind,
        owner_id=account.owner_id,
        primary=customer_id in account.primary_for,
        permissions=rules.permissions(account, customer_id),
        holders=holders,
    )
