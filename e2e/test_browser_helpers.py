"""clicktrace.testing's Playwright helpers in real Chromium, against a page that plays the
plugin's test hook (window.__clicktrace) by hand, and against a page without it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from clicktrace.testing import commands, flush_spans, wait_settled

pytestmark = pytest.mark.e2e

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"
HOOK = """
<script>
  const record = (id, status) => ({correlationId: id, traceparent: 'TRACEPARENT', name: 'add todo',
                                   status, error: undefined, data: undefined})
  const first = record('01JD8X3Q7E8W5V4T2N9R6M0K1A', 'pending')
  window.__clicktrace = {commands: [first], flushed: 0,
                         flush() { this.flushed += 1; return Promise.resolve() }}
  setTimeout(() => { first.status = 'confirmed'; first.data = {id: 7} }, 300)
  setTimeout(() => {
    const second = record('01JD8X3Q7E8W5V4T2N9R6M0K1B', 'pending')
    window.__clicktrace.commands.push(second)
    setTimeout(() => { second.status = 'rejected'
                       second.error = {code: 'duplicate', message: 'already there'} }, 300)
  }, 600)
</script>
""".replace("TRACEPARENT", TRACEPARENT)


def test_wait_settled_returns_each_commands_outcome_once_it_settles(page: Page) -> None:
    page.set_content(HOOK)
    first = wait_settled(page, nth=0)
    assert (first.status, first.data, first.error_code) == ("confirmed", {"id": 7}, None)
    assert (first.trace_id, first.action_span_id) == (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
    )
    second = wait_settled(page, "01JD8X3Q7E8W5V4T2N9R6M0K1B")
    assert (second.status, second.error_code) == ("rejected", "duplicate")
    assert [c["status"] for c in commands(page)] == ["confirmed", "rejected"]
    flush_spans(page)
    assert page.evaluate("window.__clicktrace.flushed") == 1


def test_a_command_that_stays_pending_times_out(page: Page) -> None:
    page.set_content(HOOK)
    with pytest.raises(PlaywrightTimeout):
        wait_settled(page, "01JD8X3Q7E8W5V4T2N9R6M0K1Z", timeout_ms=500)


def test_a_page_without_the_hook_says_how_to_expose_it(page: Page) -> None:
    page.set_content("<p>no plugin here</p>")
    with pytest.raises(RuntimeError, match=r"testHook: exposeTestHook\(\)"):
        wait_settled(page)
