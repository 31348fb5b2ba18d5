"""What the DFSP's ledger and customers write to the forensic log (``dfsp.forensic_events``),
on SQLite always and on PostgreSQL where USSDLOOP_TEST_PG is set, with the log kept in
memory: an automatic tier upgrade is recorded once, and a transfer made inside
``recording_after`` is logged on leaving it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dfsp.domain.transfers import Posting, TransferExpired, TransferRequest, UnknownTransfer
from dfsp.forensic import DfspForensic
from dfsp.forensic_events import ForensicCustomers, ForensicLedger
from dfsp.ledger import Ledger
from tests.integration.conftest import Database
from tests.integration.dfsp.test_customers import NOW
from tests.integration.dfsp.test_payments import FEES, FLOAT, open_network
from tests.integration.dfsp.test_tiers import TIERS, top_up
from tests.support import asyncio_test
from ussdloop.forensic import ForensicWriter, Record


class RecordedLog:
    """A forensic sink that stores whatever chains on (as the central log would)."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def last(self, service: str) -> Record | None:
        return self.records[-1] if self.records else None

    async def append(self, records: Sequence[Record]) -> None:
        self.records.extend(records)


@asyncio_test
async def test_an_automatic_upgrade_is_written_to_the_forensic_log_once(
    database: Database,
) -> None:
    async with open_network(database, TIERS) as net:
        sink = RecordedLog()
        writer = ForensicWriter("dfsp1", Ed25519PrivateKey.generate(), sink)
        await writer.start()
        logged = ForensicCustomers.__new__(ForensicCustomers)  # the same customers, logged
        logged.__dict__.update(vars(net.dfsp.customers), _forensic=DfspForensic("dfsp1", writer))
        await top_up(net, net.alice, "600", "cash-in")
        tiers = await asyncio.gather(*(logged.upgrade_tier(net.alice.id) for _ in range(4)))
        assert {tier.name for tier in tiers} == {"saver"}
        assert await logged.upgrade_tier(net.alice.id) == tiers[0]  # no change: no record
        changes = [r for r in sink.records if r.event == "tier.changed"]
        assert [(r.subject, r.data) for r in changes] == [
            (str(net.alice.user_number), {"from": "basic", "to": "saver", "by": "automatic"})
        ]


async def logged_ledger(ledger: Ledger, sink: RecordedLog) -> ForensicLedger:
    """The same ledger, logged to ``sink``."""
    writer = ForensicWriter("dfsp1", Ed25519PrivateKey.generate(), sink)
    await writer.start()
    logged = ForensicLedger.__new__(ForensicLedger)
    logged.__dict__.update(
        vars(ledger),
        _forensic=DfspForensic("dfsp1", writer),
        _fee_account=FEES,
        _customers=None,
        _user_numbers={},
    )
    return logged


async def clocked_logged_ledger(
    ledger: Ledger,
) -> tuple[RecordedLog, ForensicLedger, list[datetime]]:
    """The same ledger, logged to the sink returned, on a clock set by ``now[0]``."""
    sink = RecordedLog()
    logged = await logged_ledger(ledger, sink)
    now = [NOW]
    logged._clock = lambda: now[0]
    return sink, logged, now


