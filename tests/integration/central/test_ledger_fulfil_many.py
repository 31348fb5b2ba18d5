"""A payee DFSP's batch of fulfilments (``POST /transfers/fulfillments``) through the
typed client, on a running central service (SQLite, and PostgreSQL when
USSDLOOP_TEST_PG is set): each decided as its single fulfil would be, in one
transaction."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from central.client import CentralError
from central.forensic.client import ForensicClient
from central.ledger.client import CentralTransfer, Notification
from central.ledger.wire import fulfilment_text
from tests.integration.central.ledger_support import (
    LedgerNetwork,
    running_ledger,
    transfer,
    usd,
)
from tests.integration.central.test_ledger import refused, two_dfsps
from tests.integration.central.test_ledger_notifications import collect
from tests.integration.conftest import Database
from tests.support import asyncio_test


def outcome(answer: CentralTransfer | CentralError) -> tuple[str, Any]:
    """A transfer's state and id, or a refusal's id and status."""
    if isinstance(answer, CentralError):
        return answer.id, answer.status
    return answer.state, answer.id


async def prepared(
    network: LedgerNetwork, payer: str, payee: str, amount: str, **kw: Any
) -> tuple[str, bytes]:
    request, fulfilment = transfer(payer, payee, amount, **kw)
    await network.dfsps[payer].prepare(request)
    return request.id, fulfilment


@asyncio_test
async def test_each_fulfilment_of_a_batch_is_decided_as_its_single_fulfil_and_refused_in_place(
    database: Database,
) -> None:
    async with running_ledger(database) as network:
        dfsp1, dfsp2 = await two_dfsps(network)
        await network.register("dfsp3")
        paid, paid_with_fee = (
            await prepared(network, "dfsp1", "dfsp2", "10"),
            await prepared(network, "dfsp1", "dfsp2", "4", fee="0.25"),
        )
        lapsed = await prepared(network, "dfsp1", "dfsp2", "3", seconds=5)
        wrong = (await prepared(network, "dfsp1", "dfsp2", "2"))[0], os.urandom(32)
        not_its = await prepared(network, "dfsp1", "dfsp3", "1")
        unknown = str(uuid.uuid4()), os.urandom(32)
        rejected = await prepared(network, "dfsp1", "dfsp2", "6")
        await dfsp2.reject(rejected[0], "no such user")
        network.clock.advance(5)  # lapsed is due by the central clock
        batch = [paid, paid_with_fee, lapsed, wrong, not_its, unknown, rejected]

        first = await dfsp2.fulfil_many(batch)
        expected = [
            ("executed", paid[0]),
            ("executed", paid_with_fee[0]),
            ("UnprocessableEntityError", 422),
            ("UnprocessableEntityError", 422),
            ("ForbiddenError", 403),
            ("NotFoundError", 404),
            ("UnprocessableEntityError", 422),
        ]
        assert [outcome(answer) for answer in first] == expected
        assert "expired" in str(first[2]) and "does not match" in str(first[3])
        assert "already rejected" in str(first[6])
        assert first[0] == await dfsp1.get(paid[0])
        with_fee = first[1]
        assert isinstance(with_fee, CentralTransfer) and with_fee.fulfilment == paid_with_fee[1]
        assert with_fee.scheme_fee == usd("0.25")
        expired = await dfsp1.get(lapsed[0])
        assert (expired.state, expired.reason) == ("expired", "expired")  # committed
        assert (await dfsp1.get(wrong[0])).state == "prepared"
        assert (await dfsp1.get(not_its[0])).state == "prepared"

        again = await dfsp2.fulfil_many(batch)  # the same call again answers the same
        assert [outcome(answer) for answer in again] == expected
        assert again[:2] == first[:2]
        single = [await dfsp2.fulfil(*pair) for pair in (paid, paid_with_fee)]
        assert single == first[:2]
        for pair, answer in zip(batch[3:], first[3:], strict=True):
            alone = await refused(dfsp2.fulfil(*pair))  # refused alone as in the batch
            assert isinstance(answer, CentralError)
            assert (alone.id, alone.status, str(alone)) == (answer.id, answer.status, str(answer))


@asyncio_test
async def test_a_batch_notifies_both_dfsps_in_order_and_logs_each_change(
    database: Database,
) -> None:
    async with running_ledger(database) as network:
        dfsp1, dfsp2 = await two_dfsps(network)
        batch = [await prepared(network, "dfsp1", "dfsp2", str(n)) for n in (1, 2, 3)]
        payer_seen: list[Notification] = []
        payee_seen: list[Notification] = []
        listening = [
            asyncio.ensure_future(collect(dfsp1.subscribe(after=3), payer_seen, 3)),
            asyncio.ensure_future(collect(dfsp2.subscribe(after=3), payee_seen, 3)),
        ]
        await asyncio.sleep(0.3)  # both sockets open
        await dfsp2.fulfil_many(batch)
        await asyncio.wait_for(asyncio.gather(*listening), timeout=10)

        executed = [(4 + n, transfer_id, "executed") for n, (transfer_id, _) in enumerate(batch)]
        for client, seen in ((dfsp1, payer_seen), (dfsp2, payee_seen)):
            assert [(n.seq, n.transfer.id, n.transfer.state) for n in seen] == executed
            assert await client.notifications_after(3) == seen  # pushed as committed
        assert [n.transfer.fulfilment for n in payee_seen] == [f for _, f in batch]
        await dfsp2.fulfil_many(batch)  # answered again: nothing new to notify
        assert await dfsp1.notifications_after(6) == []

        records = await ForensicClient(network.operator_http).records("central")
        logged = [(r.event, r.subject) for r in records if r.event.startswith("transfer.")]
        executions = [("transfer.executed", transfer_id) for transfer_id, _ in batch]
        assert logged[-3:] == executions and logged.count(executions[0]) == 1


@asyncio_test
async def test_positions_after_a_batch_equal_those_after_single_fulfils(
    database: Database,
) -> None:
    async with running_ledger(database) as network:
        await network.register("dfsp1")
        dfsp2 = await network.register("dfsp2")
        await network.register("dfsp3")
        legs = [
            ("dfsp1", "dfsp2", "10", "0.50"),
            ("dfsp3", "dfsp2", "7.25", "0"),
            ("dfsp1", "dfsp2", "0.01", "0.01"),
        ]

        async def positions_after(fulfil_all: Any) -> list[Any]:
            transfers = [
                await prepared(network, a, b, amount, fee=fee) for a, b, amount, fee in legs
            ]
            await fulfil_all(transfers)
            positions = await network.operator.positions()
            await network.operator.settle()  # the next round starts from zero
            return positions

        async def one_by_one(transfers: list[tuple[str, bytes]]) -> None:
            for pair in transfers:
                await dfsp2.fulfil(*pair)

        singles = await positions_after(one_by_one)
        assert await positions_after(dfsp2.fulfil_many) == singles
        assert sum(position.net.minor for position in singles) == 0


@asyncio_test
async def test_a_malformed_batch_is_refused_whole_and_changes_nothing(database: Database) -> None:
    async with running_ledger(database) as network:
        dfsp1 = await network.register("dfsp1")
        await network.register("dfsp2")
        transfer_id, fulfilment = await prepared(network, "dfsp1", "dfsp2", "5")
        good = {"id": transfer_id, "fulfillment": fulfilment_text(fulfilment)}
        many = [{"id": str(uuid.uuid4()), "fulfillment": good["fulfillment"]} for _ in range(101)]
        bodies = {
            "not a list": {"fulfillments": good},
            "no list": {"transfers": [good]},
            "no item": {"fulfillments": []},
            "101 items": {"fulfillments": many},
            "an item not an object": {"fulfillments": [good, "x"]},
            "a bad id": {"fulfillments": [good, {**good, "id": "not-a-uuid"}]},
            "no fulfilment": {"fulfillments": [{"id": transfer_id}]},
            "a fulfilment not text": {"fulfillments": [{**good, "fulfillment": 7}]},
            "a bad fulfilment": {"fulfillments": [{**good, "fulfillment": "not base64!"}]},
            "a short preimage": {"fulfillments": [{**good, "fulfillment": "AAAA"}]},
            "an id twice": {"fulfillments": [good, {**good, "id": transfer_id.upper()}]},
        }
        url = network.service.base_url + "/transfers/fulfillments"
        for case, body in bodies.items():
            async with network.session.post(
                url, json=body, headers=network.headers["dfsp2"]
            ) as response:
                assert response.status == 400, case
                assert (await response.json())["id"] in (
                    "ValidationError",
                    "InvalidUriParameterError",
                ), case
        async with network.session.post(url, json={"fulfillments": [good]}) as response:
            assert response.status in (401, 403)  # no caller
        assert (await dfsp1.get(transfer_id)).state == "prepared"
        assert [n.transfer.state for n in await dfsp1.notifications_after(0)] == ["prepared"]


@contextmanager
def counted_statements(network: LedgerNetwork) -> Iterator[list[str]]:
    """The SQL statements the central service runs meanwhile."""
    engine = network.service.context.sessions.kw["bind"].sync_engine
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


@asyncio_test
async def test_a_batch_runs_as_many_statements_whatever_its_size(database: Database) -> None:
    async with running_ledger(database) as network:
        await network.register("dfsp1")
        dfsp2 = await network.register("dfsp2")
        await dfsp2.currency()  # read once, before counting
        sizes = {}
        for size in (2, 20):
            batch = [await prepared(network, "dfsp1", "dfsp2", "1") for _ in range(size)]
            with counted_statements(network) as statements:
                await dfsp2.fulfil_many(batch)
            sizes[size] = [s.split()[0] for s in statements if "ledger_" in s]
        assert sizes[20] == sizes[2]
        # the transfers locked, the two accounts locked; the transfers, the accounts'
        # notification counts and the notifications written: as one single fulfil does
        assert sorted(sizes[20]) == ["INSERT", "SELECT", "SELECT", "SELECT", "UPDATE", "UPDATE"]


@asyncio_test
async def test_overlapping_batches_and_rejections_decide_each_transfer_once(
    database: Database,
) -> None:
    async with running_ledger(database) as network:
        dfsp1, dfsp2 = await two_dfsps(network)
        batch = [await prepared(network, "dfsp1", "dfsp2", "1") for _ in range(8)]
        answers = await asyncio.gather(
            dfsp2.fulfil_many(batch),
            dfsp2.fulfil_many(batch[::-1]),  # the same transfers, locked in the same order
            *(dfsp1.reject(transfer_id, "cancelled") for transfer_id, _ in batch[::2]),
            return_exceptions=True,
        )
        assert not any(isinstance(answer, BaseException) for answer in answers[:2])
        states = {transfer_id: (await dfsp1.get(transfer_id)).state for transfer_id, _ in batch}
        decisions = [n.transfer for n in await dfsp1.notifications_after(8)]
        assert {t.id: t.state for t in decisions} == states and len(decisions) == len(batch)
        assert {t.state for t in decisions} <= {"executed", "rejected"}
