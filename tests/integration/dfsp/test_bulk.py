"""Bulk payments at one DFSP (SPEC section 3, "Bulk payments"), on SQLite always and on
PostgreSQL where USSDLOOP_TEST_PG is set: the file's checks, maker and checker, and the
runner on an injected clock (pacing, retries, invitations, a restart mid-batch)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from dfsp.bulk import Bulk, BulkSettings, report_text
from dfsp.bulk_runner import BulkRunner
from dfsp.clearing_ledger import PAYER
from dfsp.customer_store import LocalUserNumbers
from dfsp.customers import Customers
from dfsp.domain.bulk import (
    MAX_ROWS,
    BatchState,
    BulkRoleMissing,
    InvalidBatchFile,
    MakerCannotCheck,
    RowState,
    parse_batch_file,
    transfer_id,
)
from dfsp.domain.customers import Customer, CustomerRole
from dfsp.domain.fees import FeeSchedule, FeeSource, FeeTable, TransactionType
from dfsp.domain.limits import Limits
from dfsp.domain.notices import Notice
from dfsp.domain.payments import PaymentOrder, SendQuote, SendResult
from dfsp.domain.pins import PinPolicy, WrongPin
from dfsp.domain.tiers import Tier, TierTable, demo_tier_table
from dfsp.domain.transfers import AccountKind as LedgerKind
from dfsp.domain.transfers import Posting, TransferState
from dfsp.interledger import ClearingNotices
from dfsp.ledger import Ledger
from dfsp.migrate import migrate
from dfsp.payments import Payments
from dfsp.store import create_store_engine
from tests.integration.conftest import Database
from tests.support import asyncio_test
from ussdloop.db import session_factory
from ussdloop.money import Money

PIN = "2468"
WRONG_PIN = "1357"
START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
HEADER = "sequenceNumber,identifier,firstName,lastName,nationalId,dob,amount\n"


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


@dataclass
class FakeClock:
    now: datetime = START
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


@dataclass
class Outbox:
    notices: list[Notice] = field(default_factory=list)

    async def post(self, notices: Sequence[Notice]) -> None:
        self.notices.extend(notices)


@dataclass
class Net:
    clock: FakeClock
    ledger: Ledger
    customers: Customers
    payments: Payments
    bulk: Bulk
    runner: BulkRunner
    outbox: Outbox
    maker: Customer
    checker: Customer
    account: str  # the maker's account, held by the checker too
    ledger_account: str
    payees: list[Customer]

    async def register(self, n: int, **details: object) -> Customer:
        fields: dict[str, object] = {
            "msisdn": f"+2567000001{n:02d}",
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

    async def balance(self, ledger_account_id: str) -> Money:
        return (await self.ledger.balance(ledger_account_id))[0]

    async def upload(self, csv_text: str, end: timedelta = timedelta(hours=1)) -> str:
        batch = await self.bulk.upload(
            self.maker.id, PIN, self.account, csv_text, end_at=self.clock.now + end
        )
        return batch.id

    async def approved(self, csv_text: str, end: timedelta = timedelta(hours=1)) -> str:
        batch_id = await self.upload(csv_text, end)
        await self.bulk.approve(batch_id, self.checker.id, PIN)
        return batch_id


def line(seq: int, payee: Customer, amount: str = "10", **changes: str) -> str:
    fields = {
        "identifier": str(payee.user_number),
        "first": payee.first_name,
        "last": payee.last_name,
        "nid": payee.national_id,
        "dob": payee.date_of_birth.isoformat(),
    }
    fields.update(changes)
    order = ("identifier", "first", "last", "nid", "dob")
    return ",".join([str(seq), *(fields[name] for name in order), amount]) + "\n"


@asynccontextmanager
async def open_net(database: Database, settings: BulkSettings | None = None) -> AsyncIterator[Net]:
    engine = create_store_engine(database.url, schema=database.schema)
    clock = FakeClock()
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        ledger = Ledger(sessions, clock)
        for account_id, kind in (("float", LedgerKind.FLOAT), ("fees", LedgerKind.FEE)):
            await ledger.open_account(
                account_id,
                currency="USD",
                kind=kind,
                owner="dfsp",
                allow_negative=kind == LedgerKind.FLOAT,
            )
        rng = random.Random(7)
        customers = Customers(
            sessions,
            ledger,
            clock=clock,
            rng=rng,
            user_numbers=LocalUserNumbers(sessions, rng),
            pin_policy=PinPolicy(),
            opening_balance=usd("100"),
            float_account="float",
            currency="USD",
            tiers=demo_tier_table(),
        )
        bulk_fee = FeeSchedule.flat(usd("0.25"))
        fees = FeeTable("USD", {(TransactionType.BULK, FeeSource.SENDER): bulk_fee})
        outbox = Outbox()
        payments = Payments(
            sessions, ledger, customers, fees=fees, clock=clock, fee_account="fees", notices=outbox
        )
        settings = settings or BulkSettings(rows_per_second=0, retry_interval=timedelta(minutes=5))
        bulk = Bulk(sessions, customers, payments, currency="USD", clock=clock, settings=settings)
        runner = BulkRunner(
            bulk,
            sessions,
            customers,
            payments,
            ledger,
            notices=outbox,
            short_code="*123#",
            clock=clock,
            sleep=clock.sleep,
        )
        net = Net(clock, ledger, customers, payments, bulk, runner, outbox, None, None, "", "", [])  # type: ignore[arg-type]
        net.maker = await net.register(1, first_name="Maker", last_name="Co")
        net.checker = await net.register(2, first_name="Checker", last_name="Co")
        account = (await customers.accounts_of(net.maker.id))[0]
        net.account, net.ledger_account = account.id, account.ledger_account_id
        await customers.add_holder(
            net.maker.id, account.id, str(net.checker.user_number), signatory=True
        )
        await bulk.grant_role(net.maker.id, "maker")
        await bulk.grant_role(net.checker.id, "checker")
        net.payees = [await net.register(10 + n) for n in range(3)]
        yield net
    finally:
        await engine.dispose()


# --- the file -----------------------------------------------------------------------


def test_malformed_rows_are_reported_each_with_its_reason() -> None:
    text = HEADER + (
        "1,12345678,Ann,Lee,N1,1990-01-02,10\n"
        "2,12345678,=HYPERLINK(1),Lee,N1,1990-01-02,10\n"
        "3,12345678,Ann,@SUM(A1),N1,1990-01-02,10\n"
        "4,12345678,Ann,Lee,N1,1990-13-02,10\n"
        "5,12345678,Ann,Lee,N1,1990-01-02,10.123\n"
        "6,12345678,Ann,Lee,,1990-01-02,10\n"
        "7,0700123456,Ann,Lee,N1,1990-01-02,10\n"
        "1,+256 700 000 001,Ann,Lee,N1,1990-01-02,10\n"
        "8,+256700000001,Ann,Lee,N1,1990-01-02,0\n"
        "9,+256700000001,Ann,Lee,N1,1990-01-02\n"
    )
    rows = parse_batch_file(text, "USD", today=date(2030, 1, 1))
    problems = [row.problem or "" for row in rows]
    assert problems[0] == ""
    assert "formula" in problems[1] and "formula" in problems[2]
    assert problems[3] == "malformed: date_of_birth: no such date"
    assert "2 decimals" in problems[4]
    assert "nationalId is empty" in problems[5]
    assert problems[6].startswith("bad_msisdn: ")
    assert "repeats" in problems[7]
    assert "above zero" in problems[8]
    assert "expected 7 fields" in problems[9]
    assert rows[0].user_number == "12345678"


def test_an_oversize_file_or_one_without_the_header_is_refused() -> None:
    with pytest.raises(InvalidBatchFile, match="rows"):
        parse_batch_file(
            HEADER + "1,12345678,A,B,N,1990-01-01,1\n" * (MAX_ROWS + 1),
            "USD",
            today=date(2030, 1, 1),
        )
    with pytest.raises(InvalidBatchFile, match="MB"):
        parse_batch_file(HEADER + "x" * (6 * 1024 * 1024), "USD", today=date(2030, 1, 1))
    with pytest.raises(InvalidBatchFile, match="header"):
        parse_batch_file("seq,id\n1,2\n", "USD", today=date(2030, 1, 1))


# --- maker and checker --------------------------------------------------------------


@asyncio_test
async def test_the_report_flags_mismatches_unknown_payees_and_invites(database: Database) -> None:
    async with open_net(database) as net:
        a, b, c = net.payees
        text = HEADER + (
            line(1, a)
            + line(2, b, first="Someone")
            + line(3, c, nid="XX999")
            + line(4, c, dob="1980-01-01")
            + line(5, a, identifier="99999999")
            + line(6, a, identifier="+256799999999", first="New", last="Comer")
            + line(7, a, first="=cmd")
        )
        batch = await net.bulk.batch(await net.upload(text), net.maker.id, PIN)
        states = [(row.state, (row.reason or "").split(":")[0]) for row in batch.rows]
        assert states == [
            (RowState.PENDING, ""),
            (RowState.FAILED, "name_mismatch"),
            (RowState.FAILED, "national_id_mismatch"),
            (RowState.FAILED, "dob_mismatch"),
            (RowState.FAILED, "unknown_payee"),
            (RowState.INVITED, "no_account"),
            (RowState.FAILED, "malformed"),
        ]
        assert batch.state is BatchState.DRAFT and batch.totals.open == usd("20")


@asyncio_test
async def test_the_maker_cannot_approve_their_own_batch_and_roles_are_needed(
    database: Database,
) -> None:
    async with open_net(database) as net:
        batch_id = await net.upload(HEADER + line(1, net.payees[0]))
        await net.bulk.grant_role(net.maker.id, "checker")
        with pytest.raises(MakerCannotCheck):
            await net.bulk.approve(batch_id, net.maker.id, PIN)
        with pytest.raises(BulkRoleMissing):
            await net.bulk.approve(batch_id, net.payees[0].id, PIN)
        with pytest.raises(BulkRoleMissing):
            await net.bulk.upload(
                net.payees[0].id, PIN, net.account, HEADER + line(1, net.payees[1])
            )
        with pytest.raises(WrongPin):
            await net.bulk.approve(batch_id, net.checker.id, WRONG_PIN)
        assert (await net.bulk.batch_view(batch_id)).state is BatchState.DRAFT
        rejected = await net.bulk.reject(batch_id, net.checker.id, PIN, "wrong month")
        assert rejected.state is BatchState.REJECTED and rejected.rows[0].state is RowState.FAILED
        await net.runner.step()
        assert await net.balance(net.ledger_account) == usd("100")  # nothing paid


# --- the runner ---------------------------------------------------------------------


@asyncio_test
async def test_an_approved_batch_is_paid_with_a_fee_row_each_and_done(database: Database) -> None:
    async with open_net(database) as net:
        text = HEADER + "".join(line(i + 1, p, "12.50") for i, p in enumerate(net.payees))
        batch_id = await net.approved(text)
        await net.runner.step()
        batch = await net.bulk.batch_view(batch_id)
        assert batch.state is BatchState.DONE
        assert [row.state for row in batch.rows] == [RowState.PAID] * 3
        assert batch.totals.paid == usd("37.50") and batch.totals.fees == usd("0.75")
        assert await net.balance(net.ledger_account) == usd("100") - usd("38.25")
        assert await net.balance("fees") == usd("0.75")
        for payee in net.payees:
            account = (await net.customers.accounts_of(payee.id))[0]
            assert await net.balance(account.ledger_account_id) == usd("112.50")
        told = {n.customer_id for n in net.outbox.notices}
        assert told == {p.id for p in net.payees}  # the payees, not the maker per row
        report = report_text(batch).splitlines()
        assert report[1].startswith(f"1,{net.payees[0].user_number},") and ",paid,," in report[1]


@asyncio_test
async def test_a_restart_after_a_payment_never_pays_the_row_twice(database: Database) -> None:
    async with open_net(database) as net:
        payee = net.payees[0]
        batch_id = await net.approved(HEADER + line(1, payee, "20"))
        # The runner paid row 1, then the process died before it saved the row.
        quote = await net.payments.quote_send(
            net.maker.id, net.account, str(payee.user_number), usd("20"), kind=TransactionType.BULK
        )
        await net.payments.send_authorised(quote, transfer_id(batch_id, 1, 0))
        await net.runner.step()
        await net.runner.step()
        batch = await net.bulk.batch_view(batch_id)
        assert batch.rows[0].state is RowState.PAID
        assert batch.rows[0].transfer_id == transfer_id(batch_id, 1, 0)
        assert batch.rows[0].fee == usd("0.25")
        assert await net.balance(net.ledger_account) == usd("79.75")


@asyncio_test
async def test_payments_sent_together_are_each_quoted_checked_and_paid_alone(
    database: Database,
) -> None:
    async with open_net(database) as net:
        capped, free = Tier("basic", Limits(max_balance=usd("110"))), Tier("business", Limits())
        net.customers.use_tiers(TierTable((capped, free)))
        a, b, _ = net.payees
        await net.customers.change_tier(b.id, "business", actor="test", reason="uncapped")
        maker = str(net.maker.user_number)
        a_ledger = (await net.customers.accounts_of(a.id))[0].ledger_account_id
        orders = [
            PaymentOrder("t1", str(a.user_number), usd("6")),
            PaymentOrder("t2", str(a.user_number), usd("5")),  # a would have 111
            PaymentOrder("t3", "99999999", usd("1")),  # nobody's (no other DFSP here)
            PaymentOrder("t4", str(b.user_number), usd("0")),
            PaymentOrder("t5", str(a.user_number), usd("4")),  # a has 110: the maximum
            PaymentOrder("t6", maker, usd("1")),  # to the account paid from
            PaymentOrder("t7", str(b.user_number), usd("80")),
            PaymentOrder("t8", str(b.user_number), usd("9.01")),  # 9.26 with the fee: 9.25 left
        ]
        for _ in range(2):  # the second time a retry: nothing more is paid
            outcomes = await net.payments.send_bulk(net.maker.id, net.account, orders)
            kinds = [o.status if isinstance(o, SendResult) else type(o).__name__ for o in outcomes]
            paid = TransferState.EXECUTED
            assert kinds == [
                paid,
                "LimitExceeded",
                "UnknownReceiver",
                "InvalidAmount",
                paid,
                "SendNotAllowed",
                paid,
                "InsufficientFunds",
            ]
            assert [o.fee for o in outcomes if isinstance(o, SendResult)] == [usd("0.25")] * 3
            assert await net.balance(net.ledger_account) == usd("9.25")  # 100 - 90 - 0.75
            assert await net.balance(a_ledger) == usd("110")
            assert await net.balance("fees") == usd("0.75")
        told = [(n.key, n.customer_id, n.args["balance"]) for n in net.outbox.notices[:3]]
        assert told == [
            ("transfer:t1:receiver", a.id, "106 USD"),
            ("transfer:t5:receiver", a.id, "110 USD"),
            ("transfer:t7:receiver", b.id, "180 USD"),
        ]
        assert await net.ledger.total_balance("USD") == usd("0")


@asyncio_test
async def test_payments_are_paced_at_the_configured_rate(database: Database) -> None:
    settings = BulkSettings(rows_per_second=2, retry_interval=timedelta(minutes=5))
    async with open_net(database, settings) as net:
        text = HEADER + "".join(line(i + 1, net.payees[i % 3], "1") for i in range(5))
        batch_id = await net.approved(text)
        await net.runner.step()
        assert (await net.bulk.batch_view(batch_id)).state is BatchState.DONE
        assert net.clock.now - START >= timedelta(seconds=2)  # 5 rows at 2 a second
        assert sum(net.clock.slept) == pytest.approx(2.0)


@asyncio_test
async def test_no_more_rows_than_rows_in_flight_are_paid_one_by_one_at_once(
    database: Database,
) -> None:
    # Invited payees, once registered, are paid one by one (not in a chunk).
    settings = BulkSettings(
        rows_per_second=0, rows_in_flight=3, retry_interval=timedelta(minutes=5)
    )
    async with open_net(database, settings) as net:
        paying, most = 0, 0
        send_authorised = net.payments.send_authorised

        async def slow_send(quote: SendQuote, tid: str) -> SendResult:
            nonlocal paying, most
            paying += 1
            most = max(most, paying)
            try:
                for _ in range(5):  # the centre's outcome takes a while
                    await asyncio.sleep(0)
                return await send_authorised(quote, tid)
            finally:
                paying -= 1

        net.payments.send_authorised = slow_send  # type: ignore[method-assign]
        people = range(30, 40)
        text = HEADER + "".join(
            line(
                n,
                net.payees[0],
                "1",
                identifier=f"+2567000001{n:02d}",
                first=f"First{n}",
                last="Person",
                nid=f"CM{n:04d}",
                dob="1990-04-25",
            )
            for n in people
        )
        batch_id = await net.approved(text)
        await net.runner.step()  # each is invited
        for n in people:
            await net.register(n)
        net.clock.now += timedelta(minutes=5)
        await net.runner.step()
        batch = await net.bulk.batch_view(batch_id)
        assert batch.state is BatchState.DONE
        assert [row.state for row in batch.rows] == [RowState.PAID] * 10
        assert 2 <= most <= 3 and net.runner.most_in_flight == 3
        assert await net.balance(net.ledger_account) == usd("100") - usd("12.50")


@asyncio_test
async def test_a_temporary_failure_is_retried_no_sooner_than_the_interval(
    database: Database,
) -> None:
    # One row at a time, so the row short of funds is the second one.
    settings = BulkSettings(
        rows_per_second=0, rows_in_flight=1, retry_interval=timedelta(minutes=5)
    )
    async with open_net(database, settings) as net:
        a, b, _ = net.payees
        batch_id = await net.approved(HEADER + line(1, a, "60") + line(2, b, "60"))
        await net.runner.step()  # 100 USD: the second row finds no funds
        rows = (await net.bulk.batch_view(batch_id)).rows
        assert [r.state for r in rows] == [RowState.PAID, RowState.WAITING]
        assert rows[1].reason is not None and rows[1].reason.startswith(
            "temporary: InsufficientFunds"
        )
        assert rows[1].next_attempt_at == START + timedelta(minutes=5)
        await net.ledger.transfer_now(
            "top-up", [Posting("float", net.ledger_account, 10_000)], kind="cash_in"
        )
        net.clock.now += timedelta(minutes=4)
        await net.runner.step()
        assert (await net.bulk.batch_view(batch_id)).rows[1].state is RowState.WAITING
        net.clock.now += timedelta(minutes=1)
        await net.runner.step()
        batch = await net.bulk.batch_view(batch_id)
        assert batch.rows[1].state is RowState.PAID and batch.state is BatchState.DONE
        assert batch.rows[1].transfer_id == transfer_id(batch_id, 2, 1)  # a new attempt


@asyncio_test
async def test_a_temporary_failure_at_the_end_is_final(database: Database) -> None:
    async with open_net(database) as net:
        batch_id = await net.approved(
            HEADER + line(1, net.payees[0], "500"), end=timedelta(minutes=3)
        )
        await net.runner.step()
        batch = await net.bulk.batch_view(batch_id)
        assert batch.rows[0].state is RowState.FAILED and batch.state is BatchState.DONE
        assert (batch.rows[0].reason or "").startswith("end_reached: InsufficientFunds")


@asyncio_test
async def test_an_invited_payee_is_paid_once_they_register_before_the_end(
    database: Database,
) -> None:
    async with open_net(database) as net:
        new = "+256700000199"
        text = HEADER + line(
            1, net.payees[0], "15", identifier=new, first="Nia", last="Odu", nid="NI77"
        )
        batch_id = await net.approved(text, end=timedelta(hours=2))
        await net.runner.step()
        invite = [n for n in net.outbox.notices if n.message == "bulk_invite"]
        assert invite == [
            Notice(
                f"bulk:{batch_id}:2:invite",
                "msisdn:256700000199",
                "bulk_invite",
                {"payer": "Maker Co", "amount": "15 USD", "date": "2030-01-01"},
            )
        ]
        assert (await net.bulk.batch_view(batch_id)).rows[0].state is RowState.INVITED
        nia = await net.register(
            50,
            msisdn=new,
            first_name="Nia",
            last_name="Odu",
            national_id="NI77",
            date_of_birth=net.payees[0].date_of_birth,
        )
        net.clock.now += timedelta(minutes=5)
        await net.runner.step()
        batch = await net.bulk.batch_view(batch_id)
        assert batch.rows[0].state is RowState.PAID and batch.state is BatchState.DONE
        account = (await net.customers.accounts_of(nia.id))[0]
        assert await net.balance(account.ledger_account_id) == usd("115")
        assert len([n for n in net.outbox.notices if n.message == "bulk_invite"]) == 1


@asyncio_test
async def test_an_invited_payee_who_never_registers_fails_at_the_end(database: Database) -> None:
    async with open_net(database) as net:
        text = HEADER + line(1, net.payees[0], "15", identifier="+256700000198")
        batch_id = await net.approved(text, end=timedelta(minutes=7))
        for _ in range(3):
            await net.runner.step()
            net.clock.now += timedelta(minutes=5)
        batch = await net.bulk.batch_view(batch_id)
        assert batch.rows[0].state is RowState.FAILED and batch.state is BatchState.DONE
        assert (batch.rows[0].reason or "").startswith("no_account")


@asyncio_test
async def test_the_payer_of_a_bulk_row_cleared_through_the_centre_is_not_told_per_row(
    database: Database,
) -> None:
    async with open_net(database) as net:
        told = ClearingNotices(net.ledger, net.outbox)
        for tid, bulk in (("row-paid-across", True), ("p2p-paid-across", False)):
            memo = {"sender": net.maker.id, "receiver_name": "Far Away", "clearing": PAYER}
            await net.ledger.prepare(
                tid,
                [Posting(net.ledger_account, "fees", 500)],
                kind="p2p",
                expires_at=START + timedelta(minutes=1),
                memo=memo | ({"bulk": True} if bulk else {}),
            )
            await net.ledger.execute(tid)
            await told([(tid, "executed", None)])
        keys = [n.key for n in net.outbox.notices if n.customer_id == net.maker.id]
        assert keys == ["transfer:p2p-paid-across:sender"]  # the batch's report tells the maker
