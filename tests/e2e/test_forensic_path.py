"""Acceptance (forensic logging): one payment from dfsp1 to dfsp2 is traced across the
three services' signed chains in the central forensic log, the chains verify, and a row
changed in the central database is named; a DFSP whose forensic log is unavailable
refuses payments with a screen the person understands, and takes them again after."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select, update

from central.client import CentralError, CentralHttp
from central.forensic.cli import customer_command
from central.forensic.client import ForensicClient
from central.forensic.store import ForensicRecordRow
from dfsp.forensic import ForensicLogUnavailable
from dfsp.service import DfspService
from tests.e2e.phones import PIN, Phone, dfsp_network, onboard
from tests.e2e.test_dfsp_send_money import balance_of, send, usd
from tests.support import asyncio_test
from ussdloop.compose import CarrierNetwork
from ussdloop.config import load_network
from ussdloop.db import create_service_engine, session_factory
from ussdloop.forensic import Problem, Record


def operator_log(carrier: CarrierNetwork, http: aiohttp.ClientSession) -> ForensicClient:
    assert carrier.central is not None
    settings = carrier.central.settings
    central = CentralHttp(
        carrier.central.base_url, http, settings.operator_key, settings.operator_secret
    )
    return ForensicClient(central)


async def last_transfer_of(dfsp: DfspService, user_number: str) -> str:
    assert dfsp.customers is not None and dfsp.ledger is not None
    customer = await dfsp.customers.by_user_number(user_number)
    assert customer is not None
    primary = next(a for a in await dfsp.customers.accounts_of(customer.id) if a.primary)
    return (await dfsp.ledger.statement(primary.ledger_account_id, 1))[0].transfer_id


def path(records: Sequence[Record]) -> list[tuple[str, str]]:
    return [(record.service, record.event) for record in records]


async def one_customers_records(
    carrier: CarrierNetwork, http: aiohttp.ClientSession, user_number: str, transfer_id: str
) -> None:
    """The report of one customer's records in a time window, by the API and the CLI;
    only the operator asks, and a bad window or user number is refused."""
    log = operator_log(carrier, http)
    now = datetime.now(UTC)
    since, until = now - timedelta(hours=1), now + timedelta(minutes=1)
    records = await log.customer(user_number, since, until)
    assert transfer_id in {r.subject for r in records}
    assert all(r.subject == user_number or user_number in r.data.values() for r in records)
    assert await log.customer(user_number, since - timedelta(hours=1), since) == []

    assert carrier.central is not None
    out = io.StringIO()
    config = load_network(environ={})  # the operator's credentials, as the test network's
    url = carrier.central.base_url
    assert await customer_command(config, url, user_number, since, until, out) == 0
    assert f"{transfer_id}" in out.getvalue() and f"transfer(s) of {user_number}" in out.getvalue()

    link = carrier.dfsps["dfsp1"].central
    assert link is not None
    as_dfsp = ForensicClient(CentralHttp(url, http, link.key, link.secret))
    for client, number, window, status in (
        (as_dfsp, user_number, (since, until), 403),
        (log, "1234", (since, until), 400),
        (log, user_number, (until, since), 400),
    ):
        with pytest.raises(CentralError) as refused:
            await client.customer(number, *window)
        assert refused.value.status == status


class BrokenSink:
    """A forensic sink that is down."""

    async def last(self, service: str) -> Record | None:
        raise OSError("the forensic log is down")

    async def append(self, records: Sequence[Record]) -> None:
        raise OSError("the forensic log is down")


@asyncio_test
async def test_a_payment_between_dfsps_is_traced_across_the_three_chains(tmp_path: Path) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        dfsp1 = carrier.dfsps["dfsp1"]
        hamim = Phone(carrier, http, "256700000701")
        kani = Phone(carrier, http, "256700000702", short_code="*456#")
        hamim_number = await onboard(hamim, "Hamim", "Ali", national_id="NI0701")
        kani_number = await onboard(kani, "Kani", "Moe", national_id="NI0702")
        _, done = await send(hamim, kani_number, "25")
        assert done.startswith("Status: executed"), done
        transfer_id = await last_transfer_of(dfsp1, hamim_number)

        log = operator_log(carrier, http)
        records = await log.transfer(transfer_id)
        steps = path(records)
        assert steps[:4] == [
            ("dfsp1", "transfer.held"),
            ("central", "transfer.prepared"),
            ("dfsp2", "transfer.held"),
            ("central", "transfer.executed"),
        ], steps
        assert sorted(steps[4:]) == [
            ("dfsp1", "transfer.committed"),
            ("dfsp2", "transfer.committed"),
        ]
        held, prepared = records[0].data, records[1].data
        assert held["side"] == "payer" and held["payeeDfsp"] == "dfsp2"
        assert (held["sender"], held["receiver"]) == (hamim_number, kani_number)
        assert (held["amount"], held["fees"]) == ("25.00", "1.50")
        assert (prepared["payer"], prepared["payee"]) == ("dfsp1", "dfsp2")
        credit = records[2].data
        assert (credit["side"], credit["receiver"]) == ("payee", kani_number)
        assert credit["payerDfsp"] == "dfsp1"
        await one_customers_records(carrier, http, hamim_number, transfer_id)

        report = await log.verify()
        assert report.ok, [chain.summary() for chain in report.chains]
        assert {"central", "dfsp1", "dfsp2"} <= {chain.service for chain in report.chains}
        for service in ("dfsp1", "dfsp2"):
            events = [r.event for r in await log.records(service)]
            assert events[:2] == ["service.started", "rules.loaded"], events

        # Someone edits the centre's record of the execution in its database.
        executed = records[3]
        assert carrier.central is not None
        engine = create_service_engine(carrier.central.database_url, schema=carrier.central.schema)
        try:
            async with session_factory(engine).begin() as session:
                row = await session.scalar(
                    select(ForensicRecordRow).where(
                        ForensicRecordRow.service == "central",
                        ForensicRecordRow.seq == executed.seq,
                    )
                )
                assert row is not None
                forged = row.data.replace('"executed"', '"rejected"')
                assert forged != row.data
                await session.execute(
                    update(ForensicRecordRow)
                    .where(ForensicRecordRow.id == row.id)
                    .values(data=forged)
                )
        finally:
            await engine.dispose()
        report = await log.verify()
        assert not report.ok
        central = report.chain("central")
        assert [(f.problem, f.seq) for f in central.findings] == [(Problem.CHANGED, executed.seq)]
        assert f"{executed.seq} changed" in central.summary()
        assert report.chain("dfsp1").ok and report.chain("dfsp2").ok


@asyncio_test
async def test_a_dfsp_refuses_payments_while_its_forensic_log_is_unavailable(
    tmp_path: Path,
) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        dfsp1 = carrier.dfsps["dfsp1"]
        assert dfsp1.forensic is not None and dfsp1.forensic.writer is not None
        await dfsp1.forensic.started()
        writer = dfsp1.forensic.writer
        amina = Phone(carrier, http, "256700000711")
        baraka = Phone(carrier, http, "256700000712")
        amina_number = await onboard(amina, "Amina", "Odu", national_id="NI0711")
        baraka_number = await onboard(baraka, "Baraka", "Obi", national_id="NI0712")

        sink, writer.sink = writer.sink, BrokenSink()
        await dfsp1.forensic.record("test.probe", "", {})  # not stored: an outage begins
        assert not writer.available and not await writer.check()
        _, refused = await send(amina, baraka_number, "10")
        assert "Payments are paused for a moment. Please try again later." in refused
        assert await balance_of(dfsp1, amina_number) == usd("1000")
        assert dfsp1.payments is not None and dfsp1.customers is not None
        customer = await dfsp1.customers.by_user_number(amina_number)
        assert customer is not None
        account = next(a for a in await dfsp1.customers.accounts_of(customer.id) if a.primary)
        quote = await dfsp1.payments.quote_send(customer.id, account.id, baraka_number, usd("1"))
        try:
            await dfsp1.payments.send(quote, PIN, "forensic-refused-1")
        except ForensicLogUnavailable:
            pass
        else:
            raise AssertionError("a payment was taken while the forensic log was down")

        writer.sink = sink  # the log is back: the next payment is taken and logged
        await amina.hang_up()
        _, done = await send(amina, baraka_number, "10")
        assert done.startswith("Status: executed"), done
        events = [r.event for r in await operator_log(carrier, http).records("dfsp1")]
        assert "forensic.resumed" in events
        assert events[-1] == "transfer.executed"
