"""Drive the Dagster UI with Playwright and Debian's chromium (never `playwright install`)."""

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
UI_TIMEOUT_MS = 30_000
RUN_TIMEOUT_MS = 90_000


@contextlib.contextmanager
def browser_page() -> Iterator[Page]:
    """A headless chromium page in a fresh profile, closed on exit."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install_browser.sh (or -m 'not browser')")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as p:
        context: BrowserContext = p.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def materialize_partition(page: Page, base_url: str, asset: str, partition_key: str) -> str:
    """Click Materialize on an asset, pick one partition, launch; the run page's URL."""
    page.goto(f"{base_url}/assets/{asset}")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Launch runs to materialize")).to_be_visible()
    # Only the last 90 days are offered at first; older keys need "Show all partitions".
    last_90_days = dialog.get_by_role("button", name="Last 90 days")
    all_time = dialog.get_by_role("button", name="All time")
    expect(last_90_days.or_(all_time)).to_be_visible()
    if last_90_days.is_visible():
        dialog.get_by_role("button", name="Show all partitions").click()
    expect(all_time).to_be_visible()
    key_input = dialog.get_by_role("textbox")
    key_input.fill(partition_key)
    key_input.press("Enter")
    dialog.get_by_role("button", name="Launch 1 run").click()
    page.get_by_role("link", name="View", exact=True).click()
    page.wait_for_url("**/runs/*")
    return page.url


def wait_for_run_success(page: Page) -> None:
    """On a run page: wait until the event log shows RUN_SUCCESS (fail fast on RUN_FAILURE)."""
    outcome = page.get_by_text("RUN_SUCCESS").or_(page.get_by_text("RUN_FAILURE"))
    expect(outcome.first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_text("RUN_SUCCESS").first).to_be_visible(timeout=1_000)
