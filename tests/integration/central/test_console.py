"""The switch operator's console (``/console/``) over plain HTTP: who may use it, CSRF,
refused input changing nothing, credentials shown once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from central.client import CentralHttp, ParticipantsClient
from central.console.sessions import Sessions
from central.fraud.client import FraudClient
from tests.integration.central.support import (
    OPERATOR_KEY,
    OPERATOR_SECRET,
    Central,
    running_central,
)
from tests.integration.conftest import Database
from tests.support import asyncio_test

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Browser:
    """A cookie-keeping HTTP client on the console, as a browser would be."""

    central: Central
    http: aiohttp.ClientSession

    def url(self, path: str) -> str:
        return self.central.url + path

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.url(path), allow_redirects=False) as answer:
            return answer.status, await answer.text()

    async def post(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        async with self.http.post(self.url(path), data=form, allow_redirects=False) as answer:
            return answer.status, await answer.text()

    async def log_in(self, key: str = OPERATOR_KEY, secret: str = OPERATOR_SECRET) -> int:
        status, _ = await self.post("/console/login", {"key": key, "secret": secret})
        return status

    async def csrf(self) -> str:
        _, html = await self.get("/console/dfsps")
        found = CSRF.search(html)
        assert found, html
        return found.group(1)


@asynccontextmanager
async def browser(central: Central) -> AsyncIterator[Browser]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield Browser(central, http)


@asyncio_test
async def test_without_a_session_every_page_leads_to_the_login(database: Database) -> None:
    async with running_central(database) as central, browser(central) as web:
        for path in ("/console/dfsps", "/console/positions", "/console/fraud"):
            async with web.http.get(web.url(path), allow_redirects=False) as answer:
                assert answer.status == 303
                assert answer.headers["Location"] == "/console/login"
        status, _ = await web.post("/console/dfsps/dfsp1/pause", {"csrf": "x"})
        assert status == 303
        status, html = await web.get("/console/login")
        assert status == 200 and 'name="secret"' in html


@asyncio_test
async def test_the_operator_logs_in_with_an_httponly_samesite_cookie_and_logs_out(
    database: Database,
) -> None:
    async with running_central(database) as central, browser(central) as web:
        async with web.http.post(
            web.url("/console/login"),
            data={"key": OPERATOR_KEY, "secret": OPERATOR_SECRET},
            allow_redirects=False,
        ) as answer:
            assert answer.status == 303
            cookie = answer.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
        status, html = await web.get("/console/dfsps")
        assert status == 200 and "Register a DFSP" in html
        assert (await web.post("/console/logout", {"csrf": await web.csrf()}))[0] == 303
        assert (await web.get("/console/dfsps"))[0] == 303


@asyncio_test
async def test_a_dfsps_credentials_do_not_open_the_console(database: Database) -> None:
    async with running_central(database) as central, browser(central) as web:
        dfsp1 = await central.register("dfsp1")
        assert await web.log_in(dfsp1.key, dfsp1.secret) == 401
        assert await web.log_in(OPERATOR_KEY, "wrong-secret-123") == 401
        assert (await web.get("/console/dfsps"))[0] == 303  # no session was opened
        # Nor do they work as HTTP Basic on the console's pages.
        basic = {"Authorization": aiohttp.encode_basic_auth(dfsp1.key, dfsp1.secret)}
        async with web.http.get(
            web.url("/console/dfsps"), headers=basic, allow_redirects=False
        ) as answer:
            assert answer.status == 403
            assert "switch operator" in (await answer.json())["message"]


@asyncio_test
async def test_a_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing(
    database: Database,
) -> None:
    async with running_central(database) as central, browser(central) as web:
        await central.register("dfsp1")
        assert await web.log_in() == 303
        for form in ({}, {"csrf": "not-the-token"}):
            status, html = await web.post("/console/dfsps/dfsp1/pause", form)
            assert status == 403 and "CSRF" in html
        status, _ = await web.post("/console/dfsps", {"name": "dfsp9"})
        assert status == 403
        operator = ParticipantsClient(central.as_operator())
        assert (await operator.get("dfsp1")).status == "active"
        assert [p.name for p in await operator.all()] == ["dfsp1"]


@asyncio_test
async def test_a_bad_net_debit_cap_is_refused_clearly_and_changes_nothing(
    database: Database,
) -> None:
    async with running_central(database) as central, browser(central) as web:
        await central.register("dfsp1", net_debit_cap="500")
        await web.log_in()
        csrf = await web.csrf()
        for bad, said in (
            ("ten", "is not an amount"),
            ("-5", "not negative"),
            ("1.001", "USD"),
            ("", "Enter a net debit cap"),
            ("9" * 30, "at most 20"),
        ):
            status, html = await web.post("/console/dfsps/dfsp1/cap", {"csrf": csrf, "cap": bad})
            assert status == 400, (bad, html)
            assert said in html, (bad, html)
        status, _ = await web.post("/console/dfsps/nobody/cap", {"csrf": csrf, "cap": "10"})
        assert status == 404
        operator = ParticipantsClient(central.as_operator())
        assert (await operator.get("dfsp1")).net_debit_cap == "500.00"

        status, html = await web.post("/console/dfsps/dfsp1/cap", {"csrf": csrf, "cap": "750.5"})
        assert status == 200 and "set to 750.50" in html
        assert (await operator.get("dfsp1")).net_debit_cap == "750.50"
        await web.post("/console/dfsps/dfsp1/cap", {"csrf": csrf, "clear": "1"})
        assert (await operator.get("dfsp1")).net_debit_cap is None


@asyncio_test
async def test_a_new_dfsps_credentials_are_shown_once_and_work(database: Database) -> None:
    async with running_central(database) as central, browser(central) as web:
        await web.log_in()
        csrf = await web.csrf()
        status, html = await web.post(
            "/console/dfsps", {"csrf": csrf, "name": "dfsp3", "cap": "100"}
        )
        assert status == 201
        key = re.search(r'data-testid="new-key">([^<]+)<', html)
        secret = re.search(r'data-testid="new-secret">([^<]+)<', html)
        assert key and secret
        for path in ("/console/dfsps", "/console/positions"):
            _, later = await web.get(path)
            assert secret.group(1) not in later
        # The same form again registers nothing and shows no credentials.
        status, again = await web.post("/console/dfsps", {"csrf": csrf, "name": "dfsp3"})
        assert status == 409 and "already exists" in again and "new-secret" not in again
        status, bad = await web.post("/console/dfsps", {"csrf": csrf, "name": "no spaces"})
        assert status == 400 and "A DFSP name is" in bad
        status, _ = await web.post("/console/dfsps", {"csrf": csrf, "name": "d4", "cap": "x"})
        assert status == 400

        itself = ParticipantsClient(
            CentralHttp(central.url, central.session, key.group(1), secret.group(1))
        )
        assert (await itself.get("dfsp3")).net_debit_cap == "100.00"
        operator = ParticipantsClient(central.as_operator())
        assert [p.name for p in await operator.all()] == ["dfsp3"]


@asyncio_test
async def test_settlement_and_forensic_pages_refuse_bad_ids(database: Database) -> None:
    async with running_central(database) as central, browser(central) as web:
        await web.log_in()
        assert (await web.get("/console/settlements/not-a-uuid"))[0] == 400
        status, html = await web.get("/console/forensic/transfer?id=")
        assert status == 400 and "1 to 128" in html
        status, html = await web.get("/console/forensic/verify")
        assert status == 200 and "central" in html


def test_sessions_expire_when_idle_and_are_bounded() -> None:
    now = [0.0]
    sessions = Sessions(clock=lambda: now[0], lifetime=60)
    first = sessions.open("operator")
    now[0] = 59
    assert sessions.find(first.token) is first  # renewed until 119
    now[0] = 119.5
    assert sessions.find(first.token) is None
    assert sessions.find("") is None and sessions.find("x" * 500) is None
    for _ in range(100):
        sessions.open("operator")
    assert len(sessions) == 32


@asyncio_test
async def test_the_fraud_page_lists_blacklisted_users_and_escapes_what_they_say(
    database: Database,
) -> None:
    async with running_central(database) as central, browser(central) as web:
        await FraudClient(central.as_operator()).blacklist("12345678", "<script>x</script>")
        await web.log_in()
        status, html = await web.get("/console/fraud")
        assert status == 200 and "12345678" in html
        assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
        status, html = await web.get("/console/positions")
        assert status == 200 and 'data-testid="positions"' in html
