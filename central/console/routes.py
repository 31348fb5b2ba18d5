"""The console's routes: login and logout, and the operator's pages behind them.

Every page but the login needs a live console session (else 303 to the login page);
every POST also needs the session's CSRF token in its form (else 403, nothing done). A
request carrying a DFSP's HTTP Basic credentials is refused (403): the console is the
switch operator's alone, and only the operator's key and secret open a session.
Refused input (``HttpError``: bad amount, unknown DFSP, taken name...) re-shows the page
with the message and the error's status, and nothing changed.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol, cast

from aiohttp import web
from multidict import MultiDictProxy

from central.auth import CALLER
from central.component import CentralContext, Component
from central.console import views
from central.console.html import CSS, SECURITY_HEADERS, button, field, page
from central.console.sessions import ConsoleSession, Sessions, csrf_matches
from central.errors import ForbiddenError, NotFoundError, ValidationError
from central.forensic.service import ForensicLog
from central.ledger.domain import checked_transfer_id
from central.ledger.service import CentralLedger
from central.participants import NAME, Participant, Status
from ussdloop.http import HttpError
from ussdloop.money import Money, MoneyError

COOKIE: Final = "console_session"
MAX_FIELD: Final = 200  # characters in any form field
BY: Final = "operator (console)"

log = logging.getLogger(__name__)


class SetStatus(Protocol):
    async def __call__(
        self,
        context: CentralContext,
        components: Sequence[Component],
        name: str,
        status: Status,
        *,
        by: str,
    ) -> Participant: ...


class LogChange(Protocol):
    async def __call__(
        self, context: CentralContext, event: str, participant: Participant, *, by: str
    ) -> None: ...


Form = MultiDictProxy[str]
Back = Callable[[ConsoleSession], Awaitable[views.View]]
WebHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Page = Callable[[web.Request, ConsoleSession, Form], Awaitable[web.StreamResponse]]


class Console:
    def __init__(
        self,
        context: CentralContext,
        components: Sequence[Component],
        set_status: SetStatus,
        log_change: LogChange,
        sessions: Sessions | None = None,
    ) -> None:
        self._context = context
        self._components = components
        self._set_status = set_status
        self._log_change = log_change
        self._sessions = sessions or Sessions()
        self._currency = context.settings.currency
        services = {k: v for c in components for k, v in c.services.items()}
        self._ledger = cast(CentralLedger, services["ledger"])
        self._forensic = cast(ForensicLog, services["forensic_log"])

    def routes(self) -> list[web.RouteDef]:
        guard = self._guard
        return [
            web.get("/console", self.home),
            web.get("/console/", self.home),
            web.get("/console/console.css", self.stylesheet),
            web.get("/console/login", self.login_page),
            web.post("/console/login", self.login),
            web.post("/console/logout", guard(self.logout)),
            web.get("/console/dfsps", guard(self.dfsps)),
            web.post("/console/dfsps", guard(self.register, back=self._dfsps_view)),
            web.post("/console/dfsps/{name}/pause", guard(self.pause, back=self._dfsps_view)),
            web.post("/console/dfsps/{name}/unpause", guard(self.unpause, back=self._dfsps_view)),
            web.post("/console/dfsps/{name}/cap", guard(self.cap, back=self._dfsps_view)),
            web.get("/console/positions", guard(self.positions)),
            web.get("/console/settlements", guard(self.settlements)),
            web.post("/console/settlements", guard(self.close_window, back=self._settlements)),
            web.get("/console/settlements/{id}", guard(self.settlement)),
            web.get("/console/settlements/{id}/report.csv", guard(self.report)),
            web.get("/console/fraud", guard(self.fraud)),
            web.get("/console/forensic", guard(self.forensic)),
            web.get("/console/forensic/verify", guard(self.verify)),
            web.get("/console/forensic/transfer", guard(self.transfer_path)),
        ]

    # --- login ------------------------------------------------------------------------

    async def home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther("/console/dfsps")

    async def stylesheet(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=CSS, content_type="text/css", headers=SECURITY_HEADERS)

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        return _login_form()

    async def login(self, request: web.Request) -> web.StreamResponse:
        _refuse_dfsp(request)
        sent = await _form(request)
        key, secret = _text(sent, "key"), _text(sent, "secret")
        settings = self._context.settings
        key_ok = hmac.compare_digest(key.encode(), settings.operator_key.encode())
        secret_ok = hmac.compare_digest(secret.encode(), settings.operator_secret.encode())
        if not settings.operator_secret:
            return _login_form("No operator secret is configured: the console is closed.", 403)
        if not (key_ok and secret_ok):
            log.warning("event=console_login_refused")
            return _login_form("Wrong key or secret (only the switch operator may log in).", 401)
        session = self._sessions.open(settings.operator_key)
        log.info("event=console_login")
        answer = web.HTTPSeeOther("/console/dfsps")
        answer.set_cookie(COOKIE, session.token, path="/console", httponly=True, samesite="Strict")
        raise answer

    async def logout(
        self, request: web.Request, session: ConsoleSession, sent: Form
    ) -> web.StreamResponse:
        self._sessions.close(session.token)
        answer = web.HTTPSeeOther("/console/login")
        answer.del_cookie(COOKIE, path="/console")
        raise answer

    def _guard(self, handler: Page, back: Back | None = None) -> WebHandler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            _refuse_dfsp(request)
            session = self._sessions.find(request.cookies.get(COOKIE))
            if session is None:
                raise web.HTTPSeeOther("/console/login")
            try:
                sent: Form = request.query  # type: ignore[assignment]
                if request.method == "POST":
                    sent = await _form(request)
                    if not csrf_matches(session, sent.get("csrf")):
                        log.warning("event=console_csrf_refused path=%s", request.path)
                        return _csrf_refused(session)
                return await handler(request, session, sent)
            except HttpError as error:
                title, body = await (back or _refused_view)(session)
                return page(title, body, csrf=session.csrf, error=str(error), status=error.status)

        return guarded

    # --- DFSPs ------------------------------------------------------------------------

    async def _dfsps_view(self, session: ConsoleSession) -> views.View:
        everyone = await self._context.participants.all()
        return views.dfsps_view(everyone, self._currency, session.csrf)

    async def dfsps(
        self, request: web.Request, session: ConsoleSession, sent: Form
    ) -> web.Response:
        return page(*await self._dfsps_view(session), csrf=session.csrf)

    async def register(
        self, request: web.Request, session: ConsoleSession, sent: Form
    ) -> web.Response:
        name = _text(sent, "name").strip()
        if not NAME.fullmatch(name):
            raise ValidationError("A DFSP name is 1 to 20 of A-Z a-z 0-9 _ ~ -")
        raw_cap = _text(sent, "cap").strip()
        cap = self._cap(raw_cap) if raw_cap else None
        credentials = await self._context.participants.register(name, net_debit_cap_minor=cap)
        participant = await self._context.participants.get(name)
        await self._log_change(self._context, "participant.registered", participant, by=BY)
        return page(
            *views.credentials_view(credentials.name, credentials.key, credentials.secret),
            csrf=session.csrf,
            status=201,
        )

    async def pause(
        self, request: web.Request, session: ConsoleSession, sent: Form
    ) -> web.Response:
        return await self._status(request, session, Status.PAUSED)

    async def unpause(
        self, request: web.Request, session: ConsoleSession, sent: Form
    ) -> web.Response:
        return await self._status(request, session, Status.ACTIVE)

    async def _status(
        self, request: web.Request, session: ConsoleSession, status: Status
    ) -> web.Response:
        name = _dfsp_name(request)
        await self._set_status(self._context, self._components, name, status, by=BY)
        done = "paused" if status is Status.PAUSED else "unpaused"
        return page(*await self._dfsps_view(session), csrf=session.csrf, notice=f"{name} {done}.")

    async def cap(self, request: web.Request, session: ConsoleSession, sent: Form) -> web.Response:
        name = _dfsp_name(request)
        cap = None if sent.get("clear") == "1" else self._cap(_text(sent, "cap").strip())
        participant = await self._context.participants.set_net_debit_cap(name, cap)
        await self._log_change(self._context, "participant.cap_changed", participant, by=BY)
        said = "cleared" if cap is None else f"set to {Money(self._currency, cap)}"
        return page(
            *await self._dfsps_view(session),
            csrf=session.csrf,
            notice=f"The net debit cap of {name} is {said}.",
        )

    def _cap(self, text: str) -> int:
        if not text:
            raise ValidationError("Enter a net debit cap, such as 1000.00 (or clear it).")
        if len(text) > 20:
            raise ValidationError("A net debit cap is at most 20 characters.")
        try:
            cap = Money.parse(text, self._currency)
        except MoneyError as error:
            raise ValidationError(f"Net debit cap: {error}.") from None
        if cap.minor < 0:
            raise ValidationError("A net debit cap is not negative.")
        return cap.minor

    # --- positions and settlements ----------------------------------------------------

    async def positions(
        self, request: web.Request, session: ConsoleSession, sent: Form
    ) -> web.Response:
        view = await views.positions_view(self._ledger, self._currency)
        return page(*view, csrf=session.csrf)

    async def _settlements(self, session: ConsoleSession) -> views.View:
        return await views.settlements_view(self._context.sessions, session.csrf)

    async def settlements(
        self, request: web.Request, session: ConsoleSession, sent: Form
    ) -> web.Response:
        return page(*await self._settlements(session), csrf=session.csrf)

    async def close_window(
        self, request: web.Request, session: ConsoleSession, sent: Form
    ) -> web.StreamResponse:
        settlement = await self._ledger.settle()
        raise web.HTTPSeeOther(f"/console/settlements/{settlement.id}")

    async def settlement(
        self, request: web.Request, session: ConsoleSession, sent: Form
    ) -> web.Response:
        found = await self._ledger.settlement(checked_transfer_id(request.match_info["id"]))
        return page(*views.settlement_view(found, self._currency), csrf=session.csrf)

    async def report(
        self, request: web.Request, session: ConsoleSession, sent: Form
    ) -> web.Response:
        found = await self._ledger.settlement(checked_transfer_id(request.match_info["id"]))
        return web.Response(
            text=views.settlement_csv(found, self._currency),
            content_type="text/csv",
            headers=SECURITY_HEADERS
            | {"Content-Disposition": f'attachment; filename="settlement-{found.id}.csv"'},
        )

    # --- fraud and the forensic log ---------------------------------------------------

    async def fraud(
        self, request: web.Request, session: ConsoleSession, sent: Form
    ) -> web.Response:
        return page(*await views.fraud_view(self._context.sessions), csrf=session.csrf)

    async def _forensic_page(self, session: ConsoleSession) -> views.View:
        return "Forensic log", views.forensic_forms()

    async def forensic(
        self, request: web.Request, session: ConsoleSession, sent: Form
    ) -> web.Response:
        return page(*await self._forensic_page(session), csrf=session.csrf)

    async def verify(
        self, request: web.Request, session: ConsoleSession, sent: Form
    ) -> web.Response:
        return page(*await views.verify_view(self._forensic), csrf=session.csrf)

    async def transfer_path(
        self, request: web.Request, session: ConsoleSession, sent: Form
    ) -> web.Response:
        transfer_id = _text(sent, "id").strip()
        if not 1 <= len(transfer_id) <= 128:
            raise ValidationError("A transfer id is 1 to 128 characters.")
        records = await self._forensic.transfer_path(transfer_id)
        if not records:
            raise NotFoundError(f"No forensic records name the transfer {transfer_id!r}.")
        return page(*views.path_view(transfer_id, records), csrf=session.csrf)


def _csrf_refused(session: ConsoleSession) -> web.Response:
    return page(
        "Refused",
        "<p>This form came without this session's CSRF token, so nothing was changed."
        ' <a href="/console/dfsps">Reload the console</a> and submit the form from there.</p>',
        csrf=session.csrf,
        error="Missing or wrong CSRF token: nothing was changed.",
        status=403,
    )


async def _refused_view(session: ConsoleSession) -> views.View:
    return "Refused", '<p><a href="/console/dfsps">Back to the console</a></p>'


def _refuse_dfsp(request: web.Request) -> None:
    if isinstance(request.get(CALLER), Participant):
        raise ForbiddenError("the console is the switch operator's: a DFSP may not use it")


async def _form(request: web.Request) -> Form:
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise ValidationError("send the console's forms as forms")
    posted = await request.post()
    for name, value in posted.items():
        if not isinstance(value, str) or len(value) > MAX_FIELD:
            raise ValidationError(f"the field {name!r} is text of at most {MAX_FIELD} characters")
    return cast(Form, posted)


def _text(sent: Form, name: str) -> str:
    value = sent.get(name, "")
    if len(value) > MAX_FIELD:
        raise ValidationError(f"{name!r} is at most {MAX_FIELD} characters")
    return value


def _dfsp_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not NAME.fullmatch(name):
        raise ValidationError("A DFSP name is 1 to 20 of A-Z a-z 0-9 _ ~ -")
    return name


def _login_form(error: str | None = None, status: int = 200) -> web.Response:
    body = (
        '<form method="post" action="/console/login">'
        + field("Operator key", "key", "key")
        + field("Secret", "secret", "secret", kind="password", size=30)
        + button("Log in", "login")
        + "</form>"
    )
    return page("Log in", body, error=error, status=status)


def console_routes(
    context: CentralContext,
    components: Sequence[Component],
    set_status: SetStatus,
    log_change: LogChange,
) -> list[web.RouteDef]:
    return Console(context, components, set_status, log_change).routes()
