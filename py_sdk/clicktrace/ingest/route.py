"""``POST /clicktrace/v1/traces``: the browser's spans, re-emitted through the server's pipeline.

Checks run cheapest first, before the body is read: client token (401), rate (429), media type
(415); then the body is read up to a cap (413), decoded and validated (400). Garbage never
yields a 500: the only 5xx is a 503 when the server's own exporter fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace import context as click_context
from clicktrace.asgi.errors import error_body
from clicktrace.ids import new_id, parse_id
from clicktrace.ingest.otlp_json import decode_request
from clicktrace.ingest.ratelimit import RateLimit, RateLimiter

__all__ = ["DEFAULT_MAX_BODY_BYTES", "MAX_TOKEN_LENGTH", "TRACES_PATH", "browser_traces_route"]

TRACES_PATH = "/clicktrace/v1/traces"
DEFAULT_MAX_BODY_BYTES = 512 * 1024
MAX_TOKEN_LENGTH = 1024
CLIENT_HEADER = "x-clicktrace-client"
# text/plain lets navigator.sendBeacon post without a CORS preflight.
_MEDIA_TYPES = frozenset({"application/json", "text/plain"})

_log = logging.getLogger(__name__)


class _TooLarge(Exception):
    pass


def _error(status: int, code: str, message: str, correlation_id: str) -> Response:
    return Response(error_body(code, message, correlation_id), status,
                    headers={"x-correlation-id": correlation_id}, media_type="application/json")


def _correlation_id(request: Request) -> str:
    bound = click_context.current()
    if bound is not None:
        return bound.correlation_id
    values = request.headers.getlist("x-correlation-id")
    parsed = parse_id(values[0]) if len(values) == 1 else None
    return parsed or new_id()


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def _emitter(
    span_processor: SpanProcessor | None,
    exporter: SpanExporter | None,
    tracer_provider: TracerProvider | None,
) -> Callable[[Sequence[ReadableSpan]], bool]:
    if exporter is not None:
        chosen = exporter

        def export(spans: Sequence[ReadableSpan]) -> bool:
            return chosen.export(spans) is SpanExportResult.SUCCESS

        return export

    def process(spans: Sequence[ReadableSpan]) -> bool:
        processor = span_processor
        if processor is None:
            # Resolved per request, so the app may install its provider after building routes.
            # The SDK exposes no public accessor for a provider's processors.
            provider = tracer_provider or trace.get_tracer_provider()
            processor = getattr(provider, "_active_span_processor", None)
        if isinstance(processor, SpanProcessor):
            for span in spans:
                processor.on_end(span)
        return True  # without an SDK provider tracing is off: accepted, like a no-op span

    return process


def browser_traces_route(
    *,
    client_verifier: Callable[[str], str | None] | None,
    allow_anonymous: bool = False,
    span_processor: SpanProcessor | None = None,
    exporter: SpanExporter | None = None,
    tracer_provider: TracerProvider | None = None,
    service_name: str = "browser",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    rate: RateLimit | None = None,
    path: str = TRACES_PATH,
) -> Route:
    """A Starlette route accepting OTLP/JSON traces from the browser SDK.

    ``client_verifier`` maps an ``x-clicktrace-client`` token to its client id (``None`` when
    invalid). Spans go to ``span_processor``, or ``exporter``, or the active span processor of
    ``tracer_provider`` (default: the global SDK provider). Their resource has
    ``service.name = service_name`` and, for verified senders, ``clicktrace.client_id``.
    ``rate`` applies per client id; with ``allow_anonymous``, senders without a valid token
    share one bucket per peer address (behind a proxy: one bucket for all of them).
    """
    if client_verifier is None and not allow_anonymous:
        raise ValueError("pass client_verifier, or allow_anonymous=True to accept any sender")
    if sum(x is not None for x in (span_processor, exporter, tracer_provider)) > 1:
        raise ValueError("pass at most one of span_processor, exporter, tracer_provider")
    if max_body_bytes < 1:
        raise ValueError("max_body_bytes must be positive")
    emit = _emitter(span_processor, exporter, tracer_provider)
    limiter = RateLimiter(rate or RateLimit())

    def verify(token: str | None) -> str | None:
        if client_verifier is None or not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        try:
            return parse_id(client_verifier(token))
        except Exception:  # a verifier choking on a hostile token must not become a 500
            _log.warning("client_verifier raised; token treated as invalid", exc_info=True)
            return None

    async def endpoint(request: Request) -> Response:
        correlation_id = _correlation_id(request)
        client_id = verify(request.headers.get(CLIENT_HEADER))
        if client_id is None and not allow_anonymous:
            return _error(401, "invalid_client", "a valid x-clicktrace-client token is required",
                          correlation_id)
        key = client_id or f"anonymous:{request.client.host if request.client else ''}"
        if not limiter.allow(key):
            return _error(429, "rate_limited", "too many trace exports", correlation_id)
        media = request.headers.get("content-type", "application/json").split(";")[0]
        encoding = request.headers.get("content-encoding", "identity")
        if media.strip().lower() not in _MEDIA_TYPES or encoding.lower() != "identity":
            return _error(415, "unsupported_media_type", "send uncompressed OTLP/JSON",
                          correlation_id)
        try:
            body = await _read_body(request, max_body_bytes)
        except _TooLarge:
            return _error(413, "payload_too_large", f"body over {max_body_bytes} bytes",
                          correlation_id)
        try:
            data: Any = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):
            return _error(400, "invalid_json", "body is not JSON", correlation_id)
        base = {"service.name": service_name}
        if client_id is not None:
            base["clicktrace.client_id"] = client_id
        decoded = decode_request(data, base)
        if decoded.invalid is not None:
            status, code = (413, "too_many_spans") if decoded.too_many else (400, "invalid_body")
            return _error(status, code, decoded.invalid, correlation_id)
        if decoded.spans and not await run_in_threadpool(emit, decoded.spans):
            return _error(503, "export_failed", "the trace pipeline refused the spans",
                          correlation_id)
        partial: dict[str, Any] = {}
        if decoded.rejected:
            # proto3 JSON writes int64 as a string
            partial = {"rejectedSpans": str(decoded.rejected),
                       "errorMessage": "spans that did not validate were dropped"}
        return JSONResponse({"partialSuccess": partial},
                            headers={"x-correlation-id": correlation_id})

    return Route(path, endpoint, methods=["POST"])
