"""Where the SDK's recording sites hand their entries: the process's journal (a :class:`Sink`)
and the metrics. Kept tiny: it runs on the request and message hot paths."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Protocol

from opentelemetry import trace
from opentelemetry.metrics import _internal as _metrics_api

from clicktrace import context as click_context
from clicktrace.journal._entry import Entry

__all__ = ["Sink", "current", "enabled", "process_name", "record", "set_process", "use"]


class Sink(Protocol):
    """What :func:`use` accepts: something that takes entries without blocking or raising."""

    def put(self, entry: Entry) -> None: ...


_journal: Sink | None = None
_observe: Callable[[Entry], None] | None = None
_process: str = os.environ.get("CLICKTRACE_PROCESS") or f"{socket.gethostname()}:{os.getpid()}"
_get_span = trace.get_current_span
_current_click = click_context.current
_now = time.time


def use(journal: Sink | None) -> Sink | None:
    """Make ``journal`` the process's journal (None: stop storing); returns the previous one."""
    global _journal
    previous, _journal = _journal, journal
    return previous


def current() -> Sink | None:
    return _journal


_meter_given = "OTEL_PYTHON_METER_PROVIDER" in os.environ  # the API loads it on first use
"""Whether a MeterProvider was named: ``clicktrace.metrics.use`` sets this."""


def enabled() -> bool:
    """Whether :func:`record` would store or measure anything: a journal is set, or a
    MeterProvider is (given to ``clicktrace.metrics.use``, or set globally, before or after
    the metrics were made: the API's proxies pick it up). A hot path asks this first and
    skips building what it would record."""
    return _journal is not None or _meter_given or _metrics_api._METER_PROVIDER is not None


def set_process(name: str | None) -> str:
    """Name this process in its entries (default ``CLICKTRACE_PROCESS`` or ``host:pid``);
    ``None`` restores the default. Returns the name now in use."""
    global _process
    if name is not None and (not isinstance(name, str) or not name or len(name) > 200):
        raise ValueError("the process name must be a non-empty str of at most 200 characters")
    _process = (
        name or os.environ.get("CLICKTRACE_PROCESS") or (f"{socket.gethostname()}:{os.getpid()}")
    )
    return _process


def process_name() -> str:
    return _process


def record(
    stage: str,
    *,
    correlation_id: str | None = None,
    client_id: str | None = None,
    outcome: str | None = None,
    detail: str | None = None,
    attempt: int | None = None,
    duration_ms: float | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
    at: float | None = None,
    sampled: bool | None = None,
    code: str | None = None,
) -> None:
    """Record that the current click (or ``correlation_id``) reached ``stage``.

    Ids default to the bound :class:`~clicktrace.context.ClickContext`; trace and span ids to
    the current span (``trace_id``/``span_id`` name them when the stage ran elsewhere, e.g.
    a browser span); ``at`` (Unix ms) defaults to now; ``sampled`` to the current span's flag
    when the entry is in the current span's trace (a site that names another trace passes
    that trace's flag, e.g. from its ``traceparent``). Without a correlation id there is
    nothing to record. Never raises into the caller.
    """
    global _observe
    try:
        click = _current_click()
        deadline = None
        if click is not None and correlation_id in (None, click.correlation_id):
            correlation_id = click.correlation_id
            client_id = client_id or click.client_id
            deadline = click.deadline_ms
        if correlation_id is None:
            return
        if trace_id is None:
            span = _get_span().get_span_context()
            if span.is_valid:
                # bytes.hex: about half the cost of a format spec on a 128-bit int
                trace_id = span.trace_id.to_bytes(16, "big").hex()
                span_id = span.span_id.to_bytes(8, "big").hex()
                if sampled is None:
                    sampled = span.trace_flags.sampled
        elif sampled is None:
            # Named elsewhere (a browser span): the current span's flag only if same trace.
            span = _get_span().get_span_context()
            if span.is_valid and span.trace_id.to_bytes(16, "big").hex() == trace_id:
                sampled = span.trace_flags.sampled
        entry = Entry(
            correlation_id=correlation_id,
            stage=stage,
            at=_now() * 1000.0 if at is None else at,
            trace_id=trace_id,
            span_id=span_id,
            process=_process,
            client_id=client_id,
            attempt=attempt,
            outcome=outcome,
            detail=detail[:200] if detail else detail,
            duration_ms=duration_ms,
            sampled=sampled,
            deadline_ms=deadline,
            code=code[:100] if code else code,
        )
        observe = _observe
        if observe is None:
            # Resolved once, lazily: the metrics module pulls in the OpenTelemetry metrics API
            # and imports this package.
            from clicktrace import metrics

            observe = _observe = metrics.observe
        observe(entry)
        journal = _journal
        if journal is not None:
            journal.put(entry)
    except Exception:  # a recording site must never fail the request or the message
        _failures[0] += 1


_failures = [0]
"""Entries lost to an error while recording (shown beside the journal's drops)."""
