"""The console's HTML: one layout, small builders, every value escaped once here.

No template engine and no script: the pages are short, so they are built as strings
with ``esc`` on everything that comes from data or input. The stylesheet is served by
the console itself (``/console/console.css``), so the Content-Security-Policy forbids
every inline style, script and foreign origin.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Final

from aiohttp import web

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

CSS: Final = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1d2330; background: #f5f6f8; }
header { background: #1d3557; color: white; padding: .6rem 1.5rem; display: flex;
  align-items: center; gap: 1.5rem; }
header a { color: white; text-decoration: none; }
header form { margin-left: auto; }
main { padding: 1rem 1.5rem; max-width: 70rem; }
table { border-collapse: collapse; background: white; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccd; padding: .3rem .6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.error { background: #fde2e1; border: 1px solid #c0392b; padding: .6rem; margin: .5rem 0; }
.notice { background: #e3f4e1; border: 1px solid #2e7d32; padding: .6rem; margin: .5rem 0; }
.secret { font-family: monospace; font-size: 1.1rem; background: #fff8d6; padding: .2rem; }
form.inline { display: inline; }
section { margin-bottom: 1.5rem; }
"""

NAVIGATION: Final = (
    ("/console/dfsps", "DFSPs"),
    ("/console/positions", "Positions"),
    ("/console/settlements", "Settlements"),
    ("/console/fraud", "Fraud reports"),
    ("/console/forensic", "Forensic log"),
)


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def page(
    title: str,
    body: str,
    *,
    csrf: str | None = None,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> web.Response:
    """A whole page; ``csrf`` None: not logged in (no navigation)."""
    top = ""
    if csrf is not None:
        links = " ".join(f'<a href="{href}">{esc(text)}</a>' for href, text in NAVIGATION)
        logout = form("/console/logout", csrf, button("Log out", "logout"), inline=True)
        top = f"<header><strong>Switch console</strong> {links} {logout}</header>"
    messages = ""
    if error:
        messages += f'<p class="error" role="alert" data-testid="error">{esc(error)}</p>'
    if notice:
        messages += f'<p class="notice" data-testid="notice">{esc(notice)}</p>'
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)} - switch console</title>"
        '<link rel="stylesheet" href="/console/console.css"></head>'
        f"<body>{top}<main><h1>{esc(title)}</h1>{messages}{body}</main></body></html>"
    )
    return web.Response(
        text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS
    )


def form(action: str, csrf: str, fields: str, *, inline: bool = False) -> str:
    kind = ' class="inline"' if inline else ""
    token = f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
    return f'<form method="post" action="{esc(action)}"{kind}>{token}{fields}</form>'


def button(text: str, testid: str) -> str:
    return f'<button type="submit" data-testid="{esc(testid)}">{esc(text)}</button>'


def field(label: str, name: str, testid: str, *, kind: str = "text", size: int = 20) -> str:
    return (
        f"<label>{esc(label)} "
        f'<input type="{kind}" name="{esc(name)}" data-testid="{esc(testid)}" '
        f'maxlength="{size * 4}" size="{size}"></label> '
    )


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, testid: str, numeric: int = 0
) -> str:
    """Cells are HTML already (escape them with ``esc``); the last ``numeric`` columns
    are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    lines = []
    for row in rows:
        first = len(row) - numeric
        cells = "".join(
            f'<td class="num">{cell}</td>' if i >= first else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        lines.append(f"<tr>{cells}</tr>")
    empty = "" if lines else f'<tr><td colspan="{len(headers)}">none</td></tr>'
    return f'<table data-testid="{esc(testid)}"><tr>{head}</tr>{"".join(lines)}{empty}</table>'
