"""clicktrace.asgi.unrecorded: excluded paths open no trace and record nothing under them;
propagation only records nothing but keeps the caller's trace, or asks the server's sampler
about a new one."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace import sampling
from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.ids import parse_id
from clicktrace.propagation import parse_traceparent

from .middleware_apps import (
    PARENT,
    TRACE_ID,
    TRACEPARENT,
    client,
    echo,
    provider,
)


async def test_excluded_paths_open_no_trace_and_nothing_under_them_is_recorded() -> None:
    tp, exporter = provider()
    tracer = tp.get_tracer("test")

    async def nested(request: Request) -> Response:
        with tracer.start_as_current_span("inside"):
            return Response("ok")

    application = Starlette(
        routes=[
            Route("/assets/app.js", nested),
            Route("/health", nested),
            Route("/api/x", nested),
        ]
    )
    application.add_middleware(
        ClicktraceMiddleware, tracer_provider=tp, excluded_paths=r"^/assets/, ^/health$"
    )
    async with client(application) as http:
        static = await http.get("/assets/app.js", headers={"traceparent": TRACEPARENT})
        health = await http.get("/health")
        assert exporter.get_finished_spans() == ()
        await http.get("/api/x")
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["GET /api/x", "inside"]
    assert parse_id(static.headers["x-correlation-id"]) is not None
    returned = parse_traceparent(static.headers["traceresponse"])
    assert returned is not None and returned.trace_id == TRACE_ID and not returned.sampled
    fresh = parse_traceparent(health.headers["traceresponse"])
    assert fresh is not None and not fresh.sampled and fresh.random_trace_id


async def test_excluded_paths_take_a_list_and_match_anywhere_in_the_path() -> None:
    tp, exporter = provider()
    application = Starlette(routes=[Route("/items/{item_id}", echo)])
    application.add_middleware(ClicktraceMiddleware, tracer_provider=tp, excluded_paths=["items/2"])
    async with client(application) as http:
        await http.get("/items/2")
        await http.get("/items/1")
    assert [(s.attributes or {}).get("url.path") for s in exporter.get_finished_spans()] == [
        "/items/1"
    ]


async def test_propagation_only_records_nothing_but_stays_in_the_trace() -> None:
    tp, exporter = provider()
    seen: list[SpanContext] = []

    async def current_span(request: Request) -> Response:
        seen.append(trace.get_current_span().get_span_context())
        return Response("ok")

    application = Starlette(routes=[Route("/", current_span)])
    application.add_middleware(ClicktraceMiddleware, tracer_provider=tp, spans=False)
    async with client(application) as http:
        response = await http.get(
            "/", headers={"traceparent": TRACEPARENT, "tracestate": "a=1", "baggage": "k=v"}
        )
        fresh = await http.get("/")
    assert exporter.get_finished_spans() == ()
    returned = parse_traceparent(response.headers["traceresponse"])
    assert returned is not None
    assert returned.trace_id == TRACE_ID and returned.span_id != PARENT
    assert (seen[0].trace_id, seen[0].span_id) == (TRACE_ID, returned.span_id)
    assert dict(seen[0].trace_state.items()) == {"a": "1"}
    started = parse_traceparent(fresh.headers["traceresponse"])
    assert started is not None and started.sampled and started.random_trace_id
    assert started.trace_id == seen[1].trace_id != TRACE_ID


@pytest.mark.parametrize(("ratio", "flags"), [(0.0, "02"), (1.0, "03")])
async def test_propagation_only_asks_the_servers_sampler_for_a_click_without_a_decision(
    ratio: float,
    flags: str,
) -> None:
    async def command(request: Request) -> JSONResponse:
        return JSONResponse({}, status_code=202)

    app = Starlette(routes=[Route("/cmd", command, methods=["POST"])])
    app.add_middleware(
        ClicktraceMiddleware,
        spans=False,
        tracer_provider=TracerProvider(sampler=sampling.sampler(ratio)),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        response = await client.post("/cmd")
        decided = await client.post(
            "/cmd", headers={"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-03"}
        )
    assert response.headers["traceresponse"].endswith(f"-{flags}")
    assert decided.headers["traceresponse"].endswith("-03")  # the browser's decision stands
