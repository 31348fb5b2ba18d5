"""The auditor's desk as HTML (``dfsp.web.desk``), rendered on the server like
``dfsp.web.pages``: every value shown is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dfsp.auditing import MAX_REASON, CustomerProfile, Unchecked
from dfsp.domain.customers import Customer
from dfsp.domain.limits import Limits
from dfsp.domain.tiers import Tier
from dfsp.rule_book import MAX_DOCUMENT_CHARS, RuleChange
from dfsp.web.pages import csrf_field, layout
from dfsp.web.pages import escaped as _e
from dfsp.web.pages import money_text as _money
from dfsp.web.sessions import WebSession
from ussdloop.money import Money

PIN_FIELD = (
    '<label>Your PIN <input name="pin" type="password" inputmode="numeric" maxlength="12" '
    'data-testid="{testid}" required></label>'
)


def _when(at: datetime | None) -> str:
    return "never" if at is None else _e(at.strftime("%Y-%m-%d %H:%M UTC"))


def search_page(
    session: WebSession,
    *,
    query: str = "",
    found: Sequence[Customer] | None = None,
    unchecked: Sequence[Unchecked] | None = None,
    days: str = "",
) -> str:
    search = (
        '<section><h2>Find a customer</h2><form method="get" action="/admin/customers">'
        f'<label>User number, MSISDN or national ID <input name="q" value="{_e(query)}" '
        'maxlength="64" data-testid="query" required></label>'
        '<button data-testid="search">Search</button></form>'
        f"{'' if found is None else _customer_table(found, 'found')}</section>"
    )
    stale = (
        "<section><h2>Customers to check</h2>"
        '<form method="get" action="/admin/customers/unchecked">'
        f'<label>Not checked for more than <input name="days" value="{_e(days)}" '
        'inputmode="numeric" maxlength="5" size="5" data-testid="days"> days '
        "(empty: never checked)</label>"
        '<button data-testid="list-unchecked">List</button></form>'
        f"{'' if unchecked is None else _unchecked_table(unchecked)}</section>"
    )
    return layout("Customers", search + stale, session)


def _customer_table(customers: Sequence[Customer], testid: str) -> str:
    if not customers:
        return f'<p data-testid="{testid}-none">No customer matches.</p>'
    rows = "".join(
        f'<tr data-testid="{testid}-row"><td><a href="/admin/customers/{_e(c.id)}">'
        f"{_e(c.user_number)}</a></td><td>{_e(c.name)}</td><td>+{_e(c.msisdn)}</td>"
        f"<td>{_e(c.national_id)}</td><td>{_e(c.role)}</td>"
        f"<td>{'blacklisted' if c.blacklisted else ''}</td></tr>"
        for c in customers
    )
    return (
        f'<table data-testid="{testid}"><tr><th>User number</th><th>Name</th><th>MSISDN</th>'
        f"<th>National ID</th><th>Type</th><th></th></tr>{rows}</table>"
    )


def _unchecked_table(unchecked: Sequence[Unchecked]) -> str:
    if not unchecked:
        return '<p data-testid="unchecked-none">Everyone was checked within that time.</p>'
    rows = "".join(
        f'<tr data-testid="unchecked-row"><td><a href="/admin/customers/{_e(u.customer.id)}">'
        f"{_e(u.customer.user_number)}</a></td><td>{_e(u.customer.name)}</td>"
        f"<td>{_when(u.last_checked)}</td></tr>"
        for u in unchecked
    )
    return (
        '<table data-testid="unchecked"><tr><th>User number</th><th>Name</th>'
        f"<th>Last checked</th></tr>{rows}</table>"
    )


def profile_page(
    session: WebSession, profile: CustomerProfile, tiers: Sequence[Tier], *, own: bool
) -> str:
    customer = profile.customer
    parts = [
        _identity(profile),
        _accounts(profile),
        _fraud(profile),
        _tiers(profile),
    ]
    if own:
        parts.append(
            '<p class="note" data-testid="own-record">This is your own record: another '
            "auditor makes any change to it.</p>"
        )
    else:
        parts.append(_change_forms(session, profile, tiers))
    return layout(f"{customer.name} ({customer.user_number})", "".join(parts), session)


def _identity(profile: CustomerProfile) -> str:
    c = profile.customer
    status = (
        '<span class="badge state-failed" data-testid="standing">blacklisted</span>'
        if c.blacklisted
        else '<span class="badge state-paid" data-testid="standing">in good standing</span>'
    )
    return (
        f'<section data-testid="identity"><h2>Identity</h2><p>{status}</p><table>'
        f"<tr><th>Name</th><td>{_e(c.name)}</td></tr>"
        f"<tr><th>Birth date</th><td>{_e(c.date_of_birth.isoformat())}</td></tr>"
        f"<tr><th>National ID</th><td>{_e(c.national_id)}</td></tr>"
        f"<tr><th>User number</th><td>{_e(c.user_number)}</td></tr>"
        f"<tr><th>MSISDN</th><td>+{_e(c.msisdn)}</td></tr>"
        f"<tr><th>Type</th><td>{_e(c.role)}</td></tr>"
        f"<tr><th>Registered</th><td>{_when(c.created_at)}</td></tr>"
        f"<tr><th>PIN</th><td>{'locked' if c.pin_locked else 'active'}</td></tr>"
        "</table></section>"
    )


def _accounts(profile: CustomerProfile) -> str:
    blocks = []
    for standing in profile.accounts:
        a = standing.account
        recent = "".join(
            f"<tr><td>{_when(row.at)}</td><td>{_e(row.name)}</td><td>{_money(row.amount)}</td></tr>"
            for row in standing.recent
        )
        blocks.append(
            f'<h3 data-testid="account">{_e(a.name)}{" (primary)" if a.primary else ""}</h3>'
            f"<p>Type: {_e(a.kind)}; balance {_money(standing.balance)}, available "
            f"{_money(standing.available)}; holders: "
            f"{_e(', '.join(h.user_number for h in a.holders))}</p>"
            '<table data-testid="activity"><tr><th>When</th><th>With</th><th>Amount</th></tr>'
            f"{recent or '<tr><td colspan=3>no activity</td></tr>'}</table>"
        )
    return (
        "<section><h2>Accounts and recent activity</h2>"
        f"{''.join(blocks) or '<p>No account.</p>'}</section>"
    )


def _fraud(profile: CustomerProfile) -> str:
    last = profile.last_check
    last_text = (
        "Never checked."
        if last is None
        else f"{_when(last.at)} by {_e(last.actor)} ({_e(last.action)}): {_e(last.comment)}"
    )
    checks = "".join(
        f'<tr data-testid="check-row"><td>{_when(c.at)}</td><td>{_e(c.action)}</td>'
        f"<td>{_e(c.actor)}</td><td>{_e(c.comment)}</td>"
        f"<td>{'' if c.score is None else c.score}</td></tr>"
        for c in profile.checks
    )
    if profile.central is not None:
        user = profile.central
        reports = "; ".join(f"{_e(r.dfsp)}: {r.score} ({_e(r.reason)})" for r in user.reports)
        central = (
            f'<p data-testid="central">The centre: score {user.score}, '
            f"{'blacklisted' if user.blacklisted else 'not blacklisted'}"
            f"{' by ' + _e(user.changed_by) if user.changed_by else ''}"
            f"{' (' + _e(user.reason) + ')' if user.reason else ''}. "
            f"Reports: {reports or 'none'}.</p>"
        )
    else:
        problem = profile.central_problem or "no report"
        central = f'<p data-testid="central">The centre: {_e(problem)}.</p>'
    return (
        "<section><h2>Fraud checks</h2>"
        f'<p data-testid="last-check">Last check: {last_text}</p>{central}'
        "<table><tr><th>When</th><th>What</th><th>Auditor</th><th>Comment</th><th>Score</th></tr>"
        f"{checks or '<tr><td colspan=5>none</td></tr>'}</table></section>"
    )


def _tiers(profile: CustomerProfile) -> str:
    history = "".join(
        f"<tr><td>{_when(t.at)}</td><td>{_e(t.from_tier)} to {_e(t.to_tier)}</td>"
        f"<td>{_e(t.reason)}</td><td>{_e(t.actor or '')}</td><td>{_e(t.note)}</td></tr>"
        for t in profile.tier_history
    )
    return (
        f'<section><h2>Tier</h2><p>Tier: <span class="badge" data-testid="tier">'
        f"{_e(profile.tier.name)}</span>. Limits: {limits_text(profile.tier.limits)}.</p>"
        "<table><tr><th>When</th><th>Change</th><th>How</th><th>Auditor</th><th>Reason</th></tr>"
        f"{history or '<tr><td colspan=5>no change</td></tr>'}</table></section>"
    )


def limits_text(limits: Limits) -> str:
    def shown(value: Money | int | None) -> str:
        return (
            "none" if value is None else _money(value) if isinstance(value, Money) else str(value)
        )

    return "; ".join(
        f"{label} {shown(value)}"
        for label, value in (
            ("transfers a day:", limits.transfers_per_day),
            ("amount a day:", limits.amount_per_day),
            ("amount a week:", limits.amount_per_week),
            ("one transfer:", limits.max_transfer),
            ("balance:", limits.max_balance),
        )
    )


def _change_forms(session: WebSession, profile: CustomerProfile, tiers: Sequence[Tier]) -> str:
    base = f"/admin/customers/{_e(profile.customer.id)}"
    reason = (
        f'<label>Reason <input name="reason" maxlength="{MAX_REASON}" '
        'data-testid="{testid}" required></label>'
    )
    if profile.customer.blacklisted:
        listing = (
            f'<form method="post" action="{base}/unblacklist">{csrf_field(session)}'
            f"{reason.format(testid='unblacklist-reason')}"
            f"{PIN_FIELD.format(testid='unblacklist-pin')}"
            '<button data-testid="unblacklist">Unblacklist</button></form>'
        )
    else:
        listing = (
            f'<form method="post" action="{base}/blacklist">{csrf_field(session)}'
            f"{reason.format(testid='blacklist-reason')}"
            f"{PIN_FIELD.format(testid='blacklist-pin')}"
            '<button class="reject" data-testid="blacklist">Blacklist: no sending or '
            "receiving</button></form>"
        )
    options = "".join(
        f'<option value="{_e(t.name)}"{" selected" if t.name == profile.tier.name else ""}>'
        f"{_e(t.name)}</option>"
        for t in tiers
    )
    return (
        "<section><h2>Record a fraud check</h2>"
        f'<form method="post" action="{base}/checks">{csrf_field(session)}'
        f'<label>Comment <input name="comment" maxlength="{MAX_REASON}" '
        'data-testid="check-comment" required></label>'
        "<label>Score shared with the centre (0-100, empty: none; 100 blocks) "
        '<input name="score" inputmode="numeric" maxlength="3" size="3" '
        'data-testid="check-score"></label>'
        f"{PIN_FIELD.format(testid='check-pin')}"
        '<button data-testid="record-check">Record the check</button></form></section>'
        f"<section><h2>Blacklist</h2>{listing}</section>"
        "<section><h2>Change the tier</h2>"
        f'<form method="post" action="{base}/tier">{csrf_field(session)}'
        f'<label>Tier <select name="tier" data-testid="tier-choice">{options}</select></label>'
        f"{reason.format(testid='tier-reason')}"
        f"{PIN_FIELD.format(testid='tier-pin')}"
        '<button data-testid="change-tier">Change the tier</button></form></section>'
    )


def rules_page(session: WebSession, *, fees: str, tiers: str, history: Sequence[RuleChange]) -> str:
    changes = "".join(
        f'<tr data-testid="rule-change"><td>{_when(c.at)}</td><td>{_e(c.kind)}</td>'
        f"<td>{_e(c.actor)}</td><td>{_e(c.reason)}</td></tr>"
        for c in history
    )
    return layout(
        "Fees, limits and tiers",
        _rules_form(session, "fees", fees, "Fees ([dfsps.X.fees] of the configuration)")
        + _rules_form(session, "tiers", tiers, "Tiers and their limits, lowest first")
        + "<section><h2>Changes</h2><table><tr><th>When</th><th>Table</th><th>Auditor</th>"
        f"<th>Reason</th></tr>{changes or '<tr><td colspan=4>none: as configured</td></tr>'}"
        "</table></section>",
        session,
    )


def _rules_form(session: WebSession, kind: str, text: str, title: str) -> str:
    return (
        f"<section><h2>{_e(title)}</h2>"
        f'<form method="post" action="/admin/rules/{kind}">{csrf_field(session)}'
        f'<textarea name="table" rows="16" cols="100" maxlength="{MAX_DOCUMENT_CHARS}" '
        f'data-testid="{kind}-table">{_e(text)}</textarea>'
        f'<label>Reason <input name="reason" maxlength="{MAX_REASON}" '
        f'data-testid="{kind}-reason" required></label>'
        f"{PIN_FIELD.format(testid=kind + '-pin')}"
        f'<button data-testid="change-{kind}">Put these {kind} in force</button></form></section>'
    )
