"""The console's read-only views: what each page shows, as (title, HTML body).

The DFSP list, positions, settlements, fraud reports and the forensic log are read
through the components' own use cases (``CentralLedger``, ``ForensicLog``), except two
lists no use case offers yet, read here in one read-only transaction each: the last
settlements and the fraud reports and blacklist.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from central.console.html import button, esc, field, form, table
from central.forensic.service import ForensicLog
from central.fraud.store import BlacklistRow, FraudReportRow
from central.ledger.domain import FEE_ACCOUNT
from central.ledger.service import CentralLedger, SettlementTotals
from central.ledger.store import LedgerSettlementRow
from central.participants import Participant, Status
from ussdloop import db
from ussdloop.forensic import Record
from ussdloop.money import Money

MAX_LISTED: Final = 200  # rows on a list page
MAX_SETTLEMENTS: Final = 20

View = tuple[str, str]


def dfsps_view(everyone: list[Participant], currency: str, csrf: str) -> View:
    rows = []
    for dfsp in everyone:
        name = esc(dfsp.name)
        cap = (
            "none"
            if dfsp.net_debit_cap_minor is None
            else esc(Money(currency, dfsp.net_debit_cap_minor))
        )
        toggle = "unpause" if dfsp.status is Status.PAUSED else "pause"
        actions = form(
            f"/console/dfsps/{dfsp.name}/{toggle}",
            csrf,
            button(toggle.capitalize(), f"{toggle}-{dfsp.name}"),
            inline=True,
        )
        set_cap = form(
            f"/console/dfsps/{dfsp.name}/cap",
            csrf,
            field("Cap", "cap", f"cap-{dfsp.name}", size=10)
            + button("Set cap", f"set-cap-{dfsp.name}"),
            inline=True,
        )
        clear_cap = form(
            f"/console/dfsps/{dfsp.name}/cap",
            csrf,
            '<input type="hidden" name="clear" value="1">'
            + button("Clear cap", f"clear-cap-{dfsp.name}"),
            inline=True,
        )
        status = f'<span data-testid="status-{name}">{esc(dfsp.status)}</span>'
        rows.append(
            [
                name,
                status,
                f'<span data-testid="cap-value-{name}">{cap}</span>',
                actions,
                set_cap + clear_cap,
            ]
        )
    register = form(
        "/console/dfsps",
        csrf,
        field("Name", "name", "register-name")
        + field(f"Net debit cap ({currency}, empty for none)", "cap", "register-cap", size=10)
        + button("Register", "register"),
    )
    body = (
        table(["DFSP", "Status", "Net debit cap", "Pause", "Cap"], rows, testid="dfsps")
        + f"<section><h2>Register a DFSP</h2>{register}</section>"
    )
    return "DFSPs", body


def credentials_view(name: str, key: str, secret: str) -> View:
    body = (
        "<p>Give these to the DFSP now: the secret is shown this once and cannot be shown"
        " again (only its hash is kept).</p>"
        f'<p>Name: <span data-testid="new-name">{esc(name)}</span></p>'
        f'<p>Key: <span class="secret" data-testid="new-key">{esc(key)}</span></p>'
        f'<p>Secret: <span class="secret" data-testid="new-secret">{esc(secret)}</span></p>'
        '<p><a href="/console/dfsps">Back to the DFSPs</a></p>'
    )
    return "DFSP registered", body


async def positions_view(ledger: CentralLedger, currency: str) -> View:
    positions = await ledger.positions()
    rows = []
    for p in positions:
        label = f"{p.account} (central fees)" if p.account == FEE_ACCOUNT else p.account
        rows.append(
            [
                f'<span data-testid="position-{esc(p.account)}">{esc(label)}</span>',
                esc(Money(currency, p.payments_minor)),
                esc(Money(currency, p.receipts_minor)),
                f'<span data-testid="net-{esc(p.account)}">'
                f"{esc(Money(currency, p.net_minor))}</span>",
            ]
        )
    body = "<p>Executed transfers not yet settled (live; reload for the latest).</p>" + table(
        ["Account", "Payments", "Receipts", "Net"], rows, testid="positions", numeric=3
    )
    return "Positions", body


async def settlements_view(sessions: async_sessionmaker[AsyncSession], csrf: str) -> View:
    async with _reading(sessions) as session:
        recent = list(
            await session.scalars(
                select(LedgerSettlementRow)
                .order_by(LedgerSettlementRow.settled_at.desc())
                .limit(MAX_SETTLEMENTS)
            )
        )
    rows = [
        [
            f'<a href="/console/settlements/{esc(s.id)}">{esc(s.id)}</a>',
            esc(s.settled_at.isoformat()),
            esc(s.transfer_count),
        ]
        for s in recent
    ]
    close = form(
        "/console/settlements",
        csrf,
        "<p>Closing the window settles every executed transfer not yet settled.</p>"
        + button("Close the settlement window", "close-window"),
    )
    body = (
        close
        + "<h2>Last settlements</h2>"
        + table(["Settlement", "Closed at", "Transfers"], rows, testid="settlements", numeric=1)
    )
    return "Settlements", body


def settlement_view(settlement: SettlementTotals, currency: str) -> View:
    rows = [
        [
            esc(account),
            f'<span data-testid="settled-{esc(account)}">{esc(Money(currency, net))}</span>',
        ]
        for account, net in settlement.nets_minor
    ]
    total = sum(net for _, net in settlement.nets_minor)
    rows.append(
        [
            "<strong>Sum</strong>",
            f'<span data-testid="settled-sum">{esc(Money(currency, total))}</span>',
        ]
    )
    body = (
        f'<p>Settlement <span data-testid="settlement-id">{esc(settlement.id)}</span>, closed'
        f" {esc(settlement.settled_at.isoformat())}, {esc(settlement.transfers)} transfers.</p>"
        + table(["Account", "Net"], rows, testid="settlement", numeric=1)
        + f'<p><a href="/console/settlements/{esc(settlement.id)}/report.csv" download'
        ' data-testid="report">Download the settlement report (CSV)</a></p>'
    )
    return "Settlement", body


def settlement_csv(settlement: SettlementTotals, currency: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["settlement_id", "settled_at", "transfers", "account", "net", "currency"])
    for account, net in settlement.nets_minor:
        writer.writerow(
            [
                settlement.id,
                settlement.settled_at.isoformat(),
                settlement.transfers,
                account,
                str(Money(currency, net)),
                currency,
            ]
        )
    return out.getvalue()


async def fraud_view(sessions: async_sessionmaker[AsyncSession]) -> View:
    async with _reading(sessions) as session:
        blacklist = list(
            await session.scalars(
                select(BlacklistRow)
                .where(BlacklistRow.blacklisted.is_(True))
                .order_by(BlacklistRow.changed_at.desc())
                .limit(MAX_LISTED)
            )
        )
        reports = list(
            await session.scalars(
                select(FraudReportRow).order_by(FraudReportRow.reported_at.desc()).limit(MAX_LISTED)
            )
        )
    listed = [
        [esc(r.user_number), esc(r.reason), esc(r.changed_by), esc(r.changed_at.isoformat())]
        for r in blacklist
    ]
    reported = [
        [
            esc(r.user_number),
            esc(r.dfsp),
            esc(r.reason),
            esc(r.reported_at.isoformat()),
            esc(r.score),
        ]
        for r in reports
    ]
    body = (
        f"<h2>Blacklisted users</h2><p>The latest {MAX_LISTED} at most.</p>"
        + table(["User number", "Reason", "By", "Since"], listed, testid="blacklist")
        + "<h2>Reports</h2>"
        + table(
            ["User number", "DFSP", "Reason", "Reported at", "Score"],
            reported,
            testid="fraud-reports",
            numeric=1,
        )
    )
    return "Fraud reports", body


def forensic_forms() -> str:
    verify = (
        '<form method="get" action="/console/forensic/verify">'
        + button("Verify every chain", "verify")
        + "</form>"
    )
    lookup = (
        '<form method="get" action="/console/forensic/transfer">'
        + field("Transfer id", "id", "transfer-id", size=40)
        + button("Show its path", "lookup")
        + "</form>"
    )
    return f"<section>{verify}</section><section>{lookup}</section>"


async def verify_view(log: ForensicLog) -> View:
    report = await log.verify()
    rows = []
    for chain in report.chains:
        intact = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in chain.intact) or "none"
        problems = "; ".join(
            f"{finding.problem} at {finding.seq}: {finding.detail}"
            if finding.seq is not None
            else f"{finding.problem}: {finding.detail}"
            for finding in chain.findings
        )
        rows.append([esc(chain.service), esc(chain.last_seq), esc(intact), esc(problems or "none")])
    verdict = "every chain is intact" if report.ok else "problems found"
    body = (
        forensic_forms()
        + f'<p data-testid="verdict">Verification: {esc(verdict)}.</p>'
        + table(["Service", "Last seq", "Intact", "Problems"], rows, testid="chains")
    )
    return "Forensic log", body


def path_view(transfer_id: str, records: list[Record]) -> View:
    rows = [
        [
            esc(r.at),
            esc(r.service),
            esc(r.seq),
            esc(r.event),
            esc(r.subject),
            f"<code>{esc(json.dumps(r.data, sort_keys=True))}</code>",
        ]
        for r in records
    ]
    body = (
        forensic_forms()
        + f"<p>The path of transfer <code>{esc(transfer_id)}</code>, by time.</p>"
        + table(["At", "Service", "Seq", "Event", "Subject", "Data"], rows, testid="path")
    )
    return "Forensic log", body


@asynccontextmanager
async def _reading(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A read-only transaction, as the components read."""
    async with sessions() as session, session.begin():
        await session.connection(execution_options=db.READ_ONLY)
        yield session
