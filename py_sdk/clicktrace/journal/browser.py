"""Browser stages, read from the spans the browser exports (contract 3 of the plugin).

The action span (the click's root) gives ``clicked`` at its start and ``settled`` at its end
(outcome from ``clicktrace.outcome``, duration = click→settled); a child named
``clicktrace session`` gives ``session``; the HTTP CLIENT span ``http``; the notification
CONSUMER span ``received``. Spans without ``clicktrace.correlation_id`` are not the SDK's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from opentelemetry.trace import SpanKind

from clicktrace.ids import parse_id
from clicktrace.journal.record import record

if TYPE_CHECKING:  # the SDK is the ingest route's (optional) dependency, not the journal's
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["SESSION_SPAN", "record_browser_spans"]

SESSION_SPAN = "clicktrace session"
_OUTCOMES = frozenset({"confirmed", "rejected", "timed_out"})


def _stages(span: ReadableSpan) -> list[tuple[str, float, str | None, float | None, str | None]]:
    """``(stage, at, outcome, duration_ms, detail)`` for one browser span."""
    if span.start_time is None or span.end_time is None:
        return []
    start, end = span.start_time / 1e6, span.end_time / 1e6
    took = max(0.0, end - start)
    if span.name == SESSION_SPAN:
        return [("session", start, None, took, None)]
    if span.kind is SpanKind.CLIENT:
        return [("http", start, None, took, span.name)]
    if span.kind is SpanKind.CONSUMER:
        return [("received", end, None, None, None)]
    if span.parent is None:
        outcome = (span.attributes or {}).get("clicktrace.outcome")
        how = outcome if isinstance(outcome, str) and outcome in _OUTCOMES else None
        return [("clicked", start, None, None, span.name), ("settled", end, how, took, None)]
    return []


def record_browser_spans(spans: Iterable[ReadableSpan], client_id: str | None) -> int:
    """Journal the browser stages in ``spans`` (already validated); the number recorded."""
    count = 0
    for span in spans:
        raw = (span.attributes or {}).get("clicktrace.correlation_id")
        correlation_id = parse_id(raw) if isinstance(raw, str) else None
        if correlation_id is None:
            continue
        trace_id, span_id = f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"
        for stage, at, outcome, duration, detail in _stages(span):
            record(
                stage,
                correlation_id=correlation_id,
                client_id=client_id,
                at=at,
                outcome=outcome,
                duration_ms=duration,
                detail=detail,
                trace_id=trace_id,
                span_id=span_id,
            )
            count += 1
    return count
