"""ClicktraceMiddleware on tiny Starlette apps, driven in-process through httpx: the
trace joined, the click bound, ids replaced or refused, errors as JSON with the id."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clicktrace import context as click_context
from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.ids import parse_id
from clicktrace.propagation import parse_traceparent
from clicktrace.testing import free_port
from clicktrace.web._errors import RETRY_AFTER_SECONDS

from .middleware_apps import (
    CAUSATION,
    CLIENT,
    CORRELATION,
    PARENT,
    TRACE_ID,
    TRACEPARENT,
    app,
    client,
    provider,
)


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


async def test_a_store_that_is_down_is_a_503_with_retry_after_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A real redis-py client against a port nobody listens on raises redis-py's own
    # ConnectionError (not Python's), which used to escape as a 500 with a traceback.
    import redis.asyncio as aioredis

    async def lookup(request: Request) -> Response:
        client = aioredis.Redis(port=free_port(), socket_connect_timeout=2)
        try:
            await client.get("flag")
        finally:
            await client.aclose()
        return Response("unreachable")

    tp, exporter = provider()
    down = Starlette(routes=[Route("/lookup", lookup)])
    down.add_middleware(ClicktraceMiddleware, tracer_provider=tp)
    with caplog.at_level(logging.WARNING):
        async with client(down) as http:
            response = await http.get("/lookup", headers={"x-correlation-id": CORRELATION})
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert response.json()["error"]["code"] == "unavailable"
    assert response.json()["correlation_id"] == CORRELATION
    assert "Connection" not in response.text  # nothing about the dependency reaches the client
    assert not [r for r in caplog.records if r.exc_info]
    assert [r.getMessage() for r in caplog.records] == [
        "a dependency did not answer (ConnectionError): 503"
    ]
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR


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


async def test_context_is_unbound_after_the_request() -> None:
    tp, _ = provider()
    async with client(app(tp)) as http:
        await http.get("/items/1", headers={"x-correlation-id": CORRELATION})
    assert click_context.current() is None
