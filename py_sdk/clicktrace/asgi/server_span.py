"""The span a request runs under: an outer instrumentation's SERVER span joined, or one of our
own opened from the request's headers and named after routing (propagation only and excluded
paths are in :mod:`clicktrace.asgi.unrecorded`).
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Tracer,
    TracerProvider,
)
from opentelemetry.trace.status import Status, StatusCode
from starlette.types import Scope

from clicktrace.asgi.span_context import FLAGS, SPAN_KEY, format_traceresponse
from clicktrace.asgi.unrecorded import propagation_only
from clicktrace.propagation.headers import (
    BAGGAGE_SLOT,
    TRACEPARENT_SLOT,
    TRACESTATE_SLOT,
    Collected,
    one,
    raw_trace_state,
    remote_span_context,
    with_baggage,
)
from clicktrace.propagation.traceparent import match_v00 as _v00

__all__ = ["finish_span", "trace_request"]

_get_current = otel_context.get_current
_SERVER = SpanKind.SERVER


def trace_request(
    scope: Scope,
    slots: Collected,
    correlation_id: str,
    tracer: Tracer | None,
    provider: TracerProvider | None,
) -> tuple[Span, Context | None, bytes, bool]:
    """The span the app runs under, the context to attach (``None``: keep the current
    one), the ``traceresponse`` value, and whether the span is ours to end. ``tracer`` is
    ``None`` for propagation only, which asks ``provider``'s sampler about a new trace."""
    current = _get_current()
    outer = current.get(SPAN_KEY)
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
        return outer, None, format_traceresponse(outer.get_span_context()), False
    tp = one(slots[TRACEPARENT_SLOT])
    v00 = _v00(tp)
    if tracer is None:
        local, traceresponse = propagation_only(slots, tp, v00, provider)
        parent = current if slots[BAGGAGE_SLOT] is None else with_baggage(slots, current)
        return local, Context({**parent, SPAN_KEY: local}), traceresponse, False
    if v00 is not None:
        remote: SpanContext | None = SpanContext(
            int(v00[3:35], 16),
            int(v00[36:52], 16),
            True,
            FLAGS[v00[52:]],
            raw_trace_state(slots[TRACESTATE_SLOT]),
        )
    else:
        remote = remote_span_context(slots)
    parent = current if remote is None else Context({**current, SPAN_KEY: NonRecordingSpan(remote)})
    if slots[BAGGAGE_SLOT] is not None:
        parent = with_baggage(slots, parent)
    method = scope.get("method", "GET")
    span = tracer.start_span(
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
    return (
        span,
        Context({**parent, SPAN_KEY: span}),
        format_traceresponse(span.get_span_context()),
        True,
    )


def finish_span(span: Span, scope: Scope, status: int, failed: bool) -> None:
    """Name the span after its route, set the response status, end it."""
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
