"""Account management, PIN change and language through the DFSP's HTTP API, driven only
through ``DfspClient`` on a real loopback server (SQLite, and PostgreSQL where
USSDLOOP_TEST_PG is set). Every customer starts with a primary "main" account holding
the demo opening balance of 1000 USD; a payment costs a fee of 1 USD."""

from __future__ import annotations

import logging
import re

import pytest

from dfsp.client import (
    ACCOUNT_RULE_IDS,
    AccountInfo,
    AccountPermissions,
    AccountRuleError,
    BadRequestError,
    CustomerInfo,
    DfspClient,
    HolderLine,
    UnknownCustomerError,
    WeakPinError,
    WrongPinError,
)
from dfsp.domain.accounts import AccountRuleViolation
from tests.integration.conftest import Database
from tests.integration.dfsp.test_api import PIN, WRONG_PIN, register, served_dfsp, usd
from tests.support import asyncio_test

NEW_PIN = "5082"
SIGNATORY = AccountPermissions(view=True, invoice=True, send=True, manage=True)
NON_SIGNATORY = AccountPermissions(view=True, invoice=True, send=False, manage=False)


def primary_of(customer: CustomerInfo) -> str:
    assert customer.primary_account_id is not None
    return customer.primary_account_id


def owner_line(customer: CustomerInfo) -> HolderLine:
    return HolderLine(
        customer.customer_id,
        customer.user_number,
        customer.first_name,
        customer.last_name,
        signatory=True,
        owner=True,
    )


async def names_and_primaries(client: DfspClient, customer_id: str) -> list[tuple[str, bool]]:
    return [(a.name, a.primary) for a in await client.accounts(customer_id)]


async def pay_everything(client: DfspClient, payer: CustomerInfo, account_id: str, to: str) -> None:
    """Empty ``account_id`` (1000 USD) by paying 999 and the fee of 1."""
    quote = await client.quote_send(payer.customer_id, account_id, to, usd("999"))
    assert quote.total == usd("1000")
    await client.send(quote, PIN, f"empty-{account_id}")


def test_the_client_knows_every_account_rule_id() -> None:
    def names(kind: type[AccountRuleViolation]) -> set[str]:
        return {kind.__name__}.union(*(names(sub) for sub in kind.__subclasses__()))

    assert names(AccountRuleViolation) == ACCOUNT_RULE_IDS


@asyncio_test
async def test_the_accounts_list_shows_each_account_with_rights_and_holders_oldest_first(
    database: Database,
) -> None:
    async with served_dfsp(database) as dfsp:
        ann = await register(dfsp.client, 1, "Ann")
        (main,) = await dfsp.client.accounts(ann.customer_id)
        assert main == AccountInfo(
            account_id=primary_of(ann),
            name="main",
            currency="USD",
            kind="regular",
            primary=True,
            permissions=SIGNATORY,
            holders=(owner_line(ann),),
        )
        with pytest.raises(UnknownCustomerError) as nobody:
            await dfsp.client.accounts("no-such-customer")
        assert nobody.value.status == 404


@asyncio_test
async def test_an_added_primary_account_demotes_the_previous_one(database: Database) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        ann = await register(client, 1, "Ann")
        savings = await client.add_account(ann.customer_id, "savings", PIN)
        assert (savings.name, savings.primary, savings.holders) == (
            "savings",
            False,
            (owner_line(ann),),
        )
        assert await names_and_primaries(client, ann.customer_id) == [
            ("main", True),
            ("savings", False),
        ]
        daily = await client.add_account(ann.customer_id, "daily", PIN, primary=True)
        assert daily.primary
        assert await names_and_primaries(client, ann.customer_id) == [
            ("main", False),
            ("savings", False),
            ("daily", True),
        ]
        assert (await client.customer_by_user_number(ann.user_number)).primary_account_id == (
            daily.account_id
        )
        with pytest.raises(AccountRuleError) as too_long:
            await client.add_account(ann.customer_id, "x" * 33, PIN)
        assert (too_long.value.id, too_long.value.status) == ("InvalidAccountRequest", 400)


@asyncio_test
async def test_an_account_is_renamed_and_made_primary(database: Database) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        ann = await register(client, 1, "Ann")
        savings = await client.add_account(ann.customer_id, "savings", PIN)
        renamed = await client.rename_account(ann.customer_id, savings.account_id, "school", PIN)
        assert (renamed.account_id, renamed.name) == (savings.account_id, "school")
        primary = await client.make_primary(ann.customer_id, savings.account_id, PIN)
        assert primary.primary
        assert await names_and_primaries(client, ann.customer_id) == [
            ("main", False),
            ("school", True),
        ]
        with pytest.raises(AccountRuleError) as unknown:
            await client.make_primary(ann.customer_id, "no-such-account", PIN)
        assert (unknown.value.id, unknown.value.status) == ("UnknownAccount", 404)


