"""The back office's HTML, rendered on the server: every value shown goes through
``html.escape`` (a payee's name is whatever the maker's file said)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Final

from dfsp.bulk import BatchView, RowView
from dfsp.domain.bulk import BatchState
from dfsp.domain.customers import CustomerAccount
from dfsp.web.sessions import WebSession
from ussdloop.money import Money

REFRESH_SECONDS: Final = 2
LIVE_STATES: Final = frozenset({BatchState.APPROVED, BatchState.RUNNING})


def escaped(value: object) -> str:
    return escape(str(value), quote=True)


def money_text(amount: Money | None) -> str:
    return "" if amount is None else escaped(f"{amount} {amount.currency}")


def layout(title: str, body: str, session: WebSession | None = None, refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    who = ""
    if session is not None and session.customer_id is not None:
        who = (
            f'<span data-testid="who">{escaped(session.name)} '
            f"({escaped(session.user_number)})</span>"
            '<form method="post" action="/admin/logout">'
            f"{csrf_field(session)}"
            '<button data-testid="logout">Log out</button></form>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"{meta}<title>{escaped(title)} - back office</title>"
        '<link rel="stylesheet" href="/admin/static/admin.css"></head><body>'
        f"<header><nav>{_nav(session)}</nav>{who}</header>"
        f"<main><h1>{escaped(title)}</h1>{body}</main></body></html>"
    )


def _nav(session: WebSession | None) -> str:
    """Links to the desks of the roles this session's customer has."""
    roles = frozenset() if session is None else session.roles
    links = []
    if roles & {"maker", "checker"}:
        links.append('<a href="/admin/batches" data-testid="nav-bulk">Bulk payments</a>')
    if "auditor" in roles:
        links.append('<a href="/admin/customers" data-testid="nav-customers">Customers</a>')
        links.append('<a href="/admin/rules" data-testid="nav-rules">Fees and tiers</a>')
    return " ".join(links) or '<a href="/admin/">Back office</a>'


def csrf_field(session: WebSession) -> str:
    return f'<input type="hidden" name="csrf" value="{escaped(session.csrf)}">'


def refused_page(message: str, session: WebSession | None, back: str) -> str:
    body = (
        f'<p class="error" data-testid="error">{escaped(message)}</p>'
        f'<p>Nothing was changed. <a href="{escaped(back)}">Back</a></p>'
    )
    return layout("Refused", body, session)


def login_page(session: WebSession) -> str:
    body = (
        '<section><form method="post" action="/admin/login">'
        f"{csrf_field(session)}"
        '<label>User number <input name="user_number" inputmode="numeric" maxlength="12" '
        'autocomplete="username" data-testid="user-number" required></label>'
        '<label>PIN <input name="pin" type="password" inputmode="numeric" maxlength="12" '
        'autocomplete="current-password" data-testid="pin" required></label>'
        '<button data-testid="login">Log in</button>'
        '</form><p class="note">Three wrong PINs lock the PIN until your provider resets it.'
        "</p></section>"
    )
    return layout("Log in", body)


def home_page(
    session: WebSession,
    *,
    accounts: Sequence[CustomerAccount] | None,
    own: Sequence[BatchView],
    to_check: Sequence[BatchView] | None,
) -> str:
    parts = []
    if accounts is not None:
        parts.append(_upload_form(session, accounts))
        parts.append(_batch_list("Your batches", own, "own-batches"))
    if to_check is not None:
        parts.append(_batch_list("Waiting for your approval", to_check, "to-check"))
    if not parts:
        parts.append('<p class="error">The DFSP has not given you a bulk role.</p>')
    return layout("Bulk payments", "".join(parts), session)


def _upload_form(session: WebSession, accounts: Sequence[CustomerAccount]) -> str:
    options = "".join(
        f'<option value="{escaped(a.id)}">{escaped(a.name)} ({escaped(a.currency)})</option>'
        for a in accounts
        if a.permissions.can_send
    )
    return (
        "<section><h2>Upload a batch</h2>"
        '<form method="post" action="/admin/batches" enctype="multipart/form-data">'
        f"{csrf_field(session)}"
        "<label>CSV file (sequenceNumber,identifier,firstName,lastName,nationalId,dob,amount)"
        ' <input type="file" name="file" accept=".csv,text/csv" data-testid="file" required>'
        "</label>"
        f'<label>Pay from <select name="account" data-testid="account">{options}</select></label>'
        "<label>Retry until (UTC; empty: the default window) "
        '<input type="datetime-local" name="end_at" data-testid="end-at"></label>'
        '<label>Your PIN <input name="pin" type="password" inputmode="numeric" maxlength="12" '
        'data-testid="upload-pin" required></label>'
        '<button data-testid="upload">Upload and check</button></form></section>'
    )


