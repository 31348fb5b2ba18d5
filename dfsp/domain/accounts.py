"""A DFSP's accounts, who holds them and who may do what with them (pure rules, no I/O).

The aggregate is an ``AccountBook``: the accounts a use case touches, oldest first (the
service loads every account of the customers involved, ordered by opening, and saves
``book.changed_since(before)`` in the same transaction). Operations are functions that
take a book and return a new one, or raise an ``AccountRuleViolation`` and change nothing.
Holder management (add, remove, signatory rights, account information) is in
``dfsp.domain.holders``.

Rules (SPEC section 3, "Accounts and holders", "Customers"; REFERENCE 2.7, 2.8, 6.2):
- every customer holding an open account has exactly one primary account, where
  payments to their user number go; their first account is primary, and making an
  account primary demotes the previous one;
- every account is held by its owner, who is always a signatory;
- an agent has a main and a commission account; the commission account can't be primary,
  can't be closed, can't send money and has no other holders;
- only a signatory closes an account, only an empty one, never their primary account
  unless it is their last one; closing the last account removes the customer.

``balance_minor`` is the ledger's balance, given by the caller; this module never moves
money.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

# Explicit limits.
MAX_ACCOUNT_NAME_LENGTH = 32
MAX_ACCOUNTS_PER_CUSTOMER = 16
MAX_HOLDERS_PER_ACCOUNT = 8


class AccountKind(enum.StrEnum):
    REGULAR = "regular"
    COMMISSION = "commission"


# --- errors -------------------------------------------------------------------------


class AccountRuleViolation(Exception):
    """Base of the refusals; each subclass maps to one USSD message. Nothing was changed."""

    reason = "this is not allowed on the account"

    def __init__(self, account_id: str | None = None, customer_id: str | None = None) -> None:
        super().__init__(f"{self.reason} (account={account_id!r}, customer={customer_id!r})")
        self.account_id = account_id
        self.customer_id = customer_id


class InvalidAccountRequest(AccountRuleViolation):
    reason = "invalid account name, currency or id"


class UnknownAccount(AccountRuleViolation):
    reason = "no such open account"


class NotAccountHolder(AccountRuleViolation):
    reason = "the customer does not hold the account"


class NotSignatory(AccountRuleViolation):
    reason = "only a signatory may do this"


class PrimaryAccountCannotClose(AccountRuleViolation):
    reason = "the primary account can't be closed"


class AccountNotEmpty(AccountRuleViolation):
    reason = "an account with money in it can't be closed"


class CommissionAccountRestricted(AccountRuleViolation):
    reason = "a commission account can't be primary, closed, shared or used to send"


class NoOtherAccount(AccountRuleViolation):
    reason = "You don't have any other account to switch to"


class TooManyAccounts(AccountRuleViolation):
    reason = f"a customer holds at most {MAX_ACCOUNTS_PER_CUSTOMER} accounts"


class UnknownHolder(AccountRuleViolation):
    reason = "the person is not a holder of the account"


class AlreadyHolder(AccountRuleViolation):
    reason = "the person already holds the account"


class TooManyHolders(AccountRuleViolation):
    reason = f"an account has at most {MAX_HOLDERS_PER_ACCOUNT} holders"


class LastSignatoryCannotBeRemoved(AccountRuleViolation):
    """Every account keeps a signatory: its owner (the two subclasses below)."""

    reason = "the last signatory can't be removed"


class OwnerCannotBeRemoved(LastSignatoryCannotBeRemoved):
    reason = "the owner can't be removed from the account"


class OwnerAlwaysSignatory(LastSignatoryCannotBeRemoved):
    reason = "the owner is always a signatory"


# --- values -------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    signatory: bool


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    currency: str
    owner_id: str
    holders: Mapping[str, Holder]  # customer id -> rights; never mutated, replaced
    kind: AccountKind = AccountKind.REGULAR
    primary_for: frozenset[str] = frozenset()  # customers for whom this is the primary
    balance_minor: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        # Invariants every operation keeps; a failure here is a bug, not a refusal.
        if self.holders.get(self.owner_id) != Holder(signatory=True):
            raise ValueError(f"account {self.id!r}: the owner must be a signatory holder")
        if not self.primary_for <= self.holders.keys():
            raise ValueError(f"account {self.id!r}: primary for someone who doesn't hold it")
        if self.primary_for and (self.closed or self.kind is AccountKind.COMMISSION):
            raise ValueError(f"account {self.id!r}: a closed or commission account is primary")

    def holds(self, customer_id: str) -> bool:
        return not self.closed and customer_id in self.holders

    def is_signatory(self, customer_id: str) -> bool:
        return self.holds(customer_id) and self.holders[customer_id].signatory


@dataclass(frozen=True)
class AccountBook:
    accounts: tuple[Account, ...] = ()  # oldest first

    def __post_init__(self) -> None:
        ids = [a.id for a in self.accounts]
        if len(ids) != len(set(ids)):
            raise ValueError("an account id appears twice in the book")

    def find(self, account_id: str) -> Account | None:
        return next((a for a in self.accounts if a.id == account_id), None)

    def get(self, account_id: str) -> Account:
        """The open account with this id, or ``UnknownAccount``."""
        account = self.find(account_id)
        if account is None or account.closed:
            raise UnknownAccount(account_id)
        return account

    def held_by(self, customer_id: str) -> tuple[Account, ...]:
        """The open accounts the customer holds (as owner or holder), oldest first."""
        return tuple(a for a in self.accounts if a.holds(customer_id))

    def primary_of(self, customer_id: str) -> Account | None:
        return next((a for a in self.accounts if customer_id in a.primary_for), None)

    def customers(self) -> frozenset[str]:
        """Everyone holding an open account in the book."""
        return frozenset(c for a in self.accounts if not a.closed for c in a.holders)

    def changed_since(self, before: AccountBook) -> tuple[Account, ...]:
        """The accounts that are new or differ from ``before``: what the service saves."""
        return tuple(a for a in self.accounts if before.find(a.id) != a)

    def with_accounts(self, *changed: Account) -> AccountBook:
        """This book with ``changed`` replacing the accounts of the same id (or appended)."""
        by_id = {a.id: a for a in changed}
        kept = tuple(by_id.pop(a.id, a) for a in self.accounts)
        return AccountBook(kept + tuple(by_id.values()))


@dataclass(frozen=True)
class Permissions:
    """What a customer may do on an account; the caller also applies role rules
    (only merchants invoice, only agents cash in/out)."""

    can_view: bool  # balance and ministatement
    can_invoice: bool
    can_send: bool
    can_manage: bool


@dataclass(frozen=True)
class AccountClosed:
    book: AccountBook
    customer_removed: bool  # the closer held no other account: remove them (DFSP + directory)
    left_without_account: frozenset[str]  # other holders now with no account


# --- shared rules -------------------------------------------------------------------


def require_signatory(account: Account, actor_id: str) -> None:
    if not account.holds(actor_id):
        raise NotAccountHolder(account.id, actor_id)
    if not account.holders[actor_id].signatory:
        raise NotSignatory(account.id, actor_id)


def require_room_for_account(book: AccountBook, customer_id: str) -> None:
    if len(book.held_by(customer_id)) >= MAX_ACCOUNTS_PER_CUSTOMER:
        raise TooManyAccounts(customer_id=customer_id)


def set_primary(book: AccountBook, customer_id: str, account_id: str) -> AccountBook:
    """Make ``account_id`` the customer's primary account, demoting the previous one."""
    changed = [
        replace(a, primary_for=a.primary_for - {customer_id})
        for a in book.accounts
        if customer_id in a.primary_for and a.id != account_id
    ]
    target = book.get(account_id)
    changed.append(replace(target, primary_for=target.primary_for | {customer_id}))
    return book.with_accounts(*changed)


