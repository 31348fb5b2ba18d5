"""The KMS and the forensic log on a running central service (SQLite, and PostgreSQL
when USSDLOOP_TEST_PG is set): who registers which keys, appends checked against the
chain and the signature, a writer that restarts or loses central, a transfer's path
across services, and the verification of every stored chain."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.client import CentralError, CentralHttp, RegisteredDfsp
from central.errors import UnprocessableEntityError
from central.forensic.client import ForensicClient
from central.forensic.service import ForensicLog
from central.kms.client import KmsClient
from tests.integration.central.support import Central, running_central
from tests.integration.conftest import Database
from tests.support import asyncio_test
from ussdloop.db import sqlite_url
from ussdloop.forensic import (
    GENESIS,
    ForensicUnavailable,
    ForensicWriter,
    Problem,
    Record,
    build_record,
    public_key_base64,
)

ROOT = Path(__file__).resolve().parents[3]


async def no_wait(_: float) -> None:
    return None


async def dfsp_writer(
    central: Central, credentials: RegisteredDfsp, http: CentralHttp | None = None
) -> tuple[ForensicWriter, CentralHttp]:
    """A started writer for the DFSP's own service, its key registered."""
    http = http or central.as_dfsp(credentials)
    key = Ed25519PrivateKey.generate()
    await KmsClient(http).register(credentials.name, public_key_base64(key))
    writer = ForensicWriter(credentials.name, key, ForensicClient(http), sleep=no_wait, timeout=2.0)
    await writer.start()
    return writer, http


@asyncio_test
async def test_dfsps_register_keys_for_their_own_services_and_rotate_them(
    database: Database,
) -> None:
    async with running_central(database) as central:
        dfsp1 = await central.register("dfsp1")
        await central.register("dfsp2")
        kms = KmsClient(central.as_dfsp(dfsp1))
        old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        await kms.register("dfsp1", public_key_base64(old))
        assert (await kms.register("dfsp1", public_key_base64(old))).previous == ()
        await kms.register("dfsp1.gateway", public_key_base64(new))
        rotated = await kms.register("dfsp1", public_key_base64(new))
        assert rotated.current.public_key == public_key_base64(new)
        assert [key.public_key for key in rotated.previous] == [public_key_base64(old)]
        assert rotated.current.valid_from >= rotated.previous[0].valid_from
        refusals = [
            (kms.register("dfsp2", public_key_base64(new)), 403),
            (kms.register("central", public_key_base64(new)), 403),
            (KmsClient(central.as_operator()).register("dfsp1", public_key_base64(new)), 403),
            (kms.register("dfsp1", public_key_base64(old)), 409),  # an old key again
            (kms.register("dfsp1", "bm90IGEga2V5"), 400),
            (kms.register("dfsp1..x", public_key_base64(new)), 400),
            (kms.keys("dfsp2"), 404),
        ]
        for call, status in refusals:
            with pytest.raises(CentralError) as refused:
                await call
            assert refused.value.status == status, refused.value
        # the central service registered its own key at its first start
        assert (await kms.keys("central")).current.owner == "operator"


@asyncio_test
async def test_appends_are_checked_against_the_chain_and_the_signature(
    database: Database,
) -> None:
    async with running_central(database) as central:
        dfsp1 = await central.register("dfsp1")
        writer, http = await dfsp_writer(central, dfsp1)
        prepared = await writer.write("transfer.prepared", "t-1", {"amount": "10.00"})
        log = ForensicClient(http)
        await log.append([prepared])  # the same record again: accepted, stored once
        key = writer.private_key
        at = datetime.now(UTC)

        def record(
            seq: int, prev: str, signer: Ed25519PrivateKey = key, service: str = "dfsp1"
        ) -> Record:
            return build_record(signer, service=service, seq=seq, at=at, event="x", prev_hash=prev)

        refusals = {
            "not the hash of seq 2": record(3, GENESIS),
            "the next seq of dfsp1 is 3": record(5, prepared.hash),
            "already stored with another hash": record(2, prepared.prev_hash),
            "the signature is not dfsp1's": record(3, prepared.hash, Ed25519PrivateKey.generate()),
            "the hash does not match": dataclasses.replace(record(3, prepared.hash), event="y"),
            "no key is registered": record(1, GENESIS, service="dfsp1.ledger"),
        }
        for message, bad in refusals.items():
            with pytest.raises(CentralError) as refused:
                await log.append([bad])
            assert refused.value.status == 422 and message in str(refused.value), refused.value
        with pytest.raises(CentralError) as other:
            await log.append([record(1, GENESIS, service="dfsp2")])
        assert other.value.status == 403
        stored = await log.records("dfsp1")
        assert [(r.seq, r.event) for r in stored] == [(1, "service.started"), (2, prepared.event)]
        assert await log.last("dfsp1") == prepared