def _batch_list(title: str, batches: Iterable[BatchView], testid: str) -> str:
    rows = "".join(
        f'<tr><td><a href="/admin/batches/{escaped(b.id)}">{escaped(b.id[:8])}</a></td>'
        f"<td>{escaped(b.created_at.strftime('%Y-%m-%d %H:%M'))}</td>"
        f"<td>{escaped(b.state)}</td><td>{b.totals.rows}</td></tr>"
        for b in batches
    )
    return (
        f'<section><h2>{escaped(title)}</h2><table data-testid="{escaped(testid)}">'
        "<tr><th>Batch</th><th>Uploaded</th><th>State</th><th>Rows</th></tr>"
        f"{rows or '<tr><td colspan=4>none</td></tr>'}</table></section>"
    )


def batch_page(session: WebSession, batch: BatchView, *, may_decide: bool, is_maker: bool) -> str:
    totals = batch.totals
    counts = ", ".join(f"{escaped(k)}: {v}" for k, v in sorted(totals.by_state.items()))
    finished = batch.state not in LIVE_STATES and batch.state is not BatchState.DRAFT
    summary = (
        f'<section><p>State: <span class="badge" data-testid="batch-state">{escaped(batch.state)}'
        f"</span>{' (finished)' if finished else ''}</p>"
        f'<p data-testid="totals">Rows: {totals.rows} ({counts}). Paid: {money_text(totals.paid)}; '
        f"fees: {money_text(totals.fees)}; still to pay: {money_text(totals.open)}.</p>"
        f"<p>Retries until {escaped(batch.end_at.isoformat())}."
        f"{' Note: ' + escaped(batch.note) if batch.note else ''}</p>"
        f'<p><a href="/admin/batches/{escaped(batch.id)}/report.csv" data-testid="report">'
        "Download the report (CSV)</a></p></section>"
    )
    decision = ""
    if batch.state is BatchState.DRAFT and may_decide:
        decision = _decision_forms(session, batch.id)
    elif batch.state is BatchState.DRAFT and is_maker:
        decision = (
            '<p class="note" data-testid="waiting-checker">Waiting for a checker: the maker '
            "of a batch cannot approve it.</p>"
        )
    table = (
        '<section><h2>Rows</h2><table data-testid="rows"><tr><th>Line</th><th>Seq</th>'
        "<th>Identifier</th><th>Name</th><th>Amount</th><th>State</th><th>Reason</th>"
        f"<th>Fee</th></tr>{''.join(_row(r) for r in batch.rows)}</table></section>"
    )
    title = f"Batch {batch.id[:8]}"
    return layout(title, summary + decision + table, session, refresh=batch.state in LIVE_STATES)


def _row(row: RowView) -> str:
    return (
        f'<tr data-testid="row" data-line="{row.line}" data-state="{escaped(row.state)}">'
        f"<td>{row.line}</td><td>{'' if row.sequence is None else row.sequence}</td>"
        f"<td>{escaped(row.identifier)}</td>"
        f"<td>{escaped(row.first_name)} {escaped(row.last_name)}</td>"
        f"<td>{money_text(row.amount)}</td>"
        f'<td class="state-{escaped(row.state)}">{escaped(row.state)}</td>'
        f"<td>{escaped(row.reason or '')}</td>"
        f"<td>{money_text(row.fee)}</td></tr>"
    )


def _decision_forms(session: WebSession, batch_id: str) -> str:
    return (
        "<section><h2>Approve or reject</h2>"
        f'<form method="post" action="/admin/batches/{escaped(batch_id)}/approve">'
        f"{csrf_field(session)}"
        '<label>Your PIN <input name="pin" type="password" inputmode="numeric" maxlength="12" '
        'data-testid="approve-pin" required></label>'
        '<button data-testid="approve">Approve: pay this batch</button></form>'
        f'<form method="post" action="/admin/batches/{escaped(batch_id)}/reject">'
        f"{csrf_field(session)}"
        '<label>Your PIN <input name="pin" type="password" inputmode="numeric" maxlength="12" '
        'data-testid="reject-pin" required></label>'
        '<label>Note <input name="note" maxlength="200" data-testid="reject-note"></label>'
        '<button class="reject" data-testid="reject">Reject</button></form></section>'
    )
