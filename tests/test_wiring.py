"""clicktrace.install wires a Starlette or a FastAPI app the same way: served by a real
uvicorn with its lifespan, talked to by real HTTP and WebSocket clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.asyncio.client import connect

import clicktrace
from clicktrace import Envelope, MemoryBus, Notifier, TokenSigner, confirm, new_envelope
from clicktrace.journal import create_journal
from clicktrace.notify import WebSocketTransport
from clicktrace.testing import free_port

SECRET = "clicktrace-test-secret-0123456789"
WAIT = 10.0  # an upper bound for anything to arrive, never a timing assertion


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
    assert [s.name for s in exporter.get_finished_spans()] == ["POST /clicktrace/health"]


async def test_health_false_leaves_the_route_out() -> None:
    app, _, _ = wired(starlette_app, health=False)
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.get("/clicktrace/health")
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "not_found"
