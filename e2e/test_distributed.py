"""The distributed demo in real Chromium, on each broker and transport: a tab on one API node
gets its outcome from the projection worker (another process) through the fan-out, in one
trace across the processes; two tabs on two nodes each get only their own outcomes."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Browser, Page, expect

from clicktrace.ids import new_id
from clicktrace.testing import SERVER_LOOP, trace_problems
from e2e.distributed import Stack
from e2e.test_loop import Wire, rename

# What opens no trace in the demo by default (its excluded paths).
UNTRACED = re.compile(r"^/($|assets/|clicktrace/v1/traces|clicktrace/health)")
PROCESSES = {
    "clicktrace-demo-api-1",
    "clicktrace-demo-relay",
    "clicktrace-demo-projection",
    "browser",
}


def open_tab(page: Page, stack: Stack, node: int) -> Wire:
    wire = Wire()
    page.on("request", wire.on_request)
    page.on("websocket", wire.on_websocket)
    page.goto(stack.page_url(node))
    expect(page.get_by_test_id("product-1")).to_be_visible()
    return wire


def loop_problems(stack: Stack, trace_id: str, browser_span_id: str) -> list[str]:
    problems = ["no spans yet"]
    deadline = time.monotonic() + 20
    while problems and time.monotonic() < deadline:
        spans = stack.otlp.spans(trace_id)
        problems = trace_problems(
            spans, trace_id=trace_id, root_span_id=browser_span_id, hops=SERVER_LOOP
        )
        missing = PROCESSES - {s.service for s in spans}
        problems += [f"no span from {name}" for name in sorted(missing)]
        time.sleep(0.2)
    return problems


def test_the_loop_closes_across_processes_in_one_trace(page: Page, stack: Stack) -> None:
    wire = open_tab(page, stack, 0)
    new_name = f"Cup {new_id()[-6:]}"
    rename(page, 1, new_name)

    last = page.get_by_test_id("last-action")
    expect(last.get_by_test_id("status")).to_have_text("confirmed")
    expect(page.get_by_test_id("product-1").get_by_test_id("name")).to_have_text(new_name)
    (command,) = wire.commands
    correlation_id = command.headers["x-correlation-id"]
    assert [n["status"] for n in wire.notifications if n["correlation_id"] == correlation_id] == [
        "confirmed"
    ]
    _, trace_id, browser_span_id, _ = command.headers["traceparent"].split("-")
    assert loop_problems(stack, trace_id, browser_span_id) == []


def test_two_tabs_on_two_nodes_each_get_only_their_own_outcomes(
    browser: Browser, stack: Stack
) -> None:
    first, second = browser.new_context(), browser.new_context()
    try:
        tab_a, tab_b = first.new_page(), second.new_page()
        wire_a, wire_b = open_tab(tab_a, stack, 0), open_tab(tab_b, stack, 1)
        name_a, name_b = f"Press {new_id()[-6:]}", f"Kettle {new_id()[-6:]}"
        rename(tab_a, 2, name_a)
        rename(tab_b, 3, name_b)
        for tab in (tab_a, tab_b):
            expect(tab.get_by_test_id("last-action").get_by_test_id("status")).to_have_text(
                "confirmed"
            )
        expect(tab_a.get_by_test_id("product-2").get_by_test_id("name")).to_have_text(name_a)
        expect(tab_b.get_by_test_id("product-3").get_by_test_id("name")).to_have_text(name_b)
        (command_a,), (command_b,) = wire_a.commands, wire_b.commands
        ids_a = {n["correlation_id"] for n in wire_a.notifications}
        ids_b = {n["correlation_id"] for n in wire_b.notifications}
        assert ids_a == {command_a.headers["x-correlation-id"]}
        assert ids_b == {command_b.headers["x-correlation-id"]}
    finally:
        first.close()
        second.close()
