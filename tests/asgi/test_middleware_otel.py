"""ClicktraceMiddleware beside opentelemetry-instrumentation-asgi (inside it, around it) and
under FastAPI: one server span per request."""

from __future__ import annotations

from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.routing import Route

from clicktrace import context as click_context
from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.propagation import parse_traceparent

from .middleware_apps import (
    CORRELATION,
    PARENT,
    TRACEPARENT,
    app,
    client,
    echo,
    provider,
)


async def test_inside_opentelemetry_asgi_there_is_one_server_span() -> None:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    tp, exporter = provider()
    application = app(tp)
    application.add_middleware(
        OpenTelemetryMiddleware, tracer_provider=tp, exclude_spans=["receive", "send"]
    )
    async with client(application) as http:
        response = await http.get(
            "/items/3", headers={"traceparent": TRACEPARENT, "x-correlation-id": CORRELATION}
        )
    (span,) = exporter.get_finished_spans()
    assert span.kind is SpanKind.SERVER and span.parent is not None
    assert span.parent.span_id == PARENT
    assert dict(span.attributes or {})["clicktrace.correlation_id"] == CORRELATION
    returned = parse_traceparent(response.headers["traceresponse"])
    assert returned is not None and returned.span_id == span.context.span_id
    assert response.json()["correlation_id"] == CORRELATION


async def test_an_in_process_callers_client_span_is_not_joined() -> None:
    # Called in-process (httpx.ASGITransport shares contextvars), the caller's CLIENT span is
    # current: the app still gets a SERVER span of its own, parented by its own headers.
    tp, exporter = provider()
    async with client(app(tp)) as http:
        with tp.get_tracer("caller").start_as_current_span("call", kind=SpanKind.CLIENT):
            await http.get("/items/3", headers={"traceparent": TRACEPARENT})
    server = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert len(server) == 1 and server[0].parent is not None
    assert server[0].parent.span_id == PARENT


async def test_around_opentelemetry_asgi_its_span_becomes_internal() -> None:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    tp, exporter = provider()
    application = Starlette(routes=[Route("/items/{item_id}", echo)])
    application.add_middleware(
        OpenTelemetryMiddleware, tracer_provider=tp, exclude_spans=["receive", "send"]
    )
    application.add_middleware(ClicktraceMiddleware, tracer_provider=tp)
    async with client(application) as http:
        await http.get("/items/3", headers={"traceparent": TRACEPARENT})
    spans = exporter.get_finished_spans()
    assert [s.kind for s in spans].count(SpanKind.SERVER) == 1
    inner = next(s for s in spans if s.kind is not SpanKind.SERVER)
    server = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert inner.parent is not None and inner.parent.span_id == server.context.span_id


async def test_fastapi() -> None:
    from fastapi import FastAPI, HTTPException

    tp, exporter = provider()
    api = FastAPI()

    @api.post("/api/products/{product_id}/rename", status_code=202)
    async def rename(product_id: int) -> dict[str, str]:
        click = click_context.current()
        if product_id == 404:
            raise HTTPException(404, "no such product")
        return {"correlation_id": click.correlation_id if click else "", "status": "accepted"}

    @api.get("/boom")
    async def fail() -> None:
        raise RuntimeError("boom")

    api.add_middleware(ClicktraceMiddleware, tracer_provider=tp)
    async with client(api) as http:
        accepted = await http.post(
            "/api/products/7/rename", headers={"x-correlation-id": CORRELATION}
        )
        missing = await http.post("/api/products/404/rename")
        broken = await http.get("/boom")
    assert accepted.status_code == 202
    assert accepted.json() == {"correlation_id": CORRELATION, "status": "accepted"}
    assert missing.status_code == 404 and "x-correlation-id" in missing.headers
    assert broken.status_code == 500
    assert broken.json()["correlation_id"] == broken.headers["x-correlation-id"]
    names = sorted(span.name for span in exporter.get_finished_spans())
    rename_name = "POST /api/products/{product_id}/rename"
    assert names == ["GET /boom", rename_name, rename_name]
