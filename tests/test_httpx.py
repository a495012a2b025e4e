from __future__ import annotations

import asyncio
import contextvars
import importlib
import sys
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from clicktrace import context as click_context
from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.httpx import ClicktraceSyncTransport, ClicktraceTransport, HostPolicy
from clicktrace.ids import new_id
from clicktrace.propagation import parse_traceparent

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CORRELATION_ID = "01JDQ3N7R0ZKX2Y8W5V4T3S2R1"


def in_own_process(app: ASGIApp) -> ASGIApp:
    """Run ``app`` in an empty context, as if in another process: httpx.ASGITransport would
    otherwise hand it the caller's contextvars (its current span and click context)."""

    async def run(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)

    async def isolated(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.create_task(run(scope, receive, send), context=contextvars.Context())

    return isolated


async def test_a_calls_b_in_one_trace_and_one_correlation(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    seen_in_b: dict[str, Any] = {}

    async def b_endpoint(request: Request) -> JSONResponse:
        click = click_context.current()
        seen_in_b["correlation_id"] = click.correlation_id if click else None
        seen_in_b["trace_id"] = trace.get_current_span().get_span_context().trace_id
        return JSONResponse({"ok": True})

    service_b = Starlette(routes=[Route("/stock", b_endpoint)])
    service_b.add_middleware(ClicktraceMiddleware, tracer_provider=provider)
    to_b = httpx.AsyncClient(
        transport=ClicktraceTransport(
            httpx.ASGITransport(app=in_own_process(service_b)), tracer_provider=provider
        )
    )

    async def a_endpoint(request: Request) -> JSONResponse:
        response = await to_b.get("http://catalog/stock")  # "catalog": the service's own network
        return JSONResponse(response.json())

    service_a = Starlette(routes=[Route("/rename", a_endpoint, methods=["POST"])])
    service_a.add_middleware(ClicktraceMiddleware, tracer_provider=provider)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service_a)) as browser:
        response = await browser.post(
            "http://api/rename",
            headers={"traceparent": TRACEPARENT, "x-correlation-id": CORRELATION_ID.lower()},
        )
    await to_b.aclose()

    assert response.status_code == 200
    assert seen_in_b == {"correlation_id": CORRELATION_ID, "trace_id": TRACE_ID}
    spans = exporter.get_finished_spans()
    assert len(spans) == 3
    assert {s.context.trace_id for s in spans if s.context} == {TRACE_ID}
    by_parent = {s.parent.span_id if s.parent else None: s for s in spans}
    a_server = by_parent[0x00F067AA0BA902B7]  # child of the browser's span
    assert a_server.kind is SpanKind.SERVER and a_server.context is not None
    client_span = by_parent[a_server.context.span_id]
    assert client_span.kind is SpanKind.CLIENT and client_span.context is not None
    b_server = by_parent[client_span.context.span_id]
    assert b_server.kind is SpanKind.SERVER
    assert client_span.attributes is not None
    assert client_span.attributes["http.request.method"] == "GET"
    assert client_span.attributes["server.address"] == "catalog"
    assert client_span.attributes["http.response.status_code"] == 200
    for span in spans:
        assert span.attributes is not None
        assert span.attributes["clicktrace.correlation_id"] == CORRELATION_ID


def recorder(status: int = 200) -> tuple[list[httpx.Request], httpx.MockTransport]:
    requests: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(status, extensions={"http_version": b"HTTP/1.1"})

    return requests, httpx.MockTransport(handle)