def settle_primaries(
    book: AccountBook, customer_ids: Iterable[str]
) -> tuple[AccountBook, frozenset[str]]:
    """Give each customer who holds accounts but has no primary their oldest regular one.

    Returns the book and the customers left holding no account at all. Refuses a change
    that would leave someone holding only a commission account (it can't be primary).
    """
    left_without: set[str] = set()
    for customer_id in customer_ids:
        held = book.held_by(customer_id)
        if not held:
            left_without.add(customer_id)
        elif book.primary_of(customer_id) is None:
            regular = [a for a in held if a.kind is AccountKind.REGULAR]
            if not regular:
                raise CommissionAccountRestricted(held[0].id, customer_id)
            book = set_primary(book, customer_id, regular[0].id)
    return book, frozenset(left_without)


def _check_request(book: AccountBook, account_id: str, name: str, currency: str) -> None:
    if book.find(account_id) is not None or not account_id:
        raise InvalidAccountRequest(account_id)
    if not name.strip() or len(name) > MAX_ACCOUNT_NAME_LENGTH:
        raise InvalidAccountRequest(account_id)
    if len(currency) != 3 or not (currency.isascii() and currency.isalpha() and currency.isupper()):
        raise InvalidAccountRequest(account_id)


# --- operations ---------------------------------------------------------------------


