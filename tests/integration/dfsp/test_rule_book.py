"""An auditor's fees, limits and tiers (``dfsp.rule_book``): a change is in force for the
next quote, survives a restart, reaches another process of the DFSP at its refresh, and
a table with a mistake (its TOML, a rule, a tier customers are in, no reason) is refused
with the key at fault and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from dfsp.domain.fees import FeeTable
from dfsp.domain.payments import LimitExceeded
from dfsp.domain.tiers import TierTable
from dfsp.rule_book import RuleBook, RuleChangeRefused
from tests.integration.conftest import Database
from tests.integration.dfsp.test_bulk import PIN, Net, open_net, usd
from tests.support import asyncio_test

ACTOR = "12345678 Audra Lorde"
FEES = 'p2p = { sender = { bands = [{ flat = "2" }] } }\n'
TIERS = """
[[tiers]]
name = "basic"
limits = { transfers_per_day = 10, amount_per_day = "none", amount_per_week = "none", max_transfer = "3", max_balance = "none" }

[[tiers]]
name = "business"
limits = { transfers_per_day = "none", amount_per_day = "none", amount_per_week = "none", max_transfer = "none", max_balance = "none" }
"""  # noqa: E501  (one tier per TOML line, as in the configuration)


@dataclass
class Book:
    net: Net
    rules: RuleBook

    def another_process(self) -> RuleBook:
        """A second process of the DFSP, on the same database and configuration."""
        return RuleBook(
            self.net.bulk._sessions,
            currency="USD",
            fees={},
            tiers=configured_tiers(),
            clock=self.net.clock,
        )

    async def send(self, amount: str) -> None:
        ann, bob = self.net.payees[0], self.net.payees[1]
        account = (await self.net.customers.accounts_of(ann.id))[0]
        quote = await self.net.payments.quote_send(
            ann.id, account.id, str(bob.user_number), usd(amount)
        )
        await self.net.payments.send(quote, PIN, str(uuid.uuid4()))


def configured_tiers() -> list[object]:
    unlimited = dict.fromkeys(
        ("transfers_per_day", "amount_per_day", "amount_per_week", "max_transfer", "max_balance"),
        "none",
    )
    return [
        {"name": "basic", "limits": unlimited},
        {"name": "premium", "limits": unlimited},
        {"name": "business", "limits": unlimited},
    ]


@asynccontextmanager
async def open_book(database: Database) -> AsyncIterator[Book]:
    async with open_net(database) as net:

        def apply(fees: FeeTable, tiers: TierTable) -> None:
            net.payments.use_fees(fees)
            net.customers.use_tiers(tiers)

        rules = RuleBook(
            net.bulk._sessions,
            currency="USD",
            fees={},
            tiers=configured_tiers(),
            clock=net.clock,
            on_change=apply,
        )
        await rules.load()
        yield Book(net, rules)


@asyncio_test
async def test_new_limits_and_fees_apply_to_the_next_payment_and_are_kept(
    database: Database,
) -> None:
    async with open_book(database) as book:
        await book.send("5")  # as configured: no limit
        other = book.another_process()
        await other.load()

        await book.rules.change_tiers(ACTOR, TIERS, "cap new customers at 3 USD")
        with pytest.raises(LimitExceeded) as refused:
            await book.send("5")
        assert refused.value.violation.limit.value == "max_transfer"
        await book.send("3")

        await book.rules.change_fees(ACTOR, FEES, "new price list")
        ann = book.net.payees[0]
        account = (await book.net.customers.accounts_of(ann.id))[0]
        quote = await book.net.payments.quote_send(
            ann.id, account.id, str(book.net.payees[1].user_number), usd("1")
        )
        assert quote.fee == usd("2")

        assert other.tiers.tier("basic").limits.max_transfer is None  # not refreshed yet
        await other.load()
        assert other.tiers.tier("basic").limits.max_transfer == usd("3")
        assert other.fees.quote(quote.quote.kind, usd("1"), quote.quote.route).local_fee == usd("2")
        assert 'flat = "2"' in other.fees_toml() and 'name = "business"' in other.tiers_toml()

        restarted = book.another_process()
        await restarted.load()
        assert restarted.tiers_document == book.rules.tiers_document
        history = await book.rules.history()
        assert [(c.kind, c.actor, c.reason) for c in history] == [
            ("fees", ACTOR, "new price list"),
            ("tiers", ACTOR, "cap new customers at 3 USD"),
        ]


@asyncio_test
async def test_a_table_with_a_mistake_is_refused_with_its_key_and_changes_nothing(
    database: Database,
) -> None:
    async with open_book(database) as book:
        ann = book.net.payees[0]
        await book.net.customers.change_tier(ann.id, "premium", actor=ACTOR, reason="vouched")
        fees_before, tiers_before = book.rules.fees_toml(), book.rules.tiers_toml()
        for change, text, message in (
            (book.rules.change_fees, "p2p = {", "not valid TOML"),
            (book.rules.change_fees, 'p2p = { sender = { bands = [{ flat = "-1" }] } }', "p2p"),
            (book.rules.change_fees, "teleport = { sender = { bands = [] } }", "teleport"),
            (book.rules.change_tiers, 'name = "basic"', "[[tiers]]"),
            (
                book.rules.change_tiers,
                TIERS.replace('max_transfer = "3"', 'max_transfer = "three"'),
                "tiers[0].limits.max_transfer",
            ),
            (
                book.rules.change_tiers,
                TIERS,
                "customers are in tiers this table drops: ['premium']",
            ),
            (book.rules.change_tiers, "x" * 20_001, "over 20000 characters"),
        ):
            with pytest.raises(RuleChangeRefused) as refused:
                await change(ACTOR, text, "a reason")
            assert message in str(refused.value), (text, str(refused.value))
        with pytest.raises(RuleChangeRefused, match="a reason is 1 to 200"):
            await book.rules.change_fees(ACTOR, FEES, "  ")
        assert (book.rules.fees_toml(), book.rules.tiers_toml()) == (fees_before, tiers_before)
        assert await book.rules.history() == []
        await book.send("5")  # the configuration's tables still in force