async def test_third_party_hosts_get_no_headers_but_a_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    requests, mock = recorder()
    click = click_context.ClickContext(CORRELATION_ID, causation_id=new_id(), deadline_ms=5)
    transport = ClicktraceTransport(
        mock, allowed_hosts=["*.partner.test", "pay.example"], tracer_provider=provider
    )
    async with httpx.AsyncClient(transport=transport) as client:
        with click_context.bound(click):
            for url in (
                "https://evil.example/x?token=secret",
                "https://pay.example/",
                "https://api.partner.test/",
                "https://partner.test/",
                "http://127.0.0.1:8000/",
                "http://10.1.2.3/",
            ):
                await client.get(url)
    injected = [r.url.host for r in requests if "traceparent" in r.headers]
    assert injected == ["pay.example", "api.partner.test", "127.0.0.1", "10.1.2.3"]
    for request in requests:
        present = {"x-correlation-id", "x-causation-id", "x-clicktrace-deadline"} & set(
            request.headers
        )
        assert bool(present) == ("traceparent" in request.headers)
    pay = requests[1].headers
    assert (pay["x-correlation-id"], pay["x-causation-id"]) == (CORRELATION_ID, click.causation_id)
    spans = exporter.get_finished_spans()
    assert len(spans) == 6
    assert spans[0].attributes is not None
    assert spans[0].attributes["url.full"] == "https://evil.example/x"  # no query string
    assert spans[0].attributes["network.protocol.version"] == "1.1"


def test_include_own_false_leaves_only_the_list() -> None:
    policy = HostPolicy(["api.test"], include_own=False)
    assert [policy.allows(h) for h in ("api.test", "API.test.", "localhost", "catalog")] == [
        True,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost", True),
        ("app.localhost", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("192.168.1.9", True),
        ("catalog", True),
        ("8.8.8.8", False),
        ("example.com", False),
        ("localhost.evil.com", False),
        ("", False),
    ],
)
def test_own_network(host: str, allowed: bool) -> None:
    assert HostPolicy().allows(host) is allowed


def test_allowed_hosts_must_not_be_a_bare_string() -> None:
    with pytest.raises(TypeError):
        HostPolicy("api.test")


async def test_error_status_and_transport_failure_mark_the_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    _, mock = recorder(status=404)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(
        transport=ClicktraceTransport(mock, tracer_provider=provider)
    ) as client:
        await client.get("http://localhost/missing")
    async with httpx.AsyncClient(
        transport=ClicktraceTransport(httpx.MockTransport(refuse), tracer_provider=provider)
    ) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://localhost/down")
    not_found, down = exporter.get_finished_spans()
    assert not_found.status.status_code is StatusCode.ERROR
    assert not_found.attributes is not None and not_found.attributes["error.type"] == "404"
    assert down.status.status_code is StatusCode.ERROR
    assert down.attributes is not None and down.attributes["error.type"] == "ConnectError"


def test_sync_transport(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    requests, mock = recorder()
    transport = ClicktraceSyncTransport(mock, tracer_provider=provider)
    with (
        httpx.Client(transport=transport) as client,
        click_context.bound(click_context.ClickContext(CORRELATION_ID)),
    ):
        client.get("http://localhost/")
    (span,) = exporter.get_finished_spans()
    sent = parse_traceparent(requests[0].headers["traceparent"])
    assert span.context is not None and sent is not None
    assert (sent.trace_id, sent.span_id) == (span.context.trace_id, span.context.span_id)
    assert requests[0].headers["x-correlation-id"] == CORRELATION_ID


async def test_without_an_sdk_the_callers_context_is_passed_on() -> None:
    requests, mock = recorder()
    caller = SpanContext(TRACE_ID, 0x1122334455667788, True, TraceFlags(1))
    transport = ClicktraceTransport(mock, tracer_provider=trace.NoOpTracerProvider())
    async with httpx.AsyncClient(transport=transport) as client:
        with click_context.bound(None, trace.set_span_in_context(NonRecordingSpan(caller))):
            await client.get("http://localhost/")
    assert requests[0].headers["traceparent"] == f"00-{TRACE_ID:032x}-1122334455667788-01"


def test_missing_httpx_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    monkeypatch.delitem(sys.modules, "clicktrace.httpx")
    with pytest.raises(ImportError, match=r"pip install 'clicktrace\[httpx\]'"):
        importlib.import_module("clicktrace.httpx")
