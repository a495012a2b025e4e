"""``ClicktraceMiddleware``: the HTTP (and WebSocket handshake) edge of a click.

Pure ASGI. Per request it reads the trace context and clicktrace ids in one pass over the
headers, opens one SERVER span (unless an outer OpenTelemetry ASGI middleware already did),
binds the :class:`~clicktrace.context.ClickContext` and the OpenTelemetry context for the app,
and adds ``x-correlation-id`` and ``traceresponse`` to every response, including the 500 it
sends itself when the app raises before responding.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from random import getrandbits

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    TracerProvider,
)
from opentelemetry.trace.status import Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clicktrace.asgi.errors import send_error
from clicktrace.context import ClickContext, bind, reset
from clicktrace.ids import escape_for_log, new_id, parse_id
from clicktrace.propagation.core import parse_deadline
from clicktrace.propagation.headers import (
    BAGGAGE,
    CAUSATION,
    CLIENT,
    CORRELATION,
    DEADLINE,
    MAX_CLIENT_TOKEN_LENGTH,
    SLOTS,
    TRACEPARENT,
    TRACESTATE,
    Collected,
    one,
    raw_trace_state,
    remote_span_context,
    with_baggage,
)
from clicktrace.propagation.traceparent import RANDOM_TRACE_ID, SAMPLED, traceparent_fields

__all__ = ["ClicktraceMiddleware"]

_LOG = logging.getLogger("clicktrace.asgi")
_CORRELATION = b"x-correlation-id"
_TRACERESPONSE = b"traceresponse"
_OURS = (_CORRELATION, _TRACERESPONSE)
# Messages that carry response headers: HTTP, a WebSocket accept, a WebSocket denial.
_STARTS = frozenset({"http.response.start", "websocket.accept", "websocket.http.response.start"})
_SLOT = SLOTS.get
_get_current = otel_context.get_current
_attach = otel_context.attach
_detach = otel_context.detach
_SERVER = SpanKind.SERVER
_NEW_TRACE_FLAGS = TraceFlags(SAMPLED | RANDOM_TRACE_ID)
# The usual traceparent, version 00 as raw bytes: validated by one C-level match, then only
# the trace id is converted (propagation-only makes a span id of its own).
_V00 = re.compile(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_ZERO_SPAN_ID = b"0" * 16
_FLAGS = {b"-%02x" % flags: TraceFlags(flags) for flags in range(256)}
# ids.parse_id's rule for bytes, in place: 26 Crockford characters in any case, the first at
# most "7". Upper-cased first, so one translate finds any character outside the alphabet.
_CROCKFORD = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _span_key() -> str:
    """The key OpenTelemetry keeps the current span under in a ``Context``, found through the
    public API: building the app's context is then one dict, not three nested calls."""
    (key,) = trace.set_span_in_context(NonRecordingSpan(INVALID_SPAN_CONTEXT), Context())
    return key


_SPAN_KEY = _span_key()




