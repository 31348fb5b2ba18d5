"""Acceptance (back office, 2): the switch operator's console in headless Chromium, on
the network of ``ussdloop up``. After Hamim (dfsp1) pays Kani (dfsp2), the operator logs
in, sees both DFSPs, pauses dfsp2 (its users look unknown to dfsp1's phones), unpauses
it, sees the positions, closes a settlement window whose nets sum to zero and downloads
its report. Screenshots go to the test's directory (and $USSDLOOP_SCREENSHOTS)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.browser import chromium_page, needs_chromium, save_screenshot
from tests.e2e.phones import PIN, Phone, dfsp_network, onboard
from tests.support import asyncio_test

if TYPE_CHECKING:
    pass


@needs_chromium
@asyncio_test
async def test_the_operator_pauses_a_dfsp_and_closes_a_settlement_window(tmp_path: Path) -> None:
    async with dfsp_network(tmp_path) as (carrier, http):
        assert carrier.central is not None
        settings = carrier.central.settings
        hamim = Phone(carrier, http, "256700000721")
        kani = Phone(carrier, http, "256700000722", short_code="*456#")
        await onboard(hamim, "Hamim", "Ali", national_id="NI0721")
        kani_number = await onboard(kani, "Kani", "Moe", national_id="NI0722")
        paid = await hamim.walk("1", kani_number, "25", PIN)
        assert paid.startswith("Status: executed\nTo: Kani Moe"), paid

        async with chromium_page() as page:
            console = carrier.central.base_url + "/console/"
            await page.goto(console)
            assert page.url.endswith("/console/login")
            await page.get_by_test_id("key").fill(settings.operator_key)
            await page.get_by_test_id("secret").fill(settings.operator_secret)
            await page.get_by_test_id("login").click()
            await page.get_by_test_id("dfsps").wait_for()
            for name in ("dfsp1", "dfsp2"):
                assert await page.get_by_test_id(f"status-{name}").inner_text() == "active"
            await save_screenshot(page, tmp_path, "console-dfsps")

            await page.get_by_test_id("pause-dfsp2").click()
            assert await page.get_by_test_id("notice").inner_text() == "dfsp2 paused."
            assert await page.get_by_test_id("status-dfsp2").inner_text() == "paused"
            await save_screenshot(page, tmp_path, "console-paused")
            unknown = await hamim.walk("1", kani_number)
            assert unknown == "Unknown user number\n\n0. Home\n1. Back"

            await page.get_by_test_id("unpause-dfsp2").click()
            assert await page.get_by_test_id("status-dfsp2").inner_text() == "active"
            assert (await hamim.walk("1", kani_number)).startswith("Destination name: Kani Moe")
            await hamim.hang_up()

            await page.goto(carrier.central.base_url + "/console/positions")
            assert await page.get_by_test_id("net-dfsp1").inner_text() == "-25.50"
            assert await page.get_by_test_id("net-dfsp2").inner_text() == "25.00"
            assert await page.get_by_test_id("net-central-fees").inner_text() == "0.50"
            await save_screenshot(page, tmp_path, "console-positions")

            await page.goto(carrier.central.base_url + "/console/settlements")
            await page.get_by_test_id("close-window").click()
            await page.get_by_test_id("settlement").wait_for()
            nets = {
                name: Decimal(await page.get_by_test_id(f"settled-{name}").inner_text())
                for name in ("dfsp1", "dfsp2", "central-fees")
            }
            assert nets == {
                "dfsp1": Decimal("-25.50"),
                "dfsp2": Decimal("25.00"),
                "central-fees": Decimal("0.50"),
            }
            assert sum(nets.values()) == 0
            assert Decimal(await page.get_by_test_id("settled-sum").inner_text()) == 0
            await save_screenshot(page, tmp_path, "console-settlement")

            async with page.expect_download() as downloading:
                await page.get_by_test_id("report").click()
            download = await downloading.value
            saved = tmp_path / download.suggested_filename
            await download.save_as(str(saved))
            rows = list(csv.DictReader(io.StringIO(saved.read_text())))
            assert {row["account"]: Decimal(row["net"]) for row in rows} == nets

            # Settled: the positions start again from zero.
            await page.goto(carrier.central.base_url + "/console/positions")
            assert await page.get_by_test_id("net-dfsp1").inner_text() == "0.00"
