"""clicktrace.asgi._span: the span a request runs under. One SERVER span per request beside
opentelemetry-instrumentation-asgi (inside it, around it) and under FastAPI; excluded paths
open no trace and record nothing under them; propagation only records nothing but keeps the
caller's trace, or asks the server's sampler about a new one; and the in-place fast paths
(propagation's version-00 match, parse_id on bytes) pinned to the plain parsers
(`parse_traceparent`, `parse_id`) by differential property tests, hostile headers included."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext, SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from clicktrace import context as click_context
from clicktrace import sampling
from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.ids import parse_id
from clicktrace.propagation import parse_traceparent

from .middleware_apps import (
    CORRELATION,
    PARENT,
    TRACE_ID,
    TRACEPARENT,
    app,
    client,
    drive,
    echo,
    header_dict,
    http_scope,
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


NAMES = [
    b"traceparent",
    b"tracestate",
    b"baggage",
    b"x-correlation-id",
    b"x-causation-id",
    b"x-clicktrace-deadline",
    b"x-clicktrace-client",
    b"host",
]


@settings(settings.get_profile("clicktrace-round-trips"))
@given(st.lists(st.tuples(st.sampled_from(NAMES), st.binary(max_size=80)), max_size=10))
async def test_any_headers_get_a_valid_id_and_traceresponse(
    headers: list[tuple[bytes, bytes]],
) -> None:
    tp = TracerProvider()  # no exporter: only the response matters here

    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await Response("ok")(scope, receive, send)

    sent = await drive(ClicktraceMiddleware(ok, tracer_provider=tp), http_scope(headers=headers))
    found = header_dict(sent[0])
    (correlation_id,) = found[b"x-correlation-id"]
    assert parse_id(correlation_id) == correlation_id.decode()
    (traceresponse,) = found[b"traceresponse"]
    assert parse_traceparent(traceresponse) is not None


# --- the in-place fast paths agree with the parsers --------------------------------------

HEX = "0123456789abcdef"
traceparents = st.one_of(
    st.builds(
        lambda version, trace_id, span_id, flags, tail: (
            f"{version}-{trace_id}-{span_id}-{flags}{tail}".encode()
        ),
        st.sampled_from(["00", "01", "cc", "ff", "0A"]),
        st.sampled_from(["0" * 32, "4bf92f3577b34da6a3ce929d0e0e4736"])
        | st.text(HEX, min_size=32, max_size=32),
        st.sampled_from(["0" * 16, "00f067aa0ba902b7"]) | st.text(HEX, min_size=16, max_size=16),
        st.text(HEX, min_size=2, max_size=2),
        st.sampled_from(["", "-x", "x"]),
    ),
    st.binary(max_size=60),
)


# RFC 9110 optional whitespace around a field value: servers such as httptools pass it on.
ows = st.sampled_from([b"", b"", b" ", b"\t", b" \t "])
padded_traceparents = st.builds(
    lambda before, tp, after: before + tp + after, ows, traceparents, ows
)


@settings(settings.get_profile("clicktrace-round-trips"))
@given(padded_traceparents, st.booleans(), st.booleans())
async def test_traceresponse_and_current_span_follow_the_traceparent(
    traceparent: bytes, spans: bool, with_state: bool
) -> None:
    tp = TracerProvider()
    seen: list[SpanContext] = []

    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(trace.get_current_span().get_span_context())
        await Response("ok")(scope, receive, send)

    headers = [(b"traceparent", traceparent)]
    if with_state:
        headers.append((b"tracestate", b"a=1,b=2"))
    sent = await drive(
        ClicktraceMiddleware(ok, tracer_provider=tp, spans=spans), http_scope(headers=headers)
    )
    (traceresponse,) = header_dict(sent[0])[b"traceresponse"]
    returned = parse_traceparent(traceresponse)
    assert returned is not None
    (current,) = seen
    assert (current.trace_id, current.span_id, int(current.trace_flags)) == (
        returned.trace_id,
        returned.span_id,
        returned.flags,
    )
    parent = parse_traceparent(traceparent)
    if parent is None:
        assert returned.sampled and returned.random_trace_id  # a new trace
        assert current.trace_state.get("a") is None
        return
    assert returned.trace_id == parent.trace_id and returned.span_id != parent.span_id
    if not spans:  # propagation only keeps the caller's flags as they are
        assert returned.flags == parent.flags
    assert current.trace_state.get("a") == ("1" if with_state else None)


correlation_ids = st.one_of(
    st.sampled_from(
        [
            CORRELATION.encode(),
            CORRELATION.lower().encode(),
            b"81JD8X3Q7E8W5V4T2N9R6M0K1A",
            b"01JD8X3Q7E8W5V4T2N9R6M0KIA",
            b"01jd8x3q7e8w5v4t2n9r6m0k1\xc4",
        ]
    ),
    st.text(
        "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghijklmnopqrstuvwxyz", min_size=25, max_size=27
    ).map(str.encode),
    st.binary(min_size=26, max_size=26),
)
padded_correlation_ids = st.builds(
    lambda before, raw, after: before + raw + after, ows, correlation_ids, ows
)


@settings(settings.get_profile("clicktrace-round-trips"))
@given(padded_correlation_ids)
async def test_a_correlation_id_is_kept_exactly_when_parse_id_accepts_it(raw: bytes) -> None:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await Response("ok")(scope, receive, send)

    sent = await drive(
        ClicktraceMiddleware(ok, spans=False),
        http_scope(headers=[(b"x-correlation-id", raw)]),
    )
    (returned,) = header_dict(sent[0])[b"x-correlation-id"]
    expected = parse_id(raw)
    if expected is not None:
        assert returned.decode() == expected
    else:
        assert returned != raw.upper() and parse_id(returned) == returned.decode()


def test_the_apps_context_is_the_one_opentelemetry_reads() -> None:
    """Set on OpenTelemetry's own ContextVar when the API keeps one, else through the API:
    either way the API sees it, and resetting restores what was there."""
    from opentelemetry import context as otel_context
    from opentelemetry.context import Context

    from clicktrace.asgi._span import attach_context, detach_context

    before = otel_context.get_current()
    ours = Context({"k": 1})
    token = attach_context(ours)
    try:
        assert otel_context.get_current() is ours
        assert otel_context.get_value("k") == 1
    finally:
        detach_context(token)
    assert otel_context.get_current() is before
