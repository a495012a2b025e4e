"""The producing half of the base (the mirror of :mod:`clicktrace.bus.consume`): one envelope
sent inside a PRODUCER span, its context in the broker's native headers and in the envelope,
stamped with the time it left, and journaled as ``published``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from opentelemetry import trace
from opentelemetry.trace import Tracer

from clicktrace.bus import tracing
from clicktrace.bus.types import PUBLISHED_AT_HEADER, TRACE_MODE_HEADER, TraceMode
from clicktrace.envelope import Envelope, encode
from clicktrace.journal import record

__all__ = ["Send", "send"]

Send = Callable[[str, bytes, dict[str, str], str], Awaitable[None]]
"""A broker's ``_send(topic, body, headers, message_id)``."""


async def send(
    tracer: Tracer,
    system: str,
    topic: str,
    envelope: Envelope,
    trace_mode: TraceMode | None,
    broker_send: Send,
) -> None:
    parent = tracing.producer_parent(envelope)
    span = tracing.start_producer_span(tracer, system, topic, envelope, parent)
    with trace.use_span(span, end_on_exit=True):
        headers = tracing.native_headers(envelope, trace.set_span_in_context(span, parent))
        stamped = tracing.stamp(envelope, headers)
        if trace_mode is not None:
            headers[TRACE_MODE_HEADER] = trace_mode
        now_ms = time.time() * 1000.0  # before the send: a consumer may journal first
        headers[PUBLISHED_AT_HEADER] = str(int(now_ms))
        meta = stamped.metadata
        await broker_send(topic, encode(stamped), headers, meta.message_id)
        # accept→publish: from the envelope's creation (the command's request, or the outbox
        # row a relay publishes later).
        record(
            "published",
            correlation_id=meta.correlation_id,
            client_id=meta.client_id,
            at=now_ms,
            detail=f"{topic} {meta.message_id}",
            duration_ms=max(0.0, now_ms - meta.occurred_at.timestamp() * 1000.0),
        )
