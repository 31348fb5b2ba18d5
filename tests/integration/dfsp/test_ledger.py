"""The DFSP ledger on real databases: SQLite always, PostgreSQL where USSDLOOP_TEST_PG is set.

Every test runs once per database; the schema comes from the migrations (``migrate``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from dfsp.domain.transfers import (
    AccountKind,
    BalanceLimitExceeded,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidRequest,
    InvalidTransition,
    LedgerError,
    Posting,
    Transfer,
    TransferConflict,
    TransferExpired,
    TransferRequest,
    TransferState,
    UnknownAccount,
    UnknownTransfer,
)
from dfsp.ledger import Ledger
from dfsp.migrate import migrate
from dfsp.store import Base, create_store_engine
from tests.integration.conftest import Database
from tests.support import asyncio_test
from ussdloop.db import create_engine, session_factory, sqlite_url
from ussdloop.money import Money

T = TypeVar("T")
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]


def usd(minor: int) -> Money:
    return Money("USD", minor)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def migrated_engine(database: Database) -> AsyncEngine:
    engine = create_store_engine(database.url, schema=database.schema)
    await migrate(engine)
    return engine


@asynccontextmanager
async def open_ledger(database: Database, clock: Clock) -> AsyncIterator[Ledger]:
    engine = await migrated_engine(database)
    try:
        yield Ledger(session_factory(engine), clock)
    finally:
        await engine.dispose()


async def open_accounts(ledger: Ledger, prefix: str = "", **funds: int) -> None:
    """A float (may go negative), a fee account, and customers funded from the float."""
    await ledger.open_account(
        f"{prefix}float", currency="USD", kind=AccountKind.FLOAT, owner="dfsp", allow_negative=True
    )
    await ledger.open_account(f"{prefix}fees", currency="USD", kind=AccountKind.FEE, owner="dfsp")
    for name, amount in funds.items():
        account = f"{prefix}{name}"
        await ledger.open_account(account, currency="USD", kind=AccountKind.CUSTOMER, owner=name)
        if amount:
            await ledger.transfer_now(
                f"{prefix}open-{name}", [Posting(f"{prefix}float", account, amount)], kind="opening"
            )


async def assert_consistent(ledger: Ledger) -> None:
    assert await ledger.total_balance("USD") == usd(0)
    assert await ledger.audit() == []


def in_30s(clock: Clock) -> datetime:
    return clock.now + timedelta(seconds=30)


# --- schema -------------------------------------------------------------------------


@asyncio_test
async def test_the_migrations_make_the_schema_the_models_describe(database: Database) -> None:
    engine = await migrated_engine(database)
    try:
        await migrate(engine)  # a second run finds nothing to do
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
        assert differences == []
    finally:
        await engine.dispose()


@asyncio_test
async def test_a_sqlite_ledger_needs_the_engine_that_begins_writes_immediately(
    tmp_path: Path,
) -> None:
    engine = create_engine(sqlite_url(tmp_path, "plain"))
    try:
        with pytest.raises(ValueError, match="create_store_engine"):
            Ledger(session_factory(engine), Clock())
    finally:
        await engine.dispose()


# --- amounts, fees, two phases ------------------------------------------------------


@asyncio_test
async def test_one_some_and_exactly_the_available_amount_are_paid_and_one_unit_more_is_not(
    database: Database,
) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=100_000, bob=0)
        for n, amount in enumerate([1, 2_499]):
            await ledger.transfer_now(f"p{n}", [Posting("alice", "bob", amount)], kind="p2p")
        await ledger.prepare(
            "held", [Posting("alice", "bob", 500)], kind="p2p", expires_at=in_30s(clock)
        )
        assert await ledger.balance("alice") == (usd(97_500), usd(97_000))
        with pytest.raises(InsufficientFunds) as refused:
            await ledger.transfer_now("too-much", [Posting("alice", "bob", 97_001)], kind="p2p")
        assert refused.value.available == usd(97_000)
        assert refused.value.account_id == "alice"
        await ledger.transfer_now("all", [Posting("alice", "bob", 97_000)], kind="p2p")
        await ledger.execute("held")
        assert await ledger.balance("alice") == (usd(0), usd(0))
        assert await ledger.balance("bob") == (usd(100_000), usd(100_000))
        with pytest.raises(InsufficientFunds):
            await ledger.prepare(
                "nothing-left", [Posting("alice", "bob", 1)], kind="p2p", expires_at=in_30s(clock)
            )
        await assert_consistent(ledger)


@asyncio_test
async def test_a_fee_is_its_own_posting_and_entry_in_the_fee_account(database: Database) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=10_000, bob=0)
        send = [Posting("alice", "bob", 5_000), Posting("alice", "fees", 100)]
        prepared = await ledger.prepare("t1", send, kind="p2p", expires_at=in_30s(clock))
        assert prepared.amount == usd(5_100)
        assert await ledger.balance("alice") == (usd(10_000), usd(4_900))
        assert await ledger.statement("bob") == []  # nothing moves before execution
        executed = await ledger.execute("t1")
        assert executed.state is TransferState.EXECUTED
        assert executed.postings == tuple(send)
        alice = await ledger.statement("alice")
        assert [(e.amount, e.balance_after) for e in alice[:2]] == [
            (usd(-100), usd(4_900)),
            (usd(-5_000), usd(5_000)),
        ]
        fees = await ledger.statement("fees")
        assert [(e.transfer_id, e.amount, e.kind) for e in fees] == [("t1", usd(100), "p2p")]
        # more than the balance once the fee is added is refused
        with pytest.raises(InsufficientFunds) as refused:
            await ledger.transfer_now(
                "t2", [Posting("alice", "bob", 4_900), Posting("alice", "fees", 100)], kind="p2p"
            )
        assert refused.value.available == usd(4_900)
        await assert_consistent(ledger)


@asyncio_test
async def test_a_rejection_releases_the_hold_and_keeps_its_first_reason(database: Database) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=1_000, bob=0)
        await ledger.prepare(
            "t1", [Posting("alice", "bob", 800)], kind="p2p", expires_at=in_30s(clock)
        )
        clock.advance(5)
        rejected = await ledger.reject("t1", "payee unknown at the payee DFSP")
        assert (rejected.state, rejected.reason) == (
            TransferState.REJECTED,
            "payee unknown at the payee DFSP",
        )
        assert rejected.decided_at == T0 + timedelta(seconds=5)
        assert await ledger.balance("alice") == (usd(1_000), usd(1_000))
        again = await ledger.reject("t1", "another reason")
        assert again.reason == "payee unknown at the payee DFSP"
        with pytest.raises(InvalidTransition) as refused:
            await ledger.execute("t1")
        assert (refused.value.current, refused.value.target) == (
            TransferState.REJECTED,
            TransferState.EXECUTED,
        )
        assert not isinstance(refused.value, TransferExpired)
        await ledger.prepare(
            "t2", [Posting("alice", "bob", 100)], kind="p2p", expires_at=in_30s(clock)
        )
        await ledger.execute("t2")
        assert (await ledger.execute("t2")).state is TransferState.EXECUTED  # a retry
        with pytest.raises(InvalidTransition):
            await ledger.reject("t2", "too late")
        assert await ledger.balance("bob") == (usd(100), usd(100))
        await assert_consistent(ledger)


@asyncio_test
async def test_execution_at_the_expiry_time_expires_the_transfer_instead(
    database: Database,
) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=1_000, bob=0)
        await ledger.prepare(
            "t1", [Posting("alice", "bob", 600)], kind="p2p", expires_at=in_30s(clock)
        )
        clock.advance(30)
        with pytest.raises(TransferExpired):
            await ledger.execute("t1")
        expired = await ledger.transfer("t1")
        assert (expired.state, expired.decided_at) == (TransferState.EXPIRED, clock.now)
        assert await ledger.balance("alice") == (usd(1_000), usd(1_000))
        with pytest.raises(TransferExpired):
            await ledger.execute("t1")
        with pytest.raises(InvalidTransition):
            await ledger.reject("t1", "late")
        assert await ledger.expire_due() == []
        await assert_consistent(ledger)


@asyncio_test
async def test_deciding_only_if_prepared_returns_a_decided_transfer_as_it_is(
    database: Database,
) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=1_000, bob=0)
        lives = {"rejected": 60, "executed": 60, "expired": 10, "late": 20, "held": 60}
        for tid, seconds in lives.items():
            expires_at = clock.now + timedelta(seconds=seconds)
            await ledger.prepare(
                tid, [Posting("alice", "bob", 100)], kind="p2p", expires_at=expires_at
            )
        await ledger.reject("rejected", "declined")
        await ledger.execute("executed")
        clock.advance(10)
        assert await ledger.expire_due() == ["expired"]
        clock.advance(10)
        for tid in ("rejected", "executed", "expired"):
            decided = await ledger.transfer(tid)
            assert await ledger.execute_if_prepared(tid) == decided
            assert await ledger.reject_if_prepared(tid, "too late") == decided
        with pytest.raises(TransferExpired):  # prepared, past its expiry: expired now
            await ledger.execute_if_prepared("late")
        assert (await ledger.transfer("late")).state is TransferState.EXPIRED
        rejected = await ledger.reject_if_prepared("held", "declined")
        assert (rejected.state, rejected.reason) == (TransferState.REJECTED, "declined")
        with pytest.raises(UnknownTransfer):
            await ledger.execute_if_prepared("never")
        assert await ledger.balance("alice") == (usd(900), usd(900))
        await assert_consistent(ledger)


@asyncio_test
async def test_the_expiry_sweep_releases_due_holds_only(database: Database) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=1_000, bob=0)
        for n, ttl in enumerate([10, 20, 60]):
            expires = clock.now + timedelta(seconds=ttl)
            await ledger.prepare(
                f"t{n}", [Posting("alice", "bob", 100)], kind="p2p", expires_at=expires
            )
        assert await ledger.balance("alice") == (usd(1_000), usd(700))
        clock.advance(20)
        assert sorted(await ledger.expire_due()) == ["t0", "t1"]
        assert await ledger.expire_due() == []
        assert await ledger.balance("alice") == (usd(1_000), usd(900))
        assert (await ledger.transfer("t2")).state is TransferState.PREPARED
        assert await ledger.expire_due(clock.now + timedelta(seconds=40)) == ["t2"]
        await assert_consistent(ledger)


# --- retries and refusals -----------------------------------------------------------


@asyncio_test
async def test_retries_with_the_same_id_never_spend_twice(database: Database) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=1_000, bob=0)
        send = [Posting("alice", "bob", 300), Posting("alice", "fees", 10)]
        first = await ledger.prepare(
            "t1", send, kind="p2p", expires_at=in_30s(clock), memo={"n": 1}
        )
        clock.advance(1)
        for _ in range(3):
            again = await ledger.prepare(
                "t1", list(reversed(send)), kind="p2p", expires_at=in_30s(clock)
            )
            assert again == first
        assert await ledger.balance("alice") == (usd(1_000), usd(690))
        with pytest.raises(TransferConflict):
            await ledger.prepare(
                "t1", [Posting("alice", "bob", 301)], kind="p2p", expires_at=in_30s(clock)
            )
        with pytest.raises(TransferConflict):
            await ledger.prepare("t1", send, kind="invoice", expires_at=in_30s(clock))
        for _ in range(2):
            await ledger.execute("t1")
        for _ in range(2):
            await ledger.transfer_now("t2", [Posting("alice", "bob", 100)], kind="p2p")
        assert await ledger.balance("alice") == (usd(590), usd(590))
        assert len(await ledger.statement("alice")) == 4  # opening, principal, fee, t2
        assert (await ledger.prepare("t1", send, kind="p2p", expires_at=in_30s(clock))).state is (
            TransferState.EXECUTED
        )
        await assert_consistent(ledger)


@asyncio_test
async def test_refusals_leave_nothing_behind(database: Database) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=1_000, bob=0)
        await ledger.open_account("tz", currency="TZS", kind=AccountKind.CUSTOMER, owner="tz")
        await ledger.set_balance_limit("bob", usd(500))
        expires = in_30s(clock)
        await ledger.prepare(
            "pending", [Posting("alice", "bob", 400)], kind="p2p", expires_at=expires
        )
        refusals: list[tuple[list[Posting], type[LedgerError]]] = [
            ([Posting("alice", "nobody", 1)], UnknownAccount),
            ([Posting("alice", "tz", 1)], CurrencyMismatch),
            ([Posting("alice", "bob", 101)], BalanceLimitExceeded),  # 400 pending counts
            ([Posting("alice", "fees", 1), Posting("alice", "bob", 601)], InsufficientFunds),
        ]
        for n, (postings, error) in enumerate(refusals):
            with pytest.raises(error):
                await ledger.prepare(f"r{n}", postings, kind="p2p", expires_at=expires)
            with pytest.raises(UnknownTransfer):
                await ledger.transfer(f"r{n}")
        with pytest.raises(UnknownTransfer):
            await ledger.execute("never-prepared")
        assert await ledger.balance("alice") == (usd(1_000), usd(600))
        assert (await ledger.account("bob")).incoming == usd(400)
        await ledger.execute("pending")
        await ledger.transfer_now("fits", [Posting("alice", "bob", 100)], kind="p2p")
        await assert_consistent(ledger)


@asyncio_test
async def test_accounts_open_once_and_statements_are_newest_first(database: Database) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=1_000, bob=0)
        again = await ledger.open_account(
            "bob", currency="USD", kind=AccountKind.CUSTOMER, owner="bob"
        )
        assert again.balance == usd(0)
        with pytest.raises(LedgerError):
            await ledger.open_account("bob", currency="USD", kind=AccountKind.FEE, owner="bob")
        for n in range(1, 13):
            clock.advance(1)
            await ledger.transfer_now(f"t{n}", [Posting("alice", "bob", n)], kind="p2p")
        latest = await ledger.statement("bob", limit=5)
        assert [e.transfer_id for e in latest] == ["t12", "t11", "t10", "t9", "t8"]
        assert latest[0].balance_after == usd(78) and latest[0].created_at == clock.now
        assert len(await ledger.statement("bob", limit=1_000)) == 12
        with pytest.raises(UnknownAccount):
            await ledger.statement("nobody")


# --- concurrency and crashes --------------------------------------------------------


async def concurrently(*calls: Awaitable[T]) -> tuple[list[T], list[BaseException]]:
    """Run the calls at once; every one ends before the test goes on, even on failure."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    return (
        [r for r in results if not isinstance(r, BaseException)],
        [r for r in results if isinstance(r, BaseException)],
    )


