"""clicktrace.install wires a Starlette or a FastAPI app the same way: served by a real
uvicorn with its lifespan, talked to by real HTTP and WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.asyncio.client import connect

import clicktrace
from clicktrace import (
    Envelope,
    MemoryBus,
    Notifier,
    TokenSigner,
    confirm,
    confirm_or_reject,
    new_envelope,
    new_id,
)
from clicktrace._wiring import untraced_paths
from clicktrace.context import ClickContext
from clicktrace.journal import create_journal
from clicktrace.notify import WebSocketTransport
from clicktrace.testing import free_port, unique_name

SECRET = "clicktrace-test-secret-0123456789"
WAIT = 10.0  # an upper bound for anything to arrive, never a timing assertion
CLIENT = "x-clicktrace-client"


async def echo(envelope: Envelope) -> Any:
    return envelope.payload


class Todo(BaseModel):
    title: str


class RecordingBus(MemoryBus):
    """A real memory bus that also writes down when it starts and closes."""

    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    async def start(self) -> None:
        self.events.append("bus started")
        await super().start()

    async def close(self, drain_timeout: float = 10.0) -> None:
        self.events.append("bus closed")
        await super().close(drain_timeout)


@asynccontextmanager
async def served(app: ASGIApp) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_level="warning",
            ws="websockets-sansio",
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def starlette_app(bus: MemoryBus, lifespan: Any = None) -> Starlette:
    async def add(request: Request) -> Response:
        body = await request.json()
        await bus.publish("todos", new_envelope("TodoAdded", {"title": body["title"]}))
        return JSONResponse({"status": "accepted"}, 202)

    return Starlette(routes=[Route("/todos", add, methods=["POST"])], lifespan=lifespan)


def fastapi_app(bus: MemoryBus, lifespan: Any = None) -> FastAPI:
    api = FastAPI(lifespan=lifespan)

    @api.post("/todos", status_code=202)
    async def add(todo: Todo) -> dict[str, str]:
        await bus.publish("todos", new_envelope("TodoAdded", {"title": todo.title}))
        return {"status": "accepted"}

    return api


Make = Callable[..., Starlette]
APPS = pytest.mark.parametrize("make", [starlette_app, fastapi_app], ids=["starlette", "fastapi"])


def wired(
    make: Make, events: list[str] | None = None, lifespan: Any = None, **options: Any
) -> tuple[ASGIApp, Notifier, MemoryBus]:
    bus = RecordingBus(events if events is not None else [])
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport())

    async def project(envelope: Envelope) -> None:
        await confirm(notifier.notify, envelope, data=envelope.payload)

    bus.subscribe("todos", project, group="projection")
    app = clicktrace.install(make(bus, lifespan), notifier=notifier, bus=bus, **options)
    return app, notifier, bus


@APPS
async def test_a_command_is_confirmed_to_the_tab_that_sent_it(make: Make) -> None:
    app, _, _ = wired(make)
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        session = (await http.post("/clicktrace/session")).json()
        async with connect(url.replace("http", "ws") + "/clicktrace/ws") as ws:
            await ws.send(json.dumps({"token": session["token"], "last_seq": 0}))
            reply = await http.post(
                "/todos", json={"title": "milk"}, headers={"x-clicktrace-client": session["token"]}
            )
            frame = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    assert reply.status_code == 202
    assert frame["status"] == "confirmed"
    assert frame["correlation_id"] == reply.headers["x-correlation-id"]
    assert (frame["type"], frame["data"]) == ("TodoAdded", {"title": "milk"})


@APPS
async def test_the_browser_span_route_is_there_and_refuses_a_sender_without_a_token(
    make: Make,
) -> None:
    app, _, _ = wired(make)
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.post("/clicktrace/v1/traces", json={"resourceSpans": []})
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "invalid_client"


async def test_fastapi_validation_errors_come_in_the_protocol_error_shape() -> None:
    app, _, _ = wired(fastapi_app)
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.post("/todos", json={"name": "no title"})
    body = reply.json()
    assert reply.status_code == 422
    assert body["error"]["code"] == "invalid_request"
    assert "body.title" in body["error"]["message"]
    assert body["correlation_id"] == reply.headers["x-correlation-id"]


async def test_a_handler_the_app_set_itself_is_kept() -> None:
    async def mine(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("mine", 400)

    api = fastapi_app(MemoryBus())
    api.add_exception_handler(RequestValidationError, mine)
    app = clicktrace.install(api, notifier=Notifier(TokenSigner(SECRET), WebSocketTransport()))
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.post("/todos", json={})
    assert (reply.status_code, reply.text) == (400, "mine")


@APPS
async def test_the_app_starts_first_and_shuts_down_last(make: Make) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        events.append("app started")
        yield
        events.append("app stopped")

    app, _, _ = wired(make, events, lifespan)
    async with served(app):
        events.append("serving")
    assert events == ["app started", "bus started", "serving", "bus closed", "app stopped"]


async def test_a_catch_all_mount_does_not_shadow_the_clicktrace_routes() -> None:
    async def anything(request: Request) -> Response:
        return PlainTextResponse("the web app")

    app = Starlette(
        routes=[Mount("/", routes=[Route("/{path:path}", anything, methods=["GET", "POST"])])]
    )
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport())
    async with (
        served(clicktrace.install(app, notifier=notifier)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        session = await http.post("/clicktrace/session")
        page = await http.get("/todos")
    assert "token" in session.json()
    assert page.text == "the web app"


async def test_install_refuses_what_it_cannot_wire() -> None:
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport())
    with pytest.raises(TypeError, match="Starlette or FastAPI"):
        clicktrace.install(object(), notifier=notifier)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Notifier"):
        clicktrace.install(Starlette(), notifier=object())  # type: ignore[arg-type]
    started = Starlette()
    async with served(started):
        pass
    with pytest.raises(RuntimeError, match="before the app has started"):
        clicktrace.install(started, notifier=notifier)
    await notifier.aclose()


async def test_with_a_journal_the_tab_reads_where_its_click_went() -> None:
    app, _, _ = wired(fastapi_app, journal=create_journal("memory://"))
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        token = (await http.post("/clicktrace/session")).json()["token"]
        tab = {"x-clicktrace-client": token}
        reply = await http.post("/todos", json={"title": "milk"}, headers=tab)
        correlation_id = reply.headers["x-correlation-id"]
        path = f"/clicktrace/journal/{correlation_id}"
        deadline = asyncio.get_running_loop().time() + WAIT
        stages: list[str] = []
        while "notified" not in stages and asyncio.get_running_loop().time() < deadline:
            answer = await http.get(path, headers=tab)
            stages = [s["stage"] for s in answer.json().get("stages", [])]
            await asyncio.sleep(0.05)
        stranger = await http.get(path)
    assert answer.json()["correlation_id"] == correlation_id
    assert "published" in stages and "notified" in stages
    assert stranger.status_code == 404


OPERATOR_TOKEN = "operator-token-of-the-wiring-tests"


async def test_the_health_route_checks_the_bus_and_the_replay_store() -> None:
    app, _, _ = wired(starlette_app, operator_token=OPERATOR_TOKEN)
    operator = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.get("/clicktrace/health", headers=operator)
        anonymous = await http.get("/clicktrace/health")
    body = reply.json()
    assert (reply.status_code, body["status"]) == (200, "Healthy")
    assert {"bus", "notify_replay"} <= set(body["entries"])
    assert (anonymous.status_code, anonymous.json()) == (200, {"status": "Healthy"})


async def test_the_operator_token_opens_the_journal_route_too() -> None:
    app, _, _ = wired(
        fastapi_app, journal=create_journal("memory://"), operator_token=OPERATOR_TOKEN
    )
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.post("/todos", json={"title": "milk"})
        path = f"/clicktrace/journal/{reply.headers['x-correlation-id']}"
        answer = await http.get(path, headers={"authorization": f"Bearer {OPERATOR_TOKEN}"})
        deadline = asyncio.get_running_loop().time() + WAIT
        while answer.status_code == 404 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)  # the journal writes in batches
            answer = await http.get(path, headers={"authorization": f"Bearer {OPERATOR_TOKEN}"})
    assert answer.status_code == 200


async def test_a_probe_is_answered_before_the_app_and_opens_no_span(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    seen: list[str] = []

    class Watching:
        """The app's own middleware: sees every request that reaches the app."""

        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                seen.append(f"{scope['method']} {scope['path']}")
            await self.app(scope, receive, send)

    bus = MemoryBus()
    inner = starlette_app(bus)
    inner.add_middleware(Watching)
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport())
    app = clicktrace.install(inner, notifier=notifier, bus=bus, tracer_provider=provider)
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        probes = [await http.get("/clicktrace/health") for _ in range(5)]
        head = await http.head("/clicktrace/health")
        posted = await http.post("/clicktrace/health")
    provider.force_flush()
    assert {r.status_code for r in probes} == {200}
    assert (head.status_code, head.content) == (200, b"")
    assert posted.status_code == 405  # the route is still in the app, for everything else
    assert seen == ["POST /clicktrace/health"]
    assert exporter.get_finished_spans() == ()  # and clicktrace's own routes are untraced


