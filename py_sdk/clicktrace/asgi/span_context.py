"""What the edge needs to build OpenTelemetry contexts and ``traceresponse`` values itself.

The span key lets a context be one dict (``Context({**parent, SPAN_KEY: span})``) instead of
three nested API calls; the flags table reads a version-00 traceparent's raw ``-ff`` tail
without parsing it again.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan, SpanContext, TraceFlags

__all__ = ["FLAGS", "SPAN_KEY", "format_traceresponse"]


def _span_key() -> str:
    """The key OpenTelemetry keeps the current span under in a ``Context``, found through the
    public API."""
    (key,) = trace.set_span_in_context(NonRecordingSpan(INVALID_SPAN_CONTEXT), Context())
    return key


SPAN_KEY = _span_key()
# Trace flags by the raw "-ff" tail of a version-00 traceparent (propagation's match_v00).
FLAGS = {b"-%02x" % flags: TraceFlags(flags) for flags in range(256)}


def format_traceresponse(sc: SpanContext) -> bytes:
    return b"00-%032x-%016x-%02x" % (sc.trace_id, sc.span_id, sc.trace_flags)
