"""HTTP request headers in one pass: the edge's fast path.

``extract(scope["headers"], ASGI_GETTER, HEADER_KEYS)`` scans the header list once per field.
:func:`collect_asgi` scans it once in all and keeps only the raw values clicktrace reads;
:func:`remote_span_context`, :func:`child_span_context` and :func:`with_baggage` turn those
into the same parent context as :func:`extract` (tests/propagation/test_edge_headers.py holds
them to it). A version-00 traceparent, the usual case, is checked in place by
:func:`~clicktrace.propagation._traceparent.match_v00` and its ids sliced out of the raw
header here, the only place that does; anything else goes to the general parser.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import overload

from opentelemetry import baggage as otel_baggage
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, TraceState

from clicktrace.propagation._baggage import parse_baggage
from clicktrace.propagation._inject_extract import HEADER_KEYS, LazyTraceState
from clicktrace.propagation._traceparent import (
    FLAGS_BY_HEX,
    TRACE_FLAGS,
    format_traceresponse,
    match_v00,
    traceparent_fields,
    valid_span_context,
)
from clicktrace.protocol import CLIENT_HEADER

__all__ = [
    "BAGGAGE_SLOT",
    "CAUSATION_SLOT",
    "CLIENT_SLOT",
    "CORRELATION_SLOT",
    "DEADLINE_SLOT",
    "SLOTS",
    "TRACEPARENT_SLOT",
    "TRACESTATE_SLOT",
    "Collected",
    "child_span_context",
    "collect_asgi",
    "one",
    "raw_trace_state",
    "remote_span_context",
    "texts",
    "with_baggage",
]


# Slots of the list collect_asgi returns, by header name (indexes, not header bytes).
(
    TRACEPARENT_SLOT,
    TRACESTATE_SLOT,
    BAGGAGE_SLOT,
    CORRELATION_SLOT,
    CAUSATION_SLOT,
    DEADLINE_SLOT,
    CLIENT_SLOT,
) = range(7)
SLOTS: dict[bytes, int] = {
    name.encode("latin-1"): slot
    for slot, name in enumerate(
        (
            HEADER_KEYS.traceparent,
            HEADER_KEYS.tracestate,
            HEADER_KEYS.baggage,
            HEADER_KEYS.correlation_id,
            HEADER_KEYS.causation_id,
            HEADER_KEYS.deadline,
            CLIENT_HEADER,
        )
    )
}

Collected = list[list[bytes] | None]
"""Every raw value of each field, by slot (``None`` when the field is absent)."""


def collect_asgi(headers: Iterable[tuple[bytes, bytes]]) -> Collected:
    """The raw values of the fields clicktrace reads, in one pass over ``headers``."""
    slots: Collected = [None, None, None, None, None, None, None]
    get = SLOTS.get
    for name, value in headers:
        slot = get(name)
        if slot is not None:
            values = slots[slot]
            if values is None:
                slots[slot] = [value]
            else:
                values.append(value)
    return slots


def one(values: list[bytes] | None) -> bytes | None:
    """The single value of a field that must occur once (more than one is invalid)."""
    return values[0] if values is not None and len(values) == 1 else None


def texts(values: list[bytes] | None) -> list[str] | None:
    return None if values is None else [value.decode("latin-1") for value in values]


def remote_span_context(slots: Collected) -> SpanContext | None:
    """The caller's span from :func:`collect_asgi`'s values, with its tracestate (parsed on
    first read), or ``None`` when the request carries no valid traceparent."""
    tp = one(slots[TRACEPARENT_SLOT])
    v00 = match_v00(tp)
    if v00 is not None:  # the usual case: the ids sliced out of the raw header, no tuple
        return valid_span_context(
            int(v00[3:35], 16),
            int(v00[36:52], 16),
            True,
            FLAGS_BY_HEX[v00[53:]],
            raw_trace_state(slots[TRACESTATE_SLOT]),
        )
    fields = traceparent_fields(tp)
    if fields is None:
        return None
    return SpanContext(
        fields[0], fields[1], True, TRACE_FLAGS[fields[2]], raw_trace_state(slots[TRACESTATE_SLOT])
    )


def child_span_context(slots: Collected, span_id: int) -> tuple[SpanContext, bytes] | None:
    """A local span ``span_id`` in the caller's trace (flags and tracestate kept) and its
    ``traceresponse`` value, or ``None`` when the request carries no valid traceparent."""
    tp = one(slots[TRACEPARENT_SLOT])
    v00 = match_v00(tp)
    if v00 is not None:
        sc = valid_span_context(
            int(v00[3:35], 16),
            span_id,
            False,
            FLAGS_BY_HEX[v00[53:]],
            raw_trace_state(slots[TRACESTATE_SLOT]),
        )
        # Version 00 keeps every flag: the response is the raw header with our span id.
        return sc, b"%b%016x%b" % (v00[:36], span_id, v00[52:])
    fields = traceparent_fields(tp)
    if fields is None:
        return None
    sc = SpanContext(
        fields[0], span_id, False, TRACE_FLAGS[fields[2]], raw_trace_state(slots[TRACESTATE_SLOT])
    )
    return sc, format_traceresponse(sc)


def raw_trace_state(values: list[bytes] | None) -> TraceState:
    """The ``TraceState`` of raw tracestate header values, decoded and parsed on first read
    (most requests never read it)."""
    return _RawTraceState(values) if values else _NO_STATE


class _RawTraceState(LazyTraceState):
    def __init__(self, raw: list[bytes]) -> None:  # without LazyTraceState.__init__: lazy
        self._raw = raw

    def __getattr__(self, name: str) -> dict[str, str]:
        if name == "_dict":
            self._fields = [value.decode("latin-1") for value in self._raw]
        return super().__getattr__(name)


@overload
def with_baggage(slots: Collected, ctx: Context) -> Context: ...
@overload
def with_baggage(slots: Collected, ctx: Context | None) -> Context | None: ...
def with_baggage(slots: Collected, ctx: Context | None) -> Context | None:
    """``ctx`` with the baggage of :func:`collect_asgi`'s values."""
    if slots[BAGGAGE_SLOT] is not None:
        for name, value in parse_baggage(texts(slots[BAGGAGE_SLOT])).items():
            ctx = otel_baggage.set_baggage(name, value, ctx)
    return ctx


_NO_STATE = TraceState()
