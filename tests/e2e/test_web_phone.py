"""Acceptance (main job, 3): the web phone in headless Chromium. Hamim (dfsp1) sends Kani
(dfsp2) money by pressing the keys of his phone on the page; every key press goes control
API -> simulator -> SMPP -> gateway -> DFSP and back, and Kani's SMS shows in her phone's
inbox on the same page. The browser is Debian's ``/usr/bin/chromium`` driven by
Playwright (no browser download); without it the browser test is skipped."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.browser import chromium_page, needs_chromium, save_screenshot
from tests.e2e.carrier import carrier_network
from tests.e2e.phones import PIN, Phone, dfsp_network, onboard
from tests.support import asyncio_test
from tests.unit.simulators.test_control_api import control_api

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

KEY_NAMES = {"*": "star", "#": "hash"}  # the keypad keys' test ids


def phone_on(page: Page, msisdn: str) -> Locator:
    return page.locator(f'[data-testid="phone"][data-msisdn="{msisdn}"]')


async def add_phone(page: Page, msisdn: str) -> Locator:
    await page.get_by_test_id("add-msisdn").fill(msisdn)
    await page.get_by_test_id("add-phone").click()
    phone = phone_on(page, msisdn)
    await phone.wait_for()
    return phone


async def press(phone: Locator, keys: str) -> str:
    """Type ``keys`` on the keypad, press the green key; the next screen, once shown."""
    log = phone.get_by_test_id("log-entry")
    entries = await log.count()
    for key in keys:
        await phone.get_by_test_id(f"key-{KEY_NAMES.get(key, key)}").click()
    assert await phone.get_by_test_id("input").input_value() == keys
    await phone.get_by_test_id("call").click()
    # The request and its answer are logged: two more entries, the last one the screen.
    await log.nth(entries + 1).wait_for()
    assert await phone.get_attribute("data-state") != "waiting"
    return await phone.get_by_test_id("screen").inner_text()


@asyncio_test
async def test_the_simulator_serves_the_web_phone_page_and_its_assets() -> None:
    async with control_api() as api:
        async with api.http.get(api.base + "/") as page:
            assert page.status == 200 and page.content_type == "text/html"
            html = await page.text()
        assert 'data-testid="add-phone"' in html
        for asset in ("/static/phone.js", "/static/phone.css"):
            assert asset in html
            async with api.http.get(api.base + asset) as answer:
                assert answer.status == 200, asset
        async with api.http.get(api.base + "/static/../control_api.py") as answer:
            assert answer.status in (403, 404)


@needs_chromium
@asyncio_test
async def test_hamim_sends_kani_money_across_dfsps_on_the_web_phone_keypad(
    tmp_path: Path,
) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        # On-boarding goes through the control API to save time; the payment is typed.
        hamim = Phone(carrier, http, "256700000701")
        kani = Phone(carrier, http, "256700000702", short_code="*456#")
        await onboard(hamim, "Hamim", "Ali", national_id="NI0701")
        kani_number = await onboard(kani, "Kani", "Moe", national_id="NI0702")
        for phone in (hamim, kani):
            if phone.open:
                await phone.hang_up()

        async with chromium_page() as page:
            await page.goto(f"http://127.0.0.1:{carrier.sim.control.port}/")
            sender = await add_phone(page, hamim.msisdn)
            receiver = await add_phone(page, kani.msisdn)
            assert await sender.get_by_test_id("msisdn").input_value() == hamim.msisdn

            home = await press(sender, "*123#")
            assert "Send money" in home, home
            assert "Enter destination number" in await press(sender, "1")
            assert await press(sender, kani_number) == (
                "Destination name: Kani Moe\nCurrency: USD\nEnter USD amount:\n\n0. Back"
            )
            assert await press(sender, "25") == (
                "Amount: 25 USD\nLocal fee: 1 USD\nScheme fee: 0.50 USD\nTotal: 26.50 USD\n"
                "Enter PIN\n\n0. Home\n1. Back"
            )
            assert await press(sender, PIN) == (
                "Status: executed\nTo: Kani Moe\nAmount: 25 USD\nFee: 1.50 USD\n\n0. Home"
            )

            # Every request and answer is in the log; the stopwatch ran.
            log = await sender.get_by_test_id("log").inner_text()
            for sent in ("dial", "*123#", "reply", kani_number, "Status: executed"):
                assert sent in log, log
            assert await sender.get_by_test_id("stopwatch").inner_text() != "00:00.0"

            # Both are told by SMS, in their phones' inboxes on the page.
            inbox = receiver.get_by_test_id("inbox")
            await inbox.get_by_text("You received 25 USD from Hamim Ali").wait_for()
            assert "Balance 1025 USD." in await inbox.inner_text()
            await (
                sender.get_by_test_id("inbox").get_by_text("You sent 25 USD to Kani Moe").wait_for()
            )
            shot = await save_screenshot(page, tmp_path, "web-phone")
            assert shot.stat().st_size > 10_000

            # The red key ends the dialogue.
            await sender.get_by_test_id("end").click()
            await page.locator(
                f'[data-testid="phone"][data-msisdn="{hamim.msisdn}"][data-state="idle"]'
            ).wait_for()
            assert "aborted" in await sender.get_by_test_id("screen").inner_text()


@needs_chromium
@asyncio_test
async def test_a_screen_pushed_by_the_network_appears_on_an_idle_web_phone() -> None:
    async with carrier_network() as carrier, chromium_page() as page:
        await page.goto(f"http://127.0.0.1:{carrier.sim.control.port}/?phones=256700000741")
        phone = phone_on(page, "256700000741")
        await phone.wait_for()

        await carrier.gateways["dfsp1"].push(
            "256700000741", "Invoice from Amani for 12 USD\n1. Open menu", expect_reply=True
        )
        await phone.get_by_test_id("screen").get_by_text("Invoice from Amani").wait_for()
        assert "push" in await phone.get_by_test_id("log").inner_text()
        assert await phone.get_attribute("data-state") == "open"

        assert (await press(phone, "1")).startswith("Welcome to ussdloop demo")
