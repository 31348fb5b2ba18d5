"""Bulk payment rows per second, on the network of ``ussdloop up`` (central and both
DFSPs, SQLite under a temporary directory), the throttle off.

A business on dfsp1 pays a batch of ``--rows`` rows (250 by default) to payees spread
over both DFSPs, each payee once (as a payroll is) unless ``--payees`` names fewer per
DFSP; the baseline is the same number of single ``Payments.send`` calls (with their
PIN) from another payer of dfsp1 to the same payees, in the same run.

    python bench/bulk.py [--rows 250] [--payees N] [--in-flight 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ussdloop.aio import as_deferred, install_asyncio_reactor  # noqa: E402

install_asyncio_reactor()

from dfsp.bulk import BulkSettings  # noqa: E402
from dfsp.domain.customers import Customer  # noqa: E402
from dfsp.domain.fees import TransactionType  # noqa: E402
from dfsp.domain.transfers import Posting  # noqa: E402
from dfsp.service import DfspService  # noqa: E402
from ussdloop.compose import start_network  # noqa: E402
from ussdloop.config import load_network  # noqa: E402
from ussdloop.money import Money  # noqa: E402

PIN = "4071"
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250)
    parser.add_argument("--payees", type=int, help="payees on each DFSP (default: rows / 2)")
    parser.add_argument("--in-flight", type=int, default=BulkSettings.rows_in_flight)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from twisted.internet import reactor

    outcome: dict[str, float] = {}

    async def bench() -> None:
        try:
            payees = args.payees or max(1, (args.rows + 1) // 2)
            outcome.update(await run(args.rows, payees, args.in_flight))
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