@asyncio_test
async def test_closing_the_primary_account_is_refused(database: Database) -> None:
    async with served_dfsp(database) as dfsp:
        ann = await register(dfsp.client, 1, "Ann")
        await dfsp.client.add_account(ann.customer_id, "savings", PIN)
        with pytest.raises(AccountRuleError) as refused:
            await dfsp.client.close_account(ann.customer_id, primary_of(ann), PIN)
        assert (refused.value.id, refused.value.status) == ("PrimaryAccountCannotClose", 409)
        assert len(await dfsp.client.accounts(ann.customer_id)) == 2


@asyncio_test
async def test_closing_an_account_with_money_is_refused_and_an_empty_one_is_closed(
    database: Database,
) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        ann = await register(client, 1, "Ann")
        spare = await client.add_account(ann.customer_id, "spare", PIN)
        await client.add_account(ann.customer_id, "daily", PIN, primary=True)
        with pytest.raises(AccountRuleError) as not_empty:
            await client.close_account(ann.customer_id, primary_of(ann), PIN)
        assert (not_empty.value.id, not_empty.value.status) == ("AccountNotEmpty", 409)
        closed = await client.close_account(ann.customer_id, spare.account_id, PIN)
        assert (closed.customer_removed, closed.left_without_account) == (False, ())
        assert await names_and_primaries(client, ann.customer_id) == [
            ("main", False),
            ("daily", True),
        ]


@asyncio_test
async def test_closing_the_last_account_removes_the_customer(database: Database) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        ann = await register(client, 1, "Ann")
        ben = await register(client, 2, "Ben")
        daily = await client.add_account(ann.customer_id, "daily", PIN, primary=True)
        await pay_everything(client, ann, primary_of(ann), ben.user_number)
        await client.close_account(ann.customer_id, primary_of(ann), PIN)
        closed = await client.close_account(ann.customer_id, daily.account_id, PIN)
        assert (closed.customer_removed, closed.left_without_account) == (True, ())
        with pytest.raises(UnknownCustomerError):
            await client.customer_by_user_number(ann.user_number)


@asyncio_test
async def test_a_holder_is_added_by_user_number_and_sees_the_account(database: Database) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        ann = await register(client, 1, "Ann")
        ben = await register(client, 2, "Ben")
        cat = await register(client, 3, "Cat")
        account = primary_of(ann)
        added = await client.add_holder(ann.customer_id, account, ben.user_number, PIN)
        assert added == HolderLine(
            ben.customer_id, ben.user_number, "Ben", "Api", signatory=False, owner=False
        )
        signatory = await client.add_holder(
            ann.customer_id, account, cat.user_number, PIN, signatory=True
        )
        assert (signatory.customer_id, signatory.signatory) == (cat.customer_id, True)
        shared, own = await client.accounts(ben.customer_id)  # oldest first: Ann's is older
        assert (own.primary, shared.account_id, shared.primary) == (True, account, False)
        assert shared.permissions == NON_SIGNATORY
        assert [(h.name, h.signatory, h.owner) for h in shared.holders] == [
            ("Ann Api", True, True),
            ("Ben Api", False, False),
            ("Cat Api", True, False),
        ]
        assert (await client.accounts(cat.customer_id))[0].permissions == SIGNATORY
        with pytest.raises(UnknownCustomerError) as nobody:
            await client.add_holder(ann.customer_id, account, "99999999", PIN)
        assert nobody.value.status == 404
        with pytest.raises(AccountRuleError) as twice:
            await client.add_holder(ann.customer_id, account, ben.user_number, PIN)
        assert (twice.value.id, twice.value.status) == ("AlreadyHolder", 409)
        with pytest.raises(AccountRuleError) as not_signatory:
            await client.add_holder(ben.customer_id, account, cat.user_number, PIN)
        assert (not_signatory.value.id, not_signatory.value.status) == ("NotSignatory", 403)