async def test_health_false_leaves_the_route_out() -> None:
    app, _, _ = wired(starlette_app, health=False)
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.get("/clicktrace/health")
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "not_found"


def static_app(root: Path, bus: MemoryBus) -> Starlette:
    """The app's API beside its built page: a StaticFiles mount at "/" and one at "/static"."""
    (root / "web" / "assets").mkdir(parents=True)
    (root / "web" / "index.html").write_text("<html>the page</html>")
    (root / "web" / "favicon.ico").write_bytes(b"icon")
    (root / "web" / "assets" / "app.js").write_text("console.log(1)")
    (root / "files").mkdir()
    (root / "files" / "report.txt").write_text("a file")
    app = starlette_app(bus)
    app.router.routes += [
        Mount("/static", StaticFiles(directory=root / "files")),
        Mount("/", StaticFiles(directory=root / "web", html=True)),
    ]
    return app


def server_spans(exporter: InMemorySpanExporter) -> list[str]:
    return sorted(s.name for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER)


async def visit(url: str, http: httpx.AsyncClient, token: str) -> list[int]:
    """Everything a tab asks for on a page load and a click; the statuses."""
    statuses = [
        (await http.get(path)).status_code
        for path in ("/", "/index.html", "/favicon.ico", "/assets/app.js", "/static/report.txt")
    ]
    async with connect(url.replace("http", "ws") + "/clicktrace/ws") as ws:
        await ws.send(json.dumps({"token": token, "last_seq": 0}))
        reply = await http.post("/todos", json={"title": "milk"}, headers={CLIENT: token})
        await asyncio.wait_for(ws.recv(), WAIT)
    return [*statuses, reply.status_code]


