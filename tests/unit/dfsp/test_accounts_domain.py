"""Account management rules (SPEC section 3 "Accounts and holders"; REFERENCE 6.2)."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfsp.domain.accounts import (
    MAX_ACCOUNTS_PER_CUSTOMER,
    MAX_HOLDERS_PER_ACCOUNT,
    AccountBook,
    AccountKind,
    AccountNotEmpty,
    AccountRuleViolation,
    CommissionAccountRestricted,
    InvalidAccountRequest,
    LastSignatoryCannotBeRemoved,
    NoOtherAccount,
    NotAccountHolder,
    NotSignatory,
    PrimaryAccountCannotClose,
    TooManyAccounts,
    UnknownAccount,
    close_account,
    make_primary,
    open_account,
    open_agent_accounts,
    other_accounts,
    permissions,
    rename_account,
)
from dfsp.domain.holders import (
    AlreadyHolder,
    HolderEntry,
    OwnerAlwaysSignatory,
    OwnerCannotBeRemoved,
    TooManyHolders,
    UnknownHolder,
    account_info,
    add_holder,
    remove_holder,
    set_signatory,
)


def open_(book: AccountBook, account_id: str, owner: str, primary: bool = False) -> AccountBook:
    return open_account(
        book,
        account_id=account_id,
        owner_id=owner,
        name=account_id,
        currency="USD",
        primary=primary,
    )


def primary_id(book: AccountBook, customer_id: str) -> str | None:
    account = book.primary_of(customer_id)
    return account.id if account else None


def with_balance(book: AccountBook, account_id: str, balance_minor: int) -> AccountBook:
    return book.with_accounts(replace(book.get(account_id), balance_minor=balance_minor))


@pytest.fixture
def bob() -> AccountBook:
    """bob owns "bob" (primary, from sign-up) and "savings"."""
    return open_(open_(AccountBook(), "bob", "bob"), "savings", "bob")


@pytest.fixture
def shared(bob: AccountBook) -> AccountBook:
    """bob's "bob" account is shared with alice (signatory) and carol (non-signatory)."""
    book = open_(bob, "alice", "alice")
    book = add_holder(book, actor_id="bob", account_id="bob", holder_id="alice", signatory=True)
    return add_holder(book, actor_id="bob", account_id="bob", holder_id="carol", signatory=False)


def agent_book() -> AccountBook:
    return open_agent_accounts(
        AccountBook(),
        agent_id="ann",
        main_account_id="main",
        commission_account_id="comm",
        name="ann",
        currency="USD",
    )


# --- adding accounts (ACC-1, ACC-10) -------------------------------------------------


def test_the_first_account_is_primary() -> None:
    book = open_(AccountBook(), "bob", "bob", primary=False)
    assert primary_id(book, "bob") == "bob"


def test_an_added_account_appears_in_the_switch_list(bob: AccountBook) -> None:
    others = other_accounts(bob, customer_id="bob", current_account_id="bob")
    assert [a.id for a in others] == ["savings"]


def test_an_added_secondary_account_leaves_the_primary_alone(bob: AccountBook) -> None:
    assert primary_id(bob, "bob") == "bob"


def test_a_new_account_made_primary_at_creation_demotes_the_old_primary(
    bob: AccountBook,
) -> None:
    book = open_(bob, "travel", "bob", primary=True)
    assert primary_id(book, "bob") == "travel"
    assert "bob" not in book.get("bob").primary_for


def test_adding_an_account_requires_a_name() -> None:
    with pytest.raises(InvalidAccountRequest):
        open_(AccountBook(), "", "bob")
    with pytest.raises(InvalidAccountRequest):
        open_account(
            AccountBook(), account_id="a", owner_id="bob", name=" ", currency="USD", primary=True
        )


def test_an_account_id_is_used_once(bob: AccountBook) -> None:
    with pytest.raises(InvalidAccountRequest):
        open_(bob, "savings", "alice")