@asyncio_test
async def test_forty_concurrent_prepares_against_funds_for_ten_hold_exactly_ten(
    database: Database,
) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=1_000, bob=0)
        send = [Posting("alice", "bob", 100)]
        held, refused = await concurrently(
            *(
                ledger.prepare(f"t{n}", send, kind="p2p", expires_at=in_30s(clock))
                for n in range(40)
            )
        )
        assert len(held) == 10
        assert [type(error) for error in refused] == [InsufficientFunds] * 30
        assert await ledger.balance("alice") == (usd(1_000), usd(0))
        await assert_consistent(ledger)


@asyncio_test
async def test_payments_in_opposite_directions_at_once_neither_deadlock_nor_lose_money(
    database: Database,
) -> None:
    async with open_ledger(database, Clock()) as ledger:
        await open_accounts(ledger, alice=1_000, bob=1_000)
        directions = [("alice", "bob"), ("bob", "alice")]
        paid, errors = await concurrently(
            *(
                ledger.transfer_now(
                    f"t{n}", [Posting(payer, payee, 10), Posting(payer, "fees", 1)], kind="p2p"
                )
                for n in range(40)
                for payer, payee in [directions[n % 2]]
            )
        )
        assert (len(paid), errors) == (40, [])
        assert await ledger.balance("alice") == (usd(980), usd(980))
        assert await ledger.balance("fees") == (usd(40), usd(40))
        await assert_consistent(ledger)


