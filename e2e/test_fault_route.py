"""The fault panel's route on the real demo app (in-process, real HTTP): it exists only when
the faults are enabled, answers only the operator token and ``application/json``, takes only
the faults it knows with values of the right type, answers anything else with a 4xx in the
protocol's error shape, and a fault state that cannot be reached is "no fault" for the
commands and a 503 for the panel."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis
from playwright.sync_api import Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from websockets.sync.client import connect as ws_connect

from clicktrace.ids import new_id, parse_id
from clicktrace.testing import free_port, unique_name
from demo_app.server.app import create_app
from demo_app.server.settings import Settings
from e2e.serve import serving

OFF = {"fail_next": 0, "slow": False, "stopped": False, "drop_context": False, "no_outbox": False}
OPERATOR = "operator-token-for-the-fault-route-tests"
SECRET = b"test-secret-of-at-least-16-bytes"
AUTH = {"authorization": f"Bearer {OPERATOR}"}
WAIT = 30.0


def settings(tmp_path: Path, faults: bool = True, redis_url: str | None = None) -> Settings:
    return Settings(
        data_dir=tmp_path,
        web_dist=tmp_path,
        topic=f"products-{new_id()}",
        faults=faults,
        operator_token=OPERATOR if faults else None,
        redis_url=redis_url,
        channel=unique_name("faults"),
    )


def assert_error(reply: httpx.Response, status: int, code: str) -> None:
    assert reply.status_code == status, reply.text
    error = reply.json()
    assert error["error"]["code"] == code
    assert parse_id(error["correlation_id"]) == reply.headers["x-correlation-id"]


def test_faults_are_set_and_read_back(tmp_path: Path) -> None:
    with (
        serving(create_app(settings(tmp_path))) as url,
        httpx.Client(base_url=url, headers=AUTH) as http,
    ):
        assert http.get("/api/faults").json() == OFF
        changed = http.post("/api/faults", json={"fail_next": 2, "slow": True})
        assert changed.status_code == 200
        assert changed.json() == {**OFF, "fail_next": 2, "slow": True}
        assert http.get("/api/faults").json() == {**OFF, "fail_next": 2, "slow": True}


@pytest.mark.parametrize(
    "body",
    [
        b'{"fail_next": "3"}',
        b'{"fail_next": -1}',
        b'{"fail_next": 21}',
        b'{"fail_next": true}',
        b'{"slow": 1}',
        b'{"reboot": true}',
        b"{}",
        b"[]",
        b"not json",
        b'{"\\u001b[31m": true}',
    ],
)
def test_anything_else_is_a_400_with_the_correlation_id(tmp_path: Path, body: bytes) -> None:
    with (
        serving(create_app(settings(tmp_path))) as url,
        httpx.Client(base_url=url, headers=AUTH) as http,
    ):
        reply = http.post("/api/faults", content=body, headers={"content-type": "application/json"})
        assert reply.status_code == 400
        error = reply.json()
        assert error["error"]["code"] in ("invalid_faults", "invalid_body", "invalid_json")
        assert parse_id(error["correlation_id"]) == reply.headers["x-correlation-id"]
        assert "\x1b" not in reply.text
        assert http.get("/api/faults").json() == OFF


def test_with_faults_off_there_is_no_panel(tmp_path: Path) -> None:
    with (
        serving(create_app(settings(tmp_path, faults=False))) as url,
        httpx.Client(base_url=url) as http,
    ):
        assert http.get("/api/faults").status_code == 404
        assert http.post("/api/faults", json={"slow": True}).status_code == 404
        assert http.get("/api/config").json()["faults"] is False


def test_the_faults_are_off_unless_enabled_and_need_an_operator_token() -> None:
    assert Settings().faults is False
    assert Settings.from_env({}).faults is False
    assert Settings.from_env({"CLICKTRACE_FAULTS": "0"}).faults is False
    with pytest.raises(ValueError, match="operator token"):
        Settings.from_env({"CLICKTRACE_FAULTS": "1"})
    enabled = Settings.from_env({"CLICKTRACE_FAULTS": "1", "CLICKTRACE_OPERATOR_TOKEN": "t"})
    assert enabled.faults and enabled.operator_token == "t"


def test_without_the_operator_token_the_panel_answers_401_and_changes_nothing(
    tmp_path: Path,
) -> None:
    with serving(create_app(settings(tmp_path))) as url, httpx.Client(base_url=url) as http:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": OPERATOR}):
            assert_error(http.get("/api/faults", headers=headers), 401, "unauthorized")
            reply = http.post("/api/faults", json={"stopped": True}, headers=headers)
            assert_error(reply, 401, "unauthorized")
            assert OPERATOR not in reply.text
        assert http.get("/api/faults", headers=AUTH).json() == OFF


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_cross_site_simple_post_cannot_set_a_fault(
    tmp_path: Path, content_type: str | None
) -> None:
    """What a page on another site can send without a preflight: a "simple" request (no
    authorization header, no JSON content type). Even with the token it is refused."""
    with serving(create_app(settings(tmp_path))) as url, httpx.Client(base_url=url) as http:
        headers = {"origin": "https://evil.example"}
        if content_type is not None:
            headers["content-type"] = content_type
        body = b'{"stopped": true}'
        assert_error(http.post("/api/faults", content=body, headers=headers), 401, "unauthorized")
        reply = http.post("/api/faults", content=body, headers={**headers, **AUTH})
        assert_error(reply, 415, "unsupported_media_type")
        assert http.get("/api/faults", headers=AUTH).json() == OFF
        # The same body as JSON, with the token, is what the panel sends.
        reply = http.post(
            "/api/faults", content=body, headers={**AUTH, "content-type": "application/json"}
        )
        assert reply.json()["stopped"] is True


@contextmanager
def private_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own, on its own port (the test stops it)."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                redis.Redis(port=port, socket_timeout=1).ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the private redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        process.terminate()
        process.wait(timeout=WAIT)


def test_a_fault_state_that_is_down_is_no_fault_for_commands_and_503_for_the_panel(
    tmp_path: Path,
) -> None:
    """Issue 19: with Redis down every command got a 500 with a traceback (the fault-flag
    lookup). Now the command goes through; the panel, which cannot show the state, is 503
    with Retry-After and the correlation id."""
    with private_redis() as (redis_url, redis_process):
        app = create_app(settings(tmp_path, redis_url=redis_url))
        with serving(app) as url, httpx.Client(base_url=url, headers=AUTH, timeout=WAIT) as http:
            assert http.get("/api/faults").json() == OFF
            redis_process.terminate()
            redis_process.wait(timeout=WAIT)
            for _ in range(3):
                renamed = http.post("/api/products/1/rename", json={"name": f"N {new_id()}"})
                assert renamed.status_code == 202, renamed.text
            for reply in (
                http.get("/api/faults"),
                http.post("/api/faults", json={"slow": True}),
            ):
                assert_error(reply, 503, "unavailable")
                assert reply.headers["retry-after"] == "2"
                assert "Error" not in reply.text and "redis" not in reply.text.lower()


def test_a_dead_lettered_command_tells_its_tab_a_code_not_the_exception_text(
    tmp_path: Path,
) -> None:
    """Issue 19: ``reject_on_dead_letter`` sent the handler's exception text to the tab. A
    real WebSocket tab gets the code and a generic message; the journal keeps the text."""
    app = create_app(dataclasses.replace(settings(tmp_path), transport="websocket", secret=SECRET))
    with (
        serving(app) as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=WAIT) as http,
    ):
        tab = http.post("/clicktrace/session").json()
        with ws_connect(url.replace("http://", "ws://") + "/clicktrace/ws") as ws:
            ws.send(json.dumps({"token": tab["token"]}))
            assert http.post("/api/faults", json={"fail_next": 3}).status_code == 200
            correlation_id = new_id()
            accepted = http.post(
                "/api/products/2/rename",
                json={"name": f"Seat 13 {new_id()}"},
                headers={"x-clicktrace-client": tab["token"], "x-correlation-id": correlation_id},
            )
            assert accepted.status_code == 202
            deadline = time.monotonic() + WAIT
            while True:
                frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                if frame.get("correlation_id") == correlation_id and frame["status"] != "progress":
                    break
        assert frame["status"] == "rejected"
        assert frame["error"] == {
            "code": "processing_failed",
            "message": "The command could not be processed.",
        }
        assert "fault panel" not in json.dumps(frame) and "Failure" not in json.dumps(frame)
        journal = http.get(
            f"/clicktrace/journal/{correlation_id}",
            headers={"x-clicktrace-client": tab["token"]},
        ).json()
        details = [s["detail"] for s in journal["stages"] if s["stage"] == "dead_lettered"]
        assert details == ["InjectedFailure: the fault panel made the projection fail"]


EVIL_PAGE = """<!doctype html><title>another site</title><script>
async function attack(target) {
  // What any page may send cross-site without a preflight: a "simple" POST.
  await fetch(target + '/api/faults', {method: 'POST', mode: 'no-cors',
    headers: {'content-type': 'text/plain'}, body: '{"stopped": true}'});
  // With the token (a page could have stolen it) the header needs a preflight, which fails.
  try {
    await fetch(target + '/api/faults', {method: 'POST',
      headers: {'content-type': 'application/json', authorization: 'Bearer ' + 'guess'},
      body: '{"stopped": true}'});
    return 'sent';
  } catch (e) { return 'blocked'; }
}
</script>"""


def test_a_page_on_another_site_cannot_stop_the_projection_in_chromium(
    tmp_path: Path, page: Page
) -> None:
    """Issue 19: a cross-site ``text/plain`` POST from any web page could stop the projection.
    Real Chromium on another origin (another port) tries."""

    async def evil(request: Request) -> Response:
        return HTMLResponse(EVIL_PAGE)

    with (
        serving(create_app(settings(tmp_path))) as url,
        serving(Starlette(routes=[Route("/", evil)])) as evil_url,
        httpx.Client(base_url=url, headers=AUTH) as http,
    ):
        page.goto(evil_url)
        assert page.evaluate("target => attack(target)", url) == "blocked"
        assert http.get("/api/faults").json() == OFF
