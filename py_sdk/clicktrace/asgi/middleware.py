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
from collections.abc import Awaitable, Callable, Iterable
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

from clicktrace.asgi.errors import Refusal, send_error
from clicktrace.context import ClickContext, bind, reset
from clicktrace.ids import escape_for_log, new_id, parse_id
from clicktrace.journal.record import record
from clicktrace.propagation.core import parse_deadline
from clicktrace.propagation.headers import (
    BAGGAGE_SLOT,
    CAUSATION_SLOT,
    CLIENT_SLOT,
    CORRELATION_SLOT,
    DEADLINE_SLOT,
    MAX_CLIENT_TOKEN_LENGTH,
    TRACEPARENT_SLOT,
    TRACESTATE_SLOT,
    Collected,
    collect_asgi,
    one,
    raw_trace_state,
    remote_span_context,
    with_baggage,
)
from clicktrace.propagation.traceparent import (
    RANDOM_TRACE_ID,
    SAMPLED,
    traceparent_fields,
)
from clicktrace.propagation.traceparent import match_v00 as _v00
from clicktrace.protocol import CORRELATION_HEADER, INTERNAL_ERROR, TRACERESPONSE_HEADER
from clicktrace.spans import get_tracer

__all__ = ["CLIENT_REFUSED", "ClicktraceMiddleware"]

CLIENT_REFUSED = "clicktrace.client_refused"
"""Scope key set (to ``True``) when the request carried an ``x-clicktrace-client`` token that
the verifier refused; :func:`clicktrace.commands.invalid_client` answers such a command 401."""

