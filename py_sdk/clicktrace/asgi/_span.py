"""The span a request runs under, and the context the app sees.

Three ways, decided per request by :func:`trace_request` and :func:`untraced`:

- **recorded**: an outer instrumentation's SERVER span joined, or one of our own opened from
  the request's headers and named after routing at the end (:func:`finish_span`);
- **propagation only** (``spans=False``): no span is recorded, but the app still runs under a
  span id of the edge's own in the caller's trace (or a new trace the server's sampler
  decides), the one ``traceresponse`` names, so that the browser and everything downstream
  stay in one trace;
- **excluded paths** (:func:`compile_excluded`): the caller's trace id (or a new one) with the
  sampled flag cleared, so nothing under the request is recorded either.

Every read of the trace headers goes through :mod:`clicktrace.propagation`'s edge path
(``_edge_headers``): this module never slices a traceparent itself.

The app's OpenTelemetry context is set and reset through :data:`attach_context` /
:data:`detach_context`: OpenTelemetry's own ``ContextVar`` when the installed API keeps its
current context in one (the default runtime context; checked once, at import, by attaching a
probe through the API and reading it back), else the API's ``attach`` / ``detach``. The same
variable, so everything the API reads sees it; two Python calls fewer each way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextvars import ContextVar, Token
from random import getrandbits

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    Tracer,
    TracerProvider,
)
from opentelemetry.trace.status import Status, StatusCode
from starlette.types import Scope

from clicktrace.propagation._edge_headers import (
    BAGGAGE_SLOT,
    TRACEPARENT_SLOT,
    Collected,
    child_span_context,
    one,
    remote_span_context,
    with_baggage,
)
from clicktrace.propagation._inject_extract import SPAN_KEY
from clicktrace.propagation._traceparent import (
    RANDOM_TRACE_ID,
    SAMPLED,
    format_traceresponse,
    traceparent_fields,
)

__all__ = [
    "attach_context",
    "compile_excluded",
    "detach_context",
    "finish_span",
    "trace_request",
    "untraced",
]


def _runtime_variable() -> ContextVar[Context] | None:
    """OpenTelemetry's ``ContextVar`` behind ``attach``/``detach``/``get_current``, when the
    installed API keeps the current context in one; ``None`` otherwise."""
    try:
        variable = otel_context._RUNTIME_CONTEXT._current_context  # type: ignore[attr-defined]
        if not isinstance(variable, ContextVar):
            return None
        probe = Context({"clicktrace.probe": True})
        token = otel_context.attach(probe)
        try:
            seen = variable.get() is probe and otel_context.get_current() is probe
        finally:
            otel_context.detach(token)
        return variable if seen and variable.get() is not probe else None
    except Exception:  # another runtime context (OTEL_PYTHON_CONTEXT), or another API
        return None


_RUNTIME = _runtime_variable()
attach_context: Callable[[Context], Token[Context]] = (
    otel_context.attach if _RUNTIME is None else _RUNTIME.set
)
detach_context: Callable[[Token[Context]], None] = (
    otel_context.detach if _RUNTIME is None else _RUNTIME.reset
)
_get_current: Callable[[], Context] = otel_context.get_current if _RUNTIME is None else _RUNTIME.get
_SERVER = SpanKind.SERVER
_NEW_TRACE_FLAGS = TraceFlags(SAMPLED | RANDOM_TRACE_ID)
_UNSAMPLED_NEW = TraceFlags(RANDOM_TRACE_ID)


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
        outer is not None  # the usual case at the edge: no isinstance over an ABC
        and isinstance(outer, Span)
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
    if tracer is None:
        local, traceresponse = _propagation_only(slots, provider)
        parent = current if slots[BAGGAGE_SLOT] is None else with_baggage(slots, current)
        return local, Context({**parent, SPAN_KEY: local}), traceresponse, False
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


def _propagation_only(
    slots: Collected, provider: TracerProvider | None
) -> tuple[NonRecordingSpan, bytes]:
    """A span id of our own inside the caller's trace, or a new trace (random id, sampled as
    the server's sampler decides, so that downstream spans follow it); nothing is recorded."""
    span_id = getrandbits(64) or 1
    child = child_span_context(slots, span_id)
    if child is not None:
        return NonRecordingSpan(child[0]), child[1]
    trace_id = getrandbits(128) or 1
    sc = SpanContext(
        trace_id,
        span_id,
        False,
        _NEW_TRACE_FLAGS if _keeps(provider, trace_id) else _UNSAMPLED_NEW,
    )
    return NonRecordingSpan(sc), format_traceresponse(sc)


def compile_excluded(paths: str | Iterable[str]) -> Callable[[str], object] | None:
    """One compiled search over every excluded-path pattern (None: nothing excluded)."""
    patterns = paths.split(",") if isinstance(paths, str) else list(paths)
    patterns = [p.strip() for p in patterns if p.strip()]
    return re.compile("|".join(f"(?:{p})" for p in patterns)).search if patterns else None


def untraced(slots: Collected) -> tuple[Span, Context | None, bytes, bool]:
    """An excluded path: the caller's trace id (or a new one) with the sampled flag cleared."""
    fields = traceparent_fields(one(slots[TRACEPARENT_SLOT]))
    trace_id = fields[0] if fields is not None else getrandbits(128) or 1
    flags = TraceFlags((fields[2] if fields is not None else RANDOM_TRACE_ID) & ~SAMPLED)
    sc = SpanContext(trace_id, getrandbits(64) or 1, False, flags)
    span = NonRecordingSpan(sc)
    return span, Context({**_get_current(), SPAN_KEY: span}), format_traceresponse(sc), False


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