def _open(
    book: AccountBook,
    *,
    account_id: str,
    owner_id: str,
    name: str,
    currency: str,
    primary: bool,
    kind: AccountKind,
) -> AccountBook:
    _check_request(book, account_id, name, currency)
    require_room_for_account(book, owner_id)
    first = not book.held_by(owner_id)
    if kind is AccountKind.COMMISSION and (primary or first):
        raise CommissionAccountRestricted(account_id, owner_id)
    account = Account(
        account_id, name, currency, owner_id, holders={owner_id: Holder(signatory=True)}, kind=kind
    )
    book = book.with_accounts(account)
    return set_primary(book, owner_id, account_id) if primary or first else book


def open_account(
    book: AccountBook,
    *,
    account_id: str,
    owner_id: str,
    name: str,
    currency: str,
    primary: bool,
) -> AccountBook:
    """Add a regular account; the customer's first account is primary whatever ``primary``."""
    return _open(
        book,
        account_id=account_id,
        owner_id=owner_id,
        name=name,
        currency=currency,
        primary=primary,
        kind=AccountKind.REGULAR,
    )


def open_agent_accounts(
    book: AccountBook,
    *,
    agent_id: str,
    main_account_id: str,
    commission_account_id: str,
    name: str,
    currency: str,
    commission_name: str = "commission",
) -> AccountBook:
    """An agent starts with a main (primary) account and a commission account."""
    book = _open(
        book,
        account_id=main_account_id,
        owner_id=agent_id,
        name=name,
        currency=currency,
        primary=True,
        kind=AccountKind.REGULAR,
    )
    return _open(
        book,
        account_id=commission_account_id,
        owner_id=agent_id,
        name=commission_name,
        currency=currency,
        primary=False,
        kind=AccountKind.COMMISSION,
    )


def rename_account(book: AccountBook, *, actor_id: str, account_id: str, name: str) -> AccountBook:
    account = book.get(account_id)
    require_signatory(account, actor_id)
    if not name.strip() or len(name) > MAX_ACCOUNT_NAME_LENGTH:
        raise InvalidAccountRequest(account_id, actor_id)
    return book.with_accounts(replace(account, name=name))


def make_primary(book: AccountBook, *, customer_id: str, account_id: str) -> AccountBook:
    """Make an account the customer holds their primary one (never a commission account)."""
    account = book.get(account_id)
    if not account.holds(customer_id):
        raise NotAccountHolder(account_id, customer_id)
    if account.kind is AccountKind.COMMISSION:
        raise CommissionAccountRestricted(account_id, customer_id)
    return set_primary(book, customer_id, account_id)


def close_account(book: AccountBook, *, actor_id: str, account_id: str) -> AccountClosed:
    """Close an empty, non-primary account (or the closer's last one), by a signatory.

    Other holders for whom it was primary get their oldest remaining account as primary.
    """
    account = book.get(account_id)
    require_signatory(account, actor_id)
    if account.kind is AccountKind.COMMISSION:
        raise CommissionAccountRestricted(account_id, actor_id)
    if actor_id in account.primary_for and len(book.held_by(actor_id)) > 1:
        raise PrimaryAccountCannotClose(account_id, actor_id)
    if account.balance_minor != 0:
        raise AccountNotEmpty(account_id, actor_id)
    closed = replace(account, closed=True, primary_for=frozenset())
    book, left_without = settle_primaries(book.with_accounts(closed), account.holders)
    return AccountClosed(book, actor_id in left_without, left_without - {actor_id})


def permissions(account: Account, customer_id: str) -> Permissions:
    """A non-signatory may view and invoice only; a commission account never sends."""
    if not account.holds(customer_id):
        return Permissions(can_view=False, can_invoice=False, can_send=False, can_manage=False)
    signatory = account.holders[customer_id].signatory
    regular = account.kind is AccountKind.REGULAR
    return Permissions(
        can_view=True, can_invoice=regular, can_send=signatory and regular, can_manage=signatory
    )


def other_accounts(
    book: AccountBook, *, customer_id: str, current_account_id: str
) -> tuple[Account, ...]:
    """The accounts the customer can switch to, oldest first, or ``NoOtherAccount``."""
    others = tuple(a for a in book.held_by(customer_id) if a.id != current_account_id)
    if not others:
        raise NoOtherAccount(current_account_id, customer_id)
    return others
