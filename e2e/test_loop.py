"""The whole loop in real Chromium: click → command → bus → projection → notification →
confirm or roll back, with one correlation id and one trace throughout."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Page, Request, WebSocket, expect

from clicktrace.testing import SERVER_LOOP, Span, trace_problems
from e2e.conftest import Demo

pytestmark = pytest.mark.e2e


@dataclass
class Wire:
    """What crossed the wire: commands the page sent and notifications it received."""

    commands: list[Request] = field(default_factory=list)
    notifications: list[dict[str, object]] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        if "/rename" in request.url:
            self.commands.append(request)

    def on_websocket(self, ws: WebSocket) -> None:
        self.sockets.append(ws.url)
        ws.on("framereceived", self._frame)

    def _frame(self, payload: str | bytes) -> None:
        text = payload.decode() if isinstance(payload, bytes) else payload
        # Socket.IO event frames are `42[...]`; the plain WebSocket carries the JSON itself.
        body = text[2:] if text.startswith("42[") else text
        try:
            value = json.loads(body)
        except ValueError:
            return
        if isinstance(value, list) and len(value) == 2 and value[0] == "clicktrace":
            value = value[1]
        # Outcomes only: the live update of the same rename (the `catalogue` topic) carries
        # the click's correlation id too (e2e/test_live.py covers those).
        if isinstance(value, dict) and "correlation_id" in value and "topic" not in value:
            self.notifications.append(value)


@pytest.fixture
def wire(page: Page, demo: Demo) -> Iterator[Wire]:
    recorded = Wire()
    page.on("request", recorded.on_request)
    page.on("websocket", recorded.on_websocket)
    page.goto(demo.url)
    expect(page.get_by_test_id("product-1")).to_be_visible()
    yield recorded


def rename(page: Page, product_id: int, name: str) -> None:
    row = page.get_by_test_id(f"product-{product_id}")
    row.get_by_test_id("rename-input").fill(name)
    row.get_by_test_id("rename-button").click()


def wait_for_spans(demo: Demo, trace_id: str, browser_span_id: str) -> list[str]:
    def problems(spans: list[Span]) -> list[str]:
        return trace_problems(
            spans, trace_id=trace_id, root_span_id=browser_span_id, hops=SERVER_LOOP
        )

    return problems(demo.otlp.wait_for(lambda spans: not problems(spans)))


def test_rename_is_pending_then_confirmed_in_one_trace(page: Page, wire: Wire, demo: Demo) -> None:
    new_name = f"Cup {int(time.time() * 1000) % 100000}"
    rename(page, 1, new_name)

    row = page.get_by_test_id("product-1")
    expect(row.get_by_test_id("name")).to_have_text(new_name)
    last = page.get_by_test_id("last-action")
    expect(last.get_by_test_id("status")).to_have_text("confirmed")
    expect(last.get_by_test_id("timeline")).to_have_text("pending → confirmed")
    expect(row.get_by_test_id("name")).to_have_text(new_name)
    expect(page.get_by_test_id("connection")).to_have_text("connected")

    (command,) = wire.commands
    headers = command.headers
    correlation_id = headers["x-correlation-id"]
    assert len(correlation_id) == 26
    assert json.loads(command.post_data or "{}")["metadata"]["correlation_id"] == correlation_id
    expect(last.get_by_test_id("correlation")).to_have_text(correlation_id)
    matching = [n for n in wire.notifications if n["correlation_id"] == correlation_id]
    assert [n["status"] for n in matching] == ["confirmed"]
    assert isinstance(matching[0]["data"], dict) and matching[0]["data"]["name"] == new_name

    _, trace_id, browser_span_id, flags = headers["traceparent"].split("-")
    assert flags == "03"  # sampled, and the trace id is random (W3C Level 2)
    assert wait_for_spans(demo, trace_id, browser_span_id) == []
    # The notification carries the trace onward to the browser, whose own spans (exported to
    # the demo's ingestion route) join the same trace: the click's action span, and the
    # receipt of the notification as a child of the server span that sent it.
    _, notified_trace, notifier_span_id, _ = str(matching[0]["traceparent"]).split("-")
    assert notified_trace == trace_id
    assert wait_for_browser_spans(demo, trace_id, browser_span_id, notifier_span_id) == []


def wait_for_browser_spans(
    demo: Demo, trace_id: str, http_span_id: str, notifier_span_id: str
) -> list[str]:
    """The command's traceparent names the browser's HTTP CLIENT span (the server span's
    parent); that span's parent is the click's action span, the root of the trace."""

    def http(browser: list[Span]) -> Span | None:
        return next((s for s in browser if s.span_id == http_span_id and s.kind == "CLIENT"), None)

    wanted: dict[str, Callable[[Span, list[Span]], bool]] = {
        "the HTTP CLIENT span named by the traceparent": lambda s, b: s is http(b),
        "the action span, parent of the HTTP span": lambda s, b: (
            (h := http(b)) is not None and s.span_id == h.parent_span_id and not s.parent_span_id
        ),
        "the notification CONSUMER span": lambda s, b: (
            s.kind == "CONSUMER" and s.parent_span_id == notifier_span_id
        ),
    }
    missing = list(wanted)
    deadline = time.monotonic() + 15
    while missing and time.monotonic() < deadline:
        browser = [s for s in demo.otlp.spans(trace_id) if s.service == "browser"]
        missing = [name for name, ok in wanted.items() if not any(ok(s, browser) for s in browser)]
        time.sleep(0.1)
    return missing


def test_taken_name_is_shown_then_rolled_back(page: Page, wire: Wire) -> None:
    row = page.get_by_test_id("product-2")
    old_name = row.get_by_test_id("name").inner_text()
    taken = page.get_by_test_id("product-3").get_by_test_id("name").inner_text()
    rename(page, 2, taken)

    last = page.get_by_test_id("last-action")
    expect(last.get_by_test_id("status")).to_have_text("rejected")
    expect(last.get_by_test_id("timeline")).to_have_text("pending → rejected")
    expect(row.get_by_test_id("name")).to_have_text(old_name)
    expect(last.get_by_test_id("error")).to_contain_text("name_taken")

    (command,) = wire.commands
    correlation_id = command.headers["x-correlation-id"]
    expect(last.get_by_test_id("correlation")).to_have_text(correlation_id)
    assert [n["status"] for n in wire.notifications if n["correlation_id"] == correlation_id] == [
        "rejected"
    ]


def test_command_refused_by_the_api_rolls_back_at_once(page: Page, wire: Wire) -> None:
    row = page.get_by_test_id("product-4")
    old_name = row.get_by_test_id("name").inner_text()
    rename(page, 4, "   ")

    last = page.get_by_test_id("last-action")
    expect(last.get_by_test_id("status")).to_have_text("rejected")
    expect(last.get_by_test_id("error")).to_contain_text("invalid_name")
    expect(row.get_by_test_id("name")).to_have_text(old_name)

    (command,) = wire.commands
    response = command.response()
    assert response is not None and response.status == 422
    correlation_id = command.headers["x-correlation-id"]
    assert response.headers["x-correlation-id"] == correlation_id
    assert response.json()["correlation_id"] == correlation_id
    expect(last.get_by_test_id("correlation")).to_have_text(correlation_id)
    # Refused before the bus: no notification was ever sent for it.
    assert all(n["correlation_id"] != correlation_id for n in wire.notifications)


def test_the_plain_websocket_transport_closes_the_loop_too(
    page: Page, websocket_demo: Demo
) -> None:
    recorded = Wire()
    page.on("request", recorded.on_request)
    page.on("websocket", recorded.on_websocket)
    page.goto(f"{websocket_demo.url}/?transport=websocket")
    new_name = f"Kettle {int(time.time() * 1000) % 100000}"
    rename(page, 3, new_name)

    last = page.get_by_test_id("last-action")
    expect(last.get_by_test_id("status")).to_have_text("confirmed")
    expect(page.get_by_test_id("product-3").get_by_test_id("name")).to_have_text(new_name)
    (command,) = recorded.commands
    correlation_id = command.headers["x-correlation-id"]
    # The outcome came as a plain JSON text frame on /clicktrace/ws, not over Socket.IO.
    (frame,) = [n for n in recorded.notifications if n["correlation_id"] == correlation_id]
    assert frame["status"] == "confirmed"
    assert [url.split("/", 3)[-1] for url in recorded.sockets] == ["clicktrace/ws"]


def test_the_first_click_is_warm_the_session_and_socket_opened_at_start(
    page: Page, demo: Demo
) -> None:
    # The demo sets `prewarm: true`: the page opens its session and its socket before any
    # click, so the first click's trace has no `clicktrace session` span (the wait a cold
    # first click shows) and its command is the first request after the click.
    events: list[str] = []
    commands: list[Request] = []

    def on_request(request: Request) -> None:
        if request.url.endswith("/clicktrace/session"):
            events.append("session")
        elif "/rename" in request.url:
            events.append("rename")
            commands.append(request)

    page.on("request", on_request)
    page.goto(demo.url)
    expect(page.get_by_test_id("connection")).to_have_text("connected")
    events.append("click")
    rename(page, 1, f"Warm {int(time.time() * 1000) % 100000}")
    expect(page.get_by_test_id("last-action").get_by_test_id("status")).to_have_text("confirmed")

    # The session came before the click (and the socket was connected: the status said so).
    assert events.index("session") < events.index("click")
    assert events[events.index("click") :] == ["click", "rename"]
    (command,) = commands
    _, trace_id, _, _ = command.headers["traceparent"].split("-")

    def browser(spans: list[Span]) -> list[Span]:
        return [s for s in spans if s.trace_id == trace_id and s.service == "browser"]

    # The action span (the root) ends last of the click's browser spans: once it is exported,
    # a session span (ended before the command was sent) would have been too.
    spans = browser(demo.otlp.wait_for(lambda s: any(not x.parent_span_id for x in browser(s))))
    names = sorted(s.name for s in spans)
    assert "HTTP POST" in names
    assert "clicktrace session" not in names