class ClicktraceMiddleware:
    """Trace and correlate every HTTP request and WebSocket handshake.

    ``client_verifier`` maps the ``x-clicktrace-client`` token to a client id (``None`` when
    the token is invalid). ``strict`` refuses a malformed ``x-correlation-id`` with 400
    (a WebSocket handshake is closed with 1008) instead of replacing it; a missing one is
    always minted, since work may start on the server. ``spans=False`` is propagation only:
    no span is recorded, but the app still runs inside the caller's trace (under a span id
    of its own, the one ``traceresponse`` names) and every response gets the headers.
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
        # One pass over the headers (collect_asgi, inlined: this runs on every request).
        slots: Collected = [None, None, None, None, None, None, None]
        for name, value in scope["headers"]:
            slot = _SLOT(name)
            if slot is not None:
                values = slots[slot]
                if values is None:
                    slots[slot] = [value]
                else:
                    values.append(value)

        values = slots[CORRELATION]
        raw = values[0] if values is not None and len(values) == 1 else None
        upper = raw.upper() if raw is not None else None
        correlation_id = (
            upper.decode("ascii")
            if upper is not None and len(upper) == 26 and upper[0] < 0x38
            and not upper.translate(None, _CROCKFORD)
            else None
        )
        if correlation_id is None:
            correlation_id = new_id()
            if raw is not None:
                if self._strict:
                    if kind == "websocket":  # closing before accepting refuses the handshake
                        await send({"type": "websocket.close", "code": 1008})
                    else:
                        await send_error(
                            send, 400, "invalid_correlation_id",
                            "x-correlation-id must be a ULID.", correlation_id,
                            ((_CORRELATION, correlation_id.encode()),),
                        )
                    return
                _LOG.warning(
                    "invalid x-correlation-id %s replaced with %s",
                    escape_for_log(raw.decode("latin-1")), correlation_id,
                )
        if slots[CLIENT] is None and slots[CAUSATION] is None and slots[DEADLINE] is None:
            click = ClickContext(correlation_id, None, None, None)
        else:
            client_id = None
            token = one(slots[CLIENT])
            if token is not None and self._verify and len(token) <= MAX_CLIENT_TOKEN_LENGTH:
                client_id = self._verify(token.decode("latin-1"))
            click = ClickContext(
                correlation_id,
                parse_id(one(slots[CAUSATION])) if slots[CAUSATION] else None,
                client_id,
                parse_deadline(one(slots[DEADLINE])) if slots[DEADLINE] else None,
            )

        current = _get_current()
        outer = current.get(_SPAN_KEY)
        span: Span
        own = False
        ctx = None
        if (
            outer is not None
            and isinstance(outer, Span)
            and getattr(outer, "kind", None) is _SERVER
            and outer.get_span_context().is_valid
        ):
            span = outer
            # An outer instrumentation (opentelemetry-instrumentation-asgi) has opened the
            # server span from these same headers: join it rather than open a second one.
            # Any other current span (a client span of an in-process caller) is not ours to
            # join: this request gets its own server span from its own headers.
            if span.is_recording():
                span.set_attribute("clicktrace.correlation_id", correlation_id)
            sc = span.get_span_context()
            traceresponse = b"00-%032x-%016x-%02x" % (sc.trace_id, sc.span_id, sc.trace_flags)
        else:
            # The usual traceparent (version 00, raw bytes) is checked in place by one C-level
            # match; anything else goes through the full parser.
            values = slots[TRACEPARENT]
            tp = values[0] if values is not None and len(values) == 1 else None
            v00 = (
                tp if tp is not None and _V00.fullmatch(tp) is not None
                and tp[36:52] != _ZERO_SPAN_ID else None
            )
            trace_id = int(v00[3:35], 16) if v00 is not None else 0
            if self._tracer is not None:
                if v00 is not None and trace_id:
                    remote: SpanContext | None = SpanContext(
                        trace_id, int(v00[36:52], 16), True, _FLAGS[v00[52:]],
                        raw_trace_state(slots[TRACESTATE]),
                    )
                else:
                    remote = remote_span_context(slots)
                parent = (
                    current if remote is None
                    else Context({**current, _SPAN_KEY: NonRecordingSpan(remote)})
                )
                if slots[BAGGAGE] is not None:
                    parent = with_baggage(slots, parent)
                method = scope.get("method", "GET")
                span = self._tracer.start_span(
                    method, parent, _SERVER,
                    {
                        "http.request.method": method,
                        "url.path": scope.get("path", ""),
                        "url.scheme": scope.get("scheme", "http"),
                        "clicktrace.correlation_id": correlation_id,
                    },
                )
                own = True
                ctx = Context({**parent, _SPAN_KEY: span})
                sc = span.get_span_context()
                # The SDK keeps the parent's random-trace-id flag on the child (Level 2).
                traceresponse = (
                    b"%b%016x-%02x" % (v00[:36], sc.span_id, sc.trace_flags)
                    if v00 is not None and trace_id and sc.trace_id == trace_id
                    else b"00-%032x-%016x-%02x" % (sc.trace_id, sc.span_id, sc.trace_flags)
                )
            else:
                # Propagation only: a span id of our own inside the caller's trace, or a new
                # trace (random id, sampled, so that downstream spans are recorded).
                span_id = getrandbits(64) or 1
                if v00 is not None and trace_id:
                    # The response names our span in the same trace, with the caller's
                    # flags (version 00 keeps them all).
                    sc = SpanContext(
                        trace_id, span_id, False, _FLAGS[v00[52:]],
                        raw_trace_state(slots[TRACESTATE]),
                    )
                    traceresponse = b"%b%016x%b" % (v00[:36], span_id, v00[52:])
                else:
                    fields = traceparent_fields(tp)
                    sc = (
                        SpanContext(getrandbits(128) or 1, span_id, False, _NEW_TRACE_FLAGS)
                        if fields is None
                        else SpanContext(
                            fields[0], span_id, False, TraceFlags(fields[2]),
                            raw_trace_state(slots[TRACESTATE]),
                        )
                    )
                    traceresponse = b"00-%032x-%016x-%02x" % (
                        sc.trace_id, span_id, sc.trace_flags
                    )
                span = NonRecordingSpan(sc)
                parent = current if slots[BAGGAGE] is None else with_baggage(slots, current)
                ctx = Context({**parent, _SPAN_KEY: span})
        extra = ((_CORRELATION, correlation_id.encode()), (_TRACERESPONSE, traceresponse))
        status = 0
        failed = False

        # A plain function returning the inner send's awaitable: no coroutine of our own per
        # message, and the body messages pass with one lookup.
        def send_with_headers(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] in _STARTS:
                status = message.get("status", 101)
                headers = []
                for header in message.get("headers", ()):
                    if header[0] not in _OURS:
                        headers.append(header)
                headers += extra
                message["headers"] = headers
            return send(message)

        click_token = bind(click)
        otel_token = _attach(ctx) if ctx is not None else None
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            failed = True
            if own:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            if kind == "http" and status == 0:
                await send_error(
                    send_with_headers, 500, "internal_error", "Internal server error.",
                    correlation_id,
                )
            raise
        finally:
            if otel_token is not None:
                _detach(otel_token)
            reset(click_token)
            if own:
                route = getattr(scope.get("route"), "path", None)
                if isinstance(route, str):
                    # Known only after routing: the name and route are set once, at the end.
                    span.update_name(f"{scope.get('method', 'GET')} {route}")
                    if status:
                        span.set_attributes(
                            {"http.response.status_code": status, "http.route": route}
                        )
                    else:
                        span.set_attribute("http.route", route)
                elif status:
                    span.set_attribute("http.response.status_code", status)
                if status >= 500 and not failed:  # an exception has already set a better status
                    span.set_status(Status(StatusCode.ERROR))
                span.end()
