"""The DFSP's HTTP API on a real loopback server, driven only through ``DfspClient``
(as the gateway will), over the services on SQLite (and PostgreSQL where
USSDLOOP_TEST_PG is set): the demo opening balance of 1000 USD and fee of 1 USD (a
merchant, a buyer and an agent of ``open_shop`` registered first)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import aiohttp
import pytest
from aiohttp import web

from dfsp.api import dfsp_app
from dfsp.client import (
    AlreadyRegisteredError,
    BadRequestError,
    CustomerInfo,
    DfspClient,
    InsufficientFundsError,
    PinLockedError,
    QuoteChangedError,
    UnknownCustomerError,
    UnknownReceiverError,
    WeakPinError,
    WrongPinError,
)
from dfsp.metrics import DfspMetrics
from dfsp.store import create_store_engine
from tests.integration.conftest import Database
from tests.integration.dfsp.test_invoices import Shop, open_shop
from tests.support import asyncio_test
from ussdloop.db import session_factory
from ussdloop.money import Money

PIN = "2468"
WRONG_PIN = "1357"


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


@dataclass
class Served:
    client: DfspClient
    base_url: str
    session: aiohttp.ClientSession
    app: web.Application
    shop: Shop  # the services behind the API, with a merchant, a buyer and an agent


@asynccontextmanager
async def served_dfsp(database: Database) -> AsyncIterator[Served]:
    """The DFSP of ``test_invoices.open_shop`` (the demo fees plus the agent's) behind
    its HTTP API on a free loopback port; ``/metrics`` reads through an engine of its own."""
    metrics_engine = create_store_engine(database.url, schema=database.schema)
    async with open_shop(database) as shop:
        metrics = DfspMetrics(session_factory(metrics_engine))
        app = dfsp_app(shop.dfsp.customers, shop.payments, shop.invoices, shop.cash, metrics)
        runner = web.AppRunner(app)  # with its access log: no PIN may show there
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            base_url = f"http://{host}:{port}"
            async with aiohttp.ClientSession() as session:
                yield Served(DfspClient(base_url, session), base_url, session, app, shop)
        finally:
            await runner.cleanup()
            await metrics_engine.dispose()


async def register(client: DfspClient, n: int, first_name: str) -> CustomerInfo:
    return await client.register(
        msisdn=f"+2567000001{n:02d}",
        first_name=first_name,
        last_name="Api",
        date_of_birth="1990-04-25",
        national_id=f"AP{n:04d}",
        pin=PIN,
    )


@asyncio_test
async def test_customers_register_and_are_found_by_phone_and_user_number(
    database: Database,
) -> None:
    async with served_dfsp(database) as dfsp:
        ann = await register(dfsp.client, 1, "Ann")
        ben = await register(dfsp.client, 2, "Ben")
        assert ann.user_number != ben.user_number and len(ann.user_number) == 8
        assert (ann.name, ann.currency, ann.pin_locked) == ("Ann Api", "USD", False)
        assert await dfsp.client.customer_by_msisdn("+256 700 000 101") == ann
        assert await dfsp.client.customer_by_user_number(ben.user_number) == ben
        with pytest.raises(UnknownCustomerError) as unknown:
            await dfsp.client.customer_by_user_number("99999999")
        assert (unknown.value.status, unknown.value.id) == (404, "UnknownCustomer")


@asyncio_test
async def test_a_quoted_payment_is_paid_once_and_shows_in_balance_and_ministatement(
    database: Database,
) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        ann = await register(client, 1, "Ann")
        ben = await register(client, 2, "Ben")
        assert ann.primary_account_id is not None and ben.primary_account_id is not None
        quote = await client.quote_send(
            ann.customer_id, ann.primary_account_id, ben.user_number, usd("44")
        )
        assert (quote.receiver_name, quote.amount, quote.fee, quote.total) == (
            "Ben Api",
            usd("44"),
            usd("1"),
            usd("45"),
        )
        with pytest.raises(QuoteChangedError):
            await client.send(replace(quote, fee=usd("0.50")), PIN, "api-stale")
        with pytest.raises(UnknownReceiverError) as nobody:
            await client.quote_send(ann.customer_id, ann.primary_account_id, "99999999", usd("44"))
        assert nobody.value.status == 404
        first = await client.send(quote, PIN, "api-once")
        again = await client.send(quote, PIN, "api-once")
        assert first == again and first.status == "executed"
        assert await client.balance(ann.customer_id, ann.primary_account_id, PIN) == usd("955")
        assert await client.balance(ben.customer_id, ben.primary_account_id, PIN) == usd("1044")
        lines = await client.ministatement(ann.customer_id, ann.primary_account_id, PIN, limit=3)
        assert [(line.name, line.amount) for line in lines] == [
            ("Ben Api", usd("-44")),
            ("fee", usd("-1")),
            ("opening_balance", usd("1000")),
        ]


@asyncio_test
async def test_a_wrong_pin_and_a_payment_above_the_balance_are_refused_with_the_details(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        ann = await register(client, 1, "Ann")
        ben = await register(client, 2, "Ben")
        assert ann.primary_account_id is not None
        quote = await client.quote_send(
            ann.customer_id, ann.primary_account_id, ben.user_number, usd("1000")
        )
        with pytest.raises(WrongPinError) as wrong:
            await client.send(quote, WRONG_PIN, "api-wrong")
        assert (wrong.value.status, wrong.value.attempts_left) == (403, 2)
        assert WRONG_PIN not in str(wrong.value)
        with pytest.raises(InsufficientFundsError) as poor:
            await client.send(quote, PIN, "api-poor")
        assert (poor.value.status, poor.value.available) == (409, usd("1000"))
    assert caplog.records
    assert not re.search(rf"\b({PIN}|{WRONG_PIN})\b", caplog.text)


@asyncio_test
async def test_a_body_that_is_not_json_is_a_bad_request(database: Database) -> None:
    async with served_dfsp(database) as dfsp:
        url = f"{dfsp.base_url}/quotes/send"
        async with dfsp.session.post(url, data=b"{not json") as response:
            assert response.status == 400
            assert (await response.json())["id"] == "BadRequest"
        with pytest.raises(BadRequestError) as refused:
            await dfsp.client.register(
                msisdn="+256700000101",
                first_name="Ann",
                last_name="Api",
                date_of_birth="1990-04-25",
                national_id="AP0001",
                pin=PIN,
                role="emperor",
            )
        assert refused.value.status == 400 and "role" in str(refused.value)


@asyncio_test
async def test_the_openapi_document_lists_every_route_the_app_serves(database: Database) -> None:
    async with served_dfsp(database) as dfsp:
        document = await dfsp.client.openapi()
        assert document["openapi"].startswith("3.1")
        assert await dfsp.client.health()
        documented = {
            (method.upper(), path)
            for path, operations in document["paths"].items()
            for method in operations
        }
        served = {
            (route.method, route.resource.canonical)
            for route in dfsp.app.router.routes()
            if route.method != "HEAD" and route.resource is not None
        }
        assert documented == served


@asyncio_test
async def test_a_weak_pin_a_second_registration_and_a_locked_pin_are_refused(
    database: Database,
) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        with pytest.raises(WeakPinError) as weak:
            await client.register(
                msisdn="+256700000109",
                first_name="Wes",
                last_name="Api",
                date_of_birth="1990-04-25",
                national_id="AP0009",
                pin="9876",
            )
        assert weak.value.status == 400 and "9876" not in str(weak.value)
        ann = await register(client, 1, "Ann")
        with pytest.raises(AlreadyRegisteredError) as twice:
            await register(client, 1, "Ann")
        assert twice.value.status == 409
        assert ann.primary_account_id is not None
        for attempts_left in (2, 1):
            with pytest.raises(WrongPinError) as wrong:
                await client.balance(ann.customer_id, ann.primary_account_id, WRONG_PIN)
            assert wrong.value.attempts_left == attempts_left
        for pin in (WRONG_PIN, PIN):
            with pytest.raises(PinLockedError) as locked:
                await client.balance(ann.customer_id, ann.primary_account_id, pin)
            assert locked.value.status == 423
        assert (await client.customer_by_user_number(ann.user_number)).pin_locked


@asyncio_test
async def test_a_payment_to_ones_own_account_is_quoted_and_paid_without_a_fee(
    database: Database,
) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        ann = await register(client, 1, "Ann")
        assert ann.primary_account_id is not None
        savings = await client.add_account(ann.customer_id, "savings", PIN)
        quote = await client.quote_send(
            ann.customer_id,
            ann.primary_account_id,
            ann.user_number,
            usd("30"),
            to_account_id=savings.account_id,
        )
        assert (quote.fee, quote.total, quote.receiver_account_id) == (
            usd("0"),
            usd("30"),
            savings.account_id,
        )
        paid = await client.send(quote, PIN, "api-own")  # the zero fee shown is no mistake
        assert (paid.status, paid.fee) == ("executed", usd("0"))
        assert await client.balance(ann.customer_id, savings.account_id, PIN) == usd("30")
