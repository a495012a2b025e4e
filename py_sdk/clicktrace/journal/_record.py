"""Where the SDK's recording sites hand their entries: the process's journal (a :class:`Sink`)
and the metrics. Kept tiny: it runs on the request and message hot paths.

:func:`enabled` says whether recording does anything at all (a journal is set, or a
MeterProvider reads the metrics): a site may skip its work when it does not.
:func:`command` is the edge's entry for a command it answered: the request hands over the raw
parts (its click, its span context, the status, the time) and the entry is built when the
journal writes it (:meth:`~clicktrace.journal._writer.Journal.put_later`), not on the
request."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Protocol

from opentelemetry import trace
from opentelemetry.trace import SpanContext

from clicktrace import context as click_context
from clicktrace.context import ClickContext
from clicktrace.journal._entry import Entry

__all__ = [
    "Sink",
    "command",
    "current",
    "enabled",
    "process_name",
    "record",
    "set_process",
    "use",
]


class Sink(Protocol):
    """What :func:`use` accepts: something that takes entries without blocking or raising."""

    def put(self, entry: Entry) -> None: ...


_journal: Sink | None = None
_later: Callable[[Callable[..., Entry], tuple[object, ...]], None] | None = None
"""The journal's ``put_later`` (build an entry when it is written), when it has one."""
_observe: Callable[[Entry], None] | None = None
_metered: Callable[[], bool] | None = None
_count_command: Callable[[bool], None] | None = None
_process: str = os.environ.get("CLICKTRACE_PROCESS") or f"{socket.gethostname()}:{os.getpid()}"
_get_span = trace.get_current_span
_current_click = click_context.current
_now = time.time


def use(journal: Sink | None) -> Sink | None:
    """Make ``journal`` the process's journal (None: stop storing); returns the previous one."""
    global _journal, _later
    previous, _journal = _journal, journal
    _later = getattr(journal, "put_later", None)
    return previous


def current() -> Sink | None:
    return _journal


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


def enabled() -> bool:
    """Whether recording does anything: a journal is set, or a MeterProvider reads the
    metrics (``clicktrace.metrics.active``). Without either, a site may skip its work."""
    if _journal is not None:
        return True
    metered = _metered
    if metered is None:
        metered = _load_metrics()[0]
    return metered()


def _load_metrics() -> tuple[Callable[[], bool], Callable[[bool], None]]:
    # Resolved once, lazily: the metrics module pulls in the OpenTelemetry metrics API and
    # imports this package.
    global _metered, _count_command
    from clicktrace import metrics

    _metered, _count_command = metrics.active, metrics.count_command
    return _metered, _count_command


def command(status: int, method: str, path: str, click: ClickContext, span: SpanContext) -> None:
    """The edge answered a command of ``click`` with ``status``: counted (``accepted`` below
    400, else ``refused``: a list increment, read only by a MeterProvider) and journaled when a
    journal is set, the entry built from these parts when the journal writes it. The edge calls
    it only when :func:`enabled`. Never raises into the caller."""
    try:
        count = _count_command
        if count is None:
            count = _load_metrics()[1]
        count(status >= 400)
        later = _later
        if later is not None:
            later(_command_entry, (_now() * 1000.0, status, method, path, click, span, _process))
        elif _journal is not None:
            _journal.put(
                _command_entry(_now() * 1000.0, status, method, path, click, span, _process)
            )
    except Exception:  # a recording site must never fail the request
        _failures[0] += 1


def _command_entry(
    at: float,
    status: int,
    method: str,
    path: str,
    click: ClickContext,
    span: SpanContext,
    process: str,
) -> Entry:
    """:func:`command`'s entry, as :func:`record` would have made it on the request."""
    trace_id = span_id = sampled = None
    if span.is_valid:
        trace_id = span.trace_id.to_bytes(16, "big").hex()
        span_id = span.span_id.to_bytes(8, "big").hex()
        sampled = span.trace_flags.sampled
    return Entry(
        correlation_id=click.correlation_id,
        stage="accepted" if status < 400 else "refused",
        at=at,
        trace_id=trace_id,
        span_id=span_id,
        process=process,
        client_id=click.client_id,
        outcome=str(status),
        detail=f"{method} {path} {status}"[:200],
        sampled=sampled,
        deadline_ms=click.deadline_ms,
    )


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
