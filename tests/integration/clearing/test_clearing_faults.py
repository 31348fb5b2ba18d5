"""Acceptance (central and clearing, 2): every transfer state of SPEC section 3, each
produced by a fault, after which the payer DFSP's ledger, the central ledger and the
payee DFSP's ledger agree and nothing is held anywhere.

Hamim (dfsp1, 1000 USD) sends Kani (dfsp2) 25 USD: a 1 USD local fee and a 0.50 USD
scheme fee, 26.50 USD in all. A hold released in a DFSP's ledger is ``rejected`` there
(the reason says what the centre decided)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from central.client import ParticipantsClient
from central.fraud.client import FraudClient
from dfsp.client import DfspError, UnknownReceiverError
from tests.integration.clearing.support import (
    EXECUTED,
    EXPIRED,
    PAYER,
    PIN,
    PREPARED,
    REJECTED,
    at_centre,
    central_client,
    centre_stops_at,
    clearing_network,
    parties,
    usd,
)
from tests.integration.conftest import Database
from tests.support import asyncio_test, eventually, until


@asyncio_test
async def test_a_payment_through_the_centre_is_executed_in_all_three_ledgers(
    tmp_path: Path, database: Database
) -> None:
    async with clearing_network(tmp_path, database) as network:
        hamim, kani = await parties(network)
        quote = await network.quote(hamim, kani, "25")
        assert quote.total == usd("26.50")
        transfer_id = str(uuid.uuid4())
        assert (await network.send(quote, transfer_id)).status == EXECUTED
        await until(lambda: "received" in network.payee.told(kani))
        await network.assert_agree({transfer_id: (EXECUTED, EXECUTED, EXECUTED)})
        assert await network.payer.balance(hamim) == usd("973.50")
        assert await network.payee.balance(kani) == usd("25")
        assert network.payer.told(hamim) == ["sent"]


@asyncio_test
async def test_the_centre_unreachable_at_prepare_releases_the_payer_after_the_expiry(
    tmp_path: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(a) Timeout at the payer: the centre stops as the payer's DFSP (the payer's funds
    held) prepares, and never prepared it."""
    async with clearing_network(tmp_path, database) as network:
        hamim, kani = await parties(network)
        quote = await network.quote(hamim, kani, "25")
        centre_stops_at(network, monkeypatch, "dfsp1", "prepare")
        transfer_id = str(uuid.uuid4())
        result = await network.send(quote, transfer_id)
        assert result.status == PREPARED  # the customer is told the outcome by SMS
        assert await network.payer.balance(hamim) == usd("973.50")  # held meanwhile
        await network.start_central()  # after the expiry: it can only say "never seen"
        await until(lambda: "send_failed" in network.payer.told(hamim))
        await network.assert_agree({transfer_id: (REJECTED, None, None)})
        assert await network.payer.balance(hamim) == usd("1000")
        assert network.payee.told(kani) == []
        assert network.payer.connector._waiting == {}  # no send waits for it any more


