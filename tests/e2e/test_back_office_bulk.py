"""Acceptance (back office, 2): the bulk-payment pages of dfsp1's back office in headless
Chromium on the two-DFSP network. A maker uploads a 6-row file (one malformed row, one
name mismatch) and sees the validation report, and is not offered the approval; a
checker approves with her PIN; the status page refreshes itself until the batch is done
and the report downloads with every row's result. Screenshots go to the test's tmp dir
(and ``$USSDLOOP_SCREENSHOTS`` when set)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from dfsp.bulk import BulkSettings
from dfsp.domain.customers import Customer
from tests.e2e.browser import chromium_page, needs_chromium, save_screenshot
from tests.e2e.phones import PIN, dfsp_network
from tests.e2e.test_bulk import HEADER, register, row
from tests.support import asyncio_test

if TYPE_CHECKING:
    from playwright.async_api import Page

DONE_MS = 60_000


async def log_in(page: Page, base: str, who: Customer) -> None:
    await page.goto(f"{base}/admin/login")
    await page.get_by_test_id("user-number").fill(str(who.user_number))
    await page.get_by_test_id("pin").fill(PIN)
    await page.get_by_test_id("login").click()
    await page.get_by_test_id("who").get_by_text(str(who.user_number)).wait_for()


def payee_row(seq: int, p: Customer, first: str | None = None) -> str:
    return row(seq, str(p.user_number), first or p.first_name, p.last_name, p.national_id, "3")


@needs_chromium
@asyncio_test
async def test_a_maker_uploads_a_checker_approves_and_the_report_downloads_when_done(
    tmp_path: Path,
) -> None:
    async with dfsp_network(tmp_path) as (carrier, _http):
        dfsp1, dfsp2 = carrier.dfsps["dfsp1"], carrier.dfsps["dfsp2"]
        assert dfsp1.bulk is not None and dfsp1.customers is not None
        dfsp1.bulk.bulk.settings = BulkSettings(rows_per_second=0)
        maker = await register(dfsp1, 11, "Acme", "Payroll")
        checker = await register(dfsp1, 12, "Ada", "Checker")
        source = (await dfsp1.customers.accounts_of(maker.id))[0]
        await dfsp1.customers.add_holder(
            maker.id, source.id, str(checker.user_number), signatory=False
        )
        await dfsp1.bulk.bulk.grant_role(maker.id, "maker")
        await dfsp1.bulk.bulk.grant_role(checker.id, "checker")
        here = [await register(dfsp1, 20 + i, f"Here{i}") for i in range(2)]
        there = [await register(dfsp2, 30 + i, f"There{i}") for i in range(2)]
        csv_file = tmp_path / "payroll.csv"
        csv_file.write_text(
            HEADER
            + payee_row(1, here[0])
            + payee_row(2, there[0])
            + payee_row(3, here[1])
            + payee_row(4, there[1])
            + "5,12345678,Ann,Worker\n"
            + payee_row(6, here[0], first="Wrong")
        )
        end = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
        base = dfsp1.base_url

        async with chromium_page() as page:
            await log_in(page, base, maker)
            await page.get_by_test_id("file").set_input_files(str(csv_file))
            await page.get_by_test_id("account").select_option(source.id)
            await page.get_by_test_id("end-at").fill(end)
            await page.get_by_test_id("upload-pin").fill(PIN)
            await page.get_by_test_id("upload").click()
            await page.get_by_test_id("batch-state").get_by_text("draft").wait_for()
            batch_url = page.url
            rows = page.get_by_test_id("row")
            assert await rows.count() == 6
            states = [await rows.nth(i).get_attribute("data-state") for i in range(6)]
            assert states == ["pending"] * 4 + ["failed"] * 2
            assert "malformed: expected 7 fields" in await rows.nth(4).inner_text()
            assert "name_mismatch" in await rows.nth(5).inner_text()
            # The maker is not offered the approval of their own batch.
            assert await page.get_by_test_id("approve").count() == 0
            assert await page.get_by_test_id("waiting-checker").is_visible()
            await save_screenshot(page, tmp_path, "back-office-1-validation-report")
            await page.get_by_test_id("logout").click()
            await page.get_by_test_id("login").wait_for()

            await log_in(page, base, checker)
            to_check = page.get_by_test_id("to-check")
            await to_check.locator(f'a[href="{batch_url.removeprefix(base)}"]').click()
            await save_screenshot(page, tmp_path, "back-office-2-checker-sees-batch")
            await page.get_by_test_id("approve-pin").fill(PIN)
            await page.get_by_test_id("approve").click()
            # The status page refreshes itself every 2 s until the batch is done.
            done = page.get_by_test_id("batch-state").get_by_text("done")
            await done.wait_for(timeout=DONE_MS)
            totals = await page.get_by_test_id("totals").inner_text()
            assert "paid: 4" in totals and "failed: 2" in totals, totals
            assert "Paid: 12.00 USD" in totals, totals
            await save_screenshot(page, tmp_path, "back-office-3-done")

            async with page.expect_download() as download_info:
                await page.get_by_test_id("report").click()
            download = await download_info.value
            report = Path(await download.path()).read_text()
        lines = report.splitlines()
        assert lines[0].startswith("sequenceNumber,identifier,firstName,lastName,amount,state")
        assert len(lines) == 7 and sum(",paid," in x for x in lines) == 4
        assert "malformed" in lines[5] and "name_mismatch" in lines[6]
        for shot in ("1-validation-report", "2-checker-sees-batch", "3-done"):
            assert (tmp_path / f"back-office-{shot}.png").stat().st_size > 5_000