def test_a_customer_holds_a_bounded_number_of_accounts() -> None:
    book = AccountBook()
    for n in range(MAX_ACCOUNTS_PER_CUSTOMER):
        book = open_(book, f"a{n}", "bob")
    with pytest.raises(TooManyAccounts):
        open_(book, "one-more", "bob")


def test_the_changed_accounts_are_what_the_service_saves(bob: AccountBook) -> None:
    after = open_(bob, "travel", "bob", primary=True)
    assert {a.id for a in after.changed_since(bob)} == {"bob", "travel"}


# --- editing accounts (ACC-11) -------------------------------------------------------


def test_a_signatory_renames_an_account(bob: AccountBook) -> None:
    book = rename_account(bob, actor_id="bob", account_id="savings", name="rainy day")
    assert book.get("savings").name == "rainy day"


def test_a_non_signatory_cannot_rename(shared: AccountBook) -> None:
    with pytest.raises(NotSignatory):
        rename_account(shared, actor_id="carol", account_id="bob", name="mine")


def test_a_secondary_account_made_primary_demotes_the_old_primary(bob: AccountBook) -> None:
    book = make_primary(bob, customer_id="bob", account_id="savings")
    assert primary_id(book, "bob") == "savings"
    assert book.get("bob").primary_for == frozenset()


def test_only_an_account_the_customer_holds_can_be_made_primary(bob: AccountBook) -> None:
    with pytest.raises(NotAccountHolder):
        make_primary(bob, customer_id="alice", account_id="savings")


def test_primary_is_per_customer(shared: AccountBook) -> None:
    book = make_primary(shared, customer_id="bob", account_id="savings")
    assert primary_id(book, "bob") == "savings"
    assert primary_id(book, "carol") == "bob"


# --- closing accounts (ACC-2..6, CUS-8) ---------------------------------------------


def test_a_secondary_empty_account_can_be_closed_by_a_signatory(bob: AccountBook) -> None:
    closed = close_account(bob, actor_id="bob", account_id="savings")
    assert not closed.customer_removed
    with pytest.raises(UnknownAccount):
        closed.book.get("savings")
    assert [a.id for a in closed.book.held_by("bob")] == ["bob"]


def test_closing_the_primary_account_is_refused(bob: AccountBook) -> None:
    with pytest.raises(PrimaryAccountCannotClose):
        close_account(bob, actor_id="bob", account_id="bob")


def test_closing_an_account_with_money_is_refused(bob: AccountBook) -> None:
    with pytest.raises(AccountNotEmpty):
        close_account(with_balance(bob, "savings", 1), actor_id="bob", account_id="savings")


def test_only_a_signatory_closes_an_account(shared: AccountBook) -> None:
    book = make_primary(shared, customer_id="bob", account_id="savings")
    with pytest.raises(NotSignatory):
        close_account(book, actor_id="carol", account_id="bob")


def test_someone_who_does_not_hold_the_account_cannot_close_it(bob: AccountBook) -> None:
    with pytest.raises(NotAccountHolder):
        close_account(bob, actor_id="mallory", account_id="savings")


def test_closing_the_last_account_removes_the_customer() -> None:
    closed = close_account(open_(AccountBook(), "bob", "bob"), actor_id="bob", account_id="bob")
    assert closed.customer_removed
    assert closed.book.held_by("bob") == ()
    assert "bob" not in closed.book.customers()


def test_closing_another_holders_primary_gives_them_their_oldest_account(
    shared: AccountBook,
) -> None:
    book = open_(shared, "carol-1", "carol")
    book = open_(book, "carol-2", "carol")
    book = make_primary(book, customer_id="carol", account_id="bob")
    book = make_primary(book, customer_id="bob", account_id="savings")
    closed = close_account(book, actor_id="bob", account_id="bob")
    assert primary_id(closed.book, "carol") == "carol-1"
    assert closed.left_without_account == frozenset()


def test_closing_the_only_account_of_another_holder_reports_them(shared: AccountBook) -> None:
    book = make_primary(shared, customer_id="bob", account_id="savings")
    closed = close_account(book, actor_id="bob", account_id="bob")
    assert closed.left_without_account == {"carol"}
    assert not closed.customer_removed


