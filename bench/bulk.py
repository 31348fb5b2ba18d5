"""Bulk payment rows per second, on the network of ``ussdloop up`` (central and both
DFSPs, SQLite under a temporary directory), the throttle off.

A business on dfsp1 pays a batch of ``--rows`` rows (250 by default) to payees spread
over both DFSPs, each payee once (as a payroll is) unless ``--payees`` names fewer per
DFSP; the baseline is the same number of single ``Payments.send`` calls (with their
PIN) from another payer of dfsp1 to the same payees, in the same run.

``--processes`` runs the same on the network as deployed, one process per service
(``ussdloop central`` and ``ussdloop dfsp`` for each DFSP, SQLite), everything through
the DFSPs' APIs: customers registered, the batch uploaded, approved and followed (every
0.5 s) with ``dfsp.bulk_client``, the baseline sent with ``dfsp.client``.

    python bench/bulk.py [--rows 250] [--payees N] [--in-flight 8] [--processes] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ussdloop.aio import as_deferred, install_asyncio_reactor  # noqa: E402

install_asyncio_reactor()

import aiohttp  # noqa: E402

from dfsp.bulk import BulkSettings  # noqa: E402
from dfsp.bulk_client import BulkClient  # noqa: E402
from dfsp.client import CustomerInfo, DfspClient  # noqa: E402
from dfsp.domain.customers import Customer  # noqa: E402
from dfsp.domain.fees import TransactionType  # noqa: E402
from dfsp.domain.transfers import Posting  # noqa: E402
from dfsp.service import DfspService  # noqa: E402
from ussdloop.compose import start_network  # noqa: E402
from ussdloop.config import load_network  # noqa: E402
from ussdloop.money import Money  # noqa: E402

PIN = "4071"
DFSPS = ("dfsp1", "dfsp2")
HEADER = "sequenceNumber,identifier,firstName,lastName,nationalId,dob,amount\n"


async def register(dfsp: DfspService, n: int, first: str) -> Customer:
    assert dfsp.customers is not None
    return await dfsp.customers.register(
        f"+25672{n:07d}", first, "Bench", "1990-05-17", f"NB{n:06d}", "main", "customer", PIN
    )


async def payer(dfsp: DfspService, n: int, first: str) -> tuple[Customer, str]:
    """A payer on the business tier with plenty of money; its account id."""
    assert dfsp.customers is not None and dfsp.ledger is not None
    customer = await register(dfsp, n, first)
    account = (await dfsp.customers.accounts_of(customer.id))[0]
    await dfsp.customers.change_tier(customer.id, "business", actor="bench", reason="bench")
    top_up = [Posting("float", account.ledger_account_id, 10_000_000)]
    await dfsp.ledger.transfer_now(f"bench-top-up-{n}", top_up, kind="cash_in")
    return customer, account.id


async def run(rows: int, payees_each: int, in_flight: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data:
        network = load_network(environ={})
        carrier = await start_network(network, any_port=True, data_dir=Path(data))
        try:
            dfsp1, dfsp2 = carrier.dfsps["dfsp1"], carrier.dfsps["dfsp2"]
            return await measure(dfsp1, dfsp2, rows, payees_each, in_flight)
        finally:
            await carrier.running.stop()


async def measure(
    dfsp1: DfspService, dfsp2: DfspService, rows: int, payees_each: int, in_flight: int
) -> dict[str, float]:
    assert dfsp1.bulk is not None and dfsp1.payments is not None
    bulk = dfsp1.bulk.bulk
    bulk.settings = BulkSettings(
        rows_per_second=0, rows_in_flight=in_flight, retry_interval=timedelta(seconds=1)
    )
    maker, account = await payer(dfsp1, 1, "Maker")
    checker = await register(dfsp1, 2, "Checker")
    single, single_account = await payer(dfsp1, 3, "Single")
    assert dfsp1.customers is not None
    await dfsp1.customers.add_holder(maker.id, account, str(checker.user_number), signatory=False)
    await bulk.grant_role(maker.id, "maker")
    await bulk.grant_role(checker.id, "checker")
    payees = [await register(dfsp1, 1000 + i, f"Here{i}") for i in range(payees_each)]
    payees += [await register(dfsp2, 5000 + i, f"There{i}") for i in range(payees_each)]
    lines = [
        f"{i + 1},{p.user_number},{p.first_name},{p.last_name},{p.national_id},1990-05-17,1\n"
        for i, p in ((i, payees[i % len(payees)]) for i in range(rows))
    ]
    end = datetime.now(UTC) + timedelta(hours=1)
    batch = await bulk.upload(maker.id, PIN, account, HEADER + "".join(lines), end_at=end)
    started = time.perf_counter()
    handled = dfsp1.bulk.rows_handled
    await bulk.approve(batch.id, checker.id, PIN)
    while dfsp1.bulk.rows_handled < handled + rows:  # cheap: no batch view while paying
        await asyncio.sleep(0.01)
    while (await bulk.batch_view(batch.id)).state.value != "done":
        await asyncio.sleep(0.01)
    seconds = time.perf_counter() - started
    paid = (await bulk.batch_view(batch.id)).totals.by_state.get("paid", 0)

    one = Money.parse("1", "USD")
    baseline_started = time.perf_counter()
    for i in range(rows):
        payee = payees[i % len(payees)]
        quote = await dfsp1.payments.quote_send(
            single.id, single_account, str(payee.user_number), one, kind=TransactionType.P2P
        )
        await dfsp1.payments.send(quote, PIN, str(uuid.uuid4()))
    baseline = rows / (time.perf_counter() - baseline_started)
    return {
        "rows_per_s": round(paid / seconds, 1),
        "rows_in_flight": in_flight,
        "rows": paid,
        "seconds": round(seconds, 2),
        "baseline_single_payments_per_s": round(baseline, 1),
    }


# --- one process per service ---------------------------------------------------------


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for one in sockets:
            one.bind(("127.0.0.1", 0))
        return [one.getsockname()[1] for one in sockets]
    finally:
        for one in sockets:
            one.close()


def network_file(
    path: Path, ports: Sequence[int], in_flight: int, roles: Sequence[str] = ("", "")
) -> None:
    """A network of the centre and two DFSPs on ``ports`` (centre, dfsp1, dfsp2), bulk
    unthrottled, the maker and checker ``roles`` named by user number (once known)."""
    central, api1, api2 = ports
    makers, checkers = ([number] if number else [] for number in roles)
    path.write_text(
        f"""