async def test_own_routes_and_static_files_open_no_trace_by_default(
    tmp_path: Path, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    bus = RecordingBus([])
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport())
    bus.subscribe("todos", confirm_or_reject(notifier.notify, echo), group="projection")
    app = clicktrace.install(
        static_app(tmp_path, bus),
        notifier=notifier,
        bus=bus,
        tracer_provider=provider,
        journal=create_journal("memory://"),
    )
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        token = (await http.post("/clicktrace/session")).json()["token"]
        assert await visit(url, http, token) == [200] * 5 + [202]
        spans = await http.post("/clicktrace/v1/traces", json={}, headers={CLIENT: token})
        assert spans.status_code == 200
        assert (await http.get("/clicktrace/journal/" + "0" * 26)).status_code == 404
    provider.force_flush()
    assert server_spans(exporter) == ["POST /todos"]  # the click, and nothing else


async def test_excluded_paths_add_to_the_defaults_and_trace_own_routes_traces_them_again(
    tmp_path: Path, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    bus = RecordingBus([])
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport())
    bus.subscribe("todos", confirm_or_reject(notifier.notify, echo), group="projection")
    app = clicktrace.install(
        static_app(tmp_path / "a", bus),
        notifier=notifier,
        bus=bus,
        tracer_provider=provider,
        excluded_paths=r"^/todos$",
    )
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        token = (await http.post("/clicktrace/session")).json()["token"]
        await visit(url, http, token)
    provider.force_flush()
    assert server_spans(exporter) == []
    exporter.clear()

    bus = RecordingBus([])
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport())
    bus.subscribe("todos", confirm_or_reject(notifier.notify, echo), group="projection")
    app = clicktrace.install(
        static_app(tmp_path / "b", bus),
        notifier=notifier,
        bus=bus,
        tracer_provider=provider,
        trace_own_routes=True,
    )
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        token = (await http.post("/clicktrace/session")).json()["token"]
        await visit(url, http, token)
    provider.force_flush()
    traced = server_spans(exporter)
    expected = {"POST /clicktrace/session", "GET /clicktrace/ws", "GET /static", "POST /todos"}
    assert expected <= set(traced)
    assert traced.count("GET") == 4  # the page's four files (a mount at "/" names no route)