@asyncio_test
async def test_concurrent_twins_of_one_request_move_the_money_once(database: Database) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=100, bob=0)
        send = [Posting("alice", "bob", 100)]
        twins, errors = await concurrently(
            *(ledger.prepare("t1", send, kind="p2p", expires_at=in_30s(clock)) for _ in range(10))
        )
        assert ({t.id for t in twins}, errors) == ({"t1"}, [])
        payments, errors = await concurrently(
            *(ledger.transfer_now("t1", send, kind="p2p") for _ in range(5)),
            *(
                ledger.transfer_now("t2", [Posting("float", "bob", 5)], kind="p2p")
                for _ in range(5)
            ),
        )
        assert ({t.state for t in payments}, errors) == ({TransferState.EXECUTED}, [])
        assert await ledger.balance("alice") == (usd(0), usd(0))
        assert await ledger.balance("bob") == (usd(105), usd(105))
        await assert_consistent(ledger)


def many(*requests: tuple[str, list[Posting]]) -> list[TransferRequest]:
    return [TransferRequest.checked(tid, postings, "bulk") for tid, postings in requests]


@asyncio_test
async def test_many_transfers_in_one_go_each_stand_or_fall_alone(database: Database) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=1_000, bob=0, carol=0)
        await ledger.prepare(
            "held", [Posting("alice", "bob", 100)], kind="bulk", expires_at=in_30s(clock)
        )
        await ledger.prepare(
            "late",
            [Posting("alice", "carol", 20)],
            kind="bulk",
            expires_at=clock.now + timedelta(seconds=1),
        )
        await ledger.transfer_now("done", [Posting("alice", "carol", 50)], kind="bulk")
        clock.advance(2)  # "late" is past its expiry
        requests = many(
            ("new", [Posting("alice", "bob", 300), Posting("alice", "fees", 10)]),
            ("held", [Posting("alice", "bob", 100)]),  # prepared: executed now
            ("done", [Posting("alice", "carol", 50)]),  # executed: as it is
            ("other", [Posting("alice", "carol", 10_000)]),  # more than alice has
            ("late", [Posting("alice", "carol", 20)]),  # expired instead
            ("done2", [Posting("alice", "carol", 60)]),
        )
        requests.append(TransferRequest.checked("done", [Posting("alice", "bob", 50)], "bulk"))
        with pytest.raises(InvalidRequest):  # one id twice
            await ledger.transfer_many(requests)
        requests[-1] = TransferRequest.checked("small", [Posting("alice", "bob", 1)], "p2p")
        for _ in range(2):  # the second time: a retry, nothing moves again
            outcomes = await ledger.transfer_many(requests)
            kinds = [type(o).__name__ if isinstance(o, LedgerError) else o.state for o in outcomes]
            executed = TransferState.EXECUTED
            assert (
                kinds == [executed] * 3 + ["InsufficientFunds", "TransferExpired"] + [executed] * 2
            )
            assert await ledger.balance("alice") == (usd(479), usd(479))  # 1000-310-100-50-60-1
            assert await ledger.balance("bob") == (usd(401), usd(401))
            assert await ledger.balance("carol") == (usd(110), usd(110))
            assert (await ledger.transfer("late")).state is TransferState.EXPIRED
            with pytest.raises(UnknownTransfer):
                await ledger.transfer("other")
        conflict = await ledger.transfer_many(many(("done", [Posting("alice", "bob", 50)])))
        assert isinstance(conflict[0], TransferConflict)
        await assert_consistent(ledger)