@asyncio_test
async def test_a_holder_is_removed_but_the_owner_is_not(database: Database) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        ann = await register(client, 1, "Ann")
        ben = await register(client, 2, "Ben")
        account = primary_of(ann)
        await client.add_holder(ann.customer_id, account, ben.user_number, PIN, signatory=True)
        with pytest.raises(AccountRuleError) as owner:
            await client.remove_holder(ben.customer_id, account, ann.customer_id, PIN)
        assert (owner.value.id, owner.value.status) == ("OwnerCannotBeRemoved", 409)
        assert not await client.remove_holder(ann.customer_id, account, ben.customer_id, PIN)
        assert [a.account_id for a in await client.accounts(ben.customer_id)] == [primary_of(ben)]
        with pytest.raises(AccountRuleError) as gone:
            await client.remove_holder(ann.customer_id, account, ben.customer_id, PIN)
        assert (gone.value.id, gone.value.status) == ("UnknownHolder", 404)


@asyncio_test
async def test_signatory_rights_are_toggled_but_not_the_owners(database: Database) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        ann = await register(client, 1, "Ann")
        ben = await register(client, 2, "Ben")
        account = primary_of(ann)
        await client.add_holder(ann.customer_id, account, ben.user_number, PIN)
        shown = await client.set_signatory(
            ann.customer_id, account, ben.customer_id, PIN, signatory=True
        )
        assert [h.signatory for h in shown.holders] == [True, True]
        assert (await client.accounts(ben.customer_id))[0].permissions == SIGNATORY
        await client.set_signatory(ann.customer_id, account, ben.customer_id, PIN, signatory=False)
        assert (await client.accounts(ben.customer_id))[0].permissions == NON_SIGNATORY
        with pytest.raises(AccountRuleError) as owner:
            await client.set_signatory(
                ann.customer_id, account, ann.customer_id, PIN, signatory=False
            )
        assert (owner.value.id, owner.value.status) == ("OwnerAlwaysSignatory", 409)
        with pytest.raises(AccountRuleError) as outsider:
            await client.rename_account(ben.customer_id, primary_of(ann), "mine", PIN)
        assert (outsider.value.id, outsider.value.status) == ("NotSignatory", 403)


@asyncio_test
async def test_a_wrong_pin_counts_down_and_changes_nothing(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        ann = await register(client, 1, "Ann")
        ben = await register(client, 2, "Ben")
        account = primary_of(ann)
        before = await client.accounts(ann.customer_id)
        with pytest.raises(WrongPinError) as first:
            await client.rename_account(ann.customer_id, account, "renamed", WRONG_PIN)
        with pytest.raises(WrongPinError) as second:
            await client.add_account(ann.customer_id, "extra", WRONG_PIN, primary=True)
        assert (first.value.attempts_left, second.value.attempts_left) == (2, 1)
        assert first.value.status == 403 and WRONG_PIN not in str(first.value)
        assert await client.accounts(ann.customer_id) == before
        await client.add_holder(ann.customer_id, account, ben.user_number, PIN)  # resets
        for change in (
            client.close_account(ann.customer_id, account, WRONG_PIN),
            client.remove_holder(ann.customer_id, account, ben.customer_id, WRONG_PIN),
        ):
            with pytest.raises(WrongPinError):
                await change
        assert len((await client.accounts(ann.customer_id))[0].holders) == 2
    assert not re.search(rf"\b({PIN}|{WRONG_PIN})\b", caplog.text)


@asyncio_test
async def test_the_pin_is_changed_from_the_phone(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        ann = await register(client, 1, "Ann")
        with pytest.raises(WeakPinError) as weak:
            await client.change_pin(ann.customer_id, PIN, "1111")
        assert (weak.value.status, weak.value.reason) == (400, "one_digit")
        with pytest.raises(WrongPinError) as wrong:
            await client.change_pin(ann.customer_id, WRONG_PIN, NEW_PIN)
        assert wrong.value.attempts_left == 2
        await client.change_pin(ann.customer_id, PIN, NEW_PIN)
        with pytest.raises(WrongPinError):
            await client.balance(ann.customer_id, primary_of(ann), PIN)
        assert await client.balance(ann.customer_id, primary_of(ann), NEW_PIN) == usd("1000")
        await client.add_account(ann.customer_id, "savings", NEW_PIN)
    assert not re.search(rf"\b({PIN}|{WRONG_PIN}|{NEW_PIN}|1111)\b", caplog.text)


@asyncio_test
async def test_the_language_is_set_and_shown_with_the_customer(database: Database) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        ann = await register(client, 1, "Ann")
        assert ann.language == "en"
        assert (await client.set_language(ann.customer_id, "fr")).language == "fr"
        assert (await client.customer_by_user_number(ann.user_number)).language == "fr"
        with pytest.raises(BadRequestError) as refused:
            await client.set_language(ann.customer_id, "de")
        assert refused.value.status == 400 and "language" in str(refused.value)
        with pytest.raises(UnknownCustomerError):
            await client.set_language("no-such-customer", "en")
