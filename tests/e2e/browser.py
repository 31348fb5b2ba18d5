"""Headless Chromium for the browser tests: Debian's ``/usr/bin/chromium`` driven by
Playwright (no browser download), skipped with the reason where it is missing, and
screenshots kept with the test (and in ``$USSDLOOP_SCREENSHOTS`` when set)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Page

CHROMIUM = Path("/usr/bin/chromium")
# As on the CI machines: no sandbox as root, and no background calls to Google's hosts,
# which a closed network refuses by the dozen.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000  # for one screen over SMPP, or an SMS to reach the inbox

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="no /usr/bin/chromium (Debian's chromium; `make test` installs it with apt-get)",
)


@asynccontextmanager
async def chromium_page() -> AsyncIterator[Page]:
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    playwright_api = pytest.importorskip(
        "playwright.async_api", reason="playwright is a test dependency: pip install -e '.[test]'"
    )
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1500, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            await browser.close()


async def save_screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / f"{name}.png"
    await page.screenshot(path=str(shot), full_page=True)
    wanted = os.environ.get("USSDLOOP_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(wanted) / shot.name)
    return shot
