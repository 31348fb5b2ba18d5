"""The DFSP's notices: the outbox is idempotent on the notice key, texts render in the
customer's language, and delivery to a stand-in gateway (a real aiohttp server on the
gateway's notify routes) retries until the gateway answers. SQLite always, PostgreSQL
where USSDLOOP_TEST_PG is set."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import event, func, select

from dfsp.domain.notices import Notice, to_msisdn
from dfsp.notice_texts import LANGUAGES, MAX_SMS_CHARS, TEXTS, render_notice
from dfsp.notification_store import NoticeRow, OutboxState
from dfsp.notifications import Notifications, RetryPolicy
from gateway.smpp.gsm0338 import gsm7_length
from tests.integration.conftest import Database
from tests.integration.dfsp.test_customers import Dfsp, open_dfsp
from tests.support import asyncio_test, until

FAST = RetryPolicy(initial_delay=0.05, factor=2.0, max_delay=0.2)
ARGS = {
    "amount": "10 USD",
    "fee": "1 USD",
    "balance": "989 USD",
    "receiver": "Kani Moe",
    "sender": "Hamim Ali",
    "merchant": "Shop One",
    "buyer": "Kani Moe",
    "agent": "Agent Zed",
    "reference": "INV-7",
    "payer": "Acme Payroll",
    "date": "2030-01-31",
}


@dataclass
class StandInGateway:
    """The gateway's ``/notify/sms`` and ``/notify/push``; answers ``fail_first`` SMS
    requests (and every push while ``push_fails``) with 503, and every SMS to an MSISDN
    of ``answers`` with its (status, body)."""

    fail_first: int = 0
    push_fails: bool = False
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)
    sms: list[dict[str, Any]] = field(default_factory=list)
    pushes: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0

    async def notify_sms(self, request: web.Request) -> web.Response:
        if self.refused < self.fail_first:
            self.refused += 1
            return web.json_response({"id": "CarrierUnavailable", "message": "down"}, status=503)
        body = await request.json()
        if body["msisdn"] in self.answers:
            status, text = self.answers[body["msisdn"]]
            return web.Response(status=status, text=text)
        self.sms.append(body)
        return web.json_response({"messageId": f"m{len(self.sms)}"})

    async def notify_push(self, request: web.Request) -> web.Response:
        if self.push_fails:
            return web.json_response({"id": "CarrierUnavailable", "message": "down"}, status=503)
        self.pushes.append(await request.json())
        return web.json_response({"status": "sent"})


@asynccontextmanager
async def serving(gateway: StandInGateway) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/notify/sms", gateway.notify_sms)
    app.router.add_post("/notify/push", gateway.notify_push)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def notifications(
    database: Database, gateway_url: str | None = None
) -> AsyncIterator[tuple[Dfsp, Notifications]]:
    async with open_dfsp(database) as dfsp:
        sessions = dfsp.customers._sessions  # the same database
        sink = Notifications(
            sessions,
            dfsp.customers,
            gateway_url=gateway_url,
            short_code="*123#",
            retry=FAST,
            request_timeout=2.0,
        )
        sink.start()
        try:
            yield dfsp, sink
        finally:
            await sink.stop()


@contextmanager
def statements(sink: Notifications) -> Iterator[list[tuple[str, bool]]]:
    """The SQL statements the sink's database runs meanwhile, each with whether it was
    an executemany."""
    engine = sink._sessions.kw["bind"].sync_engine
    seen: list[tuple[str, bool]] = []

    def record(*args: Any) -> None:
        statement, executemany = args[2], args[5]
        seen.append((statement, executemany))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def outbox_rows(sink: Notifications) -> list[NoticeRow]:
    async with sink._sessions() as session:
        return list((await session.scalars(select(NoticeRow).order_by(NoticeRow.seq))).all())


def sent(customer_id: str, key: str = "transfer:t1:sender") -> Notice:
    return Notice(key, customer_id, "sent", ARGS)


def received(customer_id: str, key: str, balance: str = "1010 USD") -> Notice:
    return Notice(key, customer_id, "received", {**ARGS, "balance": balance})


def received_text(balance: str = "1010 USD") -> str:
    return f"You received 10 USD from Hamim Ali. Balance {balance}."


# --- the outbox -----------------------------------------------------------------------


@asyncio_test
async def test_posting_the_same_key_twice_keeps_one_notice(database: Database) -> None:
    async with notifications(database) as (dfsp, sink):
        ann = await dfsp.register(1)
        await sink.post([sent(ann.id)])
        await sink.post([sent(ann.id), Notice("transfer:t1:sender", ann.id, "received", ARGS)])
        rows = await outbox_rows(sink)
        assert [(row.key, row.message) for row in rows] == [("transfer:t1:sender", "sent")]


@asyncio_test
async def test_concurrent_posts_of_one_key_keep_one_notice(database: Database) -> None:
    async with notifications(database) as (dfsp, sink):
        ann = await dfsp.register(1)
        await asyncio.gather(*(sink.post([sent(ann.id, "k-same")]) for _ in range(10)))
        await asyncio.gather(*(sink.post([sent(ann.id, f"k-{n % 3}")]) for n in range(9)))
        async with sink._sessions() as session:
            count = await session.scalar(select(func.count()).select_from(NoticeRow))
        assert count == 4


@asyncio_test
async def test_undelivered_notices_wait_in_the_outbox_while_no_gateway_is_known(
    database: Database,
) -> None:
    async with notifications(database, gateway_url=None) as (dfsp, sink):
        ann = await dfsp.register(1)
        await sink.post([sent(ann.id)])
        await asyncio.sleep(0.2)
        [row] = await outbox_rows(sink)
        assert row.state == OutboxState.PENDING.value and row.attempts >= 1
        assert await sink.delivered() == 0


# --- texts ----------------------------------------------------------------------------


def test_texts_render_in_english_and_french() -> None:
    english = render_notice("sent", ARGS, language="en", short_code="*123#")
    assert english == "You sent 10 USD to Kani Moe. Fee 1 USD. Balance 989 USD."
    french = render_notice("sent", ARGS, language="fr", short_code="*123#")
    assert french == "Vous avez envoyé 10 USD à Kani Moe. Frais 1 USD. Solde 989 USD."
    received = {"amount": "10 USD", "sender": "Hamim Ali", "balance": "1010 USD"}
    assert (
        render_notice("received", received, language="en", short_code="*123#")
        == "You received 10 USD from Hamim Ali. Balance 1010 USD."
    )
    invoice = {"amount": "25 USD", "merchant": "Shop One", "reference": "INV-7"}
    assert render_notice("invoice_received", invoice, language="en", short_code="*150#") == (
        "Invoice from Shop One for 25 USD. Dial *150# and choose Pending transactions to pay."
    )
    assert render_notice("sent", ARGS, language="sw", short_code="*123#") == english


def test_every_text_is_one_gsm_sms_even_with_long_names() -> None:
    long_names = {**ARGS, **{k: "Bartholomew Maximilian Okonkwo-Abernathy" for k in ARGS}}
    long_names.update(amount="1000000.00 USD", fee="100.00 USD", balance="9999999.99 USD")
    long_names["reference"] = "INV-20300101-0001"
    for language in LANGUAGES:
        for message in TEXTS[language]:
            text = render_notice(message, long_names, language=language, short_code="*123#")
            length = gsm7_length(text)
            assert length is not None, f"{language}/{message} is not GSM 03.38: {text}"
            assert length <= MAX_SMS_CHARS, f"{language}/{message} is {length} chars: {text}"


# --- delivery -------------------------------------------------------------------------


@asyncio_test
async def test_a_notice_reaches_the_gateway_after_it_failed_at_first(
    database: Database,
) -> None:
    gateway = StandInGateway(fail_first=2)
    async with serving(gateway) as url, notifications(database, url) as (dfsp, sink):
        ann = await dfsp.register(1, language="fr")
        await sink.post([sent(ann.id)])
        await until(lambda: bool(gateway.sms))
        assert gateway.refused == 2
        assert gateway.sms == [
            {
                "msisdn": "256700000001",
                "text": "Vous avez envoyé 10 USD à Kani Moe. Frais 1 USD. Solde 989 USD.",
            }
        ]
        await until(lambda: sink.counters.delivered == 1)
        assert await sink.delivered() == 1
        [row] = await outbox_rows(sink)
        assert (row.state, row.attempts) == (OutboxState.DELIVERED.value, 2)
        await sink.post([sent(ann.id)])  # again: already delivered, not sent twice
        await asyncio.sleep(0.1)
        assert len(gateway.sms) == 1


@asyncio_test
async def test_notices_are_delivered_oldest_first(database: Database) -> None:
    gateway = StandInGateway()
    async with serving(gateway) as url, notifications(database, url) as (dfsp, sink):
        ann = await dfsp.register(1)
        await sink.stop()  # post while stopped, deliver on the next start
        await sink.post([sent(ann.id, f"k{n}") for n in range(5)])
        invoice = {"amount": "25 USD", "merchant": "Shop One", "reference": "INV-7"}
        await sink.post([Notice("k5", ann.id, "invoice_received", invoice)])
        sink.start()
        await until(lambda: len(gateway.sms) == 6)
        assert [m["text"][:8] for m in gateway.sms] == ["You sent"] * 5 + ["Invoice "]


@asyncio_test
async def test_an_invoice_is_pushed_too_and_a_failed_push_is_not_retried(
    database: Database,
) -> None:
    gateway = StandInGateway(push_fails=True)
    invoice = {"amount": "25 USD", "merchant": "Shop One", "reference": "INV-7"}
    async with serving(gateway) as url, notifications(database, url) as (dfsp, sink):
        ann = await dfsp.register(1)
        await sink.post([Notice("invoice:1", ann.id, "invoice_received", invoice, push=True)])
        await until(lambda: sink.counters.delivered == 1)
        assert gateway.sms[0]["text"].startswith("Invoice from Shop One for 25 USD.")
        assert sink.counters.failed_pushes == 1
        gateway.push_fails = False
        await sink.post([Notice("invoice:2", ann.id, "invoice_received", invoice, push=True)])
        await until(lambda: sink.counters.delivered == 2)
        assert gateway.pushes == [{"msisdn": "256700000001", "text": gateway.sms[1]["text"]}]
        assert sink.counters.failed_pushes == 1


@asyncio_test
async def test_a_notice_for_a_customer_no_longer_registered_is_dropped(
    database: Database,
) -> None:
    gateway = StandInGateway()
    async with serving(gateway) as url, notifications(database, url) as (dfsp, sink):
        ann = await dfsp.register(1)
        await sink.post([sent("removed-customer", "k-gone"), sent(ann.id, "k-ann")])
        await until(lambda: sink.counters.delivered == 1 and sink.counters.dropped == 1)
        states = {row.key: row.state for row in await outbox_rows(sink)}
        assert states == {"k-gone": "dropped", "k-ann": "delivered"}
        assert [m["msisdn"] for m in gateway.sms] == ["256700000001"]
        assert await sink.count(OutboxState.DROPPED) == 1


@asyncio_test
async def test_a_batch_is_delivered_with_one_read_of_its_customers_and_one_write(
    database: Database,
) -> None:
    gateway = StandInGateway()
    invoice = {"amount": "25 USD", "merchant": "Shop One", "reference": "INV-7"}
    async with serving(gateway) as url, notifications(database, url) as (dfsp, sink):
        people = [await dfsp.register(n) for n in range(1, 7)]
        await sink.stop()  # post while stopped: the notices make one batch
        await sink.post([received(person.id, f"k{n}") for n, person in enumerate(people)])
        await sink.post(
            [
                received(people[0].id, "k-later", balance="1020 USD"),
                Notice("k-invite", to_msisdn("256799000001"), "bulk_invite", ARGS),
                Notice("k-invoice", people[1].id, "invoice_received", invoice, push=True),
            ]
        )
        with statements(sink) as seen:
            sink.start()
            await until(lambda: sink.counters.delivered == 9)
        customer_reads = [s for s, _ in seen if re.search(r"FROM (\w+\.)?customers\b", s)]
        finishes = [
            many for s, many in seen if re.match(r"UPDATE (\w+\.)?notice_outbox SET state", s)
        ]
        assert len(customer_reads) == 1 and finishes == [True]
        assert {row.state for row in await outbox_rows(sink)} == {OutboxState.DELIVERED.value}
        to_first = [m["text"] for m in gateway.sms if m["msisdn"] == "256700000001"]
        assert to_first == [received_text(), received_text("1020 USD")]  # in posting order
        assert sorted(m["msisdn"] for m in gateway.sms) == sorted(
            ["256700000001", "256700000002", "256799000001"] + [p.msisdn for p in people]
        )
        invite = next(m["text"] for m in gateway.sms if m["msisdn"] == "256799000001")
        assert invite.startswith("Acme Payroll wants to pay you 10 USD. Dial *123#")
        assert [m["msisdn"] for m in gateway.pushes] == ["256700000002"]


@asyncio_test
async def test_each_notice_of_a_batch_ends_as_its_own_attempt_went(database: Database) -> None:
    refused = (400, '{"id": "BadRequest", "message": "no such number"}')
    busy = (503, '{"id": "CarrierUnavailable", "message": "down"}')
    gateway = StandInGateway(answers={"256700000002": refused, "256700000003": busy})
    async with serving(gateway) as url, notifications(database, url) as (dfsp, sink):
        people = [await dfsp.register(n) for n in range(1, 5)]
        await sink.stop()  # post while stopped: the notices make one batch
        keys = ["k-good", "k-refused", "k-busy", "k-good-too"]
        await sink.post([received(p.id, key) for p, key in zip(people, keys, strict=True)])
        await sink.post([received("removed-customer", "k-gone")])
        sink.start()
        await until(
            lambda: (
                (sink.counters.delivered, sink.counters.dropped) == (2, 2)
                and sink.counters.failed_attempts >= 2
            )
        )
        rows = {row.key: row for row in await outbox_rows(sink)}
        assert {key: row.state for key, row in rows.items()} == {
            "k-good": "delivered",
            "k-refused": "dropped",
            "k-busy": "pending",
            "k-good-too": "delivered",
            "k-gone": "dropped",
        }
        assert rows["k-gone"].last_error == "UnknownCustomer: no such customer 'removed-customer'"
        assert str(rows["k-refused"].last_error).startswith("gateway answered 400")
        assert rows["k-busy"].attempts >= 2 and "503" in str(rows["k-busy"].last_error)
        assert rows["k-good"].last_error is None and rows["k-good"].finished_at is not None
        assert sorted(m["msisdn"] for m in gateway.sms) == ["256700000001", "256700000004"]


@asyncio_test
async def test_an_attempt_failing_unexpectedly_leaves_the_rest_of_its_batch_recorded(
    database: Database,
) -> None:
    gateway = StandInGateway(answers={"256700000002": (200, "not json")})
    async with serving(gateway) as url, notifications(database, url) as (dfsp, sink):
        people = [await dfsp.register(n) for n in range(1, 4)]
        await sink.stop()  # post while stopped: the notices make one batch
        await sink.post([received(p.id, f"k{n}") for n, p in enumerate(people)])
        sink.start()
        await until(lambda: sink.counters.delivered == 2)
        states = {row.key: (row.state, row.attempts) for row in await outbox_rows(sink)}
        assert states == {"k0": ("delivered", 0), "k1": ("pending", 0), "k2": ("delivered", 0)}
