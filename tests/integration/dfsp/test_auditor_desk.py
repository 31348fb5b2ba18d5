"""The auditor's desk pages (``dfsp.web.desk``) without a browser: only an auditor gets
in; every change needs the CSRF token and the auditor's PIN (wrong PINs counted, the
third locks); bad input, an unknown customer and one's own record are refused with the
reason, and none of these changes anything. Values are shown escaped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dfsp.auditing import Auditing
from dfsp.domain.customers import Customer
from dfsp.rule_book import RuleBook
from dfsp.web.back_office import BackOffice
from dfsp.web.desk import AuditorDesk
from tests.integration.conftest import Database
from tests.integration.dfsp.test_back_office import CSRF, Desk, error_of
from tests.integration.dfsp.test_bulk import PIN, WRONG_PIN, open_net
from tests.integration.dfsp.test_rule_book import TIERS, configured_tiers
from tests.support import asyncio_test


class AuditDesk(Desk):
    auditing: Auditing
    auditor: Customer

    def profile_path(self, customer: Customer) -> str:
        return f"/admin/customers/{customer.id}"

    async def change(
        self, customer: Customer, action: str, form: dict[str, str], *, csrf: bool = True
    ) -> aiohttp.ClientResponse:
        fields = dict(form)
        if csrf:
            fields["csrf"] = await self.csrf(self.profile_path(customer))
        response = await self.http.post(f"{self.profile_path(customer)}/{action}", data=fields)
        await response.read()
        return response

    async def page(self, path: str) -> tuple[int, str]:
        async with self.http.get(path) as response:
            return response.status, await response.text()


@asynccontextmanager
async def open_audit_desk(database: Database) -> AsyncIterator[AuditDesk]:
    async with open_net(database) as net:
        sessions = net.bulk._sessions
        auditing = Auditing(sessions, net.customers, net.ledger, net.payments, clock=net.clock)
        auditor = await net.register(40, first_name="Audra", last_name="Lorde")
        await auditing.grant_auditor(auditor.id)
        app = web.Application()
        office = BackOffice(net.bulk, net.customers, sessions, clock=net.clock, auditing=auditing)
        office.add_to(app)
        rules = RuleBook(
            sessions,
            currency="USD",
            fees={},
            tiers=configured_tiers(),
            clock=net.clock,
            on_change=lambda fees, tiers: net.customers.use_tiers(tiers),
        )
        AuditorDesk(office, auditing, net.customers, rules).add_to(app)
        async with TestClient(TestServer(app)) as http:
            desk = AuditDesk(net, http)
            desk.auditing, desk.auditor = auditing, auditor
            yield desk


@asyncio_test
async def test_an_auditor_lands_on_the_desk_and_finds_a_customer(database: Database) -> None:
    async with open_audit_desk(database) as desk:
        answer = await desk.log_in(desk.auditor)
        assert answer.url.path == "/admin/customers"
        payee = desk.net.payees[0]
        status, text = await desk.page(f"/admin/customers?q={payee.msisdn}")
        assert status == 200 and desk.profile_path(payee) in text
        assert 'data-testid="nav-customers"' in text and 'data-testid="nav-bulk"' not in text
        status, text = await desk.page("/admin/customers?q=NOBODY")
        assert status == 200 and "No customer matches." in text
        status, text = await desk.page("/admin/customers?q=%2B12")  # "+12"
        assert status == 400 and "country code" in text and "Nothing was changed" in text
        status, text = await desk.page("/admin/customers/unchecked?days=")
        assert status == 200 and desk.profile_path(payee) in text
        status, text = await desk.page("/admin/customers/unchecked?days=-3")
        assert status == 400 and "the number of days is 0 to 36500" in text


@asyncio_test
async def test_no_one_but_an_auditor_reads_the_desk(database: Database) -> None:
    async with open_audit_desk(database) as desk:
        async with desk.http.get("/admin/customers", allow_redirects=False) as anonymous:
            assert anonymous.status == 303 and anonymous.headers["Location"] == "/admin/login"
        await desk.log_in(desk.net.maker)  # a maker: a back-office role, not the auditor's
        payee = desk.net.payees[0]
        for path in ("/admin/customers?q=" + str(payee.user_number), desk.profile_path(payee)):
            status, text = await desk.page(path)
            assert status == 403 and "the auditor role" in text, path
        token = await desk.csrf("/admin/batches")  # the maker's own session's token
        form = {"csrf": token, "reason": "r", "pin": PIN}
        async with desk.http.post(f"{desk.profile_path(payee)}/blacklist", data=form) as answer:
            assert answer.status == 403 and "the auditor role" in await error_of(answer)
        assert not (await desk.net.customers.customer(payee.id)).blacklisted


@asyncio_test
async def test_a_change_without_the_csrf_token_or_with_a_wrong_pin_changes_nothing(
    database: Database,
) -> None:
    async with open_audit_desk(database) as desk:
        await desk.log_in(desk.auditor)
        payee = desk.net.payees[0]
        forged = await desk.http.post(
            f"{desk.profile_path(payee)}/blacklist",
            data={"csrf": "forged", "reason": "r", "pin": PIN},
        )
        assert forged.status == 403 and "CSRF" in await error_of(forged)
        missing = await desk.change(payee, "blacklist", {"reason": "r", "pin": PIN}, csrf=False)
        assert missing.status == 403 and "CSRF" in await error_of(missing)

        wrong = await desk.change(payee, "blacklist", {"reason": "r", "pin": WRONG_PIN})
        assert wrong.status == 403 and await error_of(wrong) == "wrong PIN: 2 attempts left"
        await desk.change(payee, "blacklist", {"reason": "r", "pin": WRONG_PIN})
        locked = await desk.change(payee, "blacklist", {"reason": "r", "pin": WRONG_PIN})
        assert locked.status == 423 and "locked" in await error_of(locked)
        right = await desk.change(payee, "blacklist", {"reason": "r", "pin": PIN})
        assert right.status == 423  # locked: the right PIN is too late
        assert not (await desk.net.customers.customer(payee.id)).blacklisted
        assert (await desk.auditing.profile(desk.auditor, payee.id)).checks == ()


@asyncio_test
async def test_bad_input_an_unknown_customer_and_ones_own_record_are_refused(
    database: Database,
) -> None:
    async with open_audit_desk(database) as desk:
        await desk.log_in(desk.auditor)
        payee = desk.net.payees[0]
        for action, form, status, message in (
            ("checks", {"comment": "", "pin": PIN}, 400, "a comment is 1 to 200 characters"),
            ("checks", {"comment": "ok", "score": "101", "pin": PIN}, 400, "0 to 100"),
            ("checks", {"comment": "ok", "score": "1e2", "pin": PIN}, 400, "0 to 100"),
            ("blacklist", {"reason": " ", "pin": PIN}, 400, "a reason is 1 to 200 characters"),
            ("blacklist", {"reason": "x" * 201, "pin": PIN}, 400, "1 to 200 characters"),
            ("tier", {"tier": "platinum", "reason": "r", "pin": PIN}, 400, "platinum"),
            ("blacklist", {"reason": "r", "pin": "12ab"}, 400, "enter your PIN (digits only)"),
        ):
            answer = await desk.change(payee, action, form)
            assert answer.status == status, (action, form, await answer.text())
            assert message in await error_of(answer), (action, form)
        status, text = await desk.page("/admin/customers/00000000-0000-4000-8000-000000000000")
        assert status == 404
        own = await desk.change(desk.auditor, "blacklist", {"reason": "me", "pin": PIN})
        assert own.status == 403 and "their own record" in await error_of(own)
        status, text = await desk.page(desk.profile_path(desk.auditor))
        assert status == 200 and 'data-testid="own-record"' in text
        assert 'data-testid="blacklist"' not in text
        customer = await desk.net.customers.customer(payee.id)
        assert not customer.blacklisted
        assert (await desk.net.customers.tier_of(payee.id)).name == "basic"
        assert (await desk.auditing.profile(desk.auditor, payee.id)).checks == ()


@asyncio_test
async def test_changes_are_made_and_shown_escaped(database: Database) -> None:
    async with open_audit_desk(database) as desk:
        await desk.log_in(desk.auditor)
        payee = desk.net.payees[0]
        comment = '<script>alert("x")</script> =HYPERLINK("evil")'
        answer = await desk.change(payee, "checks", {"comment": comment, "score": "40", "pin": PIN})
        assert answer.status == 200 and answer.url.path == desk.profile_path(payee)
        text = await answer.text()
        assert "<script>" not in text and "&lt;script&gt;" in text
        answer = await desk.change(
            payee, "tier", {"tier": "premium", "reason": "vouched", "pin": PIN}
        )
        assert 'data-testid="tier">premium<' in await answer.text()
        answer = await desk.change(payee, "blacklist", {"reason": "mule", "pin": PIN})
        assert 'data-testid="standing">blacklisted<' in await answer.text()
        assert (await desk.net.customers.customer(payee.id)).blacklisted
        assert CSRF.search(await answer.text()) is not None  # the forms carry the token


@asyncio_test
async def test_an_auditor_puts_new_tiers_in_force_and_a_bad_table_changes_nothing(
    database: Database,
) -> None:
    async with open_audit_desk(database) as desk:
        await desk.log_in(desk.net.maker)
        status, text = await desk.page("/admin/rules")
        assert status == 403 and "the auditor role" in text
        await desk.log_in(desk.auditor)
        status, text = await desk.page("/admin/rules")
        assert status == 200 and "[[tiers]]" in text and "name = &quot;premium&quot;" in text

        async def post(
            table: str, reason: str = "tighter", pin: str = PIN
        ) -> aiohttp.ClientResponse:
            form = {"csrf": await desk.csrf("/admin/rules"), "table": table, "reason": reason}
            response = await desk.http.post("/admin/rules/tiers", data={**form, "pin": pin})
            await response.read()
            return response

        bad = await post(TIERS.replace('"3"', '"three"'))
        assert bad.status == 400 and "tiers[0].limits.max_transfer" in await error_of(bad)
        wrong = await post(TIERS, pin=WRONG_PIN)
        assert wrong.status == 403 and "attempts left" in await error_of(wrong)
        forged = await desk.http.post("/admin/rules/tiers", data={"table": TIERS, "pin": PIN})
        assert forged.status == 403 and "CSRF" in await error_of(forged)
        unchanged = (await desk.net.customers.tier_of(desk.net.payees[0].id)).limits
        assert unchanged.max_transfer is not None and str(unchanged.max_transfer) == "5000.00"

        done = await post(TIERS)
        assert done.status == 200 and done.url.path == "/admin/rules"
        text = await done.text()
        assert 'data-testid="rule-change"' in text and "tighter" in text
        limits = (await desk.net.customers.tier_of(desk.net.payees[0].id)).limits
        assert limits.max_transfer is not None and str(limits.max_transfer) == "3.00"
