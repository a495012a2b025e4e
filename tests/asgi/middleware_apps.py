"""The tiny apps and the raw ASGI driver the middleware tests share (not a test module)."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace import context as click_context
from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.web import error_response

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
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers or [],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


def header_dict(message: dict[str, object]) -> dict[bytes, list[bytes]]:
    found: dict[bytes, list[bytes]] = {}
    for name, value in message["headers"]:  # type: ignore[attr-defined]
        found.setdefault(name, []).append(value)
    return found