[network]
data_dir = "{(path.parent / "var").as_posix()}"
[central]
http = {{ port = {central} }}
[dfsps.dfsp1]
api = {{ port = {api1} }}
[dfsps.dfsp1.bulk]
rows_per_second = 0
rows_in_flight = {in_flight}
retry_seconds = 1
makers = {json.dumps(makers)}
checkers = {json.dumps(checkers)}
[dfsps.dfsp2]
api = {{ port = {api2} }}
"""
    )


def start_service(config: Path, *command: str) -> subprocess.Popen[str]:
    """A service of the network, once it says it is up."""
    service = subprocess.Popen(
        [sys.executable, "-m", "ussdloop.cli", *command, "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert service.stdout is not None
    line = service.stdout.readline()
    if "is up:" not in line and "up" not in line:
        service.kill()
        raise RuntimeError(f"{' '.join(command)} did not start: {line!r}")
    return service


async def run_processes(rows: int, payees_each: int, in_flight: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data:
        config, ports = Path(data) / "network.toml", free_ports(3)
        network_file(config, ports, in_flight)
        services = {"central": start_service(config, "central")}
        try:
            for name in DFSPS:
                services[name] = start_service(config, "dfsp", "--dfsp", name)
            urls = [f"http://127.0.0.1:{port}" for port in ports[1:]]
            async with aiohttp.ClientSession() as http:
                dfsp1, dfsp2 = (DfspClient(url, http) for url in urls)
                people = await register_people(dfsp1, dfsp2, payees_each, rows)
            roles = (people.maker.user_number, people.checker.user_number)
            network_file(config, ports, in_flight, roles)  # dfsp1 takes them at start
            stop_service(services.pop("dfsp1"))
            services["dfsp1"] = start_service(config, "dfsp", "--dfsp", "dfsp1")
            async with aiohttp.ClientSession() as http:
                return await measure_over_http(http, urls[0], people, rows, in_flight)
        finally:
            for service in services.values():
                stop_service(service)


def stop_service(service: subprocess.Popen[str]) -> None:
    service.send_signal(signal.SIGTERM)
    service.wait(timeout=30)


async def customer_over_http(client: DfspClient, n: int, first: str) -> CustomerInfo:
    return await client.register(
        msisdn=f"+25672{n:07d}",
        first_name=first,
        last_name="Bench",
        date_of_birth="1990-05-17",
        national_id=f"NB{n:06d}",
        pin=PIN,
    )


@dataclass
class People:
    maker: CustomerInfo
    checker: CustomerInfo
    singles: list[CustomerInfo]  # the baseline's payers (a basic tier's 100 a day each)
    payees: list[CustomerInfo]


async def register_people(
    dfsp1: DfspClient, dfsp2: DfspClient, payees_each: int, rows: int
) -> People:
    maker = await customer_over_http(dfsp1, 1, "Maker")
    checker = await customer_over_http(dfsp1, 2, "Checker")
    singles = [
        await customer_over_http(dfsp1, 10 + n, f"Single{n}") for n in range(rows // 100 + 1)
    ]
    account = str(maker.primary_account_id)
    await dfsp1.add_holder(maker.customer_id, account, checker.user_number, PIN)
    payees = [await customer_over_http(dfsp1, 1000 + i, f"Here{i}") for i in range(payees_each)]
    payees += [await customer_over_http(dfsp2, 5000 + i, f"There{i}") for i in range(payees_each)]
    return People(maker, checker, singles, payees)


async def measure_over_http(
    http: aiohttp.ClientSession, url: str, people: People, rows: int, in_flight: int
) -> dict[str, float]:
    dfsp1, payees = DfspClient(url, http), people.payees
    lines = [
        f"{i + 1},{p.user_number},{p.first_name},{p.last_name},NB{p.msisdn[-6:]},1990-05-17,1\n"
        for i, p in ((i, payees[i % len(payees)]) for i in range(rows))
    ]
    bulk = BulkClient(url, http)
    maker, checker = people.maker, people.checker
    end = datetime.now(UTC) + timedelta(hours=1)
    account = str(maker.primary_account_id)
    batch = await bulk.upload(maker.customer_id, PIN, account, HEADER + "".join(lines), end_at=end)
    started = time.perf_counter()
    status = await bulk.approve(batch.batch_id, checker.customer_id, PIN)
    while not status.finished:
        await asyncio.sleep(0.5)
        status = await bulk.status(batch.batch_id, maker.customer_id, PIN)
    seconds = time.perf_counter() - started
    paid = status.by_state.get("paid", 0)

    one = Money.parse("1", "USD")
    baseline_started = time.perf_counter()
    for i in range(rows):
        payee, single = payees[i % len(payees)], people.singles[i // 100]
        quote = await dfsp1.quote_send(
            single.customer_id, str(single.primary_account_id), payee.user_number, one
        )
        await dfsp1.send(quote, PIN, str(uuid.uuid4()))
    baseline = rows / (time.perf_counter() - baseline_started)
    return {
        "rows_per_s": round(paid / seconds, 1),
        "rows_in_flight": in_flight,
        "rows": paid,
        "seconds": round(seconds, 2),
        "baseline_single_payments_per_s": round(baseline, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250)
    parser.add_argument("--payees", type=int, help="payees on each DFSP (default: rows / 2)")
    parser.add_argument("--in-flight", type=int, default=BulkSettings.rows_in_flight)
    parser.add_argument("--processes", action="store_true", help="one process per service")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from twisted.internet import reactor

    outcome: dict[str, float] = {}

    async def bench() -> None:
        try:
            payees = args.payees or max(1, (args.rows + 1) // 2)
            measured = run_processes if args.processes else run
            outcome.update(await measured(args.rows, payees, args.in_flight))
        finally:
            reactor.stop()  # type: ignore[attr-defined]

    reactor.callWhenRunning(lambda: as_deferred(bench()))  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    if not outcome:
        return 1
    result = outcome
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"bulk: {result['rows']:.0f} rows in {result['seconds']} s:"
            f" {result['rows_per_s']} rows/s ({result['rows_in_flight']:.0f} in flight)"
            f" (single payments: {result['baseline_single_payments_per_s']}/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
