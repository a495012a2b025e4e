"""The distributed demo in real Chromium, on each broker and transport: a tab on one API node
gets its outcome from the projection worker (another process) through the fan-out, in one
trace across the processes; two tabs on two nodes each get only their own outcomes. Every
process reports its health (the nodes on their HTTP port, the relay and the projection on
listeners of their own), the status alone to anyone, the details to the operator."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from clicktrace.ids import new_id
from clicktrace.testing import SERVER_LOOP, free_port, trace_problems, unique_name
from e2e.conftest import ROOT
from e2e.distributed import REDIS_URL, Stack
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


def test_two_tabs_on_two_nodes_each_get_only_their_own_outcomes_and_every_change(
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
        # Live updates: the worker's projection publishes each rename to the catalogue topic,
        # so each tab also shows the other's change, made through the other node.
        expect(tab_a.get_by_test_id("product-3").get_by_test_id("name")).to_have_text(name_b)
        expect(tab_b.get_by_test_id("product-2").get_by_test_id("name")).to_have_text(name_a)
    finally:
        first.close()
        second.close()


def health(url: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
    """``GET url/clicktrace/health`` (as the operator with ``token``): the code and the body."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"{url}/clicktrace/health", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# What each process checks: the nodes the bus too (distributed, they publish nothing).
ENTRIES = {
    "node": {"bus", "outbox", "journal", "correlations", "notify_replay"},
    "relay": {"bus", "outbox", "journal"},
    "projection": {"bus", "journal", "notify_replay"},
}


def test_every_process_reports_its_health_and_only_the_operator_sees_the_details(
    stack: Stack,
) -> None:
    processes = {
        stack.nodes[0]: "node",
        stack.nodes[1]: "node",
        stack.workers[0]: "relay",
        stack.workers[1]: "projection",
    }
    for url, role in processes.items():
        code, anonymous = health(url)
        assert code == 200, (role, anonymous)
        assert set(anonymous) == {"status"}
        assert anonymous["status"] in ("Healthy", "Degraded")
        code, document = health(url, stack.operator_token)
        assert set(document["entries"]) == ENTRIES[role], role
        assert document["entries"]["bus"]["status"] == "Healthy", (role, document)


@contextmanager
def worker(role: str, log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m demo_app.server role`` until the block ends; then SIGTERM, which it must
    survive with exit status 0."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "demo_app.server", role],
            cwd=ROOT,
            env={**os.environ, "HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert process.returncode == 0, log.read_text()


@pytest.mark.parametrize("role", ["relay", "projection"])
def test_a_worker_whose_journal_store_is_down_is_degraded_not_down(
    role: str, tmp_path: Path
) -> None:
    port, closed, token = free_port(), free_port(), new_id()
    log = tmp_path / f"{role}.log"
    url = f"http://127.0.0.1:{port}"
    with worker(
        role,
        log,
        DATA_DIR=str(tmp_path),
        CLICKTRACE_PROCESS=role,
        CLICKTRACE_BUS_URL="memory://",
        CLICKTRACE_REDIS_URL=REDIS_URL,  # the projection's fan-out and replay store
        CLICKTRACE_CHANNEL=unique_name("health-e2e"),
        CLICKTRACE_JOURNAL_URL=f"redis://127.0.0.1:{closed}/0",  # nothing listens there
        CLICKTRACE_HEALTH_PORT=str(port),
        CLICKTRACE_OPERATOR_TOKEN=token,
        OTEL_TRACES_EXPORTER="none",
    ) as process:
        deadline = time.monotonic() + 60
        answer: tuple[int, dict[str, Any]] | None = None
        while answer is None and time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(log.read_text())
            try:
                answer = health(url)
            except OSError:
                time.sleep(0.2)
        assert answer == (200, {"status": "Degraded"})
        code, document = health(url, token)
    assert code == 200
    journal = document["entries"]["journal"]
    assert journal["status"] == "Degraded"
    assert str(closed) in journal["data"]["last_error"]
    assert document["entries"]["bus"]["status"] == "Healthy"


@pytest.mark.parametrize("value", ["http", "70000", "-1"])
def test_a_worker_refuses_a_health_port_that_is_not_one(value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "demo_app.server", "relay"],
        cwd=ROOT,
        env={**os.environ, "CLICKTRACE_BUS_URL": "memory://", "CLICKTRACE_HEALTH_PORT": value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"CLICKTRACE_HEALTH_PORT must be a port number, not {value!r}" in done.stderr
    assert "Traceback" not in done.stderr