@asyncio_test
async def test_a_restarted_writer_continues_the_chain_and_logs_its_start(
    database: Database,
) -> None:
    async with running_central(database) as central:
        dfsp1 = await central.register("dfsp1")
        writer, http = await dfsp_writer(central, dfsp1)
        await writer.write("transfer.prepared", "t-1")
        again = ForensicWriter("dfsp1", writer.private_key, ForensicClient(http))
        started = await again.start()
        assert (started.seq, started.event) == (3, "service.started")
        report = await ForensicClient(central.as_operator()).verify()
        assert report.ok and report.chain("dfsp1").intact == ((1, 3),)


@asyncio_test
async def test_a_transfer_path_spans_the_chains_of_services_in_time_order(
    database: Database,
) -> None:
    async with running_central(database) as central:
        payer, _ = await dfsp_writer(central, await central.register("dfsp1"))
        payee, _ = await dfsp_writer(central, await central.register("dfsp2"))
        await payer.write("transfer.prepared", "t-42", {"amount": "5.00"})
        await payee.write("transfer.other", "t-7")
        await payee.write("payment.received", "p-1", {"transferId": "t-42"})
        await payer.write("transfer.executed", "t-42")
        operator = ForensicClient(central.as_operator())
        path = await operator.transfer("t-42")
        assert [(r.service, r.event) for r in path] == [
            ("dfsp1", "transfer.prepared"),
            ("dfsp2", "payment.received"),
            ("dfsp1", "transfer.executed"),
        ]
        assert await operator.transfer("t-4") == []
        with pytest.raises(CentralError) as dfsp_only:
            await ForensicClient(central.as_dfsp(await central.register("dfsp3"))).verify()
        assert dfsp_only.value.status == 403
        report = await operator.verify()
        assert report.ok and {c.service for c in report.chains} == {"central", "dfsp1", "dfsp2"}


@asyncio_test
async def test_a_writer_is_unavailable_while_central_is_stopped_and_available_after(
    database: Database,
) -> None:
    async with aiohttp.ClientSession() as session:
        async with running_central(database) as central:
            dfsp1 = await central.register("dfsp1")
            http = CentralHttp(central.url, session, dfsp1.key, dfsp1.secret)
            writer, _ = await dfsp_writer(central, dfsp1, http)
        assert writer.available
        with pytest.raises(ForensicUnavailable):
            await writer.write("transfer.prepared", "t-1")
        assert not writer.available and not await writer.check()
        async with running_central(database) as central:
            http.base_url = central.url  # the same central, on its new port
            await back_again(central, writer, http)


async def back_again(central: Central, writer: ForensicWriter, http: CentralHttp) -> None:
    """The writer reaches the restarted central: the outage and both central starts are logged."""
    assert await writer.check() and writer.available
    await writer.write("transfer.prepared", "t-2")
    stored = await ForensicClient(central.as_operator()).records("dfsp1")
    assert [r.event for r in stored] == [
        "service.started",
        "forensic.resumed",
        "transfer.prepared",
    ]
    assert stored[1].data["refusedWrites"] == 1
    report = await ForensicClient(central.as_operator()).verify()
    assert report.ok, [c.summary() for c in report.chains]
    central_events = [
        r.event for r in await ForensicClient(central.as_operator()).records("central")
    ]
    assert central_events == [
        "service.started",
        "participant.registered",
        "service.stopped",
        "service.started",
    ]
    assert (await KmsClient(http).keys("central")).previous == ()  # its key was kept


