"""ClicktraceMiddleware's excluded_paths: no trace opened, nothing under it recorded."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.ids import parse_id
from clicktrace.propagation import parse_traceparent

from .middleware_apps import (
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
