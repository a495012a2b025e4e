"""Spans and context for the bus, after the OpenTelemetry messaging semantic conventions.

Every read and write of context goes through :mod:`clicktrace.propagation`'s one
``extract`` / ``inject``: the envelope's frozen metadata is read in place (``ATTRIBUTE_GETTER``),
broker headers as a mapping. The producer span is a child of the context the envelope was
created in (so an outbox relay publishing later still continues the request's trace); its
context is injected into the broker's native headers and replaces the envelope's
traceparent. The consumer span is a child of that context, or a new trace with a link to it,
or a new trace, as the subscription (or the message's ``x-clicktrace-trace-mode`` header)
asks.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from random import getrandbits
from typing import Any

import msgspec
from opentelemetry import baggage as otel_baggage
from opentelemetry.context import Context, get_current, set_value
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    get_current_span,
)

from clicktrace import context as click_context
from clicktrace.bus._types import (
    PUBLISHED_AT_HEADER,
    TRACE_MODE_HEADER,
    TRACE_MODES,
    Subscription,
    TraceMode,
)
from clicktrace.envelope import Envelope, Metadata
from clicktrace.ids import new_id
from clicktrace.propagation import (
    ATTRIBUTE_GETTER,
    EXACT_MAPPING_GETTER,
    HEADER_KEYS,
    MAPPING_SETTER,
    METADATA_KEYS,
    Extracted,
    inject,
)
from clicktrace.propagation._inject_extract import SPAN_KEY, extract_trace
from clicktrace.propagation._traceparent import RANDOM_TRACE_ID
from clicktrace.sampling._decision import DECISION, decided

__all__ = [
    "click_of",
    "consumer_context",
    "failed",
    "in_span",
    "native_headers",
    "producer_parent",
    "since_published",
    "span_ids",
    "stamp",
    "start_consumer_span",
    "start_producer_span",
]


@functools.lru_cache(maxsize=1024)
def _constant(
    system: str, topic: str, operation: str, group: str | None = None
) -> tuple[str, dict[str, Any]]:
    """A span's name and the attributes every message of its topic (and group) shares, made
    once per topic rather than per message. Never mutated: spans get a copy with the rest."""
    attributes: dict[str, Any] = {
        "messaging.system": system,
        "messaging.destination.name": topic,
        "messaging.operation.name": operation,
        "messaging.operation.type": operation,
    }
    if group is not None:
        attributes["messaging.consumer.group.name"] = group
    return f"{operation} {topic}", attributes


def _attributes(shared: dict[str, Any], envelope: Envelope) -> dict[str, Any]:
    meta = envelope.metadata
    return {
        **shared,
        "messaging.message.id": meta.message_id,
        "messaging.message.conversation_id": meta.correlation_id,
        # The clicktrace name too: every span of a click is found by the same attribute.
        "clicktrace.correlation_id": meta.correlation_id,
    }


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else None


def producer_parent(envelope: Envelope) -> Context | None:
    """The envelope's creation context, or ``None`` (the current one) when it has none."""
    meta = envelope.metadata
    if meta.traceparent is None and meta.baggage is None:
        return None  # what the extract below finds too, without its calls
    return extract_trace(meta, ATTRIBUTE_GETTER, METADATA_KEYS).otel_context()


def in_span(span: Span, base: Context | None = None) -> Context:
    """``base`` (default: the current context) with ``span`` as its current span: what
    ``trace.set_span_in_context`` returns, as one dict instead of three API calls."""
    return Context({**(get_current() if base is None else base), SPAN_KEY: span})


def start_producer_span(
    tracer: Tracer, system: str, topic: str, envelope: Envelope, parent: Context | None
) -> Span:
    """A PRODUCER span, child of ``parent`` (see :func:`producer_parent`)."""
    name, shared = _constant(system, topic, "send")
    return tracer.start_span(
        name, context=parent, kind=SpanKind.PRODUCER, attributes=_attributes(shared, envelope)
    )


