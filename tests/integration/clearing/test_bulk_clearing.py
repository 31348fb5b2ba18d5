"""A bulk batch's payments to both DFSPs in one ``Payments.send_bulk`` call: the payees
here paid in one ledger transaction, those at the other DFSP found, priced and asked
for payment requests in one call to each service, held together and each cleared
through the centre; every refusal in its row's place, and the three ledgers agree."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from central.fraud.client import FraudClient
from dfsp.domain.payments import PaymentOrder, SendResult, UnknownReceiver
from dfsp.interledger import ClearingUnavailable, TransferNotAllowed
from dfsp.payments import Payments
from tests.integration.clearing.support import (
    EXECUTED,
    REJECTED,
    Network,
    central_client,
    clearing_network,
    parties,
    usd,
)
from tests.integration.conftest import Database
from tests.support import asyncio_test, eventually, until


def payments_of(network: Network) -> Payments:
    payments = network.payer.service.payments
    assert payments is not None
    return payments


def order(user_number: str, amount: str) -> PaymentOrder:
    return PaymentOrder(str(uuid.uuid4()), user_number, usd(amount))


@asyncio_test
async def test_bulk_payments_to_both_dfsps_are_paid_together_and_the_ledgers_agree(
    tmp_path: Path, database: Database
) -> None:
    async with clearing_network(tmp_path, database) as network:
        hamim, kani = await parties(network)
        bob = await network.customer(network.payer, "256700000703", "Bob", "Here")
        lena = await network.customer(network.payee, "256700000704", "Lena", "Barred")
        await FraudClient(network.operator_http).blacklist(lena.user_number, "stolen identity")
        orders = [
            order(kani.user_number, "25"),
            order(bob.user_number, "10"),
            order("99999999", "1"),
            order(lena.user_number, "5"),
            order(kani.user_number, "5"),
        ]
        outcomes = await payments_of(network).send_bulk(
            hamim.customer_id, str(hamim.primary_account_id), orders
        )
        assert [type(o) for o in outcomes] == [
            SendResult,
            SendResult,
            UnknownReceiver,
            TransferNotAllowed,
            SendResult,
        ]
        paid = [o for o in outcomes if isinstance(o, SendResult)]
        assert {o.status.value for o in paid} == {EXECUTED}
        assert [o.payer_fees for o in paid] == [usd("0.50"), usd("0"), usd("0.50")]  # scheme
        remote = [orders[0].transfer_id, orders[4].transfer_id]
        await until(lambda: network.payee.told(kani).count("received") == 2)
        await network.assert_agree({tid: (EXECUTED, EXECUTED, EXECUTED) for tid in remote})
        assert network.payer.service.ledger is not None
        held = await network.payer.service.ledger.transfer(remote[0])
        assert held.kind == "bulk"  # not a p2p payment: the payer's limits leave it out
        assert await network.payee.balance(kani) == usd("30")
        assert await network.payer.balance(bob) == usd("1010")
        assert await network.payer.balance(hamim) == usd("959")  # 25.50 + 10 + 5.50
        assert network.payer.told(hamim) == []  # a bulk payer has the batch's report


@asyncio_test
async def test_an_outcome_that_comes_before_the_batch_prepare_answers_is_not_missed(
    tmp_path: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The centre executes (and the payer commits) before the answer to the batch of
    # prepares is read: each send must find its outcome, not wait and poll for it.
    async with clearing_network(tmp_path, database) as network:
        hamim, kani = await parties(network)
        orders = [order(kani.user_number, "2"), order(kani.user_number, "3")]
        central = central_client(network, "dfsp1")
        prepare_many = central.prepare_many

        async def answered_late(requests: Any) -> Any:
            answers = await prepare_many(requests)

            async def committed() -> bool:
                states = [await network.payer.state_of(o.transfer_id) for o in orders]
                return states == [EXECUTED, EXECUTED]

            await eventually(committed)
            return answers

        monkeypatch.setattr(central, "prepare_many", answered_late)
        connector, polled = network.payer.connector, []
        poll_once = connector._poll_once

        async def recorded_poll(transfer_id: str) -> str:
            polled.append(transfer_id)
            return await poll_once(transfer_id)

        monkeypatch.setattr(connector, "_poll_once", recorded_poll)
        outcomes = await payments_of(network).send_bulk(
            hamim.customer_id, str(hamim.primary_account_id), orders
        )
        assert [o.status.value for o in outcomes if isinstance(o, SendResult)] == [EXECUTED] * 2
        assert polled == []  # the outcomes were waited for before the prepares went


@asyncio_test
async def test_a_burst_is_cleared_in_groups_and_a_payee_refused_in_flight_is_rejected_alone(
    tmp_path: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The payee's DFSP takes the burst of prepares in groups (credits held together,
    # fulfilled in one call each); Lena, blacklisted once her payment request was
    # issued, is refused by her DFSP at the centre while the group around her is paid.
    async with clearing_network(tmp_path, database) as network:
        hamim, kani = await parties(network)
        lena = await network.customer(network.payee, "256700000704", "Lena", "Barred")
        orders = [order(kani.user_number, "1") for _ in range(12)]
        orders.insert(5, order(lena.user_number, "5"))
        payer_central, payee_central = (
            central_client(network, "dfsp1"),
            central_client(network, "dfsp2"),
        )
        prepare_many, fulfil_many = payer_central.prepare_many, payee_central.fulfil_many
        fulfilled: list[int] = []

        async def lena_blacklisted_on_the_way(requests: Any) -> Any:
            await FraudClient(network.operator_http).blacklist(lena.user_number, "stolen identity")
            return await prepare_many(requests)

        async def counted(fulfilments: Any) -> Any:
            fulfilled.append(len(fulfilments))
            return await fulfil_many(fulfilments)

        monkeypatch.setattr(payer_central, "prepare_many", lena_blacklisted_on_the_way)
        monkeypatch.setattr(payee_central, "fulfil_many", counted)
        outcomes = await payments_of(network).send_bulk(
            hamim.customer_id, str(hamim.primary_account_id), orders
        )
        states = [o.status.value for o in outcomes if isinstance(o, SendResult)]
        assert states == [EXECUTED] * 5 + [REJECTED] + [EXECUTED] * 7
        assert sum(fulfilled) == 12 and len(fulfilled) < 12  # in groups, Lena's not asked
        expected = {o.transfer_id: (EXECUTED, EXECUTED, EXECUTED) for o in orders}
        expected[orders[5].transfer_id] = (REJECTED, REJECTED, None)
        await network.assert_agree(expected)
        await until(lambda: network.payee.told(kani).count("received") == 12)
        assert await network.payee.balance(kani) == usd("12")
        assert await network.payer.balance(hamim) == usd("982")  # 12 x (1 + 0.50 scheme fee)


@asyncio_test
async def test_payees_at_a_dfsp_that_cannot_be_reached_wait_while_the_others_are_paid(
    tmp_path: Path, database: Database
) -> None:
    async with clearing_network(tmp_path, database) as network:
        hamim, kani = await parties(network)
        bob = await network.customer(network.payer, "256700000703", "Bob", "Here")
        await network.payee.stop()
        orders = [order(kani.user_number, "25"), order(bob.user_number, "10")]
        outcomes = await payments_of(network).send_bulk(
            hamim.customer_id, str(hamim.primary_account_id), orders
        )
        assert isinstance(outcomes[0], ClearingUnavailable)
        assert isinstance(outcomes[1], SendResult) and outcomes[1].status.value == EXECUTED
        assert await network.payer.state_of(orders[0].transfer_id) is None  # nothing held
        assert await network.payer.balance(hamim) == usd("990")  # no bulk fee here


@asyncio_test
async def test_the_batch_of_payment_requests_refuses_bad_input_and_names_unknown_payees(
    tmp_path: Path, database: Database
) -> None:
    async with clearing_network(tmp_path, database) as network:
        _, kani = await parties(network)
        url = f"{network.payee.service.base_url}/interledger/payment-requests/batch"
        one = {"transferId": str(uuid.uuid4()), "userNumber": kani.user_number}
        one["amount"] = {"amount": "5", "currency": "USD"}  # type: ignore[assignment]
        base: dict[str, Any] = {"transferCode": "p2p", "payerName": "A B", "payerDfsp": "dfsp1"}
        bad: list[dict[str, Any]] = [
            base | {"requests": []},
            base | {"requests": "all"},
            base | {"requests": [one] * 101},
            base | {"requests": [{"transferId": "t", "amount": one["amount"]}]},
            base | {"requests": [one], "transferCode": "gift"},
            {"requests": [one]},
        ]
        for body in bad:
            async with network.http.post(url, json=body) as response:
                assert response.status == 400, body
        unknown = dict(one, userNumber="99999999")
        async with network.http.post(url, json=base | {"requests": [one, unknown]}) as response:
            assert response.status == 201
            answers = (await response.json())["requests"]
        assert answers[0]["name"] == "Kani Moe" and answers[0]["payeeFee"]["amount"] == "0.00"
        assert answers[1] == {
            "transferId": one["transferId"],
            "error": {
                "id": "UnknownReceiver",
                "message": "no customer with user number '99999999'",
            },
        }