@asyncio_test
async def test_forensic_verify_on_the_command_line_names_a_row_changed_by_sql(
    tmp_path: Path,
) -> None:
    database = Database(sqlite_url(tmp_path, "central"), None)
    async with running_central(database) as central:
        writer, _ = await dfsp_writer(central, await central.register("dfsp1"))
        for n in range(1, 6):
            await writer.write("transfer.prepared", f"t-{n}", {"amount": f"{n}.00"})
    config = tmp_path / "network.toml"
    config.write_text(f'[network]\ndata_dir = "{tmp_path}"\n')

    def forensic(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "ussdloop.cli", "forensic", *args, "--config", str(config)]
        return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)

    intact = forensic("verify")
    assert intact.returncode == 0, intact.stderr
    assert "dfsp1: 1-6 intact" in intact.stdout
    with sqlite3.connect(tmp_path / "central.db") as connection:
        connection.execute(
            'UPDATE forensic_records SET data = \'{"amount":"9000.00"}\''
            " WHERE service = 'dfsp1' AND seq = 4"
        )
    tampered = forensic("verify")
    assert tampered.returncode == 1, tampered.stderr
    assert "dfsp1: 1-3 intact, 4 changed, 5-6 intact" in tampered.stdout
    assert "changed: seq 4: its content does not match its hash" in tampered.stdout
    path = forensic("transfer", "t-3")
    assert path.returncode == 0 and "dfsp1#4  transfer.prepared" in path.stdout, path.stderr
    assert Problem.CHANGED == "changed"


@asyncio_test
async def test_a_record_signed_with_a_key_rotated_after_earlier_appends_is_accepted(
    database: Database,
) -> None:
    async with running_central(database) as central:
        dfsp1 = await central.register("dfsp1")
        writer, http = await dfsp_writer(central, dfsp1)
        first = await writer.write("transfer.prepared", "t-1")  # the log has read the keys
        rotated = Ed25519PrivateKey.generate()
        await KmsClient(http).register("dfsp1", public_key_base64(rotated))
        at = datetime.now(UTC)
        after = build_record(
            rotated, service="dfsp1", seq=first.seq + 1, at=at, event="x", prev_hash=first.hash
        )
        await ForensicClient(http).append([after])
        assert await ForensicClient(http).last("dfsp1") == after


@asyncio_test
async def test_an_append_after_another_node_appended_is_decided_by_the_stored_rows(
    database: Database,
) -> None:
    async with running_central(database) as central:
        dfsp1 = await central.register("dfsp1")
        writer, _ = await dfsp_writer(central, dfsp1)
        prepared = await writer.write("transfer.prepared", "t-1", {"amount": "10.00"})
        context = central.service.context
        assert context is not None
        here = ForensicLog(context.sessions, context.clock)
        other_node = ForensicLog(context.sessions, context.clock)
        key, at = writer.private_key, datetime.now(UTC)

        def record(seq: int, prev: str, event: str = "x") -> Record:
            return build_record(key, service="dfsp1", seq=seq, at=at, event=event, prev_hash=prev)

        third = record(3, prepared.hash)
        await here.append([third], caller="dfsp1")  # here remembers 3 as the top
        fourth = record(4, third.hash)
        assert await other_node.append([fourth], caller="dfsp1") == 1
        # The same record again through ``here`` is accepted, as the rows say...
        assert await here.append([fourth], caller="dfsp1") == 0
        # ...and another one in its place refused.
        with pytest.raises(UnprocessableEntityError, match="already stored with another hash"):
            await here.append([record(4, third.hash, "y")], caller="dfsp1")
        assert [r.seq for r in await here.records("dfsp1")] == [1, 2, 3, 4]
