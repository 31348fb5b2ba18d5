"""The back office's bulk-payment pages (``dfsp.web``) without a browser: every form
refuses bad input with a clear message and changes nothing (wrong PIN and lock-out,
unknown user number, a missing CSRF token, a malformed, oversize or non-UTF-8 file, a
maker approving their own batch), and a name written as a formula is reported, never
shown or exported as one."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from dfsp import bulk_store
from dfsp.domain.bulk import MAX_CSV_BYTES, BatchState
from dfsp.domain.customers import Customer
from dfsp.web.back_office import BackOffice
from dfsp.web.sessions import SessionStore, WebSessionRow
from tests.integration.conftest import Database
from tests.integration.dfsp.test_bulk import HEADER, PIN, WRONG_PIN, Net, line, open_net
from tests.support import asyncio_test

END_AT = "2030-01-01T18:00"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Desk:
    net: Net
    http: TestClient[web.Request, web.Application]

    async def batch_ids(self) -> list[str]:
        async with self.net.bulk._sessions() as session:  # the test looks in the store
            return [b.id for b in await bulk_store.batches_in(session, list(BatchState))]

    async def csrf(self, path: str = "/admin/batches") -> str:
        async with self.http.get(path) as page:
            found = CSRF.search(await page.text())
        assert found is not None, path
        return found.group(1)

    async def log_in(self, customer: Customer, pin: str = PIN) -> aiohttp.ClientResponse:
        token = await self.csrf("/admin/login")
        form = {"csrf": token, "user_number": str(customer.user_number), "pin": pin}
        response = await self.http.post("/admin/login", data=form)
        await response.read()
        return response

    async def upload(
        self, text: str | bytes, pin: str = PIN, csrf: str | None = ""
    ) -> aiohttp.ClientResponse:
        form = aiohttp.FormData()
        if csrf is not None:
            form.add_field("csrf", csrf or await self.csrf())
        form.add_field("account", self.net.account)
        form.add_field("end_at", END_AT)
        form.add_field("pin", pin)
        form.add_field("file", text, filename="pay.csv", content_type="text/csv")
        response = await self.http.post("/admin/batches", data=form)
        await response.read()
        return response


@asynccontextmanager
async def open_desk(database: Database) -> AsyncIterator[Desk]:
    async with open_net(database) as net:
        app = web.Application()
        BackOffice(net.bulk, net.customers, net.bulk._sessions, clock=net.clock).add_to(app)
        async with TestClient(TestServer(app)) as http:
            yield Desk(net, http)


def good_file(net: Net) -> str:
    return HEADER + "".join(line(n + 1, p, "5") for n, p in enumerate(net.payees))


async def error_of(response: aiohttp.ClientResponse) -> str:
    found = re.search(r'data-testid="error">([^<]*)<', await response.text())
    assert found is not None, await response.text()
    return found.group(1)


# --- logging in ---------------------------------------------------------------------


@asyncio_test
async def test_a_wrong_pin_is_counted_and_the_third_locks_the_login(database: Database) -> None:
    async with open_desk(database) as desk:
        first = await desk.log_in(desk.net.maker, WRONG_PIN)
        assert first.status == 403 and await error_of(first) == "wrong PIN: 2 attempts left"
        assert await error_of(await desk.log_in(desk.net.maker, WRONG_PIN)) == (
            "wrong PIN: 1 attempt left"
        )
        third = await desk.log_in(desk.net.maker, WRONG_PIN)
        assert third.status == 423 and "locked" in await error_of(third)
        right = await desk.log_in(desk.net.maker, PIN)  # too late: locked
        assert right.status == 423 and "Nothing was changed" in await right.text()
        async with desk.http.get("/admin/batches") as page:
            assert page.url.path == "/admin/login"  # never logged in


@asyncio_test
async def test_an_unknown_or_malformed_user_number_is_refused(database: Database) -> None:
    async with open_desk(database) as desk:
        token = await desk.csrf("/admin/login")
        for number, status, message in (
            ("99999999", 404, "nobody has the user number 99999999"),
            ("12", 400, "a user number is 8 digits"),
        ):
            form = {"csrf": token, "user_number": number, "pin": PIN}
            async with desk.http.post("/admin/login", data=form) as answer:
                assert answer.status == status and await error_of(answer) == message


@asyncio_test
async def test_the_session_cookie_is_httponly_samesite_strict_and_logout_ends_it(
    database: Database,
) -> None:
    async with open_desk(database) as desk:
        token = await desk.csrf("/admin/login")
        form = {"csrf": token, "user_number": str(desk.net.maker.user_number), "pin": PIN}
        async with desk.http.post("/admin/login", data=form, allow_redirects=False) as answer:
            assert answer.status == 303
            cookie = answer.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin/" in cookie
        async with desk.http.get("/admin/batches") as home:
            html = await home.text()
            assert home.status == 200 and "Maker Co" in html
            assert home.headers["X-Frame-Options"] == "DENY"
        logout_token = await desk.csrf()
        async with desk.http.post("/admin/logout", data={"csrf": logout_token}) as answer:
            assert answer.url.path == "/admin/login"
        async with desk.http.get("/admin/batches") as page:
            assert page.url.path == "/admin/login"


@asyncio_test
async def test_a_session_expires_after_its_idle_time_and_the_store_is_bounded(
    database: Database,
) -> None:
    async with open_net(database) as net:
        now = [datetime(2030, 1, 1, tzinfo=UTC)]
        db = net.bulk._sessions
        store = SessionStore(db, lambda: now[0], ttl=timedelta(minutes=30), max_sessions=3)
        first = await store.open("c1", "10000001", "A", frozenset({"maker"}))
        now[0] += timedelta(minutes=29)
        found = await store.find(first.token)  # used: lives 30 more minutes
        assert found is not None and (found.customer_id, found.csrf) == ("c1", first.csrf)
        assert found.roles == {"maker"}
        now[0] += timedelta(minutes=31)
        expired = await store.find(first.token)
        assert expired is not None and expired.customer_id is None  # anonymous again
        opened = [await store.open(f"c{n}", "10000001", "A", frozenset()) for n in range(5)]
        oldest = await store.find(opened[0].token)
        assert oldest is not None and oldest.customer_id is None
        assert await store.find("x" * 500) is None and await store.find("short") is None

        restarted = SessionStore(db, lambda: now[0])  # another process, or after a restart
        kept = await restarted.find(opened[-1].token)
        assert kept is not None and kept.customer_id == "c4"
        visitor = await store.anonymous()
        seen = await restarted.find(visitor.token)
        assert seen is not None and seen.csrf == visitor.csrf and seen.customer_id is None
        async with db() as session:  # only each token's SHA-256 is stored
            stored = set(await session.scalars(select(WebSessionRow.token_hash)))
        assert opened[-1].token not in stored and len(stored) == 3


# --- CSRF ---------------------------------------------------------------------------


@asyncio_test
async def test_forms_without_the_csrf_token_are_refused_and_change_nothing(
    database: Database,
) -> None:
    async with open_desk(database) as desk:
        form = {"user_number": str(desk.net.maker.user_number), "pin": PIN}
        await desk.csrf("/admin/login")  # a session exists, but the form has no token
        async with desk.http.post("/admin/login", data=form) as answer:
            assert answer.status == 403 and "CSRF" in await error_of(answer)
        assert (await desk.log_in(desk.net.maker)).status == 200

        no_token = await desk.upload(good_file(desk.net), csrf=None)
        assert no_token.status == 403 and "CSRF" in await error_of(no_token)
        wrong_token = await desk.upload(good_file(desk.net), csrf="forged")
        assert wrong_token.status == 403
        assert await desk.batch_ids() == []

        batch_id = (await desk.upload(good_file(desk.net))).url.path.rsplit("/", 1)[1]
        await desk.http.post("/admin/logout", data={"csrf": await desk.csrf()})
        assert (await desk.log_in(desk.net.checker)).status == 200
        forged = {"pin": PIN}
        async with desk.http.post(f"/admin/batches/{batch_id}/approve", data=forged) as answer:
            assert answer.status == 403 and "CSRF" in await error_of(answer)
        async with desk.http.post("/admin/logout", data={}) as answer:
            assert answer.status == 403
        assert (await desk.net.bulk.batch_view(batch_id)).state is BatchState.DRAFT


# --- the maker's upload -------------------------------------------------------------


@asyncio_test
async def test_bad_files_and_a_wrong_pin_are_refused_on_upload_and_no_batch_is_kept(
    database: Database,
) -> None:
    async with open_desk(database) as desk:
        await desk.log_in(desk.net.maker)
        no_header = await desk.upload("1,12345678,Ann,Lee,N1,1990-01-02,10\n")
        assert no_header.status == 400
        assert "the first line must be the header" in await error_of(no_header)
        too_big = await desk.upload(HEADER + "x" * MAX_CSV_BYTES)
        assert too_big.status == 413 and "over 5120 KB" in await error_of(too_big)
        not_utf8 = await desk.upload(HEADER.encode() + "1,Zoë".encode("latin-1"))
        assert not_utf8.status == 400 and "UTF-8" in await error_of(not_utf8)
        wrong_pin = await desk.upload(good_file(desk.net), pin=WRONG_PIN)
        assert wrong_pin.status == 403 and await error_of(wrong_pin) == (
            "wrong PIN: 2 attempts left"
        )
        assert await desk.batch_ids() == []


@asyncio_test
async def test_a_name_written_as_a_formula_is_reported_and_never_exported_as_one(
    database: Database,
) -> None:
    async with open_desk(database) as desk:
        await desk.log_in(desk.net.maker)
        payee = desk.net.payees[0]
        text = good_file(desk.net) + line(9, payee, "5", first='=HYPERLINK("http://x")')
        page = await desk.upload(text)
        html = await page.text()
        assert page.status == 200 and "firstName starts with" in html
        assert "=HYPERLINK(&quot;http://x&quot;)" in html and '"http://x"' not in html
        report_url = page.url.path + "/report.csv"
        async with desk.http.get(report_url) as report:
            csv_text = await report.text()
        assert "'=HYPERLINK" in csv_text  # written as text, not as a formula
        assert not any(
            cell.startswith("=") for row in csv_text.splitlines() for cell in row.split(",")
        )


# --- maker and checker --------------------------------------------------------------


@asyncio_test
async def test_the_maker_cannot_approve_their_own_batch_even_with_a_forged_form(
    database: Database,
) -> None:
    async with open_desk(database) as desk:
        await desk.log_in(desk.net.maker)
        page = await desk.upload(good_file(desk.net))
        html = await page.text()
        assert 'data-testid="approve"' not in html and "cannot approve" in html
        batch_id = page.url.path.rsplit("/", 1)[1]
        form = {"csrf": await desk.csrf(), "pin": PIN}
        approve = f"/admin/batches/{batch_id}/approve"
        async with desk.http.post(approve, data=form) as answer:
            assert answer.status == 403
            assert "not given this customer the bulk checker role" in await error_of(answer)
        # Even a maker who is a checker too cannot approve their own batch.
        await desk.net.bulk.grant_role(desk.net.maker.id, "checker")
        async with desk.http.get(f"/admin/batches/{batch_id}") as page_again:
            assert 'data-testid="approve"' not in await page_again.text()
        async with desk.http.post(approve, data=form) as answer:
            assert answer.status == 403
            assert await error_of(answer) == "the maker of a batch cannot approve or reject it"
        assert (await desk.net.bulk.batch_view(batch_id)).state is BatchState.DRAFT


@asyncio_test
async def test_a_checker_sees_the_batch_waiting_and_approves_it_with_the_right_pin(
    database: Database,
) -> None:
    async with open_desk(database) as desk:
        await desk.log_in(desk.net.maker)
        batch_id = (await desk.upload(good_file(desk.net))).url.path.rsplit("/", 1)[1]
        await desk.http.post("/admin/logout", data={"csrf": await desk.csrf()})
        await desk.log_in(desk.net.checker)
        async with desk.http.get("/admin/batches") as home:
            assert f"/admin/batches/{batch_id}" in await home.text()
        token = await desk.csrf(f"/admin/batches/{batch_id}")
        approve = f"/admin/batches/{batch_id}/approve"
        async with desk.http.post(approve, data={"csrf": token, "pin": WRONG_PIN}) as answer:
            assert answer.status == 403 and "wrong PIN" in await error_of(answer)
        assert (await desk.net.bulk.batch_view(batch_id)).state is BatchState.DRAFT
        async with desk.http.post(approve, data={"csrf": token, "pin": PIN}) as answer:
            assert answer.status == 200 and 'http-equiv="refresh"' in await answer.text()
        assert (await desk.net.bulk.batch_view(batch_id)).state is BatchState.APPROVED


@asyncio_test
async def test_someone_without_a_bulk_role_cannot_log_in_nor_see_a_batch(
    database: Database,
) -> None:
    async with open_desk(database) as desk:
        answer = await desk.log_in(desk.net.payees[0])
        assert answer.status == 403 and "role" in await error_of(answer)
        async with desk.http.get("/admin/batches/anything") as page:
            assert page.url.path == "/admin/login"