def test_a_closed_account_cannot_be_used(bob: AccountBook) -> None:
    book = close_account(bob, actor_id="bob", account_id="savings").book
    with pytest.raises(UnknownAccount):
        make_primary(book, customer_id="bob", account_id="savings")


# --- switch account (ACC-7, ACC-8) --------------------------------------------------


def test_switching_with_only_one_account_is_refused() -> None:
    book = open_(AccountBook(), "bob", "bob")
    with pytest.raises(NoOtherAccount, match="You don't have any other account to switch to"):
        other_accounts(book, customer_id="bob", current_account_id="bob")


def test_with_several_accounts_the_customer_switches_between_them(bob: AccountBook) -> None:
    assert [a.id for a in other_accounts(bob, customer_id="bob", current_account_id="savings")] == [
        "bob"
    ]


# --- holders (ACC-12..18) ------------------------------------------------------------


def test_a_holder_sees_the_shared_account_in_switch_account(shared: AccountBook) -> None:
    others = other_accounts(shared, customer_id="alice", current_account_id="alice")
    assert [a.id for a in others] == ["bob"]
    assert permissions(shared.get("bob"), "alice").can_view


def test_a_holder_with_no_other_account_gets_the_shared_one_as_primary(
    shared: AccountBook,
) -> None:
    assert primary_id(shared, "carol") == "bob"
    assert primary_id(shared, "alice") == "alice"


def test_a_non_signatory_cannot_add_a_holder(shared: AccountBook) -> None:
    with pytest.raises(NotSignatory):
        add_holder(shared, actor_id="carol", account_id="bob", holder_id="dan", signatory=False)


def test_a_holder_already_present_is_refused(shared: AccountBook) -> None:
    with pytest.raises(AlreadyHolder):
        add_holder(shared, actor_id="bob", account_id="bob", holder_id="carol", signatory=True)


def test_an_account_has_a_bounded_number_of_holders(bob: AccountBook) -> None:
    book = bob
    for n in range(MAX_HOLDERS_PER_ACCOUNT - 1):
        book = add_holder(
            book, actor_id="bob", account_id="bob", holder_id=f"h{n}", signatory=False
        )
    with pytest.raises(TooManyHolders):
        add_holder(book, actor_id="bob", account_id="bob", holder_id="late", signatory=False)


def test_removing_the_owner_is_refused(shared: AccountBook) -> None:
    with pytest.raises(OwnerCannotBeRemoved):
        remove_holder(shared, actor_id="alice", account_id="bob", holder_id="bob")


def test_a_non_signatory_cannot_remove_anyone(shared: AccountBook) -> None:
    with pytest.raises(NotSignatory):
        remove_holder(shared, actor_id="carol", account_id="bob", holder_id="alice")


def test_a_signatory_removes_a_non_owner_holder(shared: AccountBook) -> None:
    removed = remove_holder(shared, actor_id="alice", account_id="bob", holder_id="carol")
    assert "carol" not in removed.book.get("bob").holders


def test_removing_someone_who_is_not_a_holder_is_refused(shared: AccountBook) -> None:
    with pytest.raises(UnknownHolder):
        remove_holder(shared, actor_id="bob", account_id="bob", holder_id="dan")


def test_the_last_signatory_cannot_be_removed(bob: AccountBook) -> None:
    with pytest.raises(LastSignatoryCannotBeRemoved):
        remove_holder(bob, actor_id="bob", account_id="bob", holder_id="bob")
    with pytest.raises(LastSignatoryCannotBeRemoved):
        set_signatory(bob, actor_id="bob", account_id="bob", holder_id="bob", signatory=False)


def test_removing_a_holder_from_their_primary_makes_their_oldest_account_primary(
    shared: AccountBook,
) -> None:
    book = open_(shared, "carol-1", "carol")
    book = open_(book, "carol-2", "carol")
    assert primary_id(book, "carol") == "bob"
    removed = remove_holder(book, actor_id="bob", account_id="bob", holder_id="carol")
    assert primary_id(removed.book, "carol") == "carol-1"
    assert not removed.left_without_account


