"""The DFSP's side of payments between DFSPs, many at once, on SQLite always and on
PostgreSQL where USSDLOOP_TEST_PG is set: credits from other DFSPs held together
(``ClearingLedger.hold_credits``), committed together (``commit_many``), and the
customers told of many decided payments together (``ClearingNotices``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from clearing.connector import PayeeRefused
from clearing.payment_requests import PaymentDetails
from dfsp.clearing_ledger import CLEARING_ACCOUNT, PAYER, ClearingLedger, ClearingState
from dfsp.customer_store import CustomerAccountRow, CustomerRow
from dfsp.domain.customers import Customer
from dfsp.domain.fees import FeeSchedule, FeeSource, FeeTable, TransactionType
from dfsp.domain.notices import Notice
from dfsp.domain.transfers import AccountKind as LedgerKind
from dfsp.domain.transfers import (
    InvalidRequest,
    Posting,
    Transfer,
    TransferState,
    UnknownTransfer,
)
from dfsp.interledger import ClearingNotices
from tests.integration.conftest import Database
from tests.integration.dfsp.test_customers import NOW
from tests.integration.dfsp.test_payments import FEES, Network, open_network, usd
from tests.support import asyncio_test

RECEIVER_FEE = usd("0.25")
UNKNOWN = "99999999"


@dataclass
class RecordedScreen:
    """The centre's screening: these numbers may not receive; each call recorded."""

    blocked: dict[str, str]
    calls: list[list[str]] = field(default_factory=list)

    async def __call__(self, user_numbers: Sequence[str]) -> dict[str, str]:
        self.calls.append(list(user_numbers))
        return {n: self.blocked[n] for n in user_numbers if n in self.blocked}


@dataclass
class RecordedPosts:
    """A notice sink that keeps each post apart."""

    posts: list[list[Notice]] = field(default_factory=list)

    async def post(self, notices: Sequence[Notice]) -> None:
        self.posts.append(list(notices))


@dataclass
class Clearing:
    net: Network
    ledger: ClearingLedger
    screen: RecordedScreen
    carol: Customer
    dave: Customer
    erin: Customer

    def credit(
        self, transfer_id: str, payee: Customer | str, amount: str
    ) -> tuple[str, PaymentDetails]:
        number = payee if isinstance(payee, str) else str(payee.user_number)
        details = PaymentDetails(
            transfer_id=transfer_id,
            payee_user_number=number,
            amount=usd(amount),
            expires_at=NOW + timedelta(seconds=10),
            transfer_code="p2p",
            payer_name="Far Payer",
            payer_dfsp="dfsp2",
            invoice_id=None,
        )
        return transfer_id, details

    async def ledger_account(self, customer: Customer) -> str:
        accounts = await self.net.dfsp.customers.accounts_of(customer.id)
        return accounts[0].ledger_account_id


@asynccontextmanager
async def open_clearing(database: Database) -> AsyncIterator[Clearing]:
    """Alice and Erin may receive; Bob is blacklisted here, Carol by the centre's
    screening, Dave has no account to be paid into."""
    async with open_network(database) as net:
        ledger = net.dfsp.ledger
        await ledger.open_account(
            CLEARING_ACCOUNT,
            currency="USD",
            kind=LedgerKind.CLEARING,
            owner="dfsp1",
            allow_negative=True,
        )
        carol, dave, erin = [await net.dfsp.register(n) for n in (3, 4, 5)]
        sessions = ledger._sessions
        async with sessions.begin() as session:
            await session.execute(
                update(CustomerRow).where(CustomerRow.id == net.bob.id).values(blacklisted=True)
            )
            await session.execute(
                update(CustomerAccountRow)
                .where(CustomerAccountRow.id.in_([a.id for a in await accounts(net, dave)]))
                .values(closed=True)
            )
        screen = RecordedScreen({str(carol.user_number): "fraud score 100"})
        fees = FeeTable(
            "USD", {(TransactionType.P2P, FeeSource.RECEIVER): FeeSchedule.flat(RECEIVER_FEE)}
        )
        clearing = ClearingLedger(
            ledger,
            net.dfsp.customers,
            fees,
            fee_account=FEES,
            state=ClearingState(sessions),
            screen=screen,
        )
        yield Clearing(net, clearing, screen, carol, dave, erin)