@asyncio_test
async def test_many_transfers_racing_their_single_twins_move_the_money_once(
    database: Database,
) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=1_000, bob=0)
        requests = many(*((f"t{n}", [Posting("alice", "bob", 10)]) for n in range(20)))
        (first, second, *_), errors = await concurrently(
            ledger.transfer_many(requests),
            ledger.transfer_many(list(reversed(requests))),
            *(
                ledger.transfer_now(f"t{n}", [Posting("alice", "bob", 10)], kind="bulk")
                for n in range(0, 20, 3)
            ),
        )
        assert errors == []
        for outcome in [*first, *second]:  # each a transfer (none refused), executed once
            assert isinstance(outcome, Transfer) and outcome.state is TransferState.EXECUTED
        assert await ledger.balance("alice") == (usd(800), usd(800))
        assert await ledger.balance("bob") == (usd(200), usd(200))
        await assert_consistent(ledger)


async def twenty_held(ledger: Ledger, clock: Clock) -> list[str]:
    """Alice's 2,000 held for Bob in twenty transfers of 100: their ids."""
    await open_accounts(ledger, alice=2_000, bob=0)
    ids = [f"t{n}" for n in range(20)]
    for tid in ids:
        await ledger.prepare(
            tid, [Posting("alice", "bob", 100)], kind="p2p", expires_at=in_30s(clock)
        )
    return ids


