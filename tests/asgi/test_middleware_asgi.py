"""ClicktraceMiddleware driven directly, as an ASGI server would: WebSocket, lifespan,
inner middleware, exceptions before and after the response started, sampling, logging."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from clicktrace import context as click_context
from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.context import ClickContext
from clicktrace.propagation import parse_traceparent

from .middleware_apps import (
    CORRELATION,
    PARENT,
    TRACE_ID,
    TRACEPARENT,
    Messages,
    app,
    client,
    drive,
    echo,
    header_dict,
    http_scope,
    provider,
)


async def test_websocket_handshake_gets_a_span_headers_and_the_click() -> None:
    tp, exporter = provider()
    seen: list[ClickContext | None] = []

    async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(click_context.current())
        await receive()
        await send({"type": "websocket.accept", "headers": [(b"x-correlation-id", b"stale")]})
        await send({"type": "websocket.close", "code": 1000})

    scope = http_scope(
        "/clicktrace/ws",
        [(b"x-correlation-id", CORRELATION.encode()), (b"traceparent", TRACEPARENT.encode())],
    )
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
