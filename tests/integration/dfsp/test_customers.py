"""Customers and their accounts through the DFSP service, on SQLite always and on
PostgreSQL where USSDLOOP_TEST_PG is set (the schema comes from the migrations)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from dfsp import customer_store
from dfsp.customer_store import LocalUserNumbers
from dfsp.customers import Customers
from dfsp.domain.accounts import (
    AccountKind,
    AccountNotEmpty,
    CommissionAccountRestricted,
    NotSignatory,
    OwnerAlwaysSignatory,
    PrimaryAccountCannotClose,
)
from dfsp.domain.customers import (
    AlreadyRegistered,
    Customer,
    CustomerRole,
    PersonAlreadyRegistered,
    UnknownCustomer,
    UserNumberTaken,
)
from dfsp.domain.pins import PinLocked, PinPolicy, WeakPin, WrongPin
from dfsp.domain.tiers import demo_tier_table
from dfsp.domain.transfers import AccountKind as LedgerKind
from dfsp.domain.transfers import BalanceLimitExceeded, Posting
from dfsp.ledger import Ledger
from dfsp.migrate import migrate
from dfsp.store import Base, create_store_engine
from tests.integration.conftest import Database
from tests.support import asyncio_test
from ussdloop.db import session_factory
from ussdloop.money import Money

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
PIN = "2468"
FLOAT = "float"


@dataclass
class Dfsp:
    customers: Customers
    ledger: Ledger
    database: Database

    async def register(self, n: int, **details: object) -> Customer:
        """Customer ``n``: phone +25670000000n, a national ID of their own."""
        fields: dict[str, object] = {
            "msisdn": f"+2567000000{n:02d}",
            "first_name": f"First{n}",
            "last_name": "Person",
            "date_of_birth": "1990-04-25",
            "national_id": f"CM{n:04d}",
            "account_name": "main",
            "role": CustomerRole.CUSTOMER,
            "pin": PIN,
        }
        fields.update(details)
        return await self.customers.register(**fields)  # type: ignore[arg-type]

    async def pay_in(self, ledger_account_id: str, minor: int, transfer_id: str) -> None:
        await self.ledger.transfer_now(
            transfer_id, [Posting(FLOAT, ledger_account_id, minor)], kind="cash_in"
        )


@asynccontextmanager
async def open_dfsp(
    database: Database, *, opening_balance: Money | None = None, seed: int = 1
) -> AsyncIterator[Dfsp]:
    engine = create_store_engine(database.url, schema=database.schema)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        ledger = Ledger(sessions, lambda: NOW)
        await ledger.open_account(
            FLOAT, currency="USD", kind=LedgerKind.FLOAT, owner="dfsp", allow_negative=True
        )
        rng = random.Random(seed)
        customers = Customers(
            sessions,
            ledger,
            clock=lambda: NOW,
            rng=rng,
            user_numbers=LocalUserNumbers(sessions, rng),
            pin_policy=PinPolicy(),
            opening_balance=opening_balance,
            float_account=FLOAT,
            currency="USD",
            tiers=demo_tier_table(),
        )
        yield Dfsp(customers, ledger, database)
    finally:
        await engine.dispose()


async def primary_of(dfsp: Dfsp, customer: Customer) -> str:
    return next(a.id for a in await dfsp.customers.accounts_of(customer.id) if a.primary)


async def names(dfsp: Dfsp, customer: Customer) -> list[str]:
    return [a.name for a in await dfsp.customers.accounts_of(customer.id)]


# --- schema and registration ---------------------------------------------------------


@asyncio_test
async def test_the_migrations_make_the_customer_tables_the_models_describe(
    database: Database,
) -> None:
    async with open_dfsp(database) as dfsp:
        engine = create_store_engine(database.url, schema=database.schema)
        try:
            async with engine.connect() as connection:
                differences = await connection.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
                )
            assert differences == []
            assert customer_store.CustomerRow.__table__ in Base.metadata.sorted_tables
        finally:
            await engine.dispose()
        assert dfsp.customers is not None


@asyncio_test
async def test_two_people_register_and_get_distinct_eight_digit_user_numbers(
    database: Database,
) -> None:
    async with open_dfsp(database) as dfsp:
        ann = await dfsp.register(1, msisdn="+256 700 000 001")
        bob = await dfsp.register(2, role="merchant")
        assert ann.user_number != bob.user_number
        for number in (ann.user_number, bob.user_number):
            assert len(number) == 8 and number.isdigit() and number[0] != "0"
        assert ann.msisdn == "256700000001" and bob.role is CustomerRole.MERCHANT
        assert await dfsp.customers.by_msisdn("256700000001") == ann
        assert await dfsp.customers.by_user_number(bob.user_number) == bob
        assert await dfsp.customers.by_msisdn("+256700000099") is None
        [account] = await dfsp.customers.accounts_of(ann.id)
        assert (account.name, account.primary, account.kind) == ("main", True, AccountKind.REGULAR)
        assert [(h.customer_id, h.owner, h.signatory) for h in account.holders] == [
            (ann.id, True, True)
        ]
        ledger_account = await dfsp.ledger.account(account.ledger_account_id)
        assert ledger_account.owner == ann.id and ledger_account.balance == Money("USD", 0)


@asyncio_test
async def test_the_same_person_or_phone_again_is_refused(database: Database) -> None:
    async with open_dfsp(database) as dfsp:
        await dfsp.register(1)
        with pytest.raises(PersonAlreadyRegistered):
            await dfsp.register(2, first_name=" FIRST1 ", national_id="cm 0001")
        with pytest.raises(AlreadyRegistered):
            await dfsp.register(1, national_id="CM9999")
        twin = await dfsp.register(3, first_name="First1")  # same name and birth date
        assert twin.first_name == "First1"
        assert await dfsp.customers.by_msisdn("+256700000002") is None


@asyncio_test
async def test_a_weak_pin_is_refused_and_nothing_is_stored(database: Database) -> None:
    async with open_dfsp(database) as dfsp:
        for weak in ("1111", "1234", "12", "2580"):
            with pytest.raises(WeakPin):
                await dfsp.register(1, pin=weak)
        assert await dfsp.customers.by_msisdn("+256700000001") is None


@asyncio_test
async def test_the_opening_balance_is_paid_from_the_float_and_the_books_sum_to_zero(
    database: Database,
) -> None:
    async with open_dfsp(database, opening_balance=Money.parse("1000", "USD")) as dfsp:
        ann = await dfsp.register(1)
        agent = await dfsp.register(2, role=CustomerRole.AGENT, account_name="shop")
        [account] = await dfsp.customers.accounts_of(ann.id)
        assert await dfsp.ledger.balance(account.ledger_account_id) == (
            Money("USD", 100_000),
            Money("USD", 100_000),
        )
        main, commission = await dfsp.customers.accounts_of(agent.id)
        assert (main.name, main.primary) == ("shop", True)
        assert (commission.kind, commission.primary) == (AccountKind.COMMISSION, False)
        assert (
            await dfsp.ledger.account(commission.ledger_account_id)
        ).kind is LedgerKind.COMMISSION
        assert (await dfsp.ledger.balance(FLOAT))[0] == Money("USD", -200_000)
        assert await dfsp.ledger.total_balance("USD") == Money("USD", 0)
        assert await dfsp.ledger.audit() == []


# --- PINs ------------------------------------------------------------------------------


@asyncio_test
async def test_three_wrong_pins_lock_until_the_dfsp_resets(database: Database) -> None:
    async with open_dfsp(database) as dfsp:
        ann = await dfsp.register(1)
        await dfsp.customers.check_pin(ann.id, PIN)
        left = []
        for _ in range(2):
            with pytest.raises(WrongPin) as wrong:
                await dfsp.customers.check_pin(ann.id, "9753")
            left.append(wrong.value.attempts_left)
        assert left == [2, 1]
        with pytest.raises(PinLocked):
            await dfsp.customers.check_pin(ann.id, "9753")
        with pytest.raises(PinLocked):  # the right PIN is not even checked now
            await dfsp.customers.check_pin(ann.id, PIN)
        assert (await dfsp.customers.customer(ann.id)).pin_locked
        await dfsp.customers.reset_pin_lock(ann.id)
        await dfsp.customers.check_pin(ann.id, PIN)
        with pytest.raises(WrongPin) as wrong:
            await dfsp.customers.check_pin(ann.id, "9753")
        assert wrong.value.attempts_left == 2


@asyncio_test
async def test_a_right_pin_clears_the_count_and_a_pin_change_needs_the_old_one(
    database: Database,
) -> None:
    async with open_dfsp(database) as dfsp:
        ann = await dfsp.register(1)
        for _ in range(2):
            with pytest.raises(WrongPin):
                await dfsp.customers.check_pin(ann.id, "9753")
        await dfsp.customers.check_pin(ann.id, PIN)
        with pytest.raises(WrongPin) as wrong:
            await dfsp.customers.change_pin(ann.id, "9753", "8642")
        assert wrong.value.attempts_left == 2
        with pytest.raises(WeakPin):
            await dfsp.customers.change_pin(ann.id, PIN, "0000")
        await dfsp.customers.change_pin(ann.id, PIN, "8642")
        await dfsp.customers.check_pin(ann.id, "8642")
        with pytest.raises(WrongPin):
            await dfsp.customers.check_pin(ann.id, PIN)
        with pytest.raises(UnknownCustomer):
            await dfsp.customers.check_pin("no-such-customer", PIN)


# --- accounts and holders ----------------------------------------------------------------


@asyncio_test
async def test_a_new_primary_account_demotes_the_previous_one_and_it_persists(
    database: Database,
) -> None:
    async with open_dfsp(database) as dfsp:
        ann = await dfsp.register(1)
        first = await primary_of(dfsp, ann)
        savings = await dfsp.customers.add_account(ann.id, "savings", primary=False)
        assert await primary_of(dfsp, ann) == first
        school = await dfsp.customers.add_account(ann.id, "school", primary=True)
        assert await primary_of(dfsp, ann) == school
        await dfsp.customers.make_primary(ann.id, savings)
        await dfsp.customers.rename_account(ann.id, savings, "rainy day")
    async with open_dfsp(database) as reopened:  # a fresh service reads what was saved
        accounts = await reopened.customers.accounts_of(ann.id)
        assert [(a.name, a.primary) for a in accounts] == [
            ("main", False),
            ("rainy day", True),
            ("school", False),
        ]
        assert await count(reopened, customer_store.PrimaryAccountRow) == 1


@asyncio_test
async def test_closing_follows_the_rules_with_the_balance_from_the_ledger(
    database: Database,
) -> None:
    async with open_dfsp(database) as dfsp:
        ann = await dfsp.register(1)
        bob = await dfsp.register(2)
        first = await primary_of(dfsp, ann)
        spare = await dfsp.customers.add_account(ann.id, "spare", primary=False)
        with pytest.raises(PrimaryAccountCannotClose):
            await dfsp.customers.close_account(ann.id, first)
        spare_ledger = (await dfsp.customers.accounts_of(ann.id))[1].ledger_account_id
        await dfsp.pay_in(spare_ledger, 1, "cash-in-1")
        with pytest.raises(AccountNotEmpty):
            await dfsp.customers.close_account(ann.id, spare)
        await dfsp.ledger.transfer_now(
            "cash-out-1", [Posting(spare_ledger, FLOAT, 1)], kind="cash_out"
        )
        await dfsp.customers.add_holder(ann.id, spare, bob.user_number, signatory=False)
        with pytest.raises(NotSignatory):
            await dfsp.customers.close_account(bob.id, spare)
        closed = await dfsp.customers.close_account(ann.id, spare)
        assert (closed.customer_removed, closed.left_without_account) == (False, frozenset())
        assert await names(dfsp, ann) == ["main"]
        assert await names(dfsp, bob) == ["main"]
        with pytest.raises(BalanceLimitExceeded):  # nothing can arrive in a closed account
            await dfsp.pay_in(spare_ledger, 1, "cash-in-2")


@asyncio_test
async def test_closing_the_last_account_removes_the_customer(database: Database) -> None:
    async with open_dfsp(database) as dfsp:
        ann = await dfsp.register(1)
        bob = await dfsp.register(2)
        only = await primary_of(dfsp, ann)
        await dfsp.customers.add_holder(ann.id, only, bob.user_number, signatory=True)
        closed = await dfsp.customers.close_account(ann.id, only)
        assert (closed.customer_removed, closed.left_without_account) == (True, frozenset())
        assert await dfsp.customers.by_msisdn(ann.msisdn) is None
        with pytest.raises(UnknownCustomer):
            await dfsp.customers.accounts_of(ann.id)
        assert await names(dfsp, bob) == ["main"]
        again = await dfsp.register(1)  # the same person may register again
        assert again.id != ann.id
        assert await dfsp.ledger.total_balance("USD") == Money("USD", 0)


@asyncio_test
async def test_holders_and_signatories_through_the_service(database: Database) -> None:
    async with open_dfsp(database) as dfsp:
        ann, bob, cat = [await dfsp.register(n) for n in (1, 2, 3)]
        shared = await dfsp.customers.add_account(ann.id, "family", primary=False)
        await dfsp.customers.add_holder(ann.id, shared, bob.user_number, signatory=False)
        family = (await dfsp.customers.accounts_of(bob.id))[1]
        assert (family.name, family.primary, family.owner_id) == ("family", False, ann.id)
        assert not family.permissions.can_send and family.permissions.can_view
        assert [(h.user_number, h.signatory) for h in family.holders] == [
            (ann.user_number, True),
            (bob.user_number, False),
        ]
        with pytest.raises(NotSignatory):
            await dfsp.customers.add_holder(bob.id, shared, cat.user_number, signatory=False)
        with pytest.raises(UnknownCustomer):
            await dfsp.customers.add_holder(ann.id, shared, "99999999", signatory=False)
        await dfsp.customers.set_signatory(ann.id, shared, bob.id, signatory=True)
        await dfsp.customers.add_holder(bob.id, shared, cat.user_number, signatory=False)
        with pytest.raises(OwnerAlwaysSignatory):
            await dfsp.customers.set_signatory(bob.id, shared, ann.id, signatory=False)
        await dfsp.customers.make_primary(cat.id, shared)
        assert await dfsp.customers.remove_holder(bob.id, shared, cat.id) is False
        assert await primary_of(dfsp, cat) == (await dfsp.customers.accounts_of(cat.id))[0].id
        assert await names(dfsp, cat) == ["main"]
        family = (await dfsp.customers.accounts_of(ann.id))[1]
        assert [(h.customer_id, h.signatory) for h in family.holders] == [
            (ann.id, True),
            (bob.id, True),
        ]


@asyncio_test
async def test_an_agents_commission_account_is_never_primary_nor_closed(
    database: Database,
) -> None:
    async with open_dfsp(database) as dfsp:
        agent = await dfsp.register(1, role=CustomerRole.AGENT)
        _, commission = await dfsp.customers.accounts_of(agent.id)
        with pytest.raises(CommissionAccountRestricted):
            await dfsp.customers.make_primary(agent.id, commission.id)
        with pytest.raises(CommissionAccountRestricted):
            await dfsp.customers.close_account(agent.id, commission.id)
        assert not commission.permissions.can_send


@asyncio_test
async def test_concurrent_new_primary_accounts_leave_exactly_one_primary(
    database: Database,
) -> None:
    async with open_dfsp(database) as dfsp:
        ann = await dfsp.register(1)
        await asyncio.gather(
            *(dfsp.customers.add_account(ann.id, f"pot {n}", primary=True) for n in range(8))
        )
        accounts = await dfsp.customers.accounts_of(ann.id)
        assert len(accounts) == 9
        assert sum(a.primary for a in accounts) == 1
        assert await count(dfsp, customer_store.PrimaryAccountRow) == 1


async def count(dfsp: Dfsp, model: type[customer_store.Base]) -> int:
    engine = create_store_engine(dfsp.database.url, schema=dfsp.database.schema)
    try:
        async with engine.connect() as connection:
            return int(
                (await connection.execute(select(func.count()).select_from(model))).scalar_one()
            )
    finally:
        await engine.dispose()


@asyncio_test
async def test_a_person_registering_twice_at_once_is_registered_once(database: Database) -> None:
    async with open_dfsp(database) as dfsp:
        results = await asyncio.gather(
            dfsp.register(1),
            dfsp.register(2, first_name="First1", national_id="CM0001"),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["Customer", "PersonAlreadyRegistered"]
        assert await count(dfsp, customer_store.CustomerRow) == 1
        assert await count(dfsp, customer_store.CustomerAccountRow) == 1


@asyncio_test
async def test_a_user_number_given_by_the_directory_is_kept_and_never_shared(
    database: Database,
) -> None:
    async with open_dfsp(database) as dfsp:
        ann = await dfsp.register(1, user_number="5555 1234")
        assert ann.user_number == "55551234"
        with pytest.raises(UserNumberTaken):
            await dfsp.register(2, user_number="55551234")
        assert await dfsp.customers.by_msisdn("+256700000002") is None
