"""The ledger's notifications: pushed over a DFSP's WebSocket in order and at most once,
and pulled after a reconnect (SQLite, and PostgreSQL when USSDLOOP_TEST_PG is set)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from central.ledger.client import Notification
from central.ledger.notifications import _Listener
from central.ledger.service import LedgerNotice
from tests.integration.central.ledger_support import running_ledger, transfer
from tests.integration.conftest import Database
from tests.support import asyncio_test, until


async def collect(
    stream: AsyncIterator[Notification], into: list[Notification], count: int
) -> None:
    async for notification in stream:
        into.append(notification)
        if len(into) == count:
            return


@asyncio_test
async def test_state_changes_reach_both_dfsps_in_order_and_once(database: Database) -> None:
    async with running_ledger(database) as network:
        dfsp1 = await network.register("dfsp1")
        dfsp2 = await network.register("dfsp2")
        payer_seen: list[Notification] = []
        payee_seen: list[Notification] = []
        listening = [
            asyncio.ensure_future(collect(dfsp1.subscribe(), payer_seen, 6)),
            asyncio.ensure_future(collect(dfsp2.subscribe(), payee_seen, 6)),
        ]
        await asyncio.sleep(0.3)  # both sockets open
        paid, fulfilment = transfer("dfsp1", "dfsp2", "10", "0.50")
        await dfsp1.prepare(paid)
        await dfsp1.prepare(paid)  # a retry changes nothing: no notification
        await dfsp2.fulfil(paid.id, fulfilment)
        await dfsp2.fulfil(paid.id, fulfilment)
        refused, _ = transfer("dfsp1", "dfsp2", "3")
        await dfsp1.prepare(refused)
        await dfsp2.reject(refused.id, "no such user")
        lapsed, _ = transfer("dfsp2", "dfsp1", "1", seconds=5)
        await dfsp2.prepare(lapsed)
        network.clock.advance(5)  # the sweep expires it
        await asyncio.wait_for(asyncio.gather(*listening), timeout=10)

        expected = [
            (paid.id, "prepared"),
            (paid.id, "executed"),
            (refused.id, "prepared"),
            (refused.id, "rejected"),
            (lapsed.id, "prepared"),
            (lapsed.id, "expired"),
        ]
        for seen in (payer_seen, payee_seen):
            assert [(n.transfer.id, n.transfer.state) for n in seen] == expected
            assert [n.seq for n in seen] == [1, 2, 3, 4, 5, 6]
        assert payee_seen[1].transfer.fulfilment == fulfilment
        assert payer_seen[3].transfer.reason == "no such user"

        pulled = await dfsp1.notifications_after(0)
        assert pulled == payer_seen  # the same transfer JSON, pushed or pulled
        assert await dfsp1.notifications_after(6) == []
        assert len(await dfsp1.notifications_after(0, limit=2)) == 2


@asyncio_test
async def test_after_a_reconnect_the_dfsp_pulls_what_it_missed(database: Database) -> None:
    async with running_ledger(database) as network:
        dfsp1 = await network.register("dfsp1")
        dfsp2 = await network.register("dfsp2")
        first: list[Notification] = []
        listening = asyncio.ensure_future(collect(dfsp2.subscribe(), first, 1))
        await asyncio.sleep(0.3)
        before, fulfilment = transfer("dfsp1", "dfsp2", "2")
        await dfsp1.prepare(before)
        await asyncio.wait_for(listening, timeout=10)  # then the socket is closed
        last_seen = first[-1].seq

        await dfsp2.fulfil(before.id, fulfilment)  # while disconnected
        missed, _ = transfer("dfsp1", "dfsp2", "4")
        await dfsp1.prepare(missed)

        again: list[Notification] = []
        listening = asyncio.ensure_future(collect(dfsp2.subscribe(), again, 1))
        await asyncio.sleep(0.3)
        pulled = await dfsp2.notifications_after(last_seen)
        assert [(n.transfer.id, n.transfer.state) for n in pulled] == [
            (before.id, "executed"),
            (missed.id, "prepared"),
        ]
        await dfsp2.reject(missed.id, "closed")  # new changes come over the new socket
        await asyncio.wait_for(listening, timeout=10)
        assert [(n.seq, n.transfer.state) for n in again] == [(last_seen + 3, "rejected")]


@asyncio_test
async def test_an_open_socket_does_not_hold_up_stopping_the_service(database: Database) -> None:
    loop = asyncio.get_running_loop()
    async with running_ledger(database) as network:
        dfsp1 = await network.register("dfsp1")
        listening = asyncio.ensure_future(collect(dfsp1.subscribe(), [], 1))
        await asyncio.sleep(0.3)
        stopping = loop.time()
    assert loop.time() - stopping < 5
    await asyncio.wait_for(listening, timeout=5)  # the socket ended with the service


@asyncio_test
async def test_a_subscriber_that_reconnects_does_not_hold_up_stopping_the_service(
    database: Database,
) -> None:
    """A DFSP's connector reconnects as soon as its socket closes: the centre must still
    stop at once (its sockets end before the server waits for open requests)."""
    loop = asyncio.get_running_loop()
    async with running_ledger(database) as network:
        dfsp1 = await network.register("dfsp1")

        async def keep_subscribed() -> None:
            while True:
                try:
                    async for _ in dfsp1.subscribe():
                        pass
                except Exception:  # the service is going away: try again, as a DFSP does
                    await asyncio.sleep(0.01)

        subscriber = asyncio.ensure_future(keep_subscribed())
        sockets = network.service.components["ledger"].services["sockets"]
        await until(lambda: sockets.count("dfsp1") == 1)  # type: ignore[attr-defined]
        stopping = loop.time()
        await network.service.stop()
        stopped = loop.time() - stopping
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)
    assert stopped < 5


def test_a_socket_sends_what_it_was_handed_only_when_it_follows_what_it_sent() -> None:
    listener = _Listener()

    def hand(*seqs: int) -> None:
        for seq in seqs:
            listener.hand(LedgerNotice("dfsp1", seq, {"n": seq}))

    hand(6)
    assert listener.following(4) is None  # 5 is missing: the rows are read
    hand(5, 6)
    assert listener.following(4) == [(5, {"n": 5}), (6, {"n": 6})]
    hand(5)
    assert listener.following(6) == []  # sent already (read with 6): nothing to send
    hand(8, 7)
    assert listener.following(6) is None  # out of order: the rows are read
