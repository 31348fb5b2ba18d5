"""The back office under ``/admin/`` (server-rendered HTML), added to the DFSP API's app
by ``dfsp.service``: the login, the bulk-payment pages here, and the auditor's desk
(``dfsp.web.desk``, on this class's login, sessions and refusal pages). They use
``dfsp.bulk`` and ``dfsp.customers`` as the JSON API does; only the access checks for
reading a batch are made here. A login needs a back-office role: maker, checker or
auditor.

Pages: ``GET /admin/login`` and ``POST /admin/login`` (user number + PIN, wrong PINs
counted and locked out by ``Customers.check_pin``), ``POST /admin/logout``;
``GET /admin/batches`` (the maker's upload form and batches, the checker's batches to
approve); ``POST /admin/batches`` (multipart: the CSV, the account, the end of retries,
the maker's PIN); ``GET /admin/batches/{id}`` (the validation report, then the live
status: refreshed every 2 s while it runs); ``POST .../approve`` | ``.../reject`` (the
checker's PIN); ``GET .../report.csv``.

Security: a login opens a new server-side session (``dfsp.web.sessions``, in the DFSP's
database, so any of its processes serves it) named by a random token in an HttpOnly,
SameSite=Strict cookie scoped to ``/admin/``; every POST
carries the session's CSRF token (a form without it, or with another, is refused with
403 before anything is read or changed). Responses forbid framing, caching and
scripts (``Content-Security-Policy``). A refusal is a page with the reason; it
changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from aiohttp import BodyPartReader, web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dfsp import bulk_store
from dfsp.api_bulk import BULK_ERRORS
from dfsp.auditing import (
    AUDITOR,
    AuditError,
    Auditing,
    FraudSharingUnavailable,
    NotAuditor,
    OwnRecord,
)
from dfsp.bulk import CHECKER, MAKER, BatchView, Bulk, report_text
from dfsp.customers import Customers
from dfsp.domain.bulk import MAX_CSV_BYTES, BatchNotFound, BatchState, BulkError
from dfsp.domain.customers import Customer, UnknownCustomer
from dfsp.domain.identifiers import IdentifierError
from dfsp.domain.payments import PaymentError
from dfsp.domain.pins import MAX_PIN_LENGTH, Pin, PinLocked, WrongPin
from dfsp.domain.tiers import TierError
from dfsp.forensic import ForensicLogUnavailable
from dfsp.rule_book import RuleChangeRefused
from dfsp.web import pages
from dfsp.web.sessions import SessionStore, WebSession
from ussdloop.times import parse_instant

COOKIE: Final = "ussdloop_admin"
# The request's session, found once per request.
SESSION_KEY: Final[web.RequestKey[WebSession | None]] = web.RequestKey("back_office_session")
MAX_UPLOAD_BYTES: Final = MAX_CSV_BYTES  # the CSV file itself
MAX_FIELD_BYTES: Final = 1024  # any other field of the upload form
MAX_UPLOAD_PARTS: Final = 8
MAX_LISTED: Final = 200  # batches listed on the home page
STATIC_DIR: Final = Path(__file__).parent / "static"
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}
Page = Callable[[web.Request], Awaitable[web.StreamResponse]]
AUDIT_ERRORS: Final[dict[type[AuditError], int]] = {
    NotAuditor: 403,
    OwnRecord: 403,
    FraudSharingUnavailable: 503,
}


class Refused(Exception):
    """A request the back office refuses: shown as a page with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _utc_now() -> datetime:
    return datetime.now(UTC)