async def accounts(net: Network, customer: Customer) -> Sequence[Any]:
    return await net.dfsp.customers.accounts_of(customer.id)


def reasons(refusals: Sequence[PayeeRefused | None]) -> list[str | None]:
    return [None if refusal is None else str(refusal) for refusal in refusals]


@asyncio_test
async def test_credits_held_many_at_once_are_refused_in_place_and_held_once(
    database: Database,
) -> None:
    async with open_clearing(database) as c:
        net = c.net
        await net.dfsp.ledger.prepare(  # a twin with other postings, held before
            "twin",
            [Posting(CLEARING_ACCOUNT, await c.ledger_account(net.alice), 1)],
            kind="p2p",
            expires_at=NOW + timedelta(seconds=10),
        )
        credits = [
            c.credit("to-alice", net.alice, "10"),
            c.credit("to-nobody", UNKNOWN, "10"),
            c.credit("to-bob", net.bob, "10"),
            c.credit("to-carol", c.carol, "10"),
            c.credit("to-dave", c.dave, "10"),
            c.credit("to-erin", c.erin, "5"),
            c.credit("too-small", c.erin, "0.25"),
            c.credit("twin", c.erin, "1"),
        ]
        expected = [
            None,
            f"no customer with user number {UNKNOWN}",
            "the payee may not receive: blacklisted by their DFSP",
            "the payee may not receive: fraud score 100",
            "the payee has no account",
            None,
            "the receiver fee takes the whole amount",
            "transfer 'twin' already exists with other content",
        ]
        for attempt in range(2):  # the second time: a retry, nothing held again
            assert reasons(await c.ledger.hold_credits(credits)) == expected
            numbers = [str(p.user_number) for p in (net.alice, c.carol, c.dave, c.erin)]
            assert c.screen.calls == [numbers] * (attempt + 1)  # once, without the refused
            alice = await net.dfsp.ledger.account(await c.ledger_account(net.alice))
            erin = await net.dfsp.ledger.account(await c.ledger_account(c.erin))
            assert (alice.incoming.minor, erin.incoming.minor) == (1 + 975, 475)
        held = await net.dfsp.ledger.transfer("to-erin")
        assert held.state is TransferState.PREPARED
        assert [p.amount_minor for p in held.postings] == [475, 25]
        assert held.expires_at == NOW + timedelta(days=1, seconds=10)
        assert (held.memo or {})["receiver"] == c.erin.id
        for tid in ("to-nobody", "to-bob", "to-carol", "to-dave", "too-small"):
            with pytest.raises(UnknownTransfer):
                await net.dfsp.ledger.transfer(tid)


@asyncio_test
async def test_one_credit_is_held_or_refused_as_a_group_of_one(database: Database) -> None:
    async with open_clearing(database) as c:
        for _ in range(2):  # the second time a retry
            assert await c.ledger.hold_credits([c.credit("to-alice", c.net.alice, "10")]) == [None]
        [screened] = await c.ledger.hold_credits([c.credit("to-carol", c.carol, "10")])
        assert isinstance(screened, PayeeRefused) and "fraud score 100" in str(screened)
        [unknown] = await c.ledger.hold_credits([c.credit("to-nobody", UNKNOWN, "10")])
        assert isinstance(unknown, PayeeRefused) and "no customer" in str(unknown)
        number = str(c.net.alice.user_number)
        assert c.screen.calls == [[number], [number], [str(c.carol.user_number)]]  # not UNKNOWN
        assert await c.ledger.hold_credits([]) == []
        twice = [c.credit("twice", UNKNOWN, "1"), c.credit("twice", c.net.alice, "1")]
        with pytest.raises(InvalidRequest):
            await c.ledger.hold_credits(twice)
        assert len(c.screen.calls) == 3
        with pytest.raises(UnknownTransfer):
            await c.net.dfsp.ledger.transfer("twice")


