"""ClicktraceMiddleware on tiny Starlette apps, driven in-process through httpx."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from clicktrace import context as click_context
from clicktrace.asgi import ClicktraceMiddleware, error_response
from clicktrace.context import ClickContext
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


async def test_context_is_unbound_after_the_request() -> None:
    tp, _ = provider()
    async with client(app(tp)) as http:
        await http.get("/items/1", headers={"x-correlation-id": CORRELATION})
    assert click_context.current() is None


# --- driving the middleware directly, as an ASGI server would ---------------------------

Messages = list[dict[str, object]]


async def drive(
    application: object, scope: dict[str, object], incoming: Messages | None = None
) -> Messages:
    queue = list(incoming or [{"type": "http.request", "body": b"", "more_body": False}])
    sent: Messages = []

    async def receive() -> dict[str, object]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await application(scope, receive, send)  # type: ignore[operator]
    return sent


def http_scope(
    path: str = "/", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, object]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers or [], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


def header_dict(message: dict[str, object]) -> dict[bytes, list[bytes]]:
    found: dict[bytes, list[bytes]] = {}
    for name, value in message["headers"]:  # type: ignore[attr-defined]
        found.setdefault(name, []).append(value)
    return found


async def test_websocket_handshake_gets_a_span_headers_and_the_click() -> None:
    tp, exporter = provider()
    seen: list[ClickContext | None] = []

    async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(click_context.current())
        await receive()
        await send({"type": "websocket.accept", "headers": [(b"x-correlation-id", b"stale")]})
        await send({"type": "websocket.close", "code": 1000})

    scope = http_scope("/clicktrace/ws", [(b"x-correlation-id", CORRELATION.encode()),
                                          (b"traceparent", TRACEPARENT.encode())])
    scope["type"] = "websocket"
    sent = await drive(
        ClicktraceMiddleware(ws_app, tracer_provider=tp), scope, [{"type": "websocket.connect"}]
    )
    accept = header_dict(sent[0])
    assert accept[b"x-correlation-id"] == [CORRELATION.encode()]  # replaced, not doubled
    assert seen == [ClickContext(CORRELATION)]
    (span,) = exporter.get_finished_spans()
    assert span.kind is SpanKind.SERVER and span.context.trace_id == TRACE_ID
    assert accept[b"traceresponse"] == [
        f"00-{TRACE_ID:032x}-{span.context.span_id:016x}-01".encode()
    ]


async def test_strict_mode_closes_a_websocket_with_a_bad_id() -> None:
    tp, _ = provider()
    scope = http_scope("/ws", [(b"x-correlation-id", b"bad")])
    scope["type"] = "websocket"
    app_called = []

    async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
        app_called.append(True)

    sent = await drive(ClicktraceMiddleware(ws_app, tracer_provider=tp, strict=True), scope)
    assert sent == [{"type": "websocket.close", "code": 1008}] and not app_called


async def test_lifespan_passes_straight_through() -> None:
    calls: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["type"])

    await drive(ClicktraceMiddleware(inner), {"type": "lifespan"})
    assert calls == ["lifespan"]


async def test_responses_of_inner_middleware_get_the_headers() -> None:
    tp, _ = provider()

    async def deny(scope: Scope, receive: Receive, send: Send) -> None:
        await Response("no", 401)(scope, receive, send)

    sent = await drive(
        ClicktraceMiddleware(deny, tracer_provider=tp),
        http_scope(headers=[(b"x-correlation-id", CORRELATION.encode())]),
    )
    assert sent[0]["status"] == 401
    assert header_dict(sent[0])[b"x-correlation-id"] == [CORRELATION.encode()]


async def test_an_exception_is_re_raised_for_the_server_after_the_500() -> None:
    tp, _ = provider()

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("x")

    sent: Messages = []

    async def send(message: Message) -> None:
        sent.append(dict(message))

    async def receive() -> Message:
        return {"type": "http.request"}

    with pytest.raises(KeyError):
        await ClicktraceMiddleware(broken, tracer_provider=tp)(http_scope(), receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 500


async def test_exception_after_the_response_started_sends_nothing_more() -> None:
    tp, exporter = provider()

    async def half(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("late")

    with pytest.raises(RuntimeError):
        await drive(ClicktraceMiddleware(half, tracer_provider=tp), http_scope())
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "RuntimeError"


async def test_a_sampled_out_parent_records_nothing() -> None:
    tp, exporter = provider()
    unsampled = f"00-{TRACE_ID:032x}-{PARENT:016x}-00"
    async with client(app(tp)) as http:
        response = await http.get("/items/1", headers={"traceparent": unsampled})
    assert exporter.get_finished_spans() == ()
    returned = parse_traceparent(response.headers["traceresponse"])
    assert returned is not None and returned.trace_id == TRACE_ID and not returned.sampled


async def test_a_hostile_correlation_id_is_logged_escaped_and_truncated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tp, _ = provider()
    hostile = "evil\x1b[31m" + "A" * 500
    with caplog.at_level(logging.WARNING, logger="clicktrace.asgi"):
        async with client(app(tp)) as http:
            await http.get("/items/1", headers={"x-correlation-id": hostile})
    (record,) = caplog.records
    message = record.getMessage()
    assert "\x1b" not in message and "\\x1b" in message
    assert "A" * 100 not in message


async def test_new_trace_without_a_parent() -> None:
    tp, exporter = provider()
    async with client(app(tp)) as http:
        response = await http.get("/items/1")
    (span,) = exporter.get_finished_spans()
    assert span.parent is None
    returned = parse_traceparent(response.headers["traceresponse"])
    assert returned is not None and returned.span_id == span.context.span_id
    assert returned.random_trace_id


async def test_client_verifier_must_be_callable() -> None:
    with pytest.raises(TypeError):
        ClicktraceMiddleware(echo, client_verifier="nope")  # type: ignore[arg-type]


# --- with opentelemetry-instrumentation-asgi, and with FastAPI ---------------------------


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


# --- hostile headers ------------------------------------------------------------------

NAMES = [b"traceparent", b"tracestate", b"baggage", b"x-correlation-id", b"x-causation-id",
         b"x-clicktrace-deadline", b"x-clicktrace-client", b"host"]


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
padded_traceparents = st.builds(lambda before, tp, after: before + tp + after,
                                ows, traceparents, ows)


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
        returned.trace_id, returned.span_id, returned.flags,
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
    st.sampled_from([
        CORRELATION.encode(), CORRELATION.lower().encode(), b"81JD8X3Q7E8W5V4T2N9R6M0K1A",
        b"01JD8X3Q7E8W5V4T2N9R6M0KIA", b"01jd8x3q7e8w5v4t2n9r6m0k1\xc4",
    ]),
    st.text("0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghijklmnopqrstuvwxyz", min_size=25,
            max_size=27).map(str.encode),
    st.binary(min_size=26, max_size=26),
)
padded_correlation_ids = st.builds(lambda before, raw, after: before + raw + after,
                                   ows, correlation_ids, ows)


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


async def test_excluded_paths_open_no_trace_and_nothing_under_them_is_recorded() -> None:
    tp, exporter = provider()
    tracer = tp.get_tracer("test")

    async def nested(request: Request) -> Response:
        with tracer.start_as_current_span("inside"):
            return Response("ok")

    application = Starlette(routes=[
        Route("/assets/app.js", nested), Route("/health", nested), Route("/api/x", nested),
    ])
    application.add_middleware(ClicktraceMiddleware, tracer_provider=tp,
                               excluded_paths=r"^/assets/, ^/health$")
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
    application.add_middleware(ClicktraceMiddleware, tracer_provider=tp,
                               excluded_paths=["items/2"])
    async with client(application) as http:
        await http.get("/items/2")
        await http.get("/items/1")
    assert [(s.attributes or {}).get("url.path") for s in exporter.get_finished_spans()] == [
        "/items/1"]
