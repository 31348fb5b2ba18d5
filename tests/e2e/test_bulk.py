"""Acceptance (back office, 1): a business on dfsp1 pays a 250-row file through the bulk
API on the two-DFSP network: every valid row paid on both DFSPs, malformed rows and
name mismatches reported, a row short of funds retried and paid once topped up, two
payees without accounts invited by SMS and paid once they on-board before the end, and
the three ledgers reconciled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dfsp.bulk import BulkSettings
from dfsp.bulk_client import BatchStatus, BulkClient
from dfsp.domain.bulk import transfer_id
from dfsp.domain.customers import Customer
from dfsp.domain.transfers import Posting
from dfsp.service import DfspService
from tests.e2e.phones import PIN, Phone, dfsp_network, onboard
from tests.e2e.test_clearing_send_money import clearing_balance, operator_ledger
from tests.support import asyncio_test
from ussdloop.money import Money

HEADER = "sequenceNumber,identifier,firstName,lastName,nationalId,dob,amount\n"
PAYEES_EACH = 12


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


async def register(dfsp: DfspService, n: int, first: str, last: str = "Worker") -> Customer:
    assert dfsp.customers is not None
    return await dfsp.customers.register(
        f"+25671{n:07d}", first, last, "1990-05-17", f"NI{n:06d}", "main", "customer", PIN
    )


async def balance(dfsp: DfspService, customer: Customer) -> Money:
    assert dfsp.customers is not None and dfsp.ledger is not None
    account = (await dfsp.customers.accounts_of(customer.id))[0]
    return (await dfsp.ledger.balance(account.ledger_account_id))[0]


def row(seq: int, identifier: str, first: str, last: str, nid: str, amount: str) -> str:
    return f"{seq},{identifier},{first},{last},{nid},1990-05-17,{amount}\n"


async def wait_done(
    client: BulkClient, batch_id: str, maker: Customer, seconds: float
) -> BatchStatus:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        status = await client.status(batch_id, maker.id, PIN)
        if status.finished or asyncio.get_running_loop().time() > deadline:
            return status
        await asyncio.sleep(0.2)


@asyncio_test
async def test_a_250_row_file_is_paid_across_both_dfsps_and_reconciles(tmp_path: Path) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        dfsp1, dfsp2 = carrier.dfsps["dfsp1"], carrier.dfsps["dfsp2"]
        assert dfsp1.bulk is not None and dfsp1.customers is not None and dfsp1.ledger is not None
        dfsp1.bulk.bulk.settings = BulkSettings(
            rows_per_second=0, retry_interval=timedelta(seconds=1)
        )
        maker = await register(dfsp1, 1, "Acme", "Payroll")
        checker = await register(dfsp1, 2, "Ada", "Checker")
        source = (await dfsp1.customers.accounts_of(maker.id))[0]
        await dfsp1.customers.add_holder(
            maker.id, source.id, str(checker.user_number), signatory=False
        )
        await dfsp1.customers.change_tier(
            maker.id, "business", actor="auditor", reason="bulk payer"
        )
        await dfsp1.bulk.bulk.grant_role(maker.id, "maker")
        await dfsp1.bulk.bulk.grant_role(checker.id, "checker")
        here = [await register(dfsp1, 100 + i, f"Here{i}") for i in range(PAYEES_EACH)]
        there = [await register(dfsp2, 200 + i, f"There{i}") for i in range(PAYEES_EACH)]
        before = {p.id: await balance(dfsp1, p) for p in here} | {
            p.id: await balance(dfsp2, p) for p in there
        }

        lines = []
        for i in range(242):  # 4 USD each: 968 + 121 scheme fees of 0.50 > 1000: some wait
            p = (here if i % 2 == 0 else there)[(i // 2) % PAYEES_EACH]
            lines.append(
                row(i + 1, str(p.user_number), p.first_name, p.last_name, p.national_id, "4")
            )
        malformed = [
            row(243, "12345678", "=HYPERLINK(x)", "Worker", "NI1", "4"),
            row(244, "12345678", "Ann", "Worker", "NI1", "4.555"),
            "245,12345678,Ann,Worker\n",
            row(246, "0700123456", "Ann", "Worker", "NI1", "4"),
        ]
        mismatches = [
            row(247, str(here[0].user_number), "Wrong", "Name", here[0].national_id, "4"),
            row(248, str(there[0].user_number), "Wrong", "Name", "NI000200", "4"),
        ]
        invited = [
            row(249, "+256719999901", "Nia", "Odu", "NI999901", "7"),
            row(250, "+256719999902", "Oba", "Eze", "NI999902", "8"),
        ]
        text = HEADER + "".join(lines + malformed + mismatches + invited)

        client = BulkClient(dfsp1.base_url, http)
        end = datetime.now(UTC) + timedelta(minutes=10)
        uploaded = await client.upload(maker.id, PIN, source.id, text, end_at=end)
        assert uploaded.state == "draft" and uploaded.rows_total == 250
        assert uploaded.by_state == {"pending": 242, "failed": 6, "invited": 2}
        reasons = {r["line"] - 1: (r["reason"] or "") for r in uploaded.rows}  # by sequence
        assert reasons[247].startswith("name_mismatch") and reasons[248].startswith("name_mismatch")
        assert "formula" in reasons[243] and reasons[246].startswith("bad_msisdn")

        await client.approve(uploaded.batch_id, checker.id, PIN)
        # Paid until the funds run out: those rows wait, then a top-up lets them through.
        deadline = asyncio.get_running_loop().time() + 90
        while True:
            status = await client.status(uploaded.batch_id, maker.id, PIN)
            if status.by_state.get("pending", 0) == 0:
                break
            assert asyncio.get_running_loop().time() < deadline, status.by_state
            await asyncio.sleep(0.2)
        waiting = [r for r in status.rows if r["state"] == "waiting"]
        assert waiting and all("InsufficientFunds" in r["reason"] for r in waiting)
        await dfsp1.ledger.transfer_now(
            "top-up-acme", [Posting("float", source.ledger_account_id, 20_000)], kind="cash_in"
        )
        # The two invited payees got an SMS and open their accounts by phone.
        for msisdn, first, last, nid in (
            ("256719999901", "Nia", "Odu", "NI999901"),
            ("256719999902", "Oba", "Eze", "NI999902"),
        ):
            phone = Phone(carrier, http, msisdn)
            invite = await phone.sms_containing("wants to pay you")
            assert "Dial *123# to open an account before" in invite, invite
            await onboard(phone, first, last, national_id=nid, born="1990-05-17")

        final = await wait_done(client, uploaded.batch_id, maker, 60)
        assert final.state == "done", final.by_state
        assert final.by_state == {"paid": 244, "failed": 6}
        report = await client.report_csv(uploaded.batch_id, checker.id, PIN)
        assert len(report.splitlines()) == 251 and ",paid," in report

        # Reconcile: payees got their principals, the maker paid principals + fee rows.
        paid = [r for r in final.rows if r["state"] == "paid"]
        principals = sum(usd(r["amount"]["amount"]).minor for r in paid)
        fees = sum(usd(r["fee"]["amount"]).minor for r in paid)
        assert principals == 242 * 400 + 700 + 800
        for w in waiting:  # paid on a later attempt, under a new transfer id
            again = next(r for r in paid if r["line"] == w["line"])
            assert again["transferId"] != transfer_id(uploaded.batch_id, w["sequenceNumber"], 0)
        spent = usd("1000") + usd("200") - await balance(dfsp1, maker)
        assert spent.minor == principals + fees
        for p in here:
            count = sum(1 for r in paid if r["identifier"] == str(p.user_number))
            assert await balance(dfsp1, p) - before[p.id] == Money("USD", 400 * count)
        for p in there:
            count = sum(1 for r in paid if r["identifier"] == str(p.user_number))
            assert await balance(dfsp2, p) - before[p.id] == Money("USD", 400 * count)
        remote = sum(
            usd(r["amount"]["amount"]).minor
            for r in paid
            if r["line"] % 2 == 1 and r["line"] <= 243
        )
        assert await clearing_balance(dfsp2) == Money("USD", -remote)
        across = next(r for r in paid if r["line"] % 2 == 1 and r["line"] <= 243)
        held = await dfsp1.ledger.transfer(across["transferId"])
        assert held.memo is not None and held.memo["bulk"] is True  # no notice per row
        scheme = usd("0.50").minor * 121
        assert await clearing_balance(dfsp1) == Money("USD", remote + scheme)
        for dfsp in (dfsp1, dfsp2):
            assert dfsp.ledger is not None
            assert await dfsp.ledger.total_balance("USD") == usd("0")
        positions = {p.account: p.net for p in await operator_ledger(carrier, http).positions()}
        assert positions["dfsp1"] == Money("USD", -(remote + scheme))
        assert positions["dfsp2"] == Money("USD", remote)
        assert sum(net.minor for net in positions.values()) == 0