def test_the_untraced_patterns_follow_the_routes_and_the_top_of_a_static_root(
    tmp_path: Path,
) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "app.v1.js").write_text("")

    async def endpoint(request: Request) -> Response:
        return Response()

    own = [Route("/clicktrace/session", endpoint), Route("/clicktrace/journal/{id}", endpoint)]
    patterns = untraced_paths(
        own,
        [
            Route("/api/todos", endpoint),  # the app's own: traced
            Mount("/static/", StaticFiles(directory=tmp_path)),
            Mount("/", StaticFiles(directory=tmp_path, html=True)),
            Mount("/late", StaticFiles(directory=tmp_path / "not-built", check_dir=False)),
        ],
    )
    assert patterns == [
        r"^/clicktrace/session$",
        r"^/clicktrace/journal/",
        r"^/static(/|$)",
        r"^/$",
        r"^/app\.v1\.js$",
        r"^/assets/",
        r"^/late(/|$)",
    ]


async def test_a_subscription_without_a_hook_rejects_its_dead_letters_to_the_tab() -> None:
    for reject_dead_letters, told in ((True, ["rejected"]), (False, [])):
        bus = MemoryBus()
        notifier = Notifier(TokenSigner(SECRET), WebSocketTransport())

        async def failing(envelope: Envelope) -> None:
            raise RuntimeError("the read model is gone")

        topic = unique_name("todos")
        bus.subscribe(topic, failing, group="projection", max_attempts=1)
        app = clicktrace.install(
            Starlette(), notifier=notifier, bus=bus, reject_dead_letters=reject_dead_letters
        )
        async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
            session = (await http.post("/clicktrace/session")).json()
            async with connect(url.replace("http", "ws") + "/clicktrace/ws") as ws:
                await ws.send(json.dumps({"token": session["token"], "last_seq": 0}))
                click = ClickContext(new_id(), client_id=session["client_id"])
                await bus.publish(topic, new_envelope("TodoAdded", {}, click=click))
                frames = []
                if told:
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), WAIT)))
        assert [f["status"] for f in frames] == told
        if frames:
            assert frames[0]["error"]["code"] == "processing_failed"