@asyncio_test
async def test_racing_decisions_of_a_held_transfer_are_recorded_once_each(
    database: Database,
) -> None:
    async with open_network(database, TIERS) as net:
        sink, logged, now = await clocked_logged_ledger(net.dfsp.ledger)
        account = (await net.dfsp.customers.accounts_of(net.alice.id))[0].ledger_account_id
        hold = [Posting(FLOAT, account, 100)]
        until = NOW + timedelta(seconds=30)
        for tid in ("t-1", "t-2"):
            await asyncio.gather(
                *(logged.prepare(tid, hold, kind="p2p", expires_at=until) for _ in range(3))
            )
        await asyncio.gather(*(logged.execute("t-1") for _ in range(3)))
        now[0] = until
        outcomes = await asyncio.gather(
            *(logged.execute("t-2") for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(outcome, TransferExpired) for outcome in outcomes)
        assert [(r.event, r.subject, r.data["state"]) for r in sink.records[1:]] == [
            ("transfer.held", "t-1", "prepared"),
            ("transfer.held", "t-2", "prepared"),
            ("transfer.committed", "t-1", "executed"),
            ("transfer.released", "t-2", "expired"),
        ]


@asyncio_test
async def test_a_transfer_made_inside_recording_after_is_logged_on_leaving_it(
    database: Database,
) -> None:
    async with open_network(database, TIERS) as net:
        sink = RecordedLog()
        logged = await logged_ledger(net.dfsp.ledger, sink)
        account = (await net.dfsp.customers.accounts_of(net.alice.id))[0].ledger_account_id
        with pytest.raises(RuntimeError):
            async with logged.recording_after():
                await logged.transfer_now("t-1", [Posting(FLOAT, account, 100)], kind="cash_in")
                await logged.transfer_now("t-2", [Posting(FLOAT, account, 200)], kind="cash_in")
                assert [r.event for r in sink.records] == ["service.started"]  # not yet
                raise RuntimeError("after the money moved")
        await logged.transfer_now("t-3", [Posting(FLOAT, account, 300)], kind="cash_in")
        assert [(r.event, r.subject) for r in sink.records[1:]] == [
            ("transfer.executed", "t-1"),
            ("transfer.executed", "t-2"),
            ("transfer.executed", "t-3"),
        ]


@asyncio_test
async def test_transfers_made_many_at_once_are_recorded_as_one_at_a_time(
    database: Database,
) -> None:
    async with open_network(database, TIERS) as net:
        sink, logged, now = await clocked_logged_ledger(net.dfsp.ledger)
        account = (await net.dfsp.customers.accounts_of(net.alice.id))[0].ledger_account_id

        def request(tid: str, minor: int) -> TransferRequest:
            return TransferRequest.checked(tid, [Posting(FLOAT, account, minor)], "bulk")

        soon, later = NOW + timedelta(seconds=5), NOW + timedelta(seconds=60)
        await logged.prepare_many([request("h-1", 100)], expires_at=soon)
        await logged.prepare_many([request("h-2", 200), request("h-1", 100)], expires_at=later)
        now[0] = soon  # h-1 is past its expiry, h-2 is not
        batch = [request("h-1", 100), request("h-2", 200), request("n-1", 300)]
        for _ in range(2):  # the second time: nothing new to record
            outcomes = await logged.transfer_many(batch)
            assert isinstance(outcomes[0], TransferExpired)
        assert [(r.event, r.subject, r.data["state"]) for r in sink.records[1:]] == [
            ("transfer.held", "h-1", "prepared"),
            ("transfer.held", "h-2", "prepared"),
            ("transfer.released", "h-1", "expired"),
            ("transfer.committed", "h-2", "executed"),
            ("transfer.executed", "n-1", "executed"),
        ]


@asyncio_test
async def test_held_transfers_executed_many_at_once_are_recorded_as_one_at_a_time(
    database: Database,
) -> None:
    async with open_network(database, TIERS) as net:
        account = (await net.dfsp.customers.accounts_of(net.alice.id))[0].ledger_account_id
        soon, later = NOW + timedelta(seconds=5), NOW + timedelta(seconds=60)
        recorded = {}
        for how in ("one at a time", "many at once"):
            sink, logged, now = await clocked_logged_ledger(net.dfsp.ledger)
            prefix = "one-" if how == "one at a time" else "many-"
            for tid, minor, until in (
                ("late", 100, soon),
                ("held", 200, later),
                ("done", 1, later),
            ):
                await logged.prepare(
                    prefix + tid, [Posting(FLOAT, account, minor)], kind="p2p", expires_at=until
                )
            await logged.execute(prefix + "done")
            start = len(sink.records)
            now[0] = soon  # "late" is past its expiry, "held" is not
            ids = [prefix + tid for tid in ("late", "held", "done", "never")]
            for _ in range(2):  # the second time: nothing new to record
                if how == "one at a time":
                    for tid in ids:
                        with contextlib.suppress(TransferExpired, UnknownTransfer):
                            await logged.execute_if_prepared(tid)
                else:
                    await logged.execute_many_if_prepared(ids)
            recorded[how] = [
                (r.event, r.subject.removeprefix(prefix), r.data) for r in sink.records[start:]
            ]
        assert recorded["many at once"] == recorded["one at a time"]
        assert [
            (event, subject, data["state"]) for event, subject, data in recorded["many at once"]
        ] == [
            ("transfer.released", "late", "expired"),
            ("transfer.committed", "held", "executed"),
        ]
