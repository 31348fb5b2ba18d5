"""Acceptance: network-initiated USSD (USSR and USSN pushes to a phone with no open
dialogue), SMS with delivery receipts, and the variant dialect, over SMPP end to end."""

from __future__ import annotations

import json

from simulators.modem.handsets import HandsetState, SmsEvent, UssdScreenEvent
from tests.e2e.carrier import carrier_network
from tests.support import asyncio_test, until


@asyncio_test
async def test_a_pushed_prompt_reaches_an_idle_phone_and_its_answer_opens_the_menu() -> None:
    async with carrier_network() as carrier:
        handset = carrier.simulator.network.handset("256700000041")
        shown: list[UssdScreenEvent] = []
        handset.subscribe(lambda e: shown.append(e) if isinstance(e, UssdScreenEvent) else None)

        await carrier.gateways["dfsp1"].push(
            "256700000041", "Invoice from Amani for 12 USD\n1. Open menu", expect_reply=True
        )
        await until(lambda: handset.state is HandsetState.OPEN)
        assert shown[-1].screen.network_initiated
        assert shown[-1].screen.text.startswith("Invoice from Amani")

        screen = await handset.reply("1")
        assert screen.text.startswith("Welcome to ussdloop demo")


@asyncio_test
async def test_a_pushed_notification_is_shown_acknowledged_and_released() -> None:
    async with carrier_network() as carrier:
        handset = carrier.simulator.network.handset("256700000042")
        await carrier.gateways["dfsp1"].push("256700000042", "Invoice paid!", expect_reply=False)
        await until(lambda: handset.screen is not None and handset.screen.text == "Invoice paid!")
        # The handset acknowledges (USSN confirm); the gateway releases the dialogue.
        await until(lambda: handset.state is HandsetState.IDLE, timeout=3)
        assert handset.screen is not None
        assert handset.screen.ended_reason == "released"
        assert (await handset.dial("*123#")).expects_reply


@asyncio_test
async def test_an_sms_reaches_the_inbox_and_its_delivery_receipt_comes_back() -> None:
    async with carrier_network() as carrier:
        gateway = carrier.gateways["dfsp2"]
        handset = carrier.simulator.network.handset("256700000043")
        arrived: list[SmsEvent] = []
        handset.subscribe(lambda e: arrived.append(e) if isinstance(e, SmsEvent) else None)

        message_id = await gateway.send_sms("256700000043", "You received 5000 USD from Hamim")

        await until(lambda: bool(arrived) and message_id in gateway.receipts)
        assert handset.sms[-1].text == "You received 5000 USD from Hamim"
        assert gateway.receipts[message_id].state == "DELIVERED"


@asyncio_test
async def test_a_dialogue_in_the_umr_variant_dialect() -> None:
    env = {"USSDLOOP__DFSPS__DFSP2__GATEWAY__DIALECT": json.dumps("umr")}
    async with carrier_network(env) as carrier:
        assert carrier.gateways["dfsp2"].dialect.name == "umr"
        handset = carrier.simulator.network.handset("256700000044")
        screen = await handset.dial("*456#")
        assert screen.data_coding == 0x0F  # the variant writes GSM text as USSD DCS 0x0F
        for answer in ("1", "Zoë", "5"):
            screen = await handset.reply(answer)
        assert screen.text.startswith("Send 5 to Zoë?")
        await handset.cancel()  # an abort: operation 0x81 in the variant
        await until(lambda: carrier.gateways["dfsp2"].counters.aborts == 1)
