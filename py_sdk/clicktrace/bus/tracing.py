"""Spans and context for the bus, after the OpenTelemetry messaging semantic conventions.

The producer span is a child of the context the envelope was created in (so an outbox relay
publishing later still continues the request's trace); its context replaces the envelope's
traceparent and is copied into the broker's native headers. The consumer span is a child of
that context, or a new trace with a link to it, or a new trace, as the subscription (or the
message's ``x-clicktrace-trace-mode`` header) asks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from random import getrandbits
from typing import Any

import msgspec
from opentelemetry import baggage as otel_baggage
from opentelemetry.context import Context, set_value
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    Tracer,
    get_current_span,
)

from clicktrace import context as click_context
from clicktrace.bus.types import (
    PUBLISHED_AT_HEADER,
    TRACE_MODE_HEADER,
    TRACE_MODES,
    Subscription,
    TraceMode,
)
from clicktrace.envelope import Envelope
from clicktrace.ids import new_id, parse_id
from clicktrace.propagation import HEADER_KEYS, Extracted
from clicktrace.propagation.baggage import parse_baggage
from clicktrace.propagation.traceparent import (
    RANDOM_TRACE_ID,
    TraceParent,
    format_traceparent,
    parse_traceparent,
)
from clicktrace.propagation.tracestate import parse_tracestate
from clicktrace.sampling import DECISION, decided

__all__ = [
    "click_of",
    "consumer_context",
    "native_headers",
    "since_published",
    "stamp",
    "start_consumer_span",
    "start_producer_span",
]


def _attributes(system: str, topic: str, operation: str, envelope: Envelope) -> dict[str, Any]:
    return {
        "messaging.system": system,
        "messaging.destination.name": topic,
        "messaging.operation.name": operation,
        "messaging.operation.type": operation,
        "messaging.message.id": envelope.metadata.message_id,
        "messaging.message.conversation_id": envelope.metadata.correlation_id,
        # The clicktrace name too: every span of a click is found by the same attribute.
        "clicktrace.correlation_id": envelope.metadata.correlation_id,
    }


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else None


def _remote(traceparent: TraceParent | Any, tracestate: Any, baggage: Any) -> Extracted:
    """The trace context in three fields; only what is valid (never raises).

    The bus reads exactly these three per message, so it parses them directly rather than
    through the general ``extract`` (which looks at every clicktrace key too).
    """
    tp = (
        traceparent
        if isinstance(traceparent, TraceParent)
        else parse_traceparent(_text(traceparent))
    )
    state = _text(tracestate)
    bag = _text(baggage)
    return Extracted(
        traceparent=tp,
        tracestate=parse_tracestate([state]) if tp and state else None,
        baggage=parse_baggage([bag]) or None if bag else None,
    )


def start_producer_span(tracer: Tracer, system: str, topic: str, envelope: Envelope) -> Span:
    """A PRODUCER span, child of the envelope's creation context (else the current one)."""
    meta = envelope.metadata
    # otel_context(None) builds on the current context: used as is when there is no traceparent.
    parent = _remote(meta.traceparent, meta.tracestate, meta.baggage).otel_context()
    return tracer.start_span(
        f"send {topic}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes=_attributes(system, topic, "send", envelope),
    )


def stamp(envelope: Envelope, span: Span) -> Envelope:
    """``envelope`` with the producer span's context as its traceparent."""
    sc = span.get_span_context()
    if not sc.is_valid:
        return envelope
    meta = msgspec.structs.replace(
        envelope.metadata,
        traceparent=format_traceparent(sc.trace_id, sc.span_id, int(sc.trace_flags)),
        tracestate=sc.trace_state.to_header() if sc.trace_state else envelope.metadata.tracestate,
    )
    return msgspec.structs.replace(envelope, metadata=meta)


