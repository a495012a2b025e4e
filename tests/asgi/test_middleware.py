"""ClicktraceMiddleware on tiny Starlette apps, driven in-process through httpx."""

from __future__ import annotations

import json

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace import context as click_context
from clicktrace.asgi import ClicktraceMiddleware, error_response
from clicktrace.ids import parse_id
from clicktrace.propagation import parse_traceparent

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT = 0x00F067AA0BA902B7
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT:016x}-01"
CORRELATION = "01JD8X3Q7E8W5V4T2N9R6M0K1A"
CAUSATION = "01JD8X3Q7E8W5V4T2N9R6M0K1B"
CLIENT = "01JD8X3Q7E8W5V4T2N9R6M0K1C"


def provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp, exporter


async def echo(request: Request) -> Response:
    click = click_context.current()
    if click is None:
        return error_response(500, "unbound", "no context")
    return JSONResponse(
        {
            "correlation_id": click.correlation_id,
            "causation_id": click.causation_id,
            "client_id": click.client_id,
            "deadline_ms": click.deadline_ms,
        }
    )


async def boom(request: Request) -> Response:
    raise RuntimeError("secret detail")


async def refuse(request: Request) -> Response:
    return error_response(422, "invalid_name", "A name needs 1 to 80 characters.")


def app(tp: TracerProvider, *, strict: bool = False, spans: bool = True) -> Starlette:
    application = Starlette(
        routes=[
            Route("/items/{item_id}", echo),
            Route("/boom", boom),
            Route("/refuse", refuse, methods=["POST"]),
        ]
    )
    application.add_middleware(
        ClicktraceMiddleware,
        tracer_provider=tp,
        client_verifier=lambda token: CLIENT if token == "good-token" else None,
        strict=strict,
        spans=spans,
    )
    return application


def client(application: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_joins_the_incoming_trace_and_binds_the_click() -> None:
    tp, exporter = provider()
    async with client(app(tp)) as http:
        response = await http.get(
            "/items/7",
            headers={
                "traceparent": TRACEPARENT,
                "tracestate": "congo=t61rcWkgMzE",
                "x-correlation-id": CORRELATION.lower(),
                "x-causation-id": CAUSATION,
                "x-clicktrace-client": "good-token",
                "x-clicktrace-deadline": "1764000000000",
            },
        )
    assert response.status_code == 200
    assert response.json() == {
        "correlation_id": CORRELATION,
        "causation_id": CAUSATION,
        "client_id": CLIENT,
        "deadline_ms": 1764000000000,
    }
    assert response.headers["x-correlation-id"] == CORRELATION
    (span,) = exporter.get_finished_spans()
    assert span.kind is SpanKind.SERVER
    assert span.name == "GET /items/{item_id}"
    assert span.parent is not None and span.parent.span_id == PARENT
    assert span.context.trace_id == TRACE_ID
    assert span.context.trace_state.get("congo") == "t61rcWkgMzE"
    attributes = dict(span.attributes or {})
    assert attributes["http.route"] == "/items/{item_id}"
    assert attributes["http.response.status_code"] == 200
    assert attributes["clicktrace.correlation_id"] == CORRELATION
    returned = parse_traceparent(response.headers["traceresponse"])
    assert returned is not None
    assert (returned.trace_id, returned.span_id) == (TRACE_ID, span.context.span_id)
    assert returned.sampled


async def test_a_bad_token_binds_no_client() -> None:
    tp, _ = provider()
    async with client(app(tp)) as http:
        response = await http.get("/items/1", headers={"x-clicktrace-client": "forged"})
    assert response.json()["client_id"] is None


async def test_missing_or_invalid_correlation_id_is_replaced() -> None:
    tp, _ = provider()
    async with client(app(tp)) as http:
        missing = await http.get("/items/1")
        invalid = await http.get("/items/1", headers={"x-correlation-id": "not-a-ulid\r\nX: y"})
    for response in (missing, invalid):
        fresh = response.headers["x-correlation-id"]
        assert parse_id(fresh) == fresh
        assert response.json()["correlation_id"] == fresh
    assert missing.headers["x-correlation-id"] != invalid.headers["x-correlation-id"]


async def test_strict_mode_refuses_an_invalid_correlation_id() -> None:
    tp, exporter = provider()
    async with client(app(tp, strict=True)) as http:
        response = await http.get("/items/1", headers={"x-correlation-id": "nope"})
        ok = await http.get("/items/1", headers={"x-correlation-id": CORRELATION})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "invalid_correlation_id"
    assert body["correlation_id"] == response.headers["x-correlation-id"]
    assert ok.status_code == 200
    assert len(exporter.get_finished_spans()) == 1


async def test_unhandled_exception_becomes_a_json_500_with_headers() -> None:
    tp, exporter = provider()
    async with client(app(tp)) as http:
        response = await http.get(
            "/boom", headers={"x-correlation-id": CORRELATION, "traceparent": TRACEPARENT}
        )
    assert response.status_code == 500
    assert response.headers["x-correlation-id"] == CORRELATION
    assert response.json() == {
        "error": {"code": "internal_error", "message": "Internal server error."},
        "correlation_id": CORRELATION,
    }
    assert "secret" not in response.text
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    returned = parse_traceparent(response.headers["traceresponse"])
    assert returned is not None and returned.span_id == span.context.span_id


async def test_error_response_carries_the_correlation_id() -> None:
    tp, _ = provider()
    async with client(app(tp)) as http:
        response = await http.post("/refuse", headers={"x-correlation-id": CORRELATION})
    assert response.status_code == 422
    assert json.loads(response.content) == {
        "error": {"code": "invalid_name", "message": "A name needs 1 to 80 characters."},
        "correlation_id": CORRELATION,
    }
    assert response.headers["x-correlation-id"] == CORRELATION


async def test_propagation_only_records_nothing_but_stays_in_the_trace() -> None:
    tp, exporter = provider()
    async with client(app(tp, spans=False)) as http:
        response = await http.get("/items/1", headers={"traceparent": TRACEPARENT})
    assert exporter.get_finished_spans() == ()
    returned = parse_traceparent(response.headers["traceresponse"])
    assert returned is not None
    assert returned.trace_id == TRACE_ID and returned.span_id != PARENT


async def test_context_is_unbound_after_the_request() -> None:
    tp, _ = provider()
    async with client(app(tp)) as http:
        await http.get("/items/1", headers={"x-correlation-id": CORRELATION})
    assert click_context.current() is None