@asyncio_test
async def test_a_payee_dfsp_that_never_fulfils_lets_the_centre_expire_the_transfer(
    tmp_path: Path, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """(b) Expired by the centre during prepare: the payee's DFSP does not listen."""
    async with clearing_network(tmp_path, database) as network:
        hamim, kani = await parties(network)
        quote = await network.quote(hamim, kani, "25")
        await network.payee.connector.stop()
        transfer_id = str(uuid.uuid4())
        assert (await network.send(quote, transfer_id)).status == EXPIRED
        assert await network.payer.balance(hamim) == usd("1000")
        assert "send_failed" in network.payer.told(hamim)
        with caplog.at_level(logging.INFO, logger="clearing.connector"):
            network.payee.connector.start()  # it pulls "prepared" and "expired" now
            await eventually(lambda: network.caught_up(network.payee))
            await network.assert_agree({transfer_id: (REJECTED, EXPIRED, None)})
        assert await network.payee.balance(kani) == usd("0")
        assert network.payee.told(kani) == []
        assert "clearing_disconnected" not in caplog.text


@asyncio_test
async def test_a_payee_blacklisted_in_flight_is_rejected_by_its_dfsp_at_the_centre(
    tmp_path: Path,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """(c) Rejected by the payee's DFSP (its fraud check refuses the payee)."""
    async with clearing_network(tmp_path, database) as network:
        hamim, kani = await parties(network)
        quote = await network.quote(hamim, kani, "25")

        # Kani is blacklisted at the centre's fraud service while the payment is in
        # flight: after the payer's checks, before the prepare reaches her DFSP.
        fraud = FraudClient(network.operator_http)
        central = network.payer.connector._central
        prepare = central.prepare

        async def blacklisted_on_the_way(request: Any) -> Any:
            await fraud.blacklist(kani.user_number, "stolen identity")
            return await prepare(request)

        monkeypatch.setattr(central, "prepare", blacklisted_on_the_way)
        transfer_id = str(uuid.uuid4())
        with caplog.at_level(logging.INFO, logger="clearing.connector"):
            assert (await network.send(quote, transfer_id)).status == REJECTED
            transfer = await network.operator.get(transfer_id)
            assert transfer.reason == "the payee may not receive: stolen identity"
            await network.assert_agree({transfer_id: (REJECTED, REJECTED, None)})
            # The payee's DFSP took the rejection in its stride (no broken connection).
            monkeypatch.undo()
            await fraud.unblacklist(kani.user_number, "cleared by the auditor")
            again = str(uuid.uuid4())
            assert (await network.send(await network.quote(hamim, kani, "25"), again)).status == (
                EXECUTED
            )
        assert "clearing_disconnected" not in caplog.text
        await network.assert_agree({again: (EXECUTED, EXECUTED, EXECUTED)})
        assert await network.payer.balance(hamim) == usd("973.50")
        assert network.payer.told(hamim) == ["send_failed", "sent"]


@asyncio_test
async def test_the_centre_refusing_the_prepare_over_the_net_debit_cap_releases_the_payer(
    tmp_path: Path, database: Database
) -> None:
    """Rejected by the centre: the payer's DFSP would pass its net debit cap."""
    async with clearing_network(tmp_path, database) as network:
        hamim, kani = await parties(network)
        quote = await network.quote(hamim, kani, "25")
        await ParticipantsClient(network.operator_http).set_net_debit_cap(PAYER, "10")
        transfer_id = str(uuid.uuid4())
        with pytest.raises(DfspError) as refused:
            await network.send(quote, transfer_id)
        assert refused.value.status == 409
        await network.assert_agree({transfer_id: (REJECTED, None, None)})
        assert await network.payer.balance(hamim) == usd("1000")
        assert network.payer.told(hamim) == ["send_failed"]


@asyncio_test
async def test_a_payee_gone_before_the_payment_request_is_an_unknown_receiver(
    tmp_path: Path, database: Database
) -> None:
    """(d) Removed between quote and send: the payee's DFSP issues no payment request."""
    async with clearing_network(tmp_path, database) as network:
        hamim, kani = await parties(network)
        quote = await network.quote(hamim, kani, "25")
        closed = await network.payee.client.close_account(
            kani.customer_id, str(kani.primary_account_id), PIN
        )
        assert closed.customer_removed
        transfer_id = str(uuid.uuid4())
        with pytest.raises(UnknownReceiverError):
            await network.send(quote, transfer_id)
        await network.assert_agree({transfer_id: (None, None, None)})
        assert await network.payer.balance(hamim) == usd("1000")


@asyncio_test
async def test_a_payee_gone_before_the_prepare_reached_its_dfsp_is_rejected(
    tmp_path: Path, database: Database
) -> None:
    """(d) Removed after the payment request: the payee's DFSP refuses the prepare."""
    async with clearing_network(tmp_path, database, window=timedelta(seconds=3)) as network:
        hamim, kani = await parties(network)
        quote = await network.quote(hamim, kani, "25")
        await network.payee.connector.stop()
        transfer_id = str(uuid.uuid4())
        sending = asyncio.ensure_future(network.send(quote, transfer_id))
        await at_centre(network, transfer_id, PREPARED)
        await network.payee.client.close_account(
            kani.customer_id, str(kani.primary_account_id), PIN
        )
        network.payee.connector.start()
        assert (await sending).status == REJECTED
        assert "no customer" in str((await network.operator.get(transfer_id)).reason)
        await network.assert_agree({transfer_id: (REJECTED, REJECTED, None)})
        assert await network.payer.balance(hamim) == usd("1000")


@asyncio_test
async def test_the_centre_back_before_the_expiry_executes_the_fulfilment(
    tmp_path: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(e) The centre down during fulfil, back in time: executed everywhere."""
    async with clearing_network(tmp_path, database, window=timedelta(seconds=3)) as network:
        hamim, kani = await parties(network)
        quote = await network.quote(hamim, kani, "25")
        stopped = centre_stops_at(network, monkeypatch, "dfsp2", "fulfil_many")
        transfer_id = str(uuid.uuid4())
        sending = asyncio.ensure_future(network.send(quote, transfer_id))
        await stopped.wait()
        assert await network.payee.state_of(transfer_id) == PREPARED  # the credit is held
        await network.start_central()
        assert (await sending).status == EXECUTED
        await until(lambda: "received" in network.payee.told(kani))
        await network.assert_agree({transfer_id: (EXECUTED, EXECUTED, EXECUTED)})
        assert await network.payee.balance(kani) == usd("25")


@asyncio_test
async def test_the_centre_back_after_the_expiry_expires_it_and_every_hold_is_released(
    tmp_path: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(e) The centre down during fulfil, back too late: expired, both holds released."""
    async with clearing_network(tmp_path, database) as network:
        hamim, kani = await parties(network)
        quote = await network.quote(hamim, kani, "25")
        stopped = centre_stops_at(network, monkeypatch, "dfsp2", "fulfil_many")
        transfer_id = str(uuid.uuid4())
        sending = asyncio.ensure_future(network.send(quote, transfer_id))
        await stopped.wait()
        await asyncio.sleep(network.window.total_seconds())  # past the central expiry
        await network.start_central()
        assert (await sending).status == EXPIRED
        await eventually(network.nothing_held)
        await network.assert_agree({transfer_id: (REJECTED, EXPIRED, REJECTED)})
        assert await network.payer.balance(hamim) == usd("1000")
        assert await network.payee.balance(kani) == usd("0")
        assert network.payee.told(kani) == []
        await until(lambda: "send_failed" in network.payer.told(hamim))


@asyncio_test
async def test_a_payer_dfsp_restarted_after_the_centre_executed_commits_its_hold(
    tmp_path: Path, database: Database
) -> None:
    """(f) The fulfilment reaches the payer's DFSP after the payee was paid."""
    async with clearing_network(tmp_path, database) as network:
        hamim, kani = await parties(network)
        payments = network.payer.service.payments
        assert payments is not None
        quote = await payments.quote_send(
            hamim.customer_id, str(hamim.primary_account_id), kani.user_number, usd("25")
        )
        await network.payer.connector.stop()  # it misses the centre's notifications
        transfer_id = str(uuid.uuid4())
        sending = asyncio.ensure_future(payments.send(quote, PIN, transfer_id))
        await at_centre(network, transfer_id, EXECUTED)
        await until(lambda: "received" in network.payee.told(kani))
        sending.cancel()  # the payer's DFSP stops before it hears the outcome
        await asyncio.gather(sending, return_exceptions=True)
        assert await network.payer.state_of(transfer_id) == PREPARED
        await network.payer.stop()
        await network.payer.start()  # same database: reconcile commits the hold
        await eventually(network.nothing_held)
        await network.assert_agree({transfer_id: (EXECUTED, EXECUTED, EXECUTED)})
        assert await network.payer.balance(hamim) == usd("973.50")
        await until(lambda: "sent" in network.payer.told(hamim))


@asyncio_test
async def test_a_payee_dfsp_restarted_with_the_credit_held_fulfils_after_its_start(
    tmp_path: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payee's DFSP stops between holding the credit and fulfilling; back before
    the expiry, its reconcile finds the credit held and fulfils."""
    async with clearing_network(tmp_path, database, window=timedelta(seconds=3)) as network:
        hamim, kani = await parties(network)
        quote = await network.quote(hamim, kani, "25")
        client = central_client(network, "dfsp2")
        fulfilling = asyncio.Event()

        async def stopped_before_the_fulfilment_left(*args: Any) -> Any:
            fulfilling.set()
            await asyncio.Event().wait()

        monkeypatch.setattr(client, "fulfil_many", stopped_before_the_fulfilment_left)
        transfer_id = str(uuid.uuid4())
        sending = asyncio.ensure_future(network.send(quote, transfer_id))
        await fulfilling.wait()
        await network.payee.stop()
        await network.payee.start()
        assert (await sending).status == EXECUTED
        await until(lambda: "received" in network.payee.told(kani))
        await network.assert_agree({transfer_id: (EXECUTED, EXECUTED, EXECUTED)})
        assert await network.payee.balance(kani) == usd("25")


@asyncio_test
async def test_a_payer_dfsp_restarted_before_its_prepare_left_releases_after_the_expiry(
    tmp_path: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(a) Timeout at the payer, across a restart: the payer's DFSP held the funds and
    stopped before its prepare reached the centre, and is back before the expiry."""
    async with clearing_network(tmp_path, database, window=timedelta(seconds=2)) as network:
        hamim, kani = await parties(network)
        payments = network.payer.service.payments
        assert payments is not None
        quote = await payments.quote_send(
            hamim.customer_id, str(hamim.primary_account_id), kani.user_number, usd("25")
        )
        client = central_client(network, "dfsp1")
        preparing = asyncio.Event()

        async def never_arrives(*args: Any) -> Any:
            preparing.set()
            await asyncio.Event().wait()

        monkeypatch.setattr(client, "prepare", never_arrives)
        transfer_id = str(uuid.uuid4())
        sending = asyncio.ensure_future(payments.send(quote, PIN, transfer_id))
        await preparing.wait()
        sending.cancel()  # the payer's DFSP stops with the funds held, nothing prepared
        await asyncio.gather(sending, return_exceptions=True)
        await network.payer.stop()
        await network.payer.start()  # before the expiry: the centre does not know it yet
        assert await network.payer.state_of(transfer_id) == PREPARED
        await until(lambda: "send_failed" in network.payer.told(hamim), timeout=5.0)
        await network.assert_agree({transfer_id: (REJECTED, None, None)})
        assert await network.payer.balance(hamim) == usd("1000")


@asyncio_test
async def test_a_payee_dfsp_that_reconnects_fulfils_what_it_pulls(
    tmp_path: Path, database: Database
) -> None:
    """(g) The payee's DFSP hears of the prepare only through the pull after a reconnect."""
    async with clearing_network(tmp_path, database, window=timedelta(seconds=3)) as network:
        hamim, kani = await parties(network)
        quote = await network.quote(hamim, kani, "25")
        await network.payee.connector.stop()  # its socket is gone
        transfer_id = str(uuid.uuid4())
        sending = asyncio.ensure_future(network.send(quote, transfer_id))
        await at_centre(network, transfer_id, PREPARED)
        network.payee.connector.start()  # reconnects: pulls, then listens
        assert (await sending).status == EXECUTED
        await network.assert_agree({transfer_id: (EXECUTED, EXECUTED, EXECUTED)})
        assert await network.payee.balance(kani) == usd("25")


@asyncio_test
async def test_a_notification_between_the_pull_and_the_socket_is_not_missed(
    tmp_path: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(g) The prepare is notified after the reconnect's pull, before its socket opens."""
    async with clearing_network(tmp_path, database, window=timedelta(seconds=3)) as network:
        hamim, kani = await parties(network)
        quote = await network.quote(hamim, kani, "25")
        await network.payee.connector.stop()
        client = central_client(network, "dfsp2")
        subscribe = client.subscribe
        transfer_id = str(uuid.uuid4())

        async def late_socket(*args: Any, **kwargs: Any) -> Any:
            await at_centre(network, transfer_id, PREPARED)
            async for notification in subscribe(*args, **kwargs):
                yield notification

        monkeypatch.setattr(client, "subscribe", late_socket)
        network.payee.connector.start()  # pulls (nothing yet), then opens its socket late
        assert (await network.send(quote, transfer_id)).status == EXECUTED
        await network.assert_agree({transfer_id: (EXECUTED, EXECUTED, EXECUTED)})