def test_a_holder_left_with_no_account_is_reported(shared: AccountBook) -> None:
    removed = remove_holder(shared, actor_id="bob", account_id="bob", holder_id="carol")
    assert removed.left_without_account
    assert removed.book.held_by("carol") == ()
    assert removed.book.primary_of("carol") is None


def test_making_the_owner_non_signatory_is_refused(shared: AccountBook) -> None:
    with pytest.raises(OwnerAlwaysSignatory):
        set_signatory(shared, actor_id="alice", account_id="bob", holder_id="bob", signatory=False)


def test_a_signatory_toggles_a_non_owner_holders_signatory_rights(shared: AccountBook) -> None:
    book = set_signatory(
        shared, actor_id="bob", account_id="bob", holder_id="carol", signatory=True
    )
    assert book.get("bob").is_signatory("carol")
    book = set_signatory(
        book, actor_id="carol", account_id="bob", holder_id="alice", signatory=False
    )
    assert not book.get("bob").is_signatory("alice")


def test_a_non_signatory_cannot_toggle_signatory_rights(shared: AccountBook) -> None:
    with pytest.raises(NotSignatory):
        set_signatory(shared, actor_id="carol", account_id="bob", holder_id="carol", signatory=True)


def test_account_information_lists_holders_with_signatories_marked(shared: AccountBook) -> None:
    assert account_info(shared.get("bob")) == (
        HolderEntry("bob", signatory=True, owner=True),
        HolderEntry("alice", signatory=True, owner=False),
        HolderEntry("carol", signatory=False, owner=False),
    )


# --- permissions (ACC-3, ACC-17, ACC-19) --------------------------------------------


def test_the_owner_is_a_signatory_with_full_rights(bob: AccountBook) -> None:
    rights = permissions(bob.get("bob"), "bob")
    assert rights.can_send and rights.can_manage and rights.can_invoice and rights.can_view


def test_a_non_signatory_can_only_invoice_and_view(shared: AccountBook) -> None:
    rights = permissions(shared.get("bob"), "carol")
    assert rights.can_view and rights.can_invoice
    assert not rights.can_send and not rights.can_manage


def test_someone_who_does_not_hold_the_account_may_do_nothing(bob: AccountBook) -> None:
    rights = permissions(bob.get("bob"), "mallory")
    assert not (rights.can_view or rights.can_invoice or rights.can_send or rights.can_manage)


# --- agents' commission account (CUS-12..14) ----------------------------------------


def test_an_agent_starts_with_a_main_and_a_commission_account() -> None:
    book = agent_book()
    assert [(a.id, a.kind) for a in book.held_by("ann")] == [
        ("main", AccountKind.REGULAR),
        ("comm", AccountKind.COMMISSION),
    ]
    assert primary_id(book, "ann") == "main"


def test_the_commission_account_cannot_be_made_primary() -> None:
    with pytest.raises(CommissionAccountRestricted):
        make_primary(agent_book(), customer_id="ann", account_id="comm")


def test_the_commission_account_cannot_be_closed() -> None:
    with pytest.raises(CommissionAccountRestricted):
        close_account(agent_book(), actor_id="ann", account_id="comm")


def test_the_commission_account_cannot_send() -> None:
    rights = permissions(agent_book().get("comm"), "ann")
    assert rights.can_view and not rights.can_send and not rights.can_invoice


def test_the_commission_account_has_no_other_holders() -> None:
    with pytest.raises(CommissionAccountRestricted):
        add_holder(agent_book(), actor_id="ann", account_id="comm", holder_id="x", signatory=False)


def test_nobody_is_left_with_only_a_commission_account() -> None:
    book = open_(agent_book(), "bob", "bob")
    book = add_holder(book, actor_id="bob", account_id="bob", holder_id="ann", signatory=False)
    book = make_primary(book, customer_id="ann", account_id="bob")
    book = close_account(book, actor_id="ann", account_id="main").book
    with pytest.raises(CommissionAccountRestricted):
        remove_holder(book, actor_id="bob", account_id="bob", holder_id="ann")