_LOG = logging.getLogger("clicktrace.asgi")
_CORRELATION = CORRELATION_HEADER.encode()  # header bytes; the slot index is CORRELATION_SLOT
_INTERNAL = Refusal(500, INTERNAL_ERROR, "Internal server error.")
_BAD_ID = Refusal(400, "invalid_correlation_id", "x-correlation-id must be a ULID.")
_TRACERESPONSE = TRACERESPONSE_HEADER.encode()
_OURS = (_CORRELATION, _TRACERESPONSE)
# Messages that carry response headers: HTTP, a WebSocket accept, a WebSocket denial.
_STARTS = frozenset({"http.response.start", "websocket.accept", "websocket.http.response.start"})
_get_current = otel_context.get_current
_attach = otel_context.attach
_detach = otel_context.detach
_SERVER = SpanKind.SERVER
_NEW_TRACE_FLAGS = TraceFlags(SAMPLED | RANDOM_TRACE_ID)
_UNSAMPLED_NEW = TraceFlags(RANDOM_TRACE_ID)
# Trace flags by the raw "-ff" tail of a version-00 traceparent (propagation's match_v00).
_FLAGS = {b"-%02x" % flags: TraceFlags(flags) for flags in range(256)}


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
    ``excluded_paths`` (regular expressions searched in the path, or one comma-separated
    string, as OpenTelemetry's ``OTEL_PYTHON_EXCLUDED_URLS``) open no trace: such a request
    (static files, health probes, span ingest) runs under an unsampled context, so nothing
    under it is recorded either; it still gets its correlation id and the headers.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracer_provider: TracerProvider | None = None,
        client_verifier: Callable[[str], str | None] | None = None,
        strict: bool = False,
        spans: bool = True,
        excluded_paths: str | Iterable[str] = (),
    ) -> None:
        if client_verifier is not None and not callable(client_verifier):
            raise TypeError("client_verifier must be callable or None")
        self.app = app
        self._tracer = (
            get_tracer("clicktrace.asgi", tracer_provider=tracer_provider) if spans else None
        )
        self._provider = tracer_provider
        self._verify = client_verifier
        self._strict = strict
        self._excluded = _excluded(excluded_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        slots = collect_asgi(scope["headers"])
        raw = one(slots[CORRELATION_SLOT])
        correlation_id = parse_id(raw) if raw is not None else None
        # A request that names its click is journaled (the SDK's own routes are not).
        journaled = (
            correlation_id is not None
            and kind == "http"
            and not scope["path"].startswith("/clicktrace/")
        )
        if correlation_id is None:
            correlation_id = new_id()
            if raw is not None:
                if self._strict:
                    await _refuse(kind, send, correlation_id)
                    return
                _LOG.warning(
                    "invalid x-correlation-id %s replaced with %s",
                    escape_for_log(raw.decode("latin-1")),
                    correlation_id,
                )
        click = self._click(scope, slots, correlation_id)
        if self._excluded is not None and self._excluded(scope.get("path", "")):
            span, ctx, traceresponse, own = _untraced(slots)
        else:
            span, ctx, traceresponse, own = self._trace(scope, slots, correlation_id)
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
                for header in message.get("headers", ()):  # a loop: no comprehension frame
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
                await send_error(send_with_headers, _INTERNAL, correlation_id)
            raise
        finally:
            if journaled and status:
                _journal(status, scope)
                if own and 400 <= status < 500:  # the edge decided this click: refused
                    span.set_attribute("clicktrace.outcome", "refused")
            if otel_token is not None:
                _detach(otel_token)
            reset(click_token)
            if own:
                _finish(span, scope, status, failed)

    def _click(self, scope: Scope, slots: Collected, correlation_id: str) -> ClickContext:
        if (
            slots[CLIENT_SLOT] is None
            and slots[CAUSATION_SLOT] is None
            and slots[DEADLINE_SLOT] is None
        ):
            return ClickContext(correlation_id)
        client_id = None
        if slots[CLIENT_SLOT] is not None and self._verify is not None:
            token = one(slots[CLIENT_SLOT])
            if token is not None and len(token) <= MAX_CLIENT_TOKEN_LENGTH:
                client_id = self._verify(token.strip(b" \t").decode("latin-1"))
            if client_id is None:  # forged, expired, repeated or oversized: the app decides
                scope[CLIENT_REFUSED] = True
        return ClickContext(
            correlation_id,
            parse_id(one(slots[CAUSATION_SLOT])) if slots[CAUSATION_SLOT] else None,
            client_id,
            parse_deadline(one(slots[DEADLINE_SLOT])) if slots[DEADLINE_SLOT] else None,
        )

    def _trace(
        self, scope: Scope, slots: Collected, correlation_id: str
    ) -> tuple[Span, Context | None, bytes, bool]:
        """The span the app runs under, the context to attach (``None``: keep the current
        one), the ``traceresponse`` value, and whether the span is ours to end."""
        current = _get_current()
        outer = current.get(_SPAN_KEY)
        if (
            isinstance(outer, Span)
            and getattr(outer, "kind", None) is _SERVER
            and outer.get_span_context().is_valid
        ):
            # An outer instrumentation (opentelemetry-instrumentation-asgi) has opened the
            # server span from these same headers: join it rather than open a second one.
            # Any other current span (a client span of an in-process caller) is not ours to
            # join: this request gets its own server span from its own headers.
            if outer.is_recording():
                outer.set_attribute("clicktrace.correlation_id", correlation_id)
            return outer, None, _format(outer.get_span_context()), False
        tp = one(slots[TRACEPARENT_SLOT])
        v00 = _v00(tp)
        if self._tracer is None:
            local, traceresponse = _propagation_only(slots, tp, v00, self._provider)
            parent = current if slots[BAGGAGE_SLOT] is None else with_baggage(slots, current)
            return local, Context({**parent, _SPAN_KEY: local}), traceresponse, False
        if v00 is not None:
            remote: SpanContext | None = SpanContext(
                int(v00[3:35], 16),
                int(v00[36:52], 16),
                True,
                _FLAGS[v00[52:]],
                raw_trace_state(slots[TRACESTATE_SLOT]),
            )
        else:
            remote = remote_span_context(slots)
        parent = (
            current if remote is None else Context({**current, _SPAN_KEY: NonRecordingSpan(remote)})
        )
        if slots[BAGGAGE_SLOT] is not None:
            parent = with_baggage(slots, parent)
        method = scope.get("method", "GET")
        span = self._tracer.start_span(
            method,
            parent,
            _SERVER,
            {
                "http.request.method": method,
                "url.path": scope.get("path", ""),
                "url.scheme": scope.get("scheme", "http"),
                "clicktrace.correlation_id": correlation_id,
            },
        )
        # The SDK keeps the parent's random-trace-id flag on the child (Level 2).
        return span, Context({**parent, _SPAN_KEY: span}), _format(span.get_span_context()), True


def _journal(status: int, scope: Scope) -> None:
    """The edge's journal entry, from the response status: accepted (2xx/3xx) or refused."""
    detail = f"{scope.get('method', 'GET')} {scope['path']} {status}"
    if status < 400:
        record("accepted", outcome=str(status), detail=detail)
    else:
        record("refused", outcome=str(status), detail=detail)


def _propagation_only(
    slots: Collected, tp: bytes | None, v00: bytes | None, provider: TracerProvider | None
) -> tuple[NonRecordingSpan, bytes]:
    """A span id of our own inside the caller's trace, or a new trace (random id, sampled as
    the server's sampler decides, so that downstream spans follow it); nothing is recorded."""
    span_id = getrandbits(64) or 1
    if v00 is not None:
        # The response names our span in the same trace with the caller's flags (version 00
        # keeps them all), written from the raw header.
        sc = SpanContext(
            int(v00[3:35], 16),
            span_id,
            False,
            _FLAGS[v00[52:]],
            raw_trace_state(slots[TRACESTATE_SLOT]),
        )
        return NonRecordingSpan(sc), b"%b%016x%b" % (v00[:36], span_id, v00[52:])
    fields = traceparent_fields(tp)
    trace_id = getrandbits(128) or 1
    sc = (
        SpanContext(
            trace_id,
            span_id,
            False,
            _NEW_TRACE_FLAGS if _keeps(provider, trace_id) else _UNSAMPLED_NEW,
        )
        if fields is None
        else SpanContext(
            fields[0],
            span_id,
            False,
            TraceFlags(fields[2]),
            raw_trace_state(slots[TRACESTATE_SLOT]),
        )
    )
    return NonRecordingSpan(sc), _format(sc)


def _excluded(paths: str | Iterable[str]) -> Callable[[str], object] | None:
    """One compiled search over every excluded-path pattern (None: nothing excluded)."""
    patterns = paths.split(",") if isinstance(paths, str) else list(paths)
    patterns = [p.strip() for p in patterns if p.strip()]
    return re.compile("|".join(f"(?:{p})" for p in patterns)).search if patterns else None


def _untraced(slots: Collected) -> tuple[Span, Context | None, bytes, bool]:
    """An excluded path: the caller's trace id (or a new one) with the sampled flag cleared."""
    fields = traceparent_fields(one(slots[TRACEPARENT_SLOT]))
    trace_id = fields[0] if fields is not None else getrandbits(128) or 1
    flags = TraceFlags((fields[2] if fields is not None else RANDOM_TRACE_ID) & ~SAMPLED)
    sc = SpanContext(trace_id, getrandbits(64) or 1, False, flags)
    span = NonRecordingSpan(sc)
    return span, Context({**_get_current(), _SPAN_KEY: span}), _format(sc), False


def _keeps(provider: TracerProvider | None, trace_id: int) -> bool:
    """The server's sampling decision for a click that arrives with none (the provider's
    sampler, e.g. clicktrace.sampling.sampler()); without a sampler to ask: sampled."""
    sampler = getattr(provider or trace.get_tracer_provider(), "sampler", None)
    should_sample = getattr(sampler, "should_sample", None)
    if should_sample is None:
        return True
    try:
        return bool(should_sample(Context(), trace_id, "propagation").decision.is_sampled())
    except Exception:  # a broken sampler must not fail the request
        return True


def _format(sc: SpanContext) -> bytes:
    return b"00-%032x-%016x-%02x" % (sc.trace_id, sc.span_id, sc.trace_flags)


async def _refuse(kind: str, send: Send, correlation_id: str) -> None:
    """Strict mode's answer to a malformed correlation id."""
    if kind == "websocket":  # closing before accepting refuses the handshake
        await send({"type": "websocket.close", "code": 1008})
    else:
        await send_error(send, _BAD_ID, correlation_id, ((_CORRELATION, correlation_id.encode()),))


def _finish(span: Span, scope: Scope, status: int, failed: bool) -> None:
    route = getattr(scope.get("route"), "path", None)
    if isinstance(route, str) and route:  # a Mount("/") has the empty template: keep "GET"
        # Known only after routing: the name and route are set once, at the end.
        span.update_name(f"{scope.get('method', 'GET')} {route}")
        if status:
            span.set_attributes({"http.response.status_code": status, "http.route": route})
        else:
            span.set_attribute("http.route", route)
    elif status:
        span.set_attribute("http.response.status_code", status)
    if status >= 500 and not failed:  # an exception has already set a better status
        span.set_status(Status(StatusCode.ERROR))
    span.end()
