"""The trace context of a request whose span nobody records: propagation only
(``spans=False``) and excluded paths.

Either way the app still runs under a span id of the edge's own, the one ``traceresponse``
names, so that the browser and everything downstream stay in one trace.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from random import getrandbits

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, TraceFlags, TracerProvider

from clicktrace.asgi.span_context import FLAGS, SPAN_KEY, format_traceresponse
from clicktrace.propagation.headers import (
    TRACEPARENT_SLOT,
    TRACESTATE_SLOT,
    Collected,
    one,
    raw_trace_state,
)
from clicktrace.propagation.traceparent import RANDOM_TRACE_ID, SAMPLED, traceparent_fields

__all__ = ["compile_excluded", "propagation_only", "untraced"]

_get_current = otel_context.get_current
_NEW_TRACE_FLAGS = TraceFlags(SAMPLED | RANDOM_TRACE_ID)
_UNSAMPLED_NEW = TraceFlags(RANDOM_TRACE_ID)


def propagation_only(
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
            FLAGS[v00[52:]],
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
