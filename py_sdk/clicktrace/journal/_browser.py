"""Browser stages, read from the spans the browser exports (contract 3 of the plugin).

The action span (the click's root) gives ``clicked`` at its start and ``settled`` at its end
(outcome from ``clicktrace.outcome``, duration = click→settled); a child named
``clicktrace session`` gives ``session``; the HTTP CLIENT span ``http``; the notification
CONSUMER span ``received``. Spans without ``clicktrace.correlation_id`` are not the SDK's.

Reading and recording are apart: what a tab's spans may write is decided in between
(``clicktrace.ingest._admission``: its own clicks only, its times clamped, its share capped).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from opentelemetry.trace import SpanKind

from clicktrace.ids import parse_id
from clicktrace.journal._record import record

if TYPE_CHECKING:  # the SDK is the ingest route's (optional) dependency, not the journal's
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["SESSION_SPAN", "BrowserStage", "browser_stages", "record_browser_stages"]

SESSION_SPAN = "clicktrace session"
_OUTCOMES = frozenset({"confirmed", "rejected", "timed_out"})


class BrowserStage(NamedTuple):
    """One stage a browser span tells of, in the browser's clock (Unix ms)."""

    correlation_id: str
    stage: str
    at: float
    trace_id: str
    span_id: str
    outcome: str | None = None
    duration_ms: float | None = None
    detail: str | None = None


def browser_stages(span: ReadableSpan) -> list[BrowserStage]:
    """The stages ``span`` (already validated) tells of; ``[]`` for a span that is not the
    SDK's or names no valid correlation id."""
    raw = (span.attributes or {}).get("clicktrace.correlation_id")
    cid = parse_id(raw) if isinstance(raw, str) else None
    if cid is None or span.start_time is None or span.end_time is None:
        return []
    trace_id, span_id = f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"
    start, end = span.start_time / 1e6, span.end_time / 1e6
    took = max(0.0, end - start)
    if span.name == SESSION_SPAN:
        return [BrowserStage(cid, "session", start, trace_id, span_id, duration_ms=took)]
    if span.kind is SpanKind.CLIENT:
        return [
            BrowserStage(cid, "http", start, trace_id, span_id, duration_ms=took, detail=span.name)
        ]
    if span.kind is SpanKind.CONSUMER:
        return [BrowserStage(cid, "received", end, trace_id, span_id)]
    if span.parent is None:
        outcome = (span.attributes or {}).get("clicktrace.outcome")
        how = outcome if isinstance(outcome, str) and outcome in _OUTCOMES else None
        return [
            BrowserStage(cid, "clicked", start, trace_id, span_id, detail=span.name),
            BrowserStage(cid, "settled", end, trace_id, span_id, outcome=how, duration_ms=took),
        ]
    return []


def record_browser_stages(stages: Iterable[BrowserStage], client_id: str) -> int:
    """Journal ``stages`` as ``client_id``'s; the number recorded."""
    count = 0
    for s in stages:
        record(
            s.stage,
            correlation_id=s.correlation_id,
            client_id=client_id,
            at=s.at,
            outcome=s.outcome,
            duration_ms=s.duration_ms,
            detail=s.detail,
            trace_id=s.trace_id,
            span_id=s.span_id,
        )
        count += 1
    return count