def native_headers(envelope: Envelope) -> dict[str, str]:
    """The envelope's context as broker headers, so stock instrumentation joins the trace."""
    meta = envelope.metadata
    headers = {HEADER_KEYS.correlation_id: meta.correlation_id}
    for key, value in (
        (HEADER_KEYS.traceparent, meta.traceparent),
        (HEADER_KEYS.tracestate, meta.tracestate),
        (HEADER_KEYS.baggage, meta.baggage),
        (HEADER_KEYS.causation_id, meta.causation_id),
        (HEADER_KEYS.deadline, None if meta.deadline is None else str(meta.deadline)),
    ):
        if value:
            headers[key] = value
    return headers


def _incoming(envelope: Envelope, headers: Mapping[str, Any]) -> Extracted:
    # Native headers win for the trace: stock instrumentation on the producer side writes
    # its own publish span there. The envelope is the fallback.
    raw = headers.get(HEADER_KEYS.traceparent)
    traceparent = parse_traceparent(_text(raw)) if raw is not None else None
    if traceparent is not None:
        return _remote(
            traceparent, headers.get(HEADER_KEYS.tracestate), headers.get(HEADER_KEYS.baggage)
        )
    meta = envelope.metadata
    return _remote(meta.traceparent, meta.tracestate, meta.baggage)


def consumer_context(
    envelope: Envelope, headers: Mapping[str, Any], mode: TraceMode, resample: bool = False
) -> tuple[Context, list[Link]]:
    """The parent context and links for the consumer span of ``envelope``.

    A new trace (``link`` / ``new``) carries the click's sampling decision (see
    :mod:`clicktrace.sampling`) unless ``resample`` lets the sampler decide afresh.
    """
    wanted = headers.get(TRACE_MODE_HEADER)
    if isinstance(wanted, bytes):
        wanted = wanted.decode("latin-1")
    if isinstance(wanted, str) and wanted.lower() in TRACE_MODES:
        mode = wanted.lower()  # type: ignore[assignment]
    incoming = _incoming(envelope, headers)
    if mode == "child":
        return incoming.otel_context(Context()) or Context(), []
    root = Context()
    for name, value in (incoming.baggage or {}).items():
        root = otel_baggage.set_baggage(name, value, root)
    if incoming.traceparent is not None and not resample:
        root = set_value(DECISION, incoming.traceparent.sampled, root)
    if mode == "new" or incoming.traceparent is None:
        return root, []
    remote = get_current_span(incoming.otel_context(Context())).get_span_context()
    return root, [Link(remote)]


def start_consumer_span(
    tracer: Tracer,
    system: str,
    sub: Subscription,
    envelope: Envelope,
    *,
    parent: Context,
    links: list[Link],
    attempt: int,
) -> Span:
    if decided(parent) is False:
        # The click was sampled out: whatever the provider's sampler would say to a new
        # trace, nothing is recorded (its children follow this unsampled span).
        return NonRecordingSpan(
            SpanContext(
                getrandbits(128) or 1, getrandbits(64) or 1, False, TraceFlags(RANDOM_TRACE_ID)
            )
        )
    attributes = _attributes(system, sub.topic, "process", envelope)
    attributes["messaging.consumer.group.name"] = sub.group
    attributes["messaging.clicktrace.attempt"] = attempt
    return tracer.start_span(
        f"process {sub.topic}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=links,
    )


def since_published(headers: Mapping[str, Any]) -> float | None:
    """Milliseconds since the producer stamped :data:`PUBLISHED_AT_HEADER` (never negative:
    clocks differ between hosts), or ``None`` when it is absent or malformed."""
    raw = _text(headers.get(PUBLISHED_AT_HEADER))
    if raw is None or not 0 < len(raw) <= 16 or not raw.isascii() or not raw.isdigit():
        return None
    return max(0.0, time.time() * 1000.0 - int(raw))


def click_of(envelope: Envelope) -> click_context.ClickContext:
    """The handler's ClickContext: the message's ids, caused by the message itself."""
    meta = envelope.metadata
    return click_context.ClickContext(
        correlation_id=parse_id(meta.correlation_id) or new_id(),
        causation_id=meta.message_id,
        client_id=parse_id(meta.client_id),
        deadline_ms=meta.deadline,
    )