def outcome_kinds(outcomes: list[Transfer | LedgerError]) -> list[str]:
    return [type(o).__name__ if isinstance(o, LedgerError) else o.state.value for o in outcomes]


@asyncio_test
async def test_executing_many_held_transfers_at_once_is_executing_each_if_prepared(
    database: Database,
) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=2_000, bob=0)
        lives = {"h1": 30, "late": 1, "rejected": 30, "h2": 30, "done": 30}
        for n, (tid, seconds) in enumerate(lives.items()):
            await ledger.prepare(
                tid,
                [Posting("alice", "bob", 100 * (n + 1)), Posting("alice", "fees", n + 1)],
                kind="p2p",
                expires_at=clock.now + timedelta(seconds=seconds),
            )
        await ledger.reject("rejected", "declined")
        await ledger.execute("done")
        clock.advance(2)  # "late" is past its expiry
        with pytest.raises(InvalidRequest):  # one id twice: nothing is decided
            await ledger.execute_many_if_prepared(["h1", "h2", "h1"])
        assert (await ledger.transfer("h1")).state is TransferState.PREPARED
        ids = ["h1", "never", "late", "rejected", "h2", "done"]
        first = await ledger.execute_many_if_prepared(ids)
        assert outcome_kinds(first) == [
            "executed",
            "UnknownTransfer",
            "TransferExpired",  # expired by this call, as execute_if_prepared says
            "rejected",
            "executed",
            "executed",
        ]
        again = await ledger.execute_many_if_prepared(ids)  # a retry: each as it is now
        assert outcome_kinds(again)[2] == "expired"
        assert [o for n, o in enumerate(again) if n not in (1, 2)] == [
            o for n, o in enumerate(first) if n not in (1, 2)
        ]
        assert await ledger.balance("alice") == (usd(2_000 - 101 - 404 - 505),) * 2
        assert await ledger.balance("bob") == (usd(1_000), usd(1_000))
        assert len(await ledger.statement("bob", limit=100)) == 3
        assert await ledger.execute_many_if_prepared([]) == []
        await assert_consistent(ledger)


@asyncio_test
async def test_many_executions_racing_single_ones_of_the_same_transfers_move_the_money_once(
    database: Database,
) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        ids = await twenty_held(ledger, clock)
        (first, second, *singles), errors = await concurrently(
            ledger.execute_many_if_prepared(ids),
            ledger.execute_many_if_prepared(list(reversed(ids))),
            *(ledger.execute_if_prepared(tid) for tid in ids[::3]),
        )
        assert errors == []
        for outcome in [*first, *second, *singles]:
            assert isinstance(outcome, Transfer) and outcome.state is TransferState.EXECUTED
        assert await ledger.balance("alice") == (usd(0), usd(0))
        assert len(await ledger.statement("bob", limit=100)) == 20
        await assert_consistent(ledger)


@asyncio_test
async def test_racing_decisions_decide_each_transfer_exactly_once(database: Database) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        ids = await twenty_held(ledger, clock)
        clock.advance(15)
        _, errors = await concurrently(
            *(ledger.execute(tid) for tid in ids[::2]),
            *(ledger.reject(tid, "declined") for tid in ids[::3]),
            *(ledger.execute(tid) for tid in ids[::5]),
            ledger.expire_due(clock.now + timedelta(seconds=30)),
        )
        assert all(isinstance(error, InvalidTransition) for error in errors), errors
        states = [(await ledger.transfer(tid)).state for tid in ids]
        executed = states.count(TransferState.EXECUTED)
        assert TransferState.PREPARED not in states
        assert await ledger.balance("alice") == (usd(2_000 - 100 * executed),) * 2
        assert len(await ledger.statement("bob", limit=100)) == executed
        await assert_consistent(ledger)


@asyncio_test
async def test_a_fresh_ledger_executes_what_another_one_prepared(database: Database) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as first:
        await open_accounts(first, alice=1_000, bob=0)
        await first.prepare(
            "t1", [Posting("alice", "bob", 700)], kind="p2p", expires_at=in_30s(clock)
        )
        await first.prepare(
            "t2", [Posting("alice", "bob", 300)], kind="p2p", expires_at=in_30s(clock)
        )
    clock.advance(10)
    async with open_ledger(database, clock) as restarted:
        assert await restarted.balance("alice") == (usd(1_000), usd(0))
        await restarted.execute("t1")
        clock.advance(20)
        assert await restarted.expire_due() == ["t2"]
        assert await restarted.balance("alice") == (usd(300), usd(300))
        assert await restarted.balance("bob") == (usd(700), usd(700))
        await assert_consistent(restarted)