@asyncio_test
async def test_credits_committed_many_at_once_are_executed_each_unknown_in_place(
    database: Database,
) -> None:
    async with open_clearing(database) as c:
        credits = [c.credit("to-alice", c.net.alice, "10"), c.credit("to-erin", c.erin, "5")]
        assert await c.ledger.hold_credits(credits) == [None, None]
        ids = ["to-alice", "never", "to-erin"]
        for _ in range(2):  # the second time: each as it is
            outcomes = await c.ledger.commit_many(ids)
            assert isinstance(outcomes[1], UnknownTransfer)
            assert [o.state for o in outcomes if isinstance(o, Transfer)] == [
                TransferState.EXECUTED
            ] * 2
        erin = await c.net.dfsp.ledger.balance(await c.ledger_account(c.erin))
        assert erin == (usd("1004.75"), usd("1004.75"))


@asyncio_test
async def test_the_customers_of_many_decided_payments_are_told_as_one_at_a_time(
    database: Database,
) -> None:
    async with open_clearing(database) as c:
        ledger, net = c.net.dfsp.ledger, c.net
        credits = [c.credit("to-alice", net.alice, "10"), c.credit("to-erin", c.erin, "5")]
        assert await c.ledger.hold_credits(credits) == [None, None]
        alice_account = await c.ledger_account(net.alice)
        for tid, memo in (
            ("sent", {}),
            ("failed", {}),
            ("bulk-row", {"bulk": True}),
        ):
            await ledger.prepare(
                tid,
                [Posting(alice_account, CLEARING_ACCOUNT, 300), Posting(alice_account, FEES, 7)],
                kind="p2p",
                expires_at=NOW + timedelta(seconds=10),
                memo={
                    "clearing": PAYER,
                    "sender": net.alice.id,
                    "receiver_name": "Far Away",
                    "payee_dfsp": "dfsp2",
                    **memo,
                },
            )
        await c.ledger.commit_many(["to-alice", "to-erin", "sent", "bulk-row"])
        await ledger.reject("failed", "the centre refused it")
        decided = [
            ("to-alice", "executed", await ledger.transfer("to-alice")),
            ("to-erin", "executed", None),  # read by ClearingNotices
            ("sent", "executed", await ledger.transfer("sent")),
            ("failed", "rejected", None),
            ("bulk-row", "executed", None),
        ]
        one_at_a_time, at_once = RecordedPosts(), RecordedPosts()
        for payment in decided:
            await ClearingNotices(ledger, one_at_a_time)([payment])
        await ClearingNotices(ledger, at_once)(decided)
        assert at_once.posts == [[n for post in one_at_a_time.posts for n in post]]
        told = {n.key: (n.customer_id, n.message, dict(n.args)) for n in at_once.posts[0]}
        alice_available = "1003.61 USD"  # 1000 + 9.75 - 3.07 (sent) - 3.07 (bulk row)
        assert told == {
            "transfer:to-alice:receiver": (
                net.alice.id,
                "received",
                {"amount": "9.75 USD", "sender": "Far Payer", "balance": alice_available},
            ),
            "transfer:to-erin:receiver": (
                c.erin.id,
                "received",
                {"amount": "4.75 USD", "sender": "Far Payer", "balance": "1004.75 USD"},
            ),
            "transfer:sent:sender": (
                net.alice.id,
                "sent",
                {
                    "amount": "3 USD",
                    "receiver": "Far Away",
                    "fee": "0.07 USD",
                    "balance": alice_available,
                },
            ),
            "transfer:failed:failed": (
                net.alice.id,
                "send_failed",
                {"amount": "3 USD", "receiver": "Far Away"},
            ),
        }
        await ClearingNotices(ledger, at_once)([])
        assert len(at_once.posts) == 1  # nothing to tell: nothing posted