# --- property: invariants survive any sequence of operations ------------------------
# An operation names its accounts and people by index into the current book, so most
# generated operations touch real accounts and holders and are either done or refused.

CUSTOMERS = ["c0", "c1", "c2", "c3"]
index = st.integers(0, 15)
operations = st.one_of(
    st.tuples(st.just("open"), index, st.booleans()),
    st.tuples(st.just("agent"), index),
    st.tuples(st.just("primary"), index, index),
    st.tuples(st.just("close"), index, index),
    st.tuples(st.just("fund"), index, st.integers(0, 2)),
    st.tuples(st.just("add"), index, index, index, st.booleans()),
    st.tuples(st.just("add"), index, index, index, st.booleans()),  # twice: more sharing
    st.tuples(st.just("remove"), index, index, index),
    st.tuples(st.just("signatory"), index, index, index, st.booleans()),
)


def pick(items: list[str] | tuple[str, ...], i: int) -> str:
    return items[i % len(items)] if items else "nobody"


def apply(book: AccountBook, op: tuple[Any, ...]) -> AccountBook:
    """Apply one generated operation; refusals propagate as ``AccountRuleViolation``."""
    open_ids = [a.id for a in book.accounts if not a.closed]
    new_id = f"a{len(book.accounts)}"
    match op:
        case ("open", who, primary):
            return open_(book, new_id, pick(CUSTOMERS, who), primary)
        case ("agent", who):
            return open_agent_accounts(
                book,
                agent_id=pick(CUSTOMERS, who),
                main_account_id=new_id,
                commission_account_id=f"{new_id}c",
                name="main",
                currency="USD",
            )
        case ("fund", acc, balance):
            return with_balance(book, pick(open_ids, acc), balance)
        case ("primary", who, acc):
            held = [a.id for a in book.held_by(pick(CUSTOMERS, who))]
            return make_primary(book, customer_id=pick(CUSTOMERS, who), account_id=pick(held, acc))
    if op[0] in ("remove", "signatory"):  # mostly accounts with holders besides the owner
        shared = [a.id for a in book.accounts if not a.closed and len(a.holders) > 1]
        open_ids = shared or open_ids
    account = book.get(pick(open_ids, op[1]))
    holders = list(account.holders)
    actor = pick(holders, op[2])
    match op:
        case ("close", _, _):
            return close_account(book, actor_id=actor, account_id=account.id).book
        case ("add", _, _, who, signatory):
            return add_holder(
                book,
                actor_id=actor,
                account_id=account.id,
                holder_id=pick(CUSTOMERS, who),
                signatory=signatory,
            )
        case ("remove", _, _, who):
            holder = pick(holders[1:] or holders, who)  # mostly not the owner (tested above)
            return remove_holder(book, actor_id=actor, account_id=account.id, holder_id=holder).book
        case ("signatory", _, _, who, signatory):
            return set_signatory(
                book,
                actor_id=actor,
                account_id=account.id,
                holder_id=pick(holders, who),
                signatory=signatory,
            )
    raise AssertionError(op)


def assert_invariants(book: AccountBook) -> None:
    for who in CUSTOMERS:
        primaries = [a for a in book.accounts if who in a.primary_for]
        if book.held_by(who):
            assert len(primaries) == 1
            assert primaries[0].holds(who) and primaries[0].kind is AccountKind.REGULAR
        else:
            assert primaries == []
    for acc in book.accounts:
        assert any(h.signatory for h in acc.holders.values())
        assert acc.holders[acc.owner_id].signatory


@settings(max_examples=300)
@given(st.lists(operations, min_size=5, max_size=60))
def test_invariants_hold_after_any_sequence_of_operations(ops: list[tuple[Any, ...]]) -> None:
    book = AccountBook()
    for op in ops:
        with contextlib.suppress(AccountRuleViolation):
            book = apply(book, op)
        assert_invariants(book)