class BackOffice:
    def __init__(
        self,
        bulk: Bulk,
        customers: Customers,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime] = _utc_now,
        secure_cookie: bool = False,  # True when served over HTTPS only
        auditing: Auditing | None = None,  # the auditor's desk (``dfsp.web.desk``)
    ) -> None:
        self._bulk = bulk
        self._auditing = auditing
        self._customers = customers
        self._db = sessions
        self._secure = secure_cookie
        self.sessions = SessionStore(sessions, clock)

    def add_to(self, app: web.Application) -> None:
        add_get, add_post = app.router.add_get, app.router.add_post
        add_get("/admin", self.root)
        add_get("/admin/", self.root)
        add_get("/admin/login", self.page(self.login_form))
        add_post("/admin/login", self.page(self.login))
        add_post("/admin/logout", self.page(self.logout))
        add_get("/admin/batches", self.page(self.home))
        add_post("/admin/batches", self.page(self.upload))
        add_get("/admin/batches/{batch_id}", self.page(self.batch))
        add_post("/admin/batches/{batch_id}/approve", self.page(self.approve))
        add_post("/admin/batches/{batch_id}/reject", self.page(self.reject))
        add_get("/admin/batches/{batch_id}/report.csv", self.page(self.report))
        app.router.add_static("/admin/static/", STATIC_DIR)

    # --- login ---------------------------------------------------------------------

    async def root(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther(_desk_of(await self._session(request)))

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        session = await self._session(request)
        if session is not None and session.customer_id is not None:
            raise web.HTTPSeeOther(_desk_of(session))
        session = session or await self.sessions.anonymous()
        return self.html(pages.login_page(session), session=session)

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await self.checked_form(request)
        number = str(form.get("user_number", "")).strip()
        pin = parse_pin(str(form.get("pin", "")))
        try:
            customer = await self._customers.by_user_number(number)
        except IdentifierError:
            raise Refused(400, "a user number is 8 digits") from None
        if customer is None:
            raise Refused(404, f"nobody has the user number {number}")
        await self._customers.check_pin(customer.id, pin)
        roles = await self._roles_of(customer)
        if not roles:
            raise Refused(403, "the DFSP has not given you a back-office role")
        old = await self._session(request)
        if old is not None:
            await self.sessions.close(old.token)
        session = await self.sessions.open(
            customer.id, str(customer.user_number), customer.name, roles
        )
        response = web.HTTPSeeOther(_desk_of(session))
        self._set_cookie(response, session)
        raise response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        await self.checked_form(request)
        session = await self._session(request)
        if session is not None:
            await self.sessions.close(session.token)
        response = web.HTTPSeeOther("/admin/login")
        response.del_cookie(COOKIE, path="/admin/")
        raise response

    # --- maker and checker ---------------------------------------------------------

    async def home(self, request: web.Request) -> web.StreamResponse:
        session = await self.login_required(request)
        customer = await self._customers.customer(_customer_id(session))
        accounts = None
        own: list[BatchView] = []
        to_check = None
        batches = await self._recent_batches()
        if await self._bulk.has_role(customer, MAKER):
            accounts = list(await self._customers.accounts_of(customer.id))
            own = [b for b in batches if b.maker_id == customer.id]
        if await self._bulk.has_role(customer, CHECKER):
            held = {a.id for a in await self._customers.accounts_of(customer.id)}
            to_check = [
                b
                for b in batches
                if b.state is BatchState.DRAFT
                and b.account_id in held
                and b.maker_id != customer.id
            ]
        page = pages.home_page(session, accounts=accounts, own=own, to_check=to_check)
        return self.html(page, session=session)

    async def upload(self, request: web.Request) -> web.StreamResponse:
        session = await self.login_required(request)
        fields = await _read_upload(request)
        _check_csrf(session, _text(fields, "csrf"))
        raw = fields.get("file", b"")
        if not raw:
            raise Refused(400, "choose a CSV file to upload")
        try:
            csv_text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, "the file is not UTF-8 text: save it as CSV (UTF-8)") from None
        batch = await self._bulk.upload(
            _customer_id(session),
            parse_pin(_text(fields, "pin")),
            _text(fields, "account"),
            csv_text,
            end_at=_end_at(_text(fields, "end_at")),
        )
        raise web.HTTPSeeOther(f"/admin/batches/{batch.id}")

    async def batch(self, request: web.Request) -> web.StreamResponse:
        session = await self.login_required(request)
        batch, customer = await self._visible_batch(request, session)
        is_maker = customer.id == batch.maker_id
        may_decide = not is_maker and await self._bulk.has_role(customer, CHECKER)
        page = pages.batch_page(session, batch, may_decide=may_decide, is_maker=is_maker)
        return self.html(page, session=session)

    async def approve(self, request: web.Request) -> web.StreamResponse:
        session = await self.login_required(request)
        form = await self.checked_form(request)
        batch_id = request.match_info["batch_id"]
        await self._bulk.approve(
            batch_id, _customer_id(session), parse_pin(str(form.get("pin", "")))
        )
        raise web.HTTPSeeOther(f"/admin/batches/{batch_id}")

    async def reject(self, request: web.Request) -> web.StreamResponse:
        session = await self.login_required(request)
        form = await self.checked_form(request)
        batch_id = request.match_info["batch_id"]
        note = str(form.get("note", ""))
        await self._bulk.reject(
            batch_id, _customer_id(session), parse_pin(str(form.get("pin", ""))), note
        )
        raise web.HTTPSeeOther(f"/admin/batches/{batch_id}")

    async def report(self, request: web.Request) -> web.StreamResponse:
        session = await self.login_required(request)
        batch, _ = await self._visible_batch(request, session)
        disposition = f'attachment; filename="bulk-{batch.id}.csv"'
        return web.Response(
            text=report_text(batch),
            content_type="text/csv",
            headers={**SECURITY_HEADERS, "Content-Disposition": disposition},
        )

    # --- helpers -------------------------------------------------------------------

    def page(self, handler: Page) -> Page:
        """Answer a refusal as an HTML page with its reason; nothing was changed."""

        @functools.wraps(handler)
        async def page(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except web.HTTPException:
                raise
            except Exception as error:
                status = _status_of(error)
                if status is None:
                    raise
                session = await self._session(request)
                back = request.headers.get("Referer", "") if request.method == "POST" else ""
                if not back.startswith(f"{request.scheme}://{request.host}/admin/"):
                    back = _desk_of(session)
                body = pages.refused_page(str(error) or type(error).__name__, session, back)
                return self.html(body, session=None, status=status)

        return page

    async def _session(self, request: web.Request) -> WebSession | None:
        """The request's session, looked up once per request."""
        if SESSION_KEY not in request:
            request[SESSION_KEY] = await self.sessions.find(request.cookies.get(COOKIE))
        return request[SESSION_KEY]

    async def login_required(self, request: web.Request) -> WebSession:
        session = await self._session(request)
        if session is None or session.customer_id is None:
            if request.method == "GET":
                raise web.HTTPSeeOther("/admin/login")
            raise Refused(403, "your session has ended: log in again")
        return session

    async def checked_form(self, request: web.Request) -> dict[str, str]:
        """A small urlencoded form, after its CSRF token matched the session's."""
        session = await self._session(request)
        if session is None:
            raise Refused(403, "your session has ended or cookies are off: reload the page")
        form = {k: str(v) for k, v in (await request.post()).items() if isinstance(v, str)}
        _check_csrf(session, form.get("csrf", ""))
        return form

    def _set_cookie(self, response: web.StreamResponse, session: WebSession) -> None:
        response.set_cookie(
            COOKIE,
            session.token,
            path="/admin/",
            httponly=True,
            samesite="Strict",
            secure=self._secure,
        )

    def html(self, text: str, *, session: WebSession | None, status: int = 200) -> web.Response:
        response = web.Response(
            text=text, content_type="text/html", status=status, headers=SECURITY_HEADERS
        )
        if session is not None:
            self._set_cookie(response, session)
        return response

    async def _roles_of(self, customer: Customer) -> frozenset[str]:
        roles = {role for role in (MAKER, CHECKER) if await self._bulk.has_role(customer, role)}
        if self._auditing is not None and await self._auditing.is_auditor(customer):
            roles.add(AUDITOR)
        return frozenset(roles)

    async def _visible_batch(
        self, request: web.Request, session: WebSession
    ) -> tuple[BatchView, Customer]:
        """The batch for its maker or a checker holding its account; else not found."""
        batch_id = request.match_info["batch_id"]
        batch = await self._bulk.batch_view(batch_id)
        customer = await self._customers.customer(_customer_id(session))
        if customer.id == batch.maker_id:
            return batch, customer
        held = {a.id for a in await self._customers.accounts_of(customer.id)}
        if batch.account_id in held and await self._bulk.has_role(customer, CHECKER):
            return batch, customer
        raise BatchNotFound(batch_id)

    async def _recent_batches(self) -> list[BatchView]:
        async with self._db() as db:
            rows = await bulk_store.batches_in(db, list(BatchState))
        newest = sorted(rows, key=lambda r: r.created_at, reverse=True)[:MAX_LISTED]
        return [await self._bulk.batch_view(r.id) for r in newest]


def _desk_of(session: WebSession | None) -> str:
    """Where a session starts: the bulk pages, or the auditor's desk for an auditor only."""
    if session is not None and session.roles == {AUDITOR}:
        return "/admin/customers"
    return "/admin/batches"


def _status_of(error: Exception) -> int | None:
    if isinstance(error, Refused):
        return error.status
    if isinstance(error, AuditError):
        return AUDIT_ERRORS.get(type(error), 400)
    if isinstance(error, UnknownCustomer):
        return 404
    if isinstance(error, TierError | RuleChangeRefused):
        return 400
    if isinstance(error, WrongPin):
        return 403
    if isinstance(error, PinLocked):
        return 423
    if isinstance(error, BulkError):
        return next((BULK_ERRORS[k] for k in type(error).__mro__ if k in BULK_ERRORS), 400)
    if isinstance(error, ForensicLogUnavailable):
        return 503
    if isinstance(error, PaymentError | IdentifierError):
        return 400
    return None


def _check_csrf(session: WebSession, presented: str) -> None:
    if not presented or not session.csrf_matches(presented):
        raise Refused(403, "the form's security token (CSRF) is missing or wrong: reload the page")


def _customer_id(session: WebSession) -> str:
    assert session.customer_id is not None
    return session.customer_id


def parse_pin(text: str) -> Pin:
    if not text.isdigit() or len(text) > MAX_PIN_LENGTH:
        raise Refused(400, "enter your PIN (digits only)")
    return Pin(text)


def _text(fields: dict[str, bytes], name: str) -> str:
    try:
        return fields.get(name, b"").decode("utf-8").strip()
    except UnicodeDecodeError:
        raise Refused(400, f"the field {name} is not UTF-8 text") from None


def _end_at(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError:
        raise Refused(400, "the end of retries must be a date and time") from None


async def _read_upload(request: web.Request) -> dict[str, bytes]:
    """The upload form's fields, each read up to its bound (the file up to 5 MB)."""
    limit = MAX_UPLOAD_BYTES + MAX_UPLOAD_PARTS * (MAX_FIELD_BYTES + 512)
    if request.content_length is not None and request.content_length > limit:
        raise Refused(413, f"the file is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    if request.content_type != "multipart/form-data":
        raise Refused(400, "send the upload form (multipart/form-data)")
    reader = await request.multipart()
    fields: dict[str, bytes] = {}
    for _ in range(MAX_UPLOAD_PARTS):
        part = await reader.next()
        if part is None:
            return fields
        if not isinstance(part, BodyPartReader) or not part.name or part.name in fields:
            raise Refused(400, "the upload form is not as expected")
        bound = MAX_UPLOAD_BYTES if part.name == "file" else MAX_FIELD_BYTES
        data = bytearray()
        while chunk := await part.read_chunk():
            data += chunk
            if len(data) > bound:
                what = "the file" if part.name == "file" else f"the field {part.name}"
                raise Refused(413, f"{what} is over {bound // 1024} KB")
        fields[part.name] = bytes(data)
    raise Refused(400, "the upload form has too many fields")