async def test_the_browsers_service_name_is_the_plugins_or_the_one_install_sets(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "shop-web"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "clicktrace-pinia"},
                        "spans": [
                            {
                                "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
                                "spanId": "00f067aa0ba902b7",
                                "name": "add todo",
                                "kind": 1,
                                "startTimeUnixNano": "1764000000000000000",
                                "endTimeUnixNano": "1764000000250000000",
                            }
                        ],
                    }
                ],
            }
        ]
    }
    names = []
    for given in (None, "storefront"):
        notifier = Notifier(TokenSigner(SECRET), WebSocketTransport())
        app = clicktrace.install(
            Starlette(), notifier=notifier, tracer_provider=provider, browser_service_name=given
        )
        async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
            token = (await http.post("/clicktrace/session")).json()["token"]
            reply = await http.post("/clicktrace/v1/traces", json=body, headers={CLIENT: token})
            assert reply.json() == {"partialSuccess": {}}
        provider.force_flush()
        (span,) = [s for s in exporter.get_finished_spans() if s.name == "add todo"]
        names.append(span.resource.attributes["service.name"])
        exporter.clear()
    assert names == ["shop-web", "storefront"]


async def test_the_websocket_transport_on_a_uvicorn_without_websocket_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for library in ("websockets", "wsproto"):  # as `pip install uvicorn` leaves it
        monkeypatch.setitem(sys.modules, library, None)
    plain = Starlette()
    clicktrace.install(plain, notifier=Notifier(TokenSigner(SECRET), WebSocketTransport()))
    with pytest.raises(RuntimeError) as refused:
        async with plain.router.lifespan_context(plain):
            pass
    assert "pip install 'clicktrace[websocket]'" in str(refused.value)
    # Socket.IO falls back to long-polling: it starts.
    sio = Starlette()
    clicktrace.install(sio, notifier=Notifier(TokenSigner(SECRET)))
    async with sio.router.lifespan_context(sio):
        pass


def test_plain_uvicorn_without_a_websocket_library_exits_with_the_pip_line() -> None:
    """The real thing: uvicorn as `pip install uvicorn` leaves it (no websockets, no wsproto)
    serving the WebSocket transport. Without the check it would start and answer 404 to
    every tab's socket; with it, start-up fails and says what to install."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["websockets"] = sys.modules["wsproto"] = None
        import uvicorn
        from starlette.applications import Starlette
        import clicktrace
        from clicktrace.notify import Notifier, TokenSigner, WebSocketTransport
        notifier = Notifier(TokenSigner({SECRET!r}), WebSocketTransport())
        app = clicktrace.install(Starlette(), notifier=notifier, browser_spans=False)
        uvicorn.run(app, host="127.0.0.1", port={free_port()}, log_level="error")
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, env=os.environ
    )
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("uvicorn started without a WebSocket library: tabs would get 404")
    assert process.returncode != 0
    assert "pip install 'clicktrace[websocket]'" in stderr


async def test_the_console_needs_a_journal_and_a_token_and_opens_no_trace(
    exporter: InMemorySpanExporter, provider: TracerProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLICKTRACE_OPERATOR_TOKEN", raising=False)
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport())
    with pytest.raises(ValueError, match="needs a journal"):
        clicktrace.install(Starlette(), notifier=notifier, operator_token="t", console=True)
    with pytest.raises(ValueError, match="operator token"):
        clicktrace.install(
            Starlette(), notifier=notifier, journal=create_journal("memory://"), console=True
        )
    token = "operator-token-of-the-console"
    app = clicktrace.install(
        Starlette(),
        notifier=notifier,
        tracer_provider=provider,
        journal=create_journal("memory://"),
        operator_token=token,
        console=True,
    )
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/clicktrace/console")).status_code == 401
        assert (await http.get("/clicktrace/console/api/attention")).status_code == 401
        signed = await http.post("/clicktrace/console/session", data={"token": token})
        assert signed.status_code == 303
        health = await http.get("/clicktrace/console/api/health")
        assert health.status_code == 200 and "entries" in health.json()
    provider.force_flush()
    assert server_spans(exporter) == []  # the console's own routes are untraced
