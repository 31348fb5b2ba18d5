"""Holders of an account: adding, removing, signatory rights, account information.

Pure rules on an ``AccountBook`` (see ``dfsp.domain.accounts``). A signatory adds and
removes holders and toggles the signatory rights of non-owners; the owner is always a
signatory and can't be removed, so every account keeps a signatory. A holder sees the
account in switch account; someone added with no other account gets it as primary; a
holder removed from their primary account gets their oldest remaining account as primary,
and one left with no account is reported (the menu then offers only "manage account").
A pending holder (added by phone number before they have a user number) is a holder whose
customer id the service allocates; this module does not tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dfsp.domain.accounts import (
    MAX_HOLDERS_PER_ACCOUNT,
    Account,
    AccountBook,
    AccountKind,
    AlreadyHolder,
    CommissionAccountRestricted,
    Holder,
    OwnerAlwaysSignatory,
    OwnerCannotBeRemoved,
    TooManyHolders,
    UnknownHolder,
    require_room_for_account,
    require_signatory,
    settle_primaries,
)


@dataclass(frozen=True)
class HolderRemoved:
    book: AccountBook
    left_without_account: bool  # the removed holder now holds no account


@dataclass(frozen=True)
class HolderEntry:
    """One line of "Account information": who holds it, signatories marked."""

    customer_id: str
    signatory: bool
    owner: bool


def add_holder(
    book: AccountBook, *, actor_id: str, account_id: str, holder_id: str, signatory: bool
) -> AccountBook:
    account = book.get(account_id)
    require_signatory(account, actor_id)
    if account.kind is AccountKind.COMMISSION:
        raise CommissionAccountRestricted(account_id, holder_id)
    if holder_id in account.holders:
        raise AlreadyHolder(account_id, holder_id)
    if len(account.holders) >= MAX_HOLDERS_PER_ACCOUNT:
        raise TooManyHolders(account_id, holder_id)
    require_room_for_account(book, holder_id)
    holders = {**account.holders, holder_id: Holder(signatory=signatory)}
    book, _ = settle_primaries(book.with_accounts(replace(account, holders=holders)), [holder_id])
    return book


def remove_holder(
    book: AccountBook, *, actor_id: str, account_id: str, holder_id: str
) -> HolderRemoved:
    account = book.get(account_id)
    require_signatory(account, actor_id)
    if holder_id not in account.holders:
        raise UnknownHolder(account_id, holder_id)
    if holder_id == account.owner_id:
        raise OwnerCannotBeRemoved(account_id, holder_id)
    holders = {c: h for c, h in account.holders.items() if c != holder_id}
    changed = replace(account, holders=holders, primary_for=account.primary_for - {holder_id})
    book, left_without = settle_primaries(book.with_accounts(changed), [holder_id])
    return HolderRemoved(book, holder_id in left_without)


def set_signatory(
    book: AccountBook, *, actor_id: str, account_id: str, holder_id: str, signatory: bool
) -> AccountBook:
    """Give or take a non-owner holder's signatory rights."""
    account = book.get(account_id)
    require_signatory(account, actor_id)
    if holder_id not in account.holders:
        raise UnknownHolder(account_id, holder_id)
    if holder_id == account.owner_id and not signatory:
        raise OwnerAlwaysSignatory(account_id, holder_id)
    holders = {**account.holders, holder_id: Holder(signatory=signatory)}
    return book.with_accounts(replace(account, holders=holders))


def account_info(account: Account) -> tuple[HolderEntry, ...]:
    """The holders, owner first then in the order they were added, signatories marked."""
    owner_first = sorted(account.holders.items(), key=lambda item: item[0] != account.owner_id)
    return tuple(
        HolderEntry(customer_id, holder.signatory, customer_id == account.owner_id)
        for customer_id, holder in owner_first
    )
