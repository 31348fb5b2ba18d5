"""Acceptance: the DFSP tells its customers things through its gateway. The gateway's
``/notify/sms`` and ``/notify/push`` reach the simulator's handsets over SMPP (seen on the
simulator's control API), and a notice posted to a running DFSP's notifications arrives
as an SMS on the customer's phone."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import aiohttp

from dfsp.domain.notices import Notice
from tests.e2e.carrier import bound, carrier_network, overrides
from tests.support import asyncio_test, eventually
from ussdloop.compose import build_gateway, gateway_config, start_network
from ussdloop.config import load_network
from ussdloop.money import Money


async def inbox(http: aiohttp.ClientSession, control: str, msisdn: str) -> list[str]:
    async with http.get(f"{control}/phones/{msisdn}/sms") as response:
        return [sms["text"] for sms in (await response.json())["sms"]]


async def phone(http: aiohttp.ClientSession, control: str, msisdn: str) -> dict[str, Any]:
    async with http.get(f"{control}/phones/{msisdn}") as response:
        view: dict[str, Any] = await response.json()
        return view


async def notify(
    http: aiohttp.ClientSession, gateway: str, route: str, body: Any
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{gateway}/notify/{route}", json=body) as response:
        return response.status, await response.json()


@asyncio_test
async def test_notify_sms_reaches_the_handsets_inbox() -> None:
    async with carrier_network() as carrier, aiohttp.ClientSession() as http:
        gateway = f"http://127.0.0.1:{carrier.gateways['dfsp1'].http_port}"
        control = f"http://127.0.0.1:{carrier.sim.control.port}"
        text = "You received 10 USD from Hamim Ali. Balance 1010 USD."

        status, answer = await notify(
            http, gateway, "sms", {"msisdn": "+256700000061", "text": text}
        )

        assert status == 200 and answer["messageId"]
        assert await eventually(lambda: inbox(http, control, "256700000061")) == [text]


@asyncio_test
async def test_notify_push_shows_on_the_handsets_screen() -> None:
    async with carrier_network() as carrier, aiohttp.ClientSession() as http:
        gateway = f"http://127.0.0.1:{carrier.gateways['dfsp1'].http_port}"
        control = f"http://127.0.0.1:{carrier.sim.control.port}"
        text = (
            "Invoice from Shop One for 25 USD. Dial *123# and choose Pending transactions to pay."
        )

        status, _ = await notify(http, gateway, "push", {"msisdn": "256700000062", "text": text})

        assert status == 200

        async def shown() -> dict[str, Any] | None:
            view = await phone(http, control, "256700000062")
            return view if view["screen"] == text else None

        view = await eventually(shown)
        assert view["networkInitiated"] and not view["expectsReply"]


@asyncio_test
async def test_bad_notify_requests_are_refused_with_the_reason() -> None:
    async with carrier_network() as carrier, aiohttp.ClientSession() as http:
        gateway = f"http://127.0.0.1:{carrier.gateways['dfsp1'].http_port}"
        cases = [
            ("sms", {"text": "hello"}),
            ("sms", {"msisdn": "0700 000 000", "text": "hello"}),
            ("sms", {"msisdn": "256700000063", "text": ""}),
            ("sms", {"msisdn": "256700000063", "text": "x" * 1000}),  # over 6 segments
            ("push", {"msisdn": "256700000063", "text": "x" * 400}),  # over one screen
            ("push", ["not", "an", "object"]),
        ]
        for route, body in cases:
            status, answer = await notify(http, gateway, route, body)
            assert (status, answer["id"]) == (400, "BadRequest"), (route, body, answer)


@asyncio_test
async def test_notify_answers_503_while_the_carrier_link_is_down() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    network = load_network(environ=overrides())
    config = gateway_config(network, "dfsp1", smpp_port=closed_port, any_port=True)
    gateway = build_gateway(config)
    await gateway.start()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{gateway.http_port}"
            for route in ("sms", "push"):
                body = {"msisdn": "256700000064", "text": "hello"}
                status, answer = await notify(http, url, route, body)
                assert (status, answer["id"]) == (503, "CarrierUnavailable")
    finally:
        await gateway.stop()


@asyncio_test
async def test_a_notice_posted_to_the_dfsp_reaches_the_customers_phone(tmp_path: Path) -> None:
    network = load_network(environ=overrides())
    carrier = await start_network(network, any_port=True, data_dir=tmp_path / "var")
    try:
        await bound(carrier)
        dfsp1 = carrier.dfsps["dfsp1"]
        assert dfsp1.customers is not None and dfsp1.notifications is not None
        kani = await dfsp1.customers.register(
            msisdn="+256700000065",
            first_name="Kani",
            last_name="Moe",
            date_of_birth="1990-04-25",
            national_id="NT0065",
            account_name="main",
            role="customer",
            pin="2468",
            language="fr",
        )
        args = {"amount": "10 USD", "sender": "Hamim Ali", "balance": "1010 USD"}
        await dfsp1.notifications.post([Notice("e2e:received:1", kani.id, "received", args)])

        control = f"http://127.0.0.1:{carrier.sim.control.port}"
        async with aiohttp.ClientSession() as http:
            texts = await eventually(lambda: inbox(http, control, "256700000065"))
        assert texts == ["Hamim Ali vous a envoyé 10 USD. Solde 1010 USD."]
        assert await dfsp1.notifications.delivered() == 1
    finally:
        await carrier.running.stop()


@asyncio_test
async def test_a_payment_tells_the_sender_and_the_receiver_by_sms(tmp_path: Path) -> None:
    network = load_network(environ=overrides())
    carrier = await start_network(network, any_port=True, data_dir=tmp_path / "var")
    try:
        await bound(carrier)
        dfsp1 = carrier.dfsps["dfsp1"]
        customers, payments = dfsp1.customers, dfsp1.payments
        assert customers is not None and payments is not None
        people = []
        for n, (first, last) in enumerate([("Hamim", "Ali"), ("Kani", "Moe")], 66):
            people.append(
                await customers.register(
                    msisdn=f"+2567000000{n}",
                    first_name=first,
                    last_name=last,
                    date_of_birth="1990-04-25",
                    national_id=f"NT00{n}",
                    account_name="main",
                    role="customer",
                    pin="2468",
                )
            )
        hamim, kani = people
        [account] = [a for a in await customers.accounts_of(hamim.id) if a.primary]
        quote = await payments.quote_send(
            hamim.id, account.id, str(kani.user_number), Money.parse("10", "USD")
        )
        await payments.send(quote, "2468", "e2e-pay-1")

        control = f"http://127.0.0.1:{carrier.sim.control.port}"
        async with aiohttp.ClientSession() as http:
            sender = await eventually(lambda: inbox(http, control, "256700000066"))
            receiver = await eventually(lambda: inbox(http, control, "256700000067"))
        assert sender == ["You sent 10 USD to Kani Moe. Fee 1 USD. Balance 989 USD."]
        assert receiver == ["You received 10 USD from Hamim Ali. Balance 1010 USD."]
    finally:
        await carrier.running.stop()