def failed(span: Span, exc: Exception) -> None:
    """What ``trace.use_span`` does to a span its block raised out of."""
    if span.is_recording():
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def native_headers(envelope: Envelope, otel: Context) -> dict[str, str]:
    """The broker headers of a send in ``otel`` (the producer span's context): the same
    ``inject`` as every hop, so stock instrumentation on the consumer side joins the trace."""
    meta = envelope.metadata
    headers: dict[str, str] = {}
    # The envelope's ids, not the current ClickContext's: a relay publishes outside the click.
    click = click_context.ClickContext(meta.correlation_id, meta.causation_id, None, meta.deadline)
    inject(headers, MAPPING_SETTER, HEADER_KEYS, click=click, otel=otel)
    return headers


def stamp(envelope: Envelope, headers: Mapping[str, str]) -> Envelope:
    """``envelope`` with the send's trace context (what :func:`native_headers` wrote) as its
    own, so a consumer reading only the envelope continues the producer span too."""
    meta = envelope.metadata
    traceparent = headers.get(HEADER_KEYS.traceparent)
    if traceparent is None or traceparent == meta.traceparent:
        return envelope
    meta = msgspec.structs.replace(
        meta,
        traceparent=traceparent,
        tracestate=headers.get(HEADER_KEYS.tracestate, meta.tracestate),
    )
    return msgspec.structs.replace(envelope, metadata=meta)


def consumer_context(
    envelope: Extracted,
    headers: Mapping[str, Any],
    mode: TraceMode,
    resample: bool = False,
    metadata: Metadata | None = None,
) -> tuple[Context, list[Link]]:
    """The parent context and links for the consumer span of a message that carries
    ``envelope`` (its ``Metadata.extract()``, of ``metadata`` when given) and arrived with
    ``headers``.

    Native headers win for the trace: stock instrumentation on the producer side writes its
    own publish span there; the envelope is the fallback. A new trace (``link`` / ``new``)
    carries the click's sampling decision (see :mod:`clicktrace.sampling`) unless
    ``resample`` lets the sampler decide afresh.
    """
    wanted = headers.get(TRACE_MODE_HEADER)
    if isinstance(wanted, bytes):
        wanted = wanted.decode("latin-1")
    if isinstance(wanted, str) and wanted.lower() in TRACE_MODES:
        mode = wanted.lower()  # type: ignore[assignment]
    if (
        # What this bus's producer writes: headers that say what the stamped envelope says,
        # already parsed into ``envelope``. Anything else is parsed from the headers.
        metadata is not None
        and metadata.traceparent is not None
        and headers.get(HEADER_KEYS.traceparent) == metadata.traceparent
        and headers.get(HEADER_KEYS.tracestate) == metadata.tracestate
        and metadata.baggage is None
        and HEADER_KEYS.baggage not in headers
    ):
        incoming = envelope
    else:
        incoming = extract_trace(headers, EXACT_MAPPING_GETTER, HEADER_KEYS)
        if incoming.traceparent is None:
            incoming = envelope
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
    name, shared = _constant(system, sub.topic, "process", sub.group)
    attributes = _attributes(shared, envelope)
    attributes["messaging.clicktrace.attempt"] = attempt
    return tracer.start_span(
        name,
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=links,
    )


SpanIds = tuple[str | None, str | None, bool | None]


def span_ids(span: Span) -> SpanIds:
    """``span``'s trace id, span id and sampled flag as the journal records them (what
    ``record`` would find in the current span, found once for every entry of an attempt);
    ``None`` each for an invalid span."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None, None, None
    trace_id = ctx.trace_id.to_bytes(16, "big").hex()
    return trace_id, ctx.span_id.to_bytes(8, "big").hex(), ctx.trace_flags.sampled


def since_published(headers: Mapping[str, Any]) -> float | None:
    """Milliseconds since the producer stamped :data:`PUBLISHED_AT_HEADER` (never negative:
    clocks differ between hosts), or ``None`` when it is absent or malformed."""
    raw = _text(headers.get(PUBLISHED_AT_HEADER))
    if raw is None or not 0 < len(raw) <= 16 or not raw.isascii() or not raw.isdigit():
        return None
    return max(0.0, time.time() * 1000.0 - int(raw))


def click_of(envelope: Envelope, carried: Extracted) -> click_context.ClickContext:
    """The handler's ClickContext: the ids ``envelope`` carries (``carried``),
    caused by the message itself; a new correlation when it carries no valid one."""
    return click_context.ClickContext(
        correlation_id=carried.correlation_id or new_id(),
        causation_id=envelope.metadata.message_id,
        client_id=carried.client_id,
        deadline_ms=carried.deadline_ms,
    )
