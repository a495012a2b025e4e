"""Where the SDK's recording sites hand their entries: the process's journal (a :class:`Sink`)
and the metrics. Kept tiny: it runs on the request and message hot paths."""

from __future__ import annotations

import time
from typing import Protocol

from opentelemetry import trace

from clicktrace import context as click_context
from clicktrace.journal.entry import Entry

__all__ = ["Sink", "current", "record", "use"]


class Sink(Protocol):
    """What :func:`use` accepts: something that takes entries without blocking or raising."""

    def put(self, entry: Entry) -> None: ...


_journal: Sink | None = None


def use(journal: Sink | None) -> Sink | None:
    """Make ``journal`` the process's journal (None: stop storing); returns the previous one."""
    global _journal
    previous, _journal = _journal, journal
    return previous


def current() -> Sink | None:
    return _journal


def record(
    stage: str,
    *,
    correlation_id: str | None = None,
    client_id: str | None = None,
    outcome: str | None = None,
    detail: str | None = None,
    attempt: int | None = None,
    duration_ms: float | None = None,
) -> None:
    """Record that the current click (or ``correlation_id``) reached ``stage``.

    Ids default to the bound :class:`~clicktrace.context.ClickContext`; trace and span ids to
    the current span. Without a correlation id there is nothing to record.
    """
    if correlation_id is None or client_id is None:
        click = click_context.current()
        if click is not None:
            correlation_id = correlation_id or click.correlation_id
            client_id = client_id or click.client_id
    if correlation_id is None:
        return
    span = trace.get_current_span().get_span_context()
    valid = span.is_valid
    entry = Entry(
        correlation_id=correlation_id,
        stage=stage,
        at=time.time() * 1000.0,
        trace_id=format(span.trace_id, "032x") if valid else None,
        span_id=format(span.span_id, "016x") if valid else None,
        client_id=client_id,
        attempt=attempt,
        outcome=outcome,
        detail=detail,
        duration_ms=duration_ms,
        sampled=span.trace_flags.sampled if valid else None,
    )
    # Lazy: the metrics module pulls in the OpenTelemetry metrics API.
    from clicktrace import metrics

    metrics.observe(entry)
    journal = _journal
    if journal is not None:
        journal.put(entry)
