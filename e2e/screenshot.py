"""The README's screenshot of the demo: one confirmed click, one the fault panel made fail
three times (dead-lettered), the waterfalls of both. Run against a fresh demo (the README's
is ``make demo-distributed``)::

    .venv/bin/python -m e2e.screenshot http://127.0.0.1:8001 docs/demo-waterfall.png
"""

from __future__ import annotations

import sys

from playwright.sync_api import expect, sync_playwright

from e2e.conftest import CHROMIUM, CHROMIUM_FLAGS


def take(url: str, path: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(url)
        row = page.get_by_test_id("product-2")
        row.get_by_test_id("rename-input").fill("French press, steel")
        row.get_by_test_id("rename-button").click()
        expect(page.get_by_test_id("status")).to_have_text("confirmed", timeout=15_000)
        panel = page.get_by_test_id("fault-panel")
        panel.get_by_test_id("fail-count").fill("3")
        panel.get_by_test_id("fail-arm").click()
        row = page.get_by_test_id("product-4")
        row.get_by_test_id("rename-input").fill("Burr grinder, conical")
        row.get_by_test_id("rename-button").click()
        expect(page.get_by_test_id("status")).to_have_text("rejected", timeout=15_000)
        latest = page.get_by_test_id("waterfall").first
        expect(latest.get_by_test_id("stage-settled")).to_be_visible(timeout=15_000)
        page.wait_for_timeout(500)
        page.screenshot(path=path, full_page=True)
        browser.close()


if __name__ == "__main__":
    take(sys.argv[1], sys.argv[2])
