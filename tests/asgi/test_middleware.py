"""ClicktraceMiddleware (clicktrace.asgi.middleware) on tiny Starlette apps, driven in-process
through httpx and directly as an ASGI server would: the trace joined, the click bound, ids
replaced or refused, tokens verified, errors as JSON with the id, WebSocket handshakes,
lifespan, inner middleware, the journal's outcome on the span. The whitespace cases also run
through real uvicorn with httptools, which passes optional whitespace on."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Message, Receive, Scope, Send

from clicktrace import context as click_context
from clicktrace import journal as journal_api
from clicktrace import metrics
from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.asgi import middleware as middleware_module
from clicktrace.commands import accepted, invalid_client
from clicktrace.context import ClickContext
from clicktrace.ids import new_id, parse_id
from clicktrace.journal import Journal, MemoryStore
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
    Messages,
    app,
    client,
    drive,
    echo,
    header_dict,
    http_scope,
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


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


async def command(request: Request) -> Response:
    refused = invalid_client(request)
    return refused if refused is not None else accepted()


async def static(request: Request) -> Response:
    return PlainTextResponse("asset")


def command_app(tp: TracerProvider | None = None, *, verifier: bool = True) -> Starlette:
    application = Starlette(
        routes=[
            Route("/command", command, methods=["POST"]),
            Mount("/", routes=[Route("/", static)]),
        ]
    )
    application.add_middleware(
        ClicktraceMiddleware,
        tracer_provider=tp or TracerProvider(),
        client_verifier=(lambda token: CLIENT if token == "good" else None) if verifier else None,
    )
    return application


def command_client(application: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://test")


# --- finding 3: a refused token on a command ---------------------------------------------


@pytest.mark.parametrize(
    "tokens",
    [["forged"], ["good", "good"], ["g" * 2000]],
    ids=["forged-or-expired", "repeated", "oversized"],
)
async def test_a_command_with_a_refused_token_gets_401_invalid_client(tokens: list[str]) -> None:
    headers = [("x-correlation-id", CORRELATION), *(("x-clicktrace-client", t) for t in tokens)]
    async with command_client(command_app()) as http:
        answer = await http.post("/command", headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {
        "error": {
            "code": "invalid_client",
            "message": "The client token is invalid or expired: renew the session.",
        },
        "correlation_id": CORRELATION,
    }
    assert answer.headers["x-correlation-id"] == CORRELATION


async def test_a_command_with_a_good_token_or_none_is_accepted() -> None:
    async with command_client(command_app()) as http:
        good = await http.post("/command", headers={"x-clicktrace-client": " good\t"})
        none = await http.post("/command")
    assert good.status_code == none.status_code == 202
    assert good.json()["status"] == "accepted"


async def test_without_a_verifier_no_token_is_refused() -> None:
    async with command_client(command_app(verifier=False)) as http:
        answer = await http.post("/command", headers={"x-clicktrace-client": "anything"})
    assert answer.status_code == 202


# --- finding 8: optional whitespace, the random flag, static span names ------------------


@pytest.mark.parametrize("pad", [" ", "\t", " \t"])
async def test_whitespace_around_the_correlation_id_and_traceparent_is_ignored(pad: str) -> None:
    for spans in (True, False):
        application = Starlette(routes=[Route("/command", command, methods=["POST"])])
        application.add_middleware(
            ClicktraceMiddleware, tracer_provider=TracerProvider(), spans=spans
        )
        async with command_client(application) as http:
            answer = await http.post(
                "/command",
                headers={
                    "x-correlation-id": f"{pad}{CORRELATION}{pad}",
                    "traceparent": f"{pad}00-{TRACE}-{SPAN}-01{pad}",
                },
            )
        assert answer.headers["x-correlation-id"] == CORRELATION
        returned = parse_traceparent(answer.headers["traceresponse"])
        assert returned is not None and f"{returned.trace_id:032x}" == TRACE


@pytest.mark.parametrize(("flags", "recorded"), [("03", True), ("02", False)])
async def test_the_random_trace_id_flag_is_accepted_and_propagated(
    flags: str, recorded: bool, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    for spans in (True, False):
        exporter.clear()
        application = Starlette(routes=[Route("/command", command, methods=["POST"])])
        application.add_middleware(ClicktraceMiddleware, tracer_provider=provider, spans=spans)
        async with command_client(application) as http:
            answer = await http.post(
                "/command", headers={"traceparent": f"00-{TRACE}-{SPAN}-{flags}"}
            )
        assert answer.headers["traceresponse"].endswith(f"-{flags}")
        returned = parse_traceparent(answer.headers["traceresponse"])
        assert returned is not None and f"{returned.trace_id:032x}" == TRACE
        finished = exporter.get_finished_spans()
        if spans and recorded:
            (span,) = finished
            assert span.parent is not None and f"{span.parent.span_id:016x}" == SPAN
            assert span.context is not None and int(span.context.trace_flags) == 3
        else:
            assert finished == ()


async def test_a_route_without_a_template_is_named_by_its_method_alone(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with command_client(command_app(provider)) as http:
        assert (await http.get("/")).status_code == 200
        assert (await http.post("/command")).status_code == 202
    names = sorted(span.name for span in exporter.get_finished_spans())
    assert names == ["GET /", "POST /command"]  # "GET /" is the mounted route's template
    exporter.clear()
    mounted = Starlette(routes=[Mount("/", app=static_files)])
    mounted.add_middleware(ClicktraceMiddleware, tracer_provider=provider)
    async with command_client(mounted) as http:
        assert (await http.get("/app.js")).status_code == 200
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET"  # was "GET ": a Mount("/") has the empty template
    assert span.attributes is not None and "http.route" not in span.attributes


async def static_files(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("asset")(scope, receive, send)


# --- the same through real uvicorn + httptools --------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(
        command_app(),
        host="127.0.0.1",
        port=port,
        http="httptools",
        log_level="warning",
        lifespan="off",
    )
    instance = uvicorn.Server(config)
    task = asyncio.ensure_future(instance.serve())
    while not instance.started:
        await asyncio.sleep(0.01)
    yield port
    instance.should_exit = True
    await task


async def test_httptools_whitespace_no_longer_replaces_the_id_or_starts_a_trace(
    server: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(
        f"POST /command HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n"
        f"x-correlation-id: {CORRELATION} \t\r\ntraceparent: 00-{TRACE}-{SPAN}-03\t \r\n"
        f"\r\n".encode()
    )
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
    writer.close()
    await writer.wait_closed()
    assert head.startswith("http/1.1 202")
    assert f"x-correlation-id: {CORRELATION.lower()}\r\n" in head
    assert f"traceresponse: 00-{TRACE}-" in head


@pytest.mark.parametrize(
    ("status", "outcome"), [(202, None), (400, "refused"), (409, "refused"), (503, None)]
)
async def test_a_refused_command_marks_its_server_span(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    status: int,
    outcome: str | None,
) -> None:
    async def command(request: Request) -> JSONResponse:
        return JSONResponse({}, status_code=status)

    app = Starlette(routes=[Route("/cmd", command, methods=["POST"])])
    app.add_middleware(ClicktraceMiddleware, tracer_provider=provider)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        await client.post("/cmd", headers={"x-correlation-id": new_id()})
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {}).get("clicktrace.outcome") == outcome


async def _timed(request: Request) -> Response:
    return PlainTextResponse("ok", headers={"server-timing": "db;dur=53"})


async def test_server_timing_names_the_trace_beside_the_apps_own_metrics() -> None:
    tp, _ = provider()
    application = app(tp)
    application.router.routes.append(Route("/timed", _timed))
    async with client(application) as http:
        plain = await http.get("/items/1", headers={"traceparent": TRACEPARENT})
        failed = await http.get("/boom")
        timed = await http.get("/timed")
    for response in (plain, failed, timed):
        value = response.headers["traceresponse"]
        ours = f"trace;desc={value}, traceparent;desc={value}"
        assert response.headers.get_list("server-timing")[-1] == ours
    assert parse_traceparent(plain.headers["traceresponse"]).trace_id == TRACE_ID  # type: ignore[union-attr]
    assert timed.headers.get_list("server-timing") == [
        "db;dur=53",
        f"trace;desc={timed.headers['traceresponse']}, "
        f"traceparent;desc={timed.headers['traceresponse']}",
    ]


async def test_a_command_is_journaled_a_query_is_not() -> None:
    tp, exporter = provider()
    kept = Journal(MemoryStore())
    previous = journal_api.use(kept)
    query, command = new_id(), new_id()
    try:
        async with client(app(tp)) as http:
            for method in ("GET", "HEAD", "OPTIONS"):
                await http.request(method, "/items/1", headers={"x-correlation-id": query})
            refused = await http.post(
                "/refuse",
                headers={
                    "x-correlation-id": command,
                    "x-clicktrace-client": "good-token",
                    "traceparent": TRACEPARENT,
                },
            )
        assert await kept.read(query) == []
        (entry,) = await kept.read(command)
    finally:
        journal_api.use(previous)
    returned = parse_traceparent(refused.headers["traceresponse"])
    assert returned is not None
    assert (entry.stage, entry.outcome, entry.detail) == ("refused", "422", "POST /refuse 422")
    assert (entry.client_id, entry.sampled) == (CLIENT, True)
    assert (entry.trace_id, entry.span_id) == (f"{TRACE_ID:032x}", f"{returned.span_id:016x}")
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "POST /refuse"]
    assert dict(span.attributes or {})["clicktrace.outcome"] == "refused"


async def test_nothing_is_recorded_when_nothing_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """No journal and no MeterProvider (a no-op one given): the edge builds no entry and
    counts nothing; with a journal it records the command."""
    seen: list[int] = []
    monkeypatch.setattr(middleware_module, "record_command", lambda status, *_: seen.append(status))
    tp, _ = provider()
    metrics.use(NoOpMeterProvider())
    try:
        async with client(app(tp)) as http:
            await http.post("/refuse", headers={"x-correlation-id": new_id()})
            previous = journal_api.use(Journal(MemoryStore()))
            try:
                await http.post("/refuse", headers={"x-correlation-id": new_id()})
            finally:
                journal_api.use(previous)
    finally:
        metrics.use(None)
    assert seen == [422]
