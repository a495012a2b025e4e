"""``ClicktraceMiddleware``: the HTTP (and WebSocket handshake) edge of a click.

Pure ASGI. Per request it reads the trace context and clicktrace ids in one pass over the
headers, opens one SERVER span (unless an outer OpenTelemetry ASGI middleware already did),
binds the :class:`~clicktrace.context.ClickContext` and the OpenTelemetry context for the app,
and adds ``x-correlation-id`` and ``traceresponse`` to every response, including the 500 it
sends itself when the app raises before responding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from random import getrandbits

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, TracerProvider
from opentelemetry.trace.status import Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clicktrace import context as click_context
from clicktrace.asgi.errors import error_body
from clicktrace.ids import escape_for_log, new_id
from clicktrace.propagation.headers import extract_asgi
from clicktrace.propagation.traceparent import RANDOM_TRACE_ID, SAMPLED

__all__ = ["ClicktraceMiddleware"]

_LOG = logging.getLogger("clicktrace.asgi")
_CORRELATION = b"x-correlation-id"
_TRACERESPONSE = b"traceresponse"
_JSON = [(b"content-type", b"application/json")]
_START_TYPES = frozenset(
    {"http.response.start", "websocket.accept", "websocket.http.response.start"}
)
_OURS = (_CORRELATION, _TRACERESPONSE)
_INTERNAL = "internal_error"


class ClicktraceMiddleware:
    """Trace and correlate every HTTP request and WebSocket handshake.

    ``client_verifier`` maps the ``x-clicktrace-client`` token to a client id (``None`` when
    the token is invalid). ``strict`` refuses a malformed ``x-correlation-id`` with 400
    instead of replacing it. ``spans=False`` is propagation only: no span is recorded, but the
    handler still runs inside the caller's trace and every response gets the headers.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracer_provider: TracerProvider | None = None,
        client_verifier: Callable[[str], str | None] | None = None,
        strict: bool = False,
        spans: bool = True,
    ) -> None:
        if client_verifier is not None and not callable(client_verifier):
            raise TypeError("client_verifier must be callable or None")
        self.app = app
        self._tracer = (
            trace.get_tracer("clicktrace.asgi", tracer_provider=tracer_provider) if spans else None
        )
        self._verify = client_verifier
        self._strict = strict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        extracted, token = extract_asgi(scope["headers"])
        correlation_id = extracted.correlation_id
        if correlation_id is None:
            correlation_id = new_id()
            if extracted.raw_correlation_id is not None:
                if self._strict:
                    await _refuse(kind, send, correlation_id)
                    return
                _LOG.warning(
                    "invalid x-correlation-id %s replaced with %s",
                    escape_for_log(extracted.raw_correlation_id), correlation_id,
                )
        verify = self._verify
        client_id = verify(token) if verify is not None and token is not None else None

        outer = trace.get_current_span()
        span: Span
        own_span = False
        if outer.get_span_context().is_valid:
            # An outer instrumentation (opentelemetry-instrumentation-asgi) already opened
            # the server span and extracted the context: join it instead of duplicating it.
            span = outer
            ctx = None
        else:
            parent = extracted.otel_context()
            if self._tracer is not None:
                method = scope.get("method", "WS") if kind == "http" else "WS"
                span = self._tracer.start_span(
                    method, parent, SpanKind.SERVER, _attributes(scope, method, correlation_id)
                )
                own_span = True
            else:
                span = NonRecordingSpan(_virtual(extracted.traceparent))
            ctx = trace.set_span_in_context(span, parent)
        # The SDK keeps the parent's random-trace-id flag on the child (Level 2).
        sc = span.get_span_context()
        extra = [
            (_CORRELATION, correlation_id.encode("ascii")),
            (
                _TRACERESPONSE,
                b"00-%032x-%016x-%02x" % (sc.trace_id, sc.span_id, sc.trace_flags),
            ),
        ]
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] in _START_TYPES:
                status = message.get("status", 101)
                headers = [h for h in message.get("headers", ()) if h[0] not in _OURS]
                headers.extend(extra)
                message = {**message, "headers": headers}
            await send(message)

        click_token = click_context.bind(
            click_context.ClickContext(
                correlation_id, extracted.causation_id, client_id, extracted.deadline_ms
            )
        )
        otel_token = otel_context.attach(ctx) if ctx is not None else None
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            if span.is_recording():
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            if kind == "http" and status == 0:
                status = 500
                await send_with_headers(
                    {"type": "http.response.start", "status": 500, "headers": list(_JSON)}
                )
                await send(
                    {
                        "type": "http.response.body",
                        "body": error_body(_INTERNAL, "Internal server error.", correlation_id),
                    }
                )
            raise
        finally:
            if otel_token is not None:
                otel_context.detach(otel_token)
            click_context.reset(click_token)
            if span.is_recording():
                _finish(span, scope, status, own_span)


def _attributes(scope: Scope, method: str, correlation_id: str) -> dict[str, str]:
    return {
        "http.request.method": method,
        "url.path": scope.get("path", ""),
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
        "clicktrace.correlation_id": correlation_id,
    }


def _finish(span: Span, scope: Scope, status: int, own: bool) -> None:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if status:
        span.set_attribute("http.response.status_code", status)
        if status >= 500 and own:
            span.set_status(Status(StatusCode.ERROR))
    if own:
        if isinstance(path, str):
            span.set_attribute("http.route", path)
            method = scope.get("method", "WS") if scope["type"] == "http" else "WS"
            span.update_name(f"{method} {path}")
        span.end()


def _virtual(parent: object) -> SpanContext:
    """Propagation only: a span id of our own inside the caller's trace (or a new one)."""
    trace_id = getattr(parent, "trace_id", 0) or getrandbits(128)
    flags = getattr(parent, "flags", SAMPLED | RANDOM_TRACE_ID)
    return SpanContext(trace_id, getrandbits(64) or 1, False, trace.TraceFlags(flags))


async def _refuse(kind: str, send: Send, correlation_id: str) -> None:
    if kind == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = error_body("invalid_correlation_id", "x-correlation-id must be a ULID.", correlation_id)
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [*_JSON, (_CORRELATION, correlation_id.encode("ascii"))],
        }
    )
    await send({"type": "http.response.body", "body": body})