CRASHING_EXECUTE = """
import asyncio, os, sys
from datetime import datetime, timezone
from sqlalchemy import event
from dfsp.ledger import Ledger
from dfsp.store import create_store_engine
from ussdloop.db import session_factory

async def main(url, schema):
    engine = create_store_engine(url, schema=schema or None)

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def crash(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO LEDGER_ENTRIES"):
            os._exit(17)  # the process dies mid-transaction: balances updated, no commit

    clock = lambda: datetime(2030, 1, 1, 12, 0, 5, tzinfo=timezone.utc)
    await Ledger(session_factory(engine), clock).execute("t1")

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@asyncio_test
async def test_a_process_killed_while_executing_leaves_the_transfer_prepared(
    database: Database,
) -> None:
    clock = Clock()
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, alice=1_000, bob=0)
        await ledger.prepare(
            "t1", [Posting("alice", "bob", 700)], kind="p2p", expires_at=in_30s(clock)
        )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-c", CRASHING_EXECUTE, database.url, database.schema or ""]
        crashed = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True)
        assert crashed.returncode == 17, crashed.stderr.decode()
        assert (await ledger.transfer("t1")).state is TransferState.PREPARED
        assert await ledger.balance("alice") == (usd(1_000), usd(300))
        await assert_consistent(ledger)
        await ledger.execute("t1")
        assert await ledger.balance("bob") == (usd(700), usd(700))
        await assert_consistent(ledger)


# --- property: random operation sequences ---------------------------------------------


CUSTOMERS = ("alice", "bob", "carol")
ACCOUNTS = ("float", "fees", *CUSTOMERS)
pair = st.sampled_from([(a, b) for a in ACCOUNTS for b in CUSTOMERS if a != b])
amount = st.one_of(st.integers(1, 300), st.integers(1, 1_500))
pick = st.integers(0, 40)  # which transfer of the example, modulo their number
prepare = st.tuples(st.just("prepare"), pair, amount, st.integers(0, 30), st.integers(1, 40))
execute = st.tuples(st.just("execute"), pick)
operations = st.lists(
    st.one_of(
        prepare,
        prepare,
        st.tuples(st.just("transfer_now"), pair, amount),
        execute,
        execute,
        st.tuples(st.just("reject"), pick),
        st.tuples(st.just("retry"), pick),
        st.tuples(st.just("conflict"), pick),
        st.tuples(st.just("advance"), st.integers(5, 60)),
        st.tuples(st.just("expire_due")),
        st.tuples(st.just("execute_many"), st.lists(pick, max_size=4, unique=True)),
        *(  # new transfers and retries of earlier ones, in one database transaction
            st.tuples(
                st.just(name),
                st.lists(pick, max_size=2, unique=True),
                st.lists(st.tuples(pair, amount), min_size=1, max_size=4),
                st.integers(1, 40),
            )
            for name in ("transfer_many", "prepare_many")
        ),
    ),
    min_size=5,
    max_size=40,
)
Request = tuple[str, list[Posting], datetime | None]  # how it was made, postings, expiry


@dataclass
class Model:
    """What the ledger should say: each transfer's state, and the balances."""

    clock: Clock
    prefix: str = field(default_factory=lambda: f"{uuid4().hex[:8]}.")
    balance: dict[str, int] = field(default_factory=dict)
    state: dict[str, TransferState] = field(default_factory=dict)
    request: dict[str, Request] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.balance = {self.account(name): 0 for name in ACCOUNTS}

    def account(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def held(self, account_id: str) -> int:
        """The sum of the account's debits in prepared transfers."""
        return sum(
            p.amount_minor
            for tid, state in self.state.items()
            if state is TransferState.PREPARED
            for p in self.request[tid][1]
            if p.debit_account == account_id
        )

    def fund(self, name: str, amount: int) -> None:
        self.balance[self.account("float")] -= amount
        self.balance[self.account(name)] += amount

    def new(self, tid: str, how: str, postings: list[Posting], expires: datetime | None) -> bool:
        """Record a new transfer if the payer can pay for it."""
        payer = postings[0].debit_account
        need = sum(p.amount_minor for p in postings)
        if payer != self.account("float") and need > self.balance[payer] - self.held(payer):
            return False
        self.request[tid] = (how, postings, expires)
        self.state[tid] = TransferState.PREPARED
        if how == "transfer_now":
            self.decide(tid, TransferState.EXECUTED)
        return True

    def decide(self, tid: str, state: TransferState) -> None:
        self.state[tid] = state
        if state is TransferState.EXECUTED:
            for p in self.request[tid][1]:
                self.balance[p.debit_account] -= p.amount_minor
                self.balance[p.credit_account] += p.amount_minor

    def due(self) -> list[str]:
        now = self.clock.now
        return [
            tid
            for tid, state in self.state.items()
            if state is TransferState.PREPARED and (self.request[tid][2] or now) <= now
        ]


def expected_execute(model: Model, tid: str) -> type[LedgerError] | None:
    state, expires = model.state[tid], model.request[tid][2]
    if state is TransferState.PREPARED:
        if expires is not None and model.clock.now >= expires:
            model.decide(tid, TransferState.EXPIRED)
            return TransferExpired
        model.decide(tid, TransferState.EXECUTED)
    refusals = {TransferState.REJECTED: InvalidTransition, TransferState.EXPIRED: TransferExpired}
    return refusals.get(state)


def expected_reject(model: Model, tid: str) -> type[LedgerError] | None:
    state = model.state[tid]
    if state is TransferState.PREPARED:
        model.decide(tid, TransferState.REJECTED)
    return None if state in (TransferState.PREPARED, TransferState.REJECTED) else InvalidTransition


async def apply_execute_many(ledger: Ledger, model: Model, picks: list[int]) -> None:
    """``execute_many_if_prepared`` of earlier transfers and an unknown id: each outcome
    as ``execute_if_prepared`` one at a time would give it, in order."""
    tids = list(
        dict.fromkeys(list(model.state)[i % len(model.state)] for i in picks if model.state)
    )
    unknown = f"{model.prefix}never"
    expected = [
        expected_execute(model, tid) if model.state[tid] is TransferState.PREPARED else None
        for tid in tids
    ]
    outcomes = await ledger.execute_many_if_prepared([*tids, unknown])
    assert type(outcomes[-1]) is UnknownTransfer
    for tid, outcome, refusal in zip(tids, outcomes[:-1], expected, strict=True):
        event(f"execute_many -> {refusal.__name__ if refusal else 'done'}")
        if refusal is not None:
            assert type(outcome) is refusal, f"{tid}: {outcome!r}"
        else:
            assert isinstance(outcome, Transfer) and outcome.state is model.state[tid], tid


async def apply_many(ledger: Ledger, model: Model, op: tuple[Any, ...]) -> None:
    """``transfer_many`` / ``prepare_many`` of retries of earlier transfers, then new
    ones: each outcome as the one-at-a-time call would give it, in order."""
    name, picks, new, seconds = op
    tids = list(
        dict.fromkeys(list(model.state)[i % len(model.state)] for i in picks if model.state)
    )
    expires = model.clock.now + timedelta(seconds=seconds)
    requests, expected = [], []
    for tid in tids:  # retries: the same postings
        requests.append(TransferRequest.checked(tid, model.request[tid][1], "p2p"))
        expected.append(expected_execute(model, tid) if name == "transfer_many" else None)
    for (payer, payee), amount in new:
        tid = f"{model.prefix}m{uuid4().hex[:12]}"  # apart from apply's t<n>
        postings = [Posting(model.account(payer), model.account(payee), amount)]
        how = "transfer_now" if name == "transfer_many" else "prepare"
        made = model.new(tid, how, postings, None if how == "transfer_now" else expires)
        requests.append(TransferRequest.checked(tid, postings, "p2p"))
        expected.append(None if made else InsufficientFunds)
    if name == "transfer_many":
        outcomes = await ledger.transfer_many(requests)
    else:
        outcomes = await ledger.prepare_many(requests, expires_at=expires)
    for request, outcome, refusal in zip(requests, outcomes, expected, strict=True):
        event(f"{name} -> {refusal.__name__ if refusal else 'done'}")
        if refusal is not None:
            assert type(outcome) is refusal, f"{op}: {outcome!r}"
        else:
            assert isinstance(outcome, Transfer), f"{op}: {outcome!r}"
            assert outcome.state is model.state[request.id], op


async def apply(ledger: Ledger, model: Model, op: tuple[Any, ...]) -> None:
    """Apply one operation to the ledger and the model; the outcomes must agree."""
    name, *args = op
    if name in ("transfer_many", "prepare_many"):
        await apply_many(ledger, model, op)
        return
    if name == "execute_many":
        await apply_execute_many(ledger, model, args[0])
        return
    later = model.clock.now + timedelta(seconds=5)
    if name in ("prepare", "transfer_now"):
        (payer, payee), amount = args[0], args[1]
        postings = [Posting(model.account(payer), model.account(payee), amount)]
        if name == "prepare" and args[2] and payer != "fees":
            postings.append(Posting(model.account(payer), model.account("fees"), args[2]))
        expires = model.clock.now + timedelta(seconds=args[3]) if name == "prepare" else None
        tid = f"{model.prefix}t{len(model.state)}"
        expected: type[LedgerError] | None = None
        if not model.new(tid, name, postings, expires):
            expected = InsufficientFunds
        if expires is None:
            call = ledger.transfer_now(tid, postings, kind="p2p")
        else:
            call = ledger.prepare(tid, postings, kind="p2p", expires_at=expires)
    elif name == "advance":
        model.clock.advance(args[0])
        event("advance")
        return
    elif name == "expire_due":
        due = model.due()
        for tid in due:
            model.decide(tid, TransferState.EXPIRED)
        expired = await ledger.expire_due()
        assert sorted(t for t in expired if t.startswith(model.prefix)) == sorted(due)
        event(f"expire_due -> {'some' if due else 'none'}")
        return
    elif not model.state:
        return
    else:
        tid = list(model.state)[args[0] % len(model.state)]
        how, postings, _ = model.request[tid]
        if name == "execute":
            expected = expected_execute(model, tid)
            call = ledger.execute(tid)
        elif name == "reject":
            expected = expected_reject(model, tid)
            call = ledger.reject(tid, "declined")
        elif name == "retry":
            expected = None
            call = (
                ledger.transfer_now(tid, postings, kind="p2p")
                if how == "transfer_now"
                else ledger.prepare(tid, postings, kind="p2p", expires_at=later)
            )
        else:  # the same id with other content
            expected = TransferConflict
            more = [
                Posting(p.debit_account, p.credit_account, p.amount_minor + 1) for p in postings
            ]
            call = ledger.prepare(tid, more, kind="p2p", expires_at=later)
    event(f"{name} -> {expected.__name__ if expected else 'done'}")
    try:
        result = await call
    except LedgerError as error:
        assert type(error) is expected, f"{op}: {error!r}"
    else:
        assert expected is None, f"{op}: expected {expected.__name__}"
        assert result.state is model.state[tid], op


async def check_invariants(ledger: Ledger, model: Model) -> None:
    """Zero total; no account below zero unless allowed; holds never negative and equal
    to the sum of prepared debits (the model's count, and the stored rows' via audit)."""
    assert await ledger.total_balance("USD") == usd(0)
    for account_id, balance in model.balance.items():
        account = await ledger.account(account_id)
        assert account.held.minor >= 0
        assert account.allow_negative or account.available.minor >= 0
        assert (account.balance.minor, account.held.minor) == (balance, model.held(account_id))
    assert await ledger.audit() == []


async def run_sequence(database: Database, ops: list[tuple[Any, ...]]) -> None:
    """One example: fresh accounts (ids of their own) in the test's database."""
    clock = Clock()
    model = Model(clock)
    async with open_ledger(database, clock) as ledger:
        await open_accounts(ledger, model.prefix, alice=1_000, bob=500, carol=0)
        model.fund("alice", 1_000)
        model.fund("bob", 500)
        for op in ops:
            await apply(ledger, model, op)
            await check_invariants(ledger, model)
        for tid, state in model.state.items():
            assert (await ledger.transfer(tid)).state is state


# One test function per database: pytest-twisted re-wraps a hypothesis test's inner
# function on every call, so one function parametrised twice would wrap it twice.
SEQUENCES = settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
EVERY_PATH = [  # always run, besides the random sequences: each outcome at least once
    ("prepare", ("alice", "bob"), 300, 10, 30),  # t0
    ("prepare", ("alice", "carol"), 200, 0, 10),  # t1
    ("prepare", ("alice", "bob"), 600, 0, 30),  # refused: 490 available
    ("retry", 0),
    ("conflict", 1),
    ("advance", 10),
    ("execute", 1),  # expired at its expiry time
    ("execute", 1),
    ("reject", 1),  # refused: expired
    ("execute", 0),
    ("execute", 0),
    ("reject", 0),  # refused: executed
    ("transfer_now", ("bob", "carol"), 500),  # t2
    ("retry", 2),
    ("prepare", ("bob", "alice"), 301, 0, 5),  # refused: bob has 300 left
    ("prepare", ("float", "bob"), 100, 0, 5),  # t3
    ("prepare", ("carol", "alice"), 100, 0, 20),  # t4
    ("reject", 4),
    ("reject", 4),
    ("execute", 4),  # refused: rejected
    ("advance", 5),
    ("expire_due",),  # t3
    ("retry", 3),  # answers with the expired transfer
    ("prepare", ("alice", "carol"), 10, 0, 5),  # t5
    ("transfer_many", [0, 4, 5], [(("carol", "bob"), 1), (("bob", "alice"), 999)], 1),
    ("prepare", ("alice", "bob"), 10, 0, 1),  # the 8th transfer (7 after the retries)
    ("advance", 5),
    ("prepare_many", [7, 3], [(("alice", "carol"), 5), (("carol", "alice"), 999)], 10),
    ("transfer_many", [7], [(("float", "carol"), 1)], 1),  # the 8th: expired instead
    ("prepare", ("alice", "bob"), 10, 0, 30),  # the 11th
    ("advance", 10),  # the 9th (prepare_many's, for 10 s) is due
    ("execute_many", [10, 8, 4, 0]),  # executed, expired instead, rejected, executed
]


@SEQUENCES
@given(ops=operations)
@example(ops=EVERY_PATH)
@asyncio_test
async def test_random_operation_sequences_keep_the_sqlite_ledger_balanced(
    sqlite_database: Database, ops: list[tuple[Any, ...]]
) -> None:
    await run_sequence(sqlite_database, ops)


@SEQUENCES
@given(ops=operations)
@example(ops=EVERY_PATH)
@asyncio_test
async def test_random_operation_sequences_keep_the_postgresql_ledger_balanced(
    postgresql_database: Database, ops: list[tuple[Any, ...]]
) -> None:
    await run_sequence(postgresql_database, ops)
