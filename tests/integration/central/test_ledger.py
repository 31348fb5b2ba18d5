"""The central ledger through its typed client, on a running central service (SQLite,
and PostgreSQL when USSDLOOP_TEST_PG is set)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random

import pytest

from central.client import CentralError
from central.ledger.client import LedgerClient
from tests.integration.central.ledger_support import (
    LedgerNetwork,
    running_ledger,
    transfer,
    usd,
)
from tests.integration.conftest import Database
from tests.support import asyncio_test
from ussdloop.forensic import ForensicUnavailable


async def refused(call: object) -> CentralError:
    with pytest.raises(CentralError) as error:
        await call  # type: ignore[misc]
    return error.value


async def two_dfsps(network: LedgerNetwork) -> tuple[LedgerClient, LedgerClient]:
    return await network.register("dfsp1"), await network.register("dfsp2")


@asyncio_test
async def test_a_fulfilled_transfer_executes_and_moves_the_positions(database: Database) -> None:
    async with running_ledger(database) as network:
        dfsp1, dfsp2 = await two_dfsps(network)
        request, fulfilment = transfer("dfsp1", "dfsp2", "10.00", "0.50")
        prepared = await dfsp1.prepare(request)
        assert (prepared.state, prepared.amount, prepared.scheme_fee) == (
            "prepared",
            usd("10.00"),
            usd("0.50"),
        )
        assert prepared.condition == request.condition and prepared.fulfilment is None
        assert await dfsp2.fulfilment(request.id) is None
        executed = await dfsp2.fulfil(request.id, fulfilment)
        assert (executed.state, executed.fulfilment) == ("executed", fulfilment)
        assert await dfsp1.fulfilment(request.id) == fulfilment
        again = await dfsp2.fulfil(request.id, fulfilment)  # a retry answers the same
        assert again == executed

        positions = {p.account: p for p in await network.operator.positions()}
        assert positions["dfsp1"].payments == usd("10.50") and positions["dfsp1"].net == usd(
            "-10.50"
        )
        assert positions["dfsp2"].receipts == usd("10.00") and positions["dfsp2"].net == usd(
            "10.00"
        )
        assert positions["central-fees"].net == usd("0.50")
        assert sum(p.net.minor for p in positions.values()) == 0
        assert (await dfsp2.position("dfsp2")).net == usd("10.00")
        assert (await refused(dfsp2.position("dfsp1"))).status == 403
        assert (await refused(dfsp1.positions())).status == 403


@asyncio_test
async def test_prepare_is_idempotent_on_the_id(database: Database) -> None:
    async with running_ledger(database) as network:
        dfsp1, _ = await two_dfsps(network)
        request, _ = transfer("dfsp1", "dfsp2", "5")
        first = await dfsp1.prepare(request)
        assert await dfsp1.prepare(request) == first  # same body: 200, the same transfer
        other, _ = transfer("dfsp1", "dfsp2", "6")
        conflict = await refused(dfsp1.prepare(type(other)(**{**other.__dict__, "id": request.id})))
        assert (conflict.status, conflict.id) == (409, "AlreadyExistsError")
        async with network.session.put(
            f"{network.service.base_url}/transfers/{request.id}",
            json={},
            headers=network.headers["dfsp1"],
        ) as response:
            assert response.status == 400


@asyncio_test
async def test_a_wrong_fulfilment_is_refused_and_the_transfer_stays_prepared(
    database: Database,
) -> None:
    async with running_ledger(database) as network:
        dfsp1, dfsp2 = await two_dfsps(network)
        request, _ = transfer("dfsp1", "dfsp2", "5")
        await dfsp1.prepare(request)
        wrong = await refused(dfsp2.fulfil(request.id, os.urandom(32)))
        assert (wrong.status, wrong.id) == (422, "UnprocessableEntityError")
        assert (await dfsp2.get(request.id)).state == "prepared"
        dfsp3 = await network.register("dfsp3")
        assert (await refused(dfsp3.get(request.id))).status == 403
        assert (await network.operator.get(request.id)).state == "prepared"


@asyncio_test
async def test_prepares_the_centre_cannot_accept_are_refused(database: Database) -> None:
    async with running_ledger(database) as network:
        dfsp1, dfsp2 = await two_dfsps(network)
        past, _ = transfer("dfsp1", "dfsp2", "5", seconds=-1)
        assert (await refused(dfsp1.prepare(past))).id == "UnprocessableEntityError"
        unknown, _ = transfer("dfsp1", "dfsp9", "5")
        assert (await refused(dfsp1.prepare(unknown))).status == 422
        not_mine, _ = transfer("dfsp1", "dfsp2", "5")
        assert (await refused(dfsp2.prepare(not_mine))).status == 403
        zero, _ = transfer("dfsp1", "dfsp2", "0")
        assert (await refused(dfsp1.prepare(zero))).status == 422

        request, _ = transfer("dfsp1", "dfsp2", "5")
        url = f"{network.service.base_url}/transfers/{request.id}"
        headers = network.headers["dfsp1"]  # raw bodies the client cannot write
        body = {
            "id": request.id,
            "debits": [{"account": "dfsp1", "amount": "5.00"}],
            "credits": [{"account": "dfsp2", "amount": "4.00"}],
            "execution_condition": "ni:///sha-256;" + "A" * 43 + "?fpt=preimage-sha-256&cost=32",
            "expires_at": (request.expires_at).isoformat(),
        }
        async with network.session.put(url, json=body, headers=headers) as response:
            assert (response.status, (await response.json())["id"]) == (
                422,
                "UnprocessableEntityError",
            )
        body["credits"] = [{"account": "dfsp2", "amount": "5.00"}]
        body["execution_condition"] = "ni:///sha-256;" + "A" * 43 + "?fpt=rsa-sha-256&cost=32"
        async with network.session.put(url, json=body, headers=headers) as response:
            assert (response.status, (await response.json())["id"]) == (
                422,
                "UnsupportedCryptoTypeError",
            )
        async with network.session.put(
            f"{network.service.base_url}/transfers/not-a-uuid", json=body, headers=headers
        ) as response:
            assert (response.status, (await response.json())["id"]) == (
                400,
                "InvalidUriParameterError",
            )


@asyncio_test
async def test_the_central_clock_expires_a_transfer_and_refuses_a_late_fulfilment(
    database: Database,
) -> None:
    async with running_ledger(database) as network:
        dfsp1, dfsp2 = await two_dfsps(network)
        swept, _ = transfer("dfsp1", "dfsp2", "5", seconds=10)
        late, fulfilment = transfer("dfsp1", "dfsp2", "7", seconds=10)
        await dfsp1.prepare(swept)
        await dfsp1.prepare(late)
        network.clock.advance(9)
        assert (await dfsp1.get(swept.id)).state == "prepared"
        network.clock.advance(1)  # expires_at reached by the central clock

        async def swept_expired() -> bool:
            seen = await dfsp1.notifications_after(0)
            return any(n.transfer.id == swept.id and n.transfer.state == "expired" for n in seen)

        for _ in range(50):  # the sweep, not an access to the transfer, expires it
            if await swept_expired():
                break
            await asyncio.sleep(0.1)
        assert await swept_expired()
        too_late = await refused(dfsp2.fulfil(late.id, fulfilment))
        assert (too_late.status, too_late.id) == (422, "UnprocessableEntityError")
        assert "expired" in str(too_late)
        expired = await dfsp1.get(late.id)
        assert (expired.state, expired.reason, expired.fulfilment) == ("expired", "expired", None)
        assert (await network.operator.position("dfsp1")).payments == usd("0")


@asyncio_test
async def test_the_payee_rejects_a_prepared_transfer(database: Database) -> None:
    async with running_ledger(database) as network:
        dfsp1, dfsp2 = await two_dfsps(network)
        request, fulfilment = transfer("dfsp1", "dfsp2", "5")
        await dfsp1.prepare(request)
        rejected = await dfsp2.reject(request.id, "payee unknown")
        assert (rejected.state, rejected.reason) == ("rejected", "payee unknown")
        assert await dfsp2.reject(request.id, "again") == rejected  # once; a retry answers it
        assert (await refused(dfsp2.fulfil(request.id, fulfilment))).status == 422
        executed, fulfilment = transfer("dfsp1", "dfsp2", "5")
        await dfsp1.prepare(executed)
        await dfsp2.fulfil(executed.id, fulfilment)
        assert (await refused(dfsp1.reject(executed.id, "too late"))).status == 422


@asyncio_test
async def test_concurrent_prepares_stay_within_the_net_debit_cap(database: Database) -> None:
    async with running_ledger(database) as network:
        dfsp1 = await network.register("dfsp1", net_debit_cap="100")
        dfsp2 = await network.register("dfsp2")
        requests = [transfer("dfsp1", "dfsp2", "30")[0] for _ in range(8)]
        outcomes = await asyncio.gather(
            *(dfsp1.prepare(r) for r in requests), return_exceptions=True
        )
        prepared = [o for o in outcomes if not isinstance(o, BaseException)]
        refusals = [o for o in outcomes if isinstance(o, CentralError)]
        assert len(prepared) == 3 and len(refusals) == 5
        assert {(r.status, r.id) for r in refusals} == {(422, "NetDebitCapExceededError")}
        assert "10.00" in str(refusals[0])  # the room left
        # Receipts make room: dfsp2 pays dfsp1 back 50, executed.
        back, fulfilment = transfer("dfsp2", "dfsp1", "50")
        await dfsp2.prepare(back)
        await dfsp1.fulfil(back.id, fulfilment)
        assert (await dfsp1.prepare(transfer("dfsp1", "dfsp2", "60")[0])).state == "prepared"
        over = await refused(dfsp1.prepare(transfer("dfsp1", "dfsp2", "0.01")[0]))
        assert over.id == "NetDebitCapExceededError"


@asyncio_test
async def test_a_batch_of_prepares_is_checked_one_by_one_in_one_transaction(
    database: Database,
) -> None:
    async with running_ledger(database) as network:
        dfsp1 = await network.register("dfsp1", net_debit_cap="100")
        await network.register("dfsp2")
        await network.register("dfsp3")
        await network.participants.pause("dfsp3")
        first, fulfilment = transfer("dfsp1", "dfsp2", "40", "0.50")
        batch = [
            first,
            transfer("dfsp1", "dfsp2", "60")[0],  # 100.50 in all: over the cap
            transfer("dfsp1", "dfsp2", "59.50")[0],  # exactly the cap
            transfer("dfsp1", "dfsp3", "1")[0],  # a paused payee
            transfer("dfsp1", "dfsp2", "1", seconds=-1)[0],  # expired
        ]
        for _ in range(2):  # the second time: the same batch again, answered the same
            outcomes = await dfsp1.prepare_many(batch)
            states = [o.state if not isinstance(o, CentralError) else o.id for o in outcomes]
            assert states == [
                "prepared",
                "NetDebitCapExceededError",
                "prepared",
                "UnprocessableEntityError",
                "UnprocessableEntityError",
            ]
        assert (await network.operator.get(batch[2].id)).state == "prepared"
        assert (await dfsp1.fulfil(first.id, fulfilment)).state == "executed"
        other = [dataclasses.replace(first, amount=usd("41"))]
        (conflict,) = await dfsp1.prepare_many(other)  # the same id, other content
        assert isinstance(conflict, CentralError) and conflict.status == 409
        http = network.service.base_url + "/transfers/batch"
        headers = network.headers["dfsp1"]
        for body in ({"transfers": []}, {"transfers": "all"}, {"transfers": [{"id": "x"}]}):
            async with network.session.post(http, json=body, headers=headers) as response:
                assert response.status == 400, body
        dfsp2 = network.dfsps["dfsp2"]
        assert (await refused(dfsp2.prepare_many([batch[2]]))).status == 403  # not its debit


@asyncio_test
async def test_pausing_a_dfsp_rejects_its_pending_transfers(database: Database) -> None:
    async with running_ledger(database) as network:
        dfsp1, dfsp2 = await two_dfsps(network)
        dfsp3 = await network.register("dfsp3")
        paying, _ = transfer("dfsp1", "dfsp2", "5")
        paid, _ = transfer("dfsp2", "dfsp1", "5")
        others, _ = transfer("dfsp2", "dfsp3", "5")
        for client, request in ((dfsp1, paying), (dfsp2, paid), (dfsp2, others)):
            await client.prepare(request)
        await network.participants.pause("dfsp1")
        for request in (paying, paid):
            rejected = await dfsp2.get(request.id)
            assert (rejected.state, rejected.reason) == ("rejected", "dfsp paused")
        assert (await dfsp3.get(others.id)).state == "prepared"
        refusal = await refused(dfsp1.prepare(transfer("dfsp1", "dfsp2", "1")[0]))
        assert (refusal.status, refusal.id) == (403, "ForbiddenError")
        to_paused = await refused(dfsp2.prepare(transfer("dfsp2", "dfsp1", "1")[0]))
        assert to_paused.status == 422


@asyncio_test
async def test_a_settlement_closes_the_window_with_nets_summing_to_zero(
    database: Database,
) -> None:
    async with running_ledger(database) as network:
        dfsp1, _ = await two_dfsps(network)
        for payer, payee, amount in (("dfsp1", "dfsp2", "10"), ("dfsp2", "dfsp1", "3")):
            request, fulfilment = transfer(payer, payee, amount, "0.25")
            await network.dfsps[payer].prepare(request)
            await network.dfsps[payee].fulfil(request.id, fulfilment)
        pending, _ = transfer("dfsp1", "dfsp2", "1")
        await dfsp1.prepare(pending)
        settlement = await network.operator.settle()
        assert settlement.transfers == 2
        nets = {line.account: line.net for line in settlement.positions}
        assert nets == {"central-fees": usd("0.50"), "dfsp1": usd("-7.25"), "dfsp2": usd("6.75")}
        assert sum(net.minor for net in nets.values()) == 0
        assert all(p.net.minor == 0 for p in await network.operator.positions())
        assert await network.operator.settlement(settlement.id) == settlement
        assert (await network.operator.settle()).transfers == 0
        assert (await refused(dfsp1.settle())).status == 403


@asyncio_test
async def test_every_account_sums_to_zero_after_random_operations(database: Database) -> None:
    async with running_ledger(database) as network:
        names = ["dfsp1", "dfsp2", "dfsp3"]
        for name in names:
            await network.register(name, net_debit_cap="200")
        chance = random.Random(20261125)
        for _ in range(40):
            payer, payee = chance.sample(names, 2)
            amount = f"{chance.randint(1, 9000) / 100:.2f}"
            fee = chance.choice(["0", "0.10", "1.00"])
            request, fulfilment = transfer(payer, payee, amount, fee, now=network.clock.now)
            try:
                await network.dfsps[payer].prepare(request)
            except CentralError as refusal:
                assert refusal.id == "NetDebitCapExceededError"
                continue
            action = chance.choice(["fulfil", "reject", "expire", "leave"])
            if action == "fulfil":
                await network.dfsps[payee].fulfil(request.id, fulfilment)
            elif action == "reject":
                await network.dfsps[payee].reject(request.id, "no")
            elif action == "expire":
                network.clock.advance(31)
            if chance.random() < 0.1:
                await network.operator.settle()
            positions = await network.operator.positions()
            assert sum(p.net.minor for p in positions) == 0
            for position in positions:
                assert position.net == position.receipts - position.payments


@asyncio_test
async def test_concurrent_fulfil_and_reject_decide_a_transfer_once(database: Database) -> None:
    async with running_ledger(database) as network:
        dfsp1, dfsp2 = await two_dfsps(network)
        pairs = [transfer("dfsp1", "dfsp2", "1") for _ in range(6)]
        for request, _ in pairs:
            await dfsp1.prepare(request)
        outcomes = await asyncio.gather(
            *(dfsp2.fulfil(r.id, f) for r, f in pairs),
            *(dfsp1.reject(r.id, "cancelled") for r, _ in pairs),
            return_exceptions=True,
        )
        won = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(won) == len(pairs)  # one decision per transfer; the other is refused
        assert all(
            isinstance(o, CentralError) and o.status == 422 for o in outcomes if o not in won
        )
        states = [(await dfsp1.get(r.id)).state for r, _ in pairs]
        decisions = [
            n for n in await dfsp1.notifications_after(0) if n.transfer.state != "prepared"
        ]
        assert sorted(n.transfer.id for n in decisions) == sorted(r.id for r, _ in pairs)
        assert {n.transfer.id: n.transfer.state for n in decisions} == {
            r.id: s for (r, _), s in zip(pairs, states, strict=True)
        }


class ChainDown:
    """Central's forensic chain out of reach (``central.component.EventLog``)."""

    available = False

    async def check(self) -> bool:
        return False

    async def write(self, event: str, subject: str = "", data: object = None) -> object:
        raise ForensicUnavailable("the chain is down")


@asyncio_test
async def test_while_the_central_chain_is_down_a_retried_prepare_is_answered_a_new_one_not(
    database: Database,
) -> None:
    async with running_ledger(database) as network:
        dfsp1 = await network.register("dfsp1")
        await network.register("dfsp2")
        paid, _ = transfer("dfsp1", "dfsp2", "10")
        await dfsp1.prepare(paid)
        ledger = network.service.components["ledger"].services["ledger"]
        ledger._forensic = ChainDown()  # type: ignore[attr-defined]
        assert (await dfsp1.prepare(paid)).state == "prepared"
        with pytest.raises(CentralError) as refused:
            await dfsp1.prepare(transfer("dfsp1", "dfsp2", "3")[0])
        assert refused.value.status == 503
