"""The Notifier as an app uses it: routes, ASGI wrapping, traced notify, configuration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import socketio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp
from websockets.asyncio.client import connect

from clicktrace.ids import new_id
from clicktrace.notify import Notifier, TokenSigner
from clicktrace.propagation import HEADER_KEYS, extract, parse_traceparent

Serve = Callable[[ASGIApp], Awaitable[str]]
SECRET = "clicktrace-test-secret-0123456789"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def app_with_command(notifier: Notifier, provider: TracerProvider) -> Starlette:
    """A command handler that notifies the caller inside the request's trace."""
    tracer = provider.get_tracer("test")

    async def rename(request: Request) -> JSONResponse:
        client_id = notifier.signer.verify(request.headers.get("x-clicktrace-client"))
        incoming = extract(dict(request.headers), keys=HEADER_KEYS)
        assert client_id is not None and incoming.correlation_id is not None
        with tracer.start_as_current_span(
            "POST /rename", context=incoming.otel_context(), kind=SpanKind.SERVER
        ):
            await notifier.notify(
                client_id,
                correlation_id=incoming.correlation_id,
                status="confirmed",
                type="ProductRenamed",
                data={"id": 1},
            )
        return JSONResponse({"status": "accepted"}, status_code=202)

    return Starlette(routes=[*notifier.routes, Route("/rename", rename, methods=["POST"])])


async def post_rename(url: str, token: str, corr: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            url + "/rename",
            headers={
                "x-clicktrace-client": token,
                "x-correlation-id": corr,
                "traceparent": f"00-{TRACE_ID}-{PARENT}-01",
            },
        )
    assert response.status_code == 202


def assert_continues_the_trace(frame: dict[str, object], exporter: InMemorySpanExporter) -> None:
    producer = next(s for s in exporter.get_finished_spans() if s.kind == SpanKind.PRODUCER)
    server = next(s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert producer.parent is not None and producer.parent.span_id == server.context.span_id
    assert f"{server.context.trace_id:032x}" == TRACE_ID
    tp = parse_traceparent(frame["traceparent"])  # type: ignore[arg-type]
    assert tp is not None
    assert (tp.trace_id, tp.span_id) == (producer.context.trace_id, producer.context.span_id)


async def test_socketio_notification_carries_the_producer_span(
    serve: Serve, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    notifier = Notifier(TokenSigner(SECRET), "socketio", tracer_provider=provider)
    url = await serve(notifier.asgi(app_with_command(notifier, provider)))
    session = notifier.signer.issue()
    frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    tab = socketio.AsyncClient(reconnection=False)
    tab.on("clicktrace", frames.put)
    await tab.connect(
        url, auth={"token": session.token, "last_seq": 0}, transports=["websocket"], wait_timeout=10
    )
    corr = new_id()
    try:
        await post_rename(url, session.token, corr)
        frame = await asyncio.wait_for(frames.get(), 10)
    finally:
        await tab.disconnect()
    assert frame["correlation_id"] == corr and frame["seq"] == 1
    assert_continues_the_trace(frame, exporter)


async def test_websocket_notification_carries_the_producer_span(
    serve: Serve, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    notifier = Notifier(TokenSigner(SECRET), "websocket", tracer_provider=provider)
    assert notifier.sio is None
    url = await serve(notifier.asgi(app_with_command(notifier, provider)))
    session = notifier.signer.issue()
    corr = new_id()
    async with connect(url.replace("http", "ws") + "/clicktrace/ws") as ws:
        await ws.send(json.dumps({"token": session.token, "last_seq": 0}))
        await post_rename(url, session.token, corr)
        frame = json.loads(await ws.recv())
    assert frame["correlation_id"] == corr
    assert_continues_the_trace(frame, exporter)


def test_routes_follow_the_prefix() -> None:
    notifier = Notifier(TokenSigner(SECRET), "websocket", prefix="/ct")
    assert [getattr(r, "path", None) for r in notifier.routes] == ["/ct/session", "/ct/ws"]
    assert [getattr(r, "path", None) for r in Notifier(TokenSigner(SECRET)).routes] == [
        "/clicktrace/session"
    ]


def test_bad_configuration() -> None:
    with pytest.raises(TypeError):
        Notifier("secret")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Notifier(TokenSigner(SECRET), "sse")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Notifier(TokenSigner(SECRET), "websocket", amqp_url="amqp://x", redis_url="redis://x")
