"""Each customer's tier, stored and applied (SPEC section 3, "Limits and tiers"), on SQLite
always and on PostgreSQL where USSDLOOP_TEST_PG is set: a new customer is in the first
tier, moves up automatically once a rule is met, an auditor's downgrade holds, every
change is recorded, and the limits applied are the tier's, the receiver's own for the
maximum balance. Two customers with 1000 USD each; the demo fee of 1 USD."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from dfsp.domain.customers import Customer
from dfsp.domain.limits import LimitName, Limits
from dfsp.domain.payments import LimitExceeded
from dfsp.domain.tiers import (
    InvalidTierChange,
    RecordedTierChange,
    Tier,
    TierChangeReason,
    TierTable,
    UnknownTier,
    UpgradeRule,
)
from dfsp.domain.transfers import TransferState
from dfsp.migrate import migrate
from dfsp.store import create_store_engine
from tests.integration.conftest import Database
from tests.integration.dfsp.test_customers import NOW, PIN
from tests.integration.dfsp.test_payments import Network, open_network, usd
from tests.support import asyncio_test

TIERS = TierTable(
    (
        Tier("basic", Limits(max_transfer=usd("100"), max_balance=usd("2000"))),
        Tier(
            "saver",
            Limits(max_transfer=usd("500"), max_balance=usd("5000")),
            UpgradeRule(min_balance=usd("1500")),
        ),
        Tier("trusted", Limits()),  # an auditor's choice only
    )
)


async def pay(net: Network, sender: Customer, receiver: Customer, amount: str, tx: str) -> None:
    account = net.alice_account if sender == net.alice else net.bob_account
    quote = await net.payments.quote_send(
        sender.id, account, str(receiver.user_number), usd(amount)
    )
    assert (await net.payments.send(quote, PIN, tx)).status is TransferState.EXECUTED


async def top_up(net: Network, customer: Customer, amount: str, tx: str) -> None:
    """Money arriving from outside the limits (a cash-in from the float)."""
    account = net.alice_account if customer == net.alice else net.bob_account
    ledger_id = next(
        a.ledger_account_id
        for a in await net.dfsp.customers.accounts_of(customer.id)
        if a.id == account
    )
    await net.dfsp.pay_in(ledger_id, usd(amount).minor, tx)


async def tiers_of(net: Network) -> tuple[str, str]:
    customers = net.dfsp.customers
    return (await customers.tier_of(net.alice.id)).name, (await customers.tier_of(net.bob.id)).name


@asyncio_test
async def test_a_new_customer_is_in_the_first_tier_with_no_history(database: Database) -> None:
    async with open_network(database, TIERS) as net:
        assert await tiers_of(net) == ("basic", "basic")
        assert await net.dfsp.customers.tier_history(net.alice.id) == ()


@asyncio_test
async def test_the_upgrade_comes_once_the_rule_is_met_and_its_bigger_limit_applies(
    database: Database,
) -> None:
    async with open_network(database, TIERS) as net:
        with pytest.raises(LimitExceeded) as refused:
            await pay(net, net.alice, net.bob, "150", "too-big")  # 1000 < 1500: still basic
        assert refused.value.violation.limit is LimitName.MAX_TRANSFER
        assert await tiers_of(net) == ("basic", "basic")

        await top_up(net, net.alice, "500", "cash-in")  # 1500: the saver rule is met
        await pay(net, net.alice, net.bob, "150", "bigger")
        assert await tiers_of(net) == ("saver", "basic")
        assert await net.dfsp.customers.tier_history(net.alice.id) == (
            RecordedTierChange(
                net.alice.id,
                "basic",
                "saver",
                TierChangeReason.AUTOMATIC,
                None,
                "balance 1500.00 USD, age 0 days",
                False,
                NOW,
            ),
        )
        # Below the rule again (1500 - 151 = 1349): an automatic change never goes down.
        await pay(net, net.alice, net.bob, "400", "still-saver")
        assert (await net.dfsp.customers.tier_of(net.alice.id)).name == "saver"
        assert len(await net.dfsp.customers.tier_history(net.alice.id)) == 1


@asyncio_test
async def test_concurrent_checks_upgrade_and_record_once(database: Database) -> None:
    async with open_network(database, TIERS) as net:
        await top_up(net, net.alice, "600", "cash-in")
        upgrades = [net.dfsp.customers.upgrade_tier(net.alice.id) for _ in range(4)]
        sends = [pay(net, net.alice, net.bob, "101", f"race-{n}") for n in range(4)]
        tiers = await asyncio.gather(*upgrades, *sends)
        assert {tier.name for tier in tiers[:4]} == {"saver"}
        history = await net.dfsp.customers.tier_history(net.alice.id)
        assert [(c.from_tier, c.to_tier, c.reason) for c in history] == [
            ("basic", "saver", TierChangeReason.AUTOMATIC)
        ]


@asyncio_test
async def test_an_auditors_downgrade_holds_and_is_recorded_with_the_auditor(
    database: Database,
) -> None:
    async with open_network(database, TIERS) as net:
        customers = net.dfsp.customers
        up = await customers.change_tier(
            net.alice.id, "trusted", actor="auditor-7", reason="payroll account"
        )
        assert (up.before.name, up.after.name, up.holds) == ("basic", "trusted", False)
        down = await customers.change_tier(
            net.alice.id, "basic", actor="auditor-9", reason="fraud report 42"
        )
        assert (down.before.name, down.after.name, down.holds) == ("trusted", "basic", True)

        await top_up(net, net.alice, "600", "cash-in")  # the saver rule is met: held
        with pytest.raises(LimitExceeded) as refused:
            await pay(net, net.alice, net.bob, "150", "held")
        assert refused.value.violation.limit is LimitName.MAX_TRANSFER
        assert (await customers.tier_of(net.alice.id)).name == "basic"
        assert [
            (c.from_tier, c.to_tier, c.reason, c.actor, c.note, c.held)
            for c in await customers.tier_history(net.alice.id)
        ] == [
            ("basic", "trusted", TierChangeReason.AUDITOR, "auditor-7", "payroll account", False),
            ("trusted", "basic", TierChangeReason.AUDITOR, "auditor-9", "fraud report 42", True),
        ]

        # The auditor's next change ends the hold: the rule applies again.
        await customers.change_tier(net.alice.id, "basic", actor="auditor-9", reason="cleared")
        await pay(net, net.alice, net.bob, "150", "released")
        assert (await customers.tier_of(net.alice.id)).name == "saver"
        assert (await customers.tier_history(net.alice.id))[-1].reason is (
            TierChangeReason.AUTOMATIC
        )


@asyncio_test
async def test_an_auditors_change_needs_a_known_tier_an_actor_and_a_reason(
    database: Database,
) -> None:
    async with open_network(database, TIERS) as net:
        customers = net.dfsp.customers
        with pytest.raises(UnknownTier):
            await customers.change_tier(net.alice.id, "gold", actor="auditor-7", reason="vip")
        for actor, reason in (("", "vip"), ("auditor-7", "  "), ("a" * 65, "vip")):
            with pytest.raises(InvalidTierChange):
                await customers.change_tier(net.alice.id, "saver", actor=actor, reason=reason)
        assert await customers.tier_history(net.alice.id) == ()
        assert (await customers.tier_of(net.alice.id)).name == "basic"


@asyncio_test
async def test_the_receivers_maximum_balance_comes_from_the_receivers_tier(
    database: Database,
) -> None:
    async with open_network(database, TIERS) as net:
        customers = net.dfsp.customers
        # Alice (no limits) pays Bob (basic: at most 2000 held) who has 1950.
        await customers.change_tier(net.alice.id, "trusted", actor="auditor-7", reason="payroll")
        await top_up(net, net.bob, "950", "bob-in")
        with pytest.raises(LimitExceeded) as full:
            await pay(net, net.alice, net.bob, "60", "to-bob")
        assert full.value.violation.limit is LimitName.MAX_BALANCE
        assert full.value.violation.remaining == usd("50")

        # Bob (no limits) is paid beyond basic's 2000 by Alice (basic).
        await customers.change_tier(net.alice.id, "basic", actor="auditor-7", reason="ended")
        await customers.change_tier(net.bob.id, "trusted", actor="auditor-7", reason="payroll")
        await pay(net, net.alice, net.bob, "60", "to-trusted-bob")
        assert await net.balance_of(net.bob, net.bob_account) == usd("2010")


@asyncio_test
async def test_customers_registered_before_migration_0005_are_in_the_first_tier_unheld(
    database: Database,
) -> None:
    engine = create_store_engine(database.url, schema=database.schema)
    try:
        await migrate(engine, "0004")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO customers (id, user_number, msisdn, first_name, last_name,"
                    " person_first_name, person_last_name, date_of_birth, national_id, role,"
                    " pin_hash, pin_failures, pin_locked, language, created_at) VALUES"
                    " ('c1', '12345678', '256700000001', 'Old', 'Timer', 'OLD', 'TIMER',"
                    " '1990-04-25', 'CM0001', 'customer', 'x', 0, false, 'en', :at)"
                ),
                {"at": NOW},
            )
        await migrate(engine)
        async with engine.begin() as connection:
            row = (await connection.execute(text("SELECT tier, tier_held FROM customers"))).one()
        assert (row.tier, bool(row.tier_held)) == (None, False)
    finally:
        await engine.dispose()
