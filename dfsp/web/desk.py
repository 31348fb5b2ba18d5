"""The auditor's desk under ``/admin/customers`` (server-rendered HTML, on the back
office's login, sessions, CSRF tokens and refusal pages: ``dfsp.web.back_office``). The
use cases and their rules are ``dfsp.auditing``.

Pages: ``GET /admin/customers`` (``?q=``: find by user number, MSISDN or national ID),
``GET /admin/customers/unchecked`` (``?days=N``: not checked for N days; empty: never
checked), ``GET /admin/customers/{id}`` (the profile and the change forms), and the
changes, each a POST with the auditor's PIN (wrong PINs counted, as at login) that
answers with the profile again: ``.../checks`` (comment, optional score),
``.../blacklist`` and ``.../unblacklist`` (reason), ``.../tier`` (tier, reason).
"""

from __future__ import annotations

from aiohttp import web

from dfsp.auditing import MAX_DAYS, Auditing, BadAuditInput, actor
from dfsp.customers import Customers
from dfsp.domain.customers import Customer
from dfsp.rule_book import RuleBook
from dfsp.web import desk_pages
from dfsp.web.back_office import BackOffice, Refused, parse_pin
from dfsp.web.sessions import WebSession

MAX_DAYS_DIGITS = len(str(MAX_DAYS))


class AuditorDesk:
    def __init__(
        self, office: BackOffice, auditing: Auditing, customers: Customers, rules: RuleBook
    ) -> None:
        self._office = office
        self._auditing = auditing
        self._customers = customers
        self._rules = rules

    def add_to(self, app: web.Application) -> None:
        page = self._office.page
        add_get, add_post = app.router.add_get, app.router.add_post
        add_get("/admin/customers", page(self.search))
        add_get("/admin/customers/unchecked", page(self.unchecked))
        add_get("/admin/customers/{customer_id}", page(self.profile))
        add_post("/admin/customers/{customer_id}/checks", page(self.record_check))
        add_post("/admin/customers/{customer_id}/blacklist", page(self.blacklist))
        add_post("/admin/customers/{customer_id}/unblacklist", page(self.unblacklist))
        add_post("/admin/customers/{customer_id}/tier", page(self.change_tier))
        add_get("/admin/rules", page(self.rules))
        add_post("/admin/rules/fees", page(self.change_fees))
        add_post("/admin/rules/tiers", page(self.change_tiers))

    # --- reading ---------------------------------------------------------------------

    async def search(self, request: web.Request) -> web.StreamResponse:
        session, auditor = await self._auditor(request)
        query = request.query.get("q")
        found = None if query is None else await self._auditing.find(auditor, query)
        page = desk_pages.search_page(session, query=query or "", found=found)
        return self._office.html(page, session=session)

    async def unchecked(self, request: web.Request) -> web.StreamResponse:
        session, auditor = await self._auditor(request)
        text = request.query.get("days", "").strip()
        days = _days(text)
        listed = await self._auditing.unchecked(auditor, days)
        page = desk_pages.search_page(session, unchecked=listed, days=text)
        return self._office.html(page, session=session)

    async def profile(self, request: web.Request) -> web.StreamResponse:
        session, auditor = await self._auditor(request)
        customer_id = request.match_info["customer_id"]
        profile = await self._auditing.profile(auditor, customer_id)
        tiers = self._customers.tiers.tiers
        page = desk_pages.profile_page(session, profile, tiers, own=customer_id == auditor.id)
        return self._office.html(page, session=session)

    async def rules(self, request: web.Request) -> web.StreamResponse:
        session, auditor = await self._auditor(request)
        if not await self._auditing.is_auditor(auditor):
            raise Refused(403, "the DFSP has not given you the auditor role")
        page = desk_pages.rules_page(
            session,
            fees=self._rules.fees_toml(),
            tiers=self._rules.tiers_toml(),
            history=await self._rules.history(),
        )
        return self._office.html(page, session=session)

    # --- changes ---------------------------------------------------------------------

    async def record_check(self, request: web.Request) -> web.StreamResponse:
        auditor, customer_id, form = await self._change(request)
        score = form.get("score", "").strip()
        if score and not (score.isdigit() and len(score) <= 3):
            raise BadAuditInput("a score is a whole number from 0 to 100")
        await self._auditing.record_check(
            auditor, customer_id, form.get("comment", ""), int(score) if score else None
        )
        raise web.HTTPSeeOther(f"/admin/customers/{customer_id}")

    async def blacklist(self, request: web.Request) -> web.StreamResponse:
        auditor, customer_id, form = await self._change(request)
        await self._auditing.blacklist(auditor, customer_id, form.get("reason", ""))
        raise web.HTTPSeeOther(f"/admin/customers/{customer_id}")

    async def unblacklist(self, request: web.Request) -> web.StreamResponse:
        auditor, customer_id, form = await self._change(request)
        await self._auditing.unblacklist(auditor, customer_id, form.get("reason", ""))
        raise web.HTTPSeeOther(f"/admin/customers/{customer_id}")

    async def change_tier(self, request: web.Request) -> web.StreamResponse:
        auditor, customer_id, form = await self._change(request)
        await self._auditing.change_tier(
            auditor, customer_id, form.get("tier", ""), form.get("reason", "")
        )
        raise web.HTTPSeeOther(f"/admin/customers/{customer_id}")

    async def change_fees(self, request: web.Request) -> web.StreamResponse:
        auditor, form = await self._authorised(request)
        await self._rules.change_fees(actor(auditor), form.get("table", ""), form.get("reason", ""))
        raise web.HTTPSeeOther("/admin/rules")

    async def change_tiers(self, request: web.Request) -> web.StreamResponse:
        auditor, form = await self._authorised(request)
        await self._rules.change_tiers(
            actor(auditor), form.get("table", ""), form.get("reason", "")
        )
        raise web.HTTPSeeOther("/admin/rules")

    # --- helpers ---------------------------------------------------------------------

    async def _auditor(self, request: web.Request) -> tuple[WebSession, Customer]:
        session = await self._office.login_required(request)
        assert session.customer_id is not None
        return session, await self._customers.customer(session.customer_id)

    async def _change(self, request: web.Request) -> tuple[Customer, str, dict[str, str]]:
        """The auditor, the customer changed and the form (see ``_authorised``)."""
        auditor, form = await self._authorised(request)
        return auditor, request.match_info["customer_id"], form

    async def _authorised(self, request: web.Request) -> tuple[Customer, dict[str, str]]:
        """The auditor and the form: after the CSRF token, the auditor's role and their
        PIN (a wrong one counts towards the lock-out)."""
        _, auditor = await self._auditor(request)
        form = await self._office.checked_form(request)
        if not await self._auditing.is_auditor(auditor):
            raise Refused(403, "the DFSP has not given you the auditor role")
        await self._customers.check_pin(auditor.id, parse_pin(form.get("pin", "")))
        return auditor, form


def _days(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or len(text) > MAX_DAYS_DIGITS:
        raise BadAuditInput(f"the number of days is 0 to {MAX_DAYS}")
    return int(text)
