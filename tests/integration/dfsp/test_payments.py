"""Send money, balance and ministatement inside one DFSP (SPEC acceptance 2 of the DFSP
issue, at the service level), on SQLite always and on PostgreSQL where USSDLOOP_TEST_PG
is set: two customers with the demo opening balance of 1000 USD and the demo fee of
1 USD paid by the sender."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from dfsp.customer_store import LocalUserNumbers
from dfsp.customers import Customers
from dfsp.domain.accounts import AccountKind
from dfsp.domain.customers import Customer, CustomerRole
from dfsp.domain.fees import demo_fee_table
from dfsp.domain.limits import LimitName, Limits
from dfsp.domain.payments import (
    InvalidAmount,
    LimitExceeded,
    SendNotAllowed,
    StatementRow,
    UnknownReceiver,
    format_ministatement_row,
    parse_amount,
)
from dfsp.domain.pins import PinLocked, PinPolicy, WrongPin
from dfsp.domain.tiers import Tier, TierTable, demo_tier_table
from dfsp.domain.transfers import AccountKind as LedgerKind
from dfsp.domain.transfers import CurrencyMismatch, InsufficientFunds, TransferState
from dfsp.ledger import Ledger
from dfsp.migrate import migrate
from dfsp.payments import Payments
from dfsp.store import create_store_engine
from tests.integration.conftest import Database
from tests.integration.dfsp.test_customers import (
    FLOAT,
    NOW,
    PIN,
    Dfsp,
    primary_of,
)
from tests.support import asyncio_test
from ussdloop.db import session_factory
from ussdloop.money import Money

FEES = "fees"
WRONG_PIN = "1357"


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


@dataclass
class Network:
    dfsp: Dfsp
    payments: Payments
    alice: Customer
    bob: Customer
    alice_account: str
    bob_account: str

    async def balance_of(self, customer: Customer, account_id: str) -> Money:
        return await self.payments.balance(customer.id, account_id, PIN)

    async def send(self, amount: str, transfer_id: str, to: Customer | None = None) -> Money:
        receiver = self.bob if to is None else to
        quote = await self.payments.quote_send(
            self.alice.id, self.alice_account, str(receiver.user_number), usd(amount)
        )
        result = await self.payments.send(quote, PIN, transfer_id)
        assert result.status is TransferState.EXECUTED
        return result.amount


@asynccontextmanager
async def open_network(
    database: Database, tiers: TierTable | None = None
) -> AsyncIterator[Network]:
    """The DFSP of ``test_customers.open_dfsp`` with a fee account and the payments."""
    engine = create_store_engine(database.url, schema=database.schema)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        ledger = Ledger(sessions, lambda: NOW)
        for account_id, kind in ((FLOAT, LedgerKind.FLOAT), (FEES, LedgerKind.FEE)):
            await ledger.open_account(
                account_id,
                currency="USD",
                kind=kind,
                owner="dfsp",
                allow_negative=kind == LedgerKind.FLOAT,
            )
        rng = random.Random(1)
        customers = Customers(
            sessions,
            ledger,
            clock=lambda: NOW,
            rng=rng,
            user_numbers=LocalUserNumbers(sessions, rng),
            pin_policy=PinPolicy(),
            opening_balance=usd("1000"),
            float_account=FLOAT,
            currency="USD",
            tiers=tiers or demo_tier_table(),
        )
        dfsp = Dfsp(customers, ledger, database)
        payments = Payments(
            sessions,
            ledger,
            customers,
            fees=demo_fee_table(),
            clock=lambda: NOW,
            fee_account=FEES,
        )
        alice = await dfsp.register(1, first_name="Alice", last_name="Cooper")
        bob = await dfsp.register(2, first_name="Bob", last_name="Marley")
        yield Network(
            dfsp, payments, alice, bob, await primary_of(dfsp, alice), await primary_of(dfsp, bob)
        )
    finally:
        await engine.dispose()


async def fees_collected(network: Network) -> Money:
    return (await network.dfsp.ledger.balance(FEES))[0]


# --- send money ------------------------------------------------------------------------


@asyncio_test
async def test_the_quote_shows_the_receivers_name_the_local_fee_and_the_total(
    database: Database,
) -> None:
    async with open_network(database) as net:
        quote = await net.payments.quote_send(
            net.alice.id, net.alice_account, str(net.bob.user_number), usd("44")
        )
        assert (quote.receiver_name, quote.currency) == ("Bob Marley", "USD")
        assert (quote.amount, quote.fee, quote.total) == (usd("44"), usd("1"), usd("45"))


@asyncio_test
async def test_one_some_and_exactly_the_balance_less_the_fee_are_paid_exactly(
    database: Database,
) -> None:
    async with open_network(database) as net:
        await net.send("1", "t1")
        await net.send("12.34", "t2")
        # 1000 - (1 + 1) - (12.34 + 1) = 984.66 left: exactly that less the 1 USD fee.
        await net.send("983.66", "t3")
        assert await net.balance_of(net.alice, net.alice_account) == usd("0")
        assert await net.balance_of(net.bob, net.bob_account) == usd("1997")
        assert await fees_collected(net) == usd("3")
        assert await net.dfsp.ledger.total_balance("USD") == usd("0")
        assert await net.dfsp.ledger.audit() == []


@asyncio_test
async def test_more_than_the_balance_or_than_the_balance_with_the_fee_is_refused(
    database: Database,
) -> None:
    async with open_network(database) as net:
        for amount, transfer_id in (("1000.01", "over"), ("1000", "over-with-fee")):
            with pytest.raises(InsufficientFunds) as refused:
                await net.send(amount, transfer_id)
            assert refused.value.available == usd("1000")
        assert await net.balance_of(net.alice, net.alice_account) == usd("1000")
        assert await fees_collected(net) == usd("0")


@asyncio_test
async def test_a_retry_with_the_same_transfer_id_pays_once(database: Database) -> None:
    async with open_network(database) as net:
        quote = await net.payments.quote_send(
            net.alice.id, net.alice_account, str(net.bob.user_number), usd("44")
        )
        first = await net.payments.send(quote, PIN, "once")
        again = await net.payments.send(quote, PIN, "once")
        assert first == again
        assert (again.receiver_name, again.amount, again.fee) == ("Bob Marley", usd("44"), usd("1"))
        assert await net.balance_of(net.alice, net.alice_account) == usd("955")
        assert await net.balance_of(net.bob, net.bob_account) == usd("1044")


@asyncio_test
async def test_a_wrong_pin_refuses_and_counts_down_to_the_lock(database: Database) -> None:
    async with open_network(database) as net:
        quote = await net.payments.quote_send(
            net.alice.id, net.alice_account, str(net.bob.user_number), usd("5")
        )
        with pytest.raises(WrongPin) as first:
            await net.payments.send(quote, WRONG_PIN, "w1")
        with pytest.raises(WrongPin) as second:
            await net.payments.send(quote, WRONG_PIN, "w2")
        assert (first.value.attempts_left, second.value.attempts_left) == (2, 1)
        with pytest.raises(PinLocked):
            await net.payments.send(quote, WRONG_PIN, "w3")
        with pytest.raises(PinLocked):
            await net.payments.send(quote, PIN, "w4")
        assert (await net.dfsp.ledger.balance(f"customer:{net.alice_account}"))[0] == usd("1000")


@asyncio_test
async def test_unknown_receivers_bad_amounts_and_senders_without_rights_are_refused(
    database: Database,
) -> None:
    async with open_network(database) as net:
        payments = net.payments
        for nobody in ("99999999", "12", "not a number"):
            with pytest.raises(UnknownReceiver):
                await payments.quote_send(net.alice.id, net.alice_account, nobody, usd("5"))
        with pytest.raises(CurrencyMismatch):
            await payments.quote_send(
                net.alice.id, net.alice_account, str(net.bob.user_number), Money.parse("5", "EUR")
            )
        for amount in (usd("0"), usd("-1")):
            with pytest.raises(InvalidAmount):
                await payments.quote_send(
                    net.alice.id, net.alice_account, str(net.bob.user_number), amount
                )
        for text in ("0", "1.234", "ten"):
            with pytest.raises(InvalidAmount):
                parse_amount(text, "USD")
        # Bob holds Alice's account without signing rights: he may look, not send.
        await net.dfsp.customers.add_holder(
            net.alice.id, net.alice_account, str(net.bob.user_number), signatory=False
        )
        with pytest.raises(SendNotAllowed):
            await payments.quote_send(
                net.bob.id, net.alice_account, str(net.alice.user_number), usd("5")
            )
        assert await payments.balance(net.bob.id, net.alice_account, PIN) == usd("1000")
        # An agent's commission account never sends.
        agent = await net.dfsp.register(3, role=CustomerRole.AGENT)
        accounts = await net.dfsp.customers.accounts_of(agent.id)
        commission = next(a.id for a in accounts if a.kind is AccountKind.COMMISSION)
        with pytest.raises(SendNotAllowed):
            await payments.quote_send(agent.id, commission, str(net.bob.user_number), usd("1"))


@asyncio_test
async def test_concurrent_sends_with_one_transfer_id_pay_once(database: Database) -> None:
    async with open_network(database) as net:
        quote = await net.payments.quote_send(
            net.alice.id, net.alice_account, str(net.bob.user_number), usd("10")
        )
        results = await asyncio.gather(*(net.payments.send(quote, PIN, "twin") for _ in range(3)))
        assert {result.transfer_id for result in results} == {"twin"}
        assert await net.balance_of(net.alice, net.alice_account) == usd("989")
        assert await net.dfsp.ledger.audit() == []


# --- limits ------------------------------------------------------------------------------


@asyncio_test
async def test_tier_limits_refuse_the_third_and_the_oversize_transfer_but_not_own_accounts(
    database: Database,
) -> None:
    tight = TierTable((Tier("tight", Limits(transfers_per_day=2, max_transfer=usd("2"))),))
    async with open_network(database, tight) as net:
        with pytest.raises(LimitExceeded) as oversize:
            await net.send("2.01", "big")
        assert oversize.value.violation.limit is LimitName.MAX_TRANSFER
        await net.send("2", "first")
        await net.send("1", "second")
        with pytest.raises(LimitExceeded) as third:
            await net.send("1", "third")
        assert third.value.violation.limit is LimitName.TRANSFERS_PER_DAY
        await net.send("1", "second")  # a retry is not a new transfer
        savings = await net.dfsp.customers.add_account(net.alice.id, "savings", primary=False)
        own = await net.payments.quote_send(
            net.alice.id,
            net.alice_account,
            str(net.alice.user_number),
            usd("50"),
            to_account_id=savings,
        )
        assert (own.fee, own.total) == (usd("0"), usd("50"))
        for n in range(3):
            await net.payments.send(own, PIN, f"own-{n}")
        assert await net.balance_of(net.alice, savings) == usd("150")
        assert await net.balance_of(net.alice, net.alice_account) == usd("845")


@asyncio_test
async def test_a_receiver_at_the_maximum_balance_is_not_paid_more(database: Database) -> None:
    capped = TierTable((Tier("capped", Limits(max_balance=usd("1010"))),))
    async with open_network(database, capped) as net:
        await net.send("10", "fill")
        with pytest.raises(LimitExceeded) as full:
            await net.send("0.01", "spill")
        assert full.value.violation.limit is LimitName.MAX_BALANCE
        assert full.value.violation.remaining == usd("0")


@asyncio_test
async def test_concurrent_sends_never_pass_the_count_limit_together(database: Database) -> None:
    two_a_day = TierTable((Tier("two", Limits(transfers_per_day=2)),))
    async with open_network(database, two_a_day) as net:
        attempts = [net.send("1", f"race-{n}") for n in range(4)]
        outcomes = await asyncio.gather(*attempts, return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, LimitExceeded)]
        assert (len(refused), outcomes.count(usd("1"))) == (2, 2)
        assert await net.balance_of(net.alice, net.alice_account) == usd("996")


@asynccontextmanager
async def second_process(
    database: Database, net: Network, tiers: TierTable
) -> AsyncIterator[Payments]:
    """The payments of another DFSP process on the same database (its own engine, its own
    in-process locks), as when several DFSP nodes share one PostgreSQL."""
    engine = create_store_engine(database.url, schema=database.schema)
    try:
        sessions = session_factory(engine)
        ledger = Ledger(sessions, lambda: NOW)
        rng = random.Random(2)
        customers = Customers(
            sessions,
            ledger,
            clock=lambda: NOW,
            rng=rng,
            user_numbers=LocalUserNumbers(sessions, rng),
            pin_policy=PinPolicy(),
            opening_balance=usd("1000"),
            float_account=FLOAT,
            currency="USD",
            tiers=tiers,
        )
        yield Payments(
            sessions,
            ledger,
            customers,
            fees=demo_fee_table(),
            clock=lambda: NOW,
            fee_account=FEES,
        )
    finally:
        await engine.dispose()


@asyncio_test
async def test_two_dfsp_processes_on_one_postgresql_keep_the_count_limit(
    postgresql_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow database between the limit check and the transfer: the window two nodes
    # would race through if the check were serialised per process only.
    transfer_now = Ledger.transfer_now

    async def slow_transfer_now(self: Ledger, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.05)
        return await transfer_now(self, *args, **kwargs)

    monkeypatch.setattr(Ledger, "transfer_now", slow_transfer_now)
    three_a_day = TierTable((Tier("three", Limits(transfers_per_day=3)),))
    async with (
        open_network(postgresql_database, three_a_day) as net,
        second_process(postgresql_database, net, three_a_day) as other,
    ):

        async def send_through(payments: Payments, transfer_id: str) -> TransferState:
            quote = await payments.quote_send(
                net.alice.id, net.alice_account, str(net.bob.user_number), usd("1")
            )
            return (await payments.send(quote, PIN, transfer_id)).status

        outcomes = await asyncio.gather(
            *(send_through(net.payments, f"node-a-{n}") for n in range(6)),
            *(send_through(other, f"node-b-{n}") for n in range(6)),
            return_exceptions=True,
        )
        refused = [o for o in outcomes if isinstance(o, LimitExceeded)]
        assert (outcomes.count(TransferState.EXECUTED), len(refused)) == (3, 9), outcomes
        assert await net.balance_of(net.alice, net.alice_account) == usd("994")


# --- ministatement -----------------------------------------------------------------------


@asyncio_test
async def test_the_ministatement_lists_payments_and_their_fees_newest_first(
    database: Database,
) -> None:
    async with open_network(database) as net:
        await net.send("44", "s1")
        await net.send("2.5", "s2")
        rows = await net.payments.ministatement(net.alice.id, net.alice_account, PIN)
        assert rows == [
            StatementRow("Bob Marley", usd("-2.50"), NOW),
            StatementRow("fee", usd("-1"), NOW),
            StatementRow("Bob Marley", usd("-44"), NOW),
            StatementRow("fee", usd("-1"), NOW),
            StatementRow("opening_balance", usd("1000"), NOW),
        ]
        received = await net.payments.ministatement(net.bob.id, net.bob_account, PIN, limit=1)
        assert received == [StatementRow("Alice Cooper", usd("2.50"), NOW)]
        with pytest.raises(WrongPin):
            await net.payments.ministatement(net.alice.id, net.alice_account, WRONG_PIN)


def test_ministatement_rows_read_name_signed_amount_and_day_month() -> None:
    jan17 = datetime(2030, 1, 17, 9, 30, tzinfo=UTC)
    assert format_ministatement_row(StatementRow("tod", usd("-44"), jan17)) == "tod;-44.00;17-Jan"
    assert format_ministatement_row(StatementRow("fee", usd("-1"), jan17)) == "fee;-1.00;17-Jan"
    assert format_ministatement_row(StatementRow("ann", usd("7.5"), jan17)) == "ann;7.50;17-Jan"
