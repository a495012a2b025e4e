"""The README's screenshot of the operator console: a confirmed click, one the fault panel made
fail three times (dead-lettered, opened in the console), and one a stopped projection worker
left stuck (a tab with a long deadline still waits for it). Run against a fresh demo started
with its fault panel and console (``make demo`` and ``make demo-distributed`` do both; the
README's is the distributed one, RabbitMQ), with its operator token::

    CLICKTRACE_OPERATOR_TOKEN=... .venv/bin/python -m e2e.console_screenshot \\
        http://127.0.0.1:8001 docs/console.png
"""

from __future__ import annotations

import os
import re
import sys

from playwright.sync_api import Page, expect, sync_playwright

from e2e.conftest import CHROMIUM, CHROMIUM_FLAGS

P = "/clicktrace/console"
# Long enough that the stuck click's tab still waits when the server calls it stuck (30 s).
TAB_DEADLINE_MS = 600_000
OFF = {"fail_next": 0, "slow": False, "stopped": False, "drop_context": False, "no_outbox": False}


def _rename(tab: Page, product_id: int, name: str, status: str) -> str:
    row = tab.get_by_test_id(f"product-{product_id}")
    row.get_by_test_id("rename-input").fill(name)
    row.get_by_test_id("rename-button").click()
    last = tab.get_by_test_id("last-action")
    expect(last.get_by_test_id("status")).to_have_text(status, timeout=15_000)
    correlation = last.get_by_test_id("correlation")
    expect(correlation).to_have_text(re.compile(r"^[0-9A-Z]{26}$"))
    return correlation.inner_text()


def take(url: str, token: str, path: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        tab = browser.new_page(viewport={"width": 1100, "height": 800})
        tab.goto(f"{url}/?deadline={TAB_DEADLINE_MS}")
        expect(tab.get_by_test_id("product-1")).to_be_visible()

        def faults(**changes: object) -> None:
            reply = tab.request.post(
                f"{url}/api/faults",
                headers={"authorization": f"Bearer {token}"},
                data={**OFF, **changes},
            )
            if not reply.ok:
                raise RuntimeError(f"the fault panel answered {reply.status}: is it on?")

        try:
            _rename(tab, 1, "Espresso machine, dual boiler", "confirmed")
            faults(fail_next=3)
            dead = _rename(tab, 2, "French press, steel", "rejected")
            faults(stopped=True)
            _rename(tab, 3, "Burr grinder, conical", "pending")

            operator = browser.new_context(viewport={"width": 1200, "height": 1180}).new_page()
            operator.goto(f"{url}{P}")
            operator.locator('input[name="token"]').fill(token)
            operator.locator('input[name="token"]').press("Enter")
            operator.get_by_label("Correlation id, whole or part").fill(dead[-10:].lower())
            operator.get_by_role("button", name="Find").click()
            waterfall = operator.get_by_test_id("click").get_by_test_id("waterfall")
            expect(waterfall).to_have_attribute("data-verdict", "dead_lettered")
            # The stopped worker's click turns stuck once the server's threshold passed.
            expect(operator.get_by_test_id("count-stuck")).not_to_have_text(
                re.compile(r"^0"), timeout=120_000
            )
            operator.get_by_test_id("search-input").blur()
            operator.wait_for_timeout(500)
            operator.screenshot(path=path)  # the top: the click, what needs a person, the list
        finally:
            faults()
            browser.close()


if __name__ == "__main__":
    take(sys.argv[1], os.environ["CLICKTRACE_OPERATOR_TOKEN"], sys.argv[2])
