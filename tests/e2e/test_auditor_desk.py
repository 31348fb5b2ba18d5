"""Acceptance (back office, 2): the auditor's desk in headless Chromium, on the network
of ``ussdloop up``. Tadeo pays from his phone; dfsp1's auditor finds him by MSISDN,
blacklists him with a reason and her PIN, and his next transfer is refused on his
phone, as is a payment to him from dfsp2 (the blacklist is shared with the centre).
Unblacklisted, he pays again. Screenshots go to the test's directory (and
$USSDLOOP_SCREENSHOTS)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from central.fraud.client import FraudClient
from dfsp.interledger import central_http
from tests.e2e.browser import chromium_page, needs_chromium, save_screenshot
from tests.e2e.phones import PIN, Phone, dfsp_network, onboard
from tests.support import asyncio_test
from ussdloop.compose import CarrierNetwork


@needs_chromium
@asyncio_test
async def test_an_auditor_blacklists_a_customer_and_his_next_transfer_is_refused(
    tmp_path: Path,
) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        dfsp1 = carrier.dfsps["dfsp1"]
        assert dfsp1.auditing is not None and dfsp1.customers is not None
        audra = Phone(carrier, http, "256700000741")
        tadeo = Phone(carrier, http, "256700000742")
        amina = Phone(carrier, http, "256700000743")
        kani = Phone(carrier, http, "256700000744", short_code="*456#")
        audra_number = await onboard(audra, "Audra", "Lorde", national_id="NI0741")
        tadeo_number = await onboard(tadeo, "Tadeo", "Mwangi", national_id="NI0742")
        amina_number = await onboard(amina, "Amina", "Mwangi", national_id="NI0743")
        await onboard(kani, "Kani", "Moe", national_id="NI0744")
        auditor = await dfsp1.customers.by_user_number(audra_number)
        assert auditor is not None
        await dfsp1.auditing.grant_auditor(auditor.id)
        paid = await tadeo.walk("1", amina_number, "5", PIN)
        assert paid.startswith("Status: executed\nTo: Amina Mwangi"), paid

        async with chromium_page() as page:
            await page.goto(dfsp1.base_url + "/admin/")
            await page.get_by_test_id("user-number").fill(audra_number)
            await page.get_by_test_id("pin").fill(PIN)
            await page.get_by_test_id("login").click()
            await page.get_by_test_id("query").fill("+256 700 000 742")
            await page.get_by_test_id("search").click()
            await page.get_by_test_id("found-row").get_by_role("link").click()
            assert await page.get_by_test_id("standing").text_content() == "in good standing"
            activity = await page.get_by_test_id("activity").inner_text()
            assert "Amina Mwangi" in activity and "-5" in activity, activity
            assert (await page.get_by_test_id("last-check").inner_text()).endswith("Never checked.")
            await save_screenshot(page, tmp_path, "auditor-profile")

            await page.get_by_test_id("blacklist-reason").fill("card reported stolen")
            await page.get_by_test_id("blacklist-pin").fill(PIN)
            await page.get_by_test_id("blacklist").click()
            assert await page.get_by_test_id("standing").text_content() == "blacklisted"
            last = await page.get_by_test_id("last-check").inner_text()
            assert f"by {audra_number} Audra Lorde (blacklist): card reported stolen" in last
            await page.get_by_test_id("central").wait_for()
            assert "blacklisted by dfsp1" in await page.get_by_test_id("central").inner_text()
            await save_screenshot(page, tmp_path, "auditor-blacklisted")

            refused = await tadeo.walk("1", amina_number, "5")
            assert refused.startswith("Your account is blocked. Please contact"), refused
            to_him = await kani.walk("1", tadeo_number, "5")
            assert to_him.startswith("This payment is not allowed."), to_him
            await tadeo.hang_up()
            await kani.hang_up()
            assert await central_standing(carrier, http, tadeo_number) is True

            await page.get_by_test_id("unblacklist-reason").fill("card found, owner confirmed")
            await page.get_by_test_id("unblacklist-pin").fill(PIN)
            await page.get_by_test_id("unblacklist").click()
            assert await page.get_by_test_id("standing").text_content() == "in good standing"
            await save_screenshot(page, tmp_path, "auditor-unblacklisted")

        again = await tadeo.walk("1", amina_number, "5", PIN)
        assert again.startswith("Status: executed\nTo: Amina Mwangi"), again
        assert await central_standing(carrier, http, tadeo_number) is False


async def central_standing(
    carrier: CarrierNetwork, http: aiohttp.ClientSession, user_number: str
) -> bool:
    """Whether the centre's fraud sharing has the user blacklisted (dfsp1 asking)."""
    link = carrier.dfsps["dfsp1"].central
    assert link is not None
    return (await FraudClient(central_http(link, http)).user(user_number)).blacklisted
