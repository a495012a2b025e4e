"""One inject/extract for every hop: HTTP headers, command metadata, broker headers,
envelope metadata, notification payloads.

``extract`` never raises: whatever is invalid comes back as ``None`` and the caller decides
(replace, drop, or refuse). ``inject`` writes the current OpenTelemetry span context and the
current :class:`~clicktrace.context.ClickContext`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from opentelemetry import baggage as otel_baggage
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan, SpanContext, TraceState

from clicktrace import context as click_context
from clicktrace.ids import parse_id
from clicktrace.propagation._baggage import format_baggage, parse_baggage
from clicktrace.propagation._carriers import MAPPING_GETTER, MAPPING_SETTER, Getter, Setter
from clicktrace.propagation._traceparent import (
    TRACE_FLAGS,
    TraceParent,
    format_traceparent,
    parse_traceparent,
)
from clicktrace.propagation._tracestate import parse_tracestate, tracestate_dict
from clicktrace.protocol import (
    BAGGAGE_HEADER,
    CAUSATION_HEADER,
    CORRELATION_HEADER,
    DEADLINE_HEADER,
    TRACEPARENT_HEADER,
    TRACESTATE_HEADER,
)

__all__ = [
    "HEADER_KEYS",
    "METADATA_KEYS",
    "SPAN_KEY",
    "Extracted",
    "Keys",
    "LazyTraceState",
    "extract",
    "extract_trace",
    "inject",
    "otel_trace_state",
    "parse_deadline",
    "trace_state",
]

C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class Keys:
    """Where each field lives in a carrier. HTTP and broker headers use ``HEADER_KEYS``;
    JSON metadata (command body, envelope, notification) uses ``METADATA_KEYS``."""

    correlation_id: str
    causation_id: str
    client_id: str | None
    deadline: str
    traceparent: str = TRACEPARENT_HEADER
    tracestate: str = TRACESTATE_HEADER
    baggage: str = BAGGAGE_HEADER


# Over HTTP the client travels as a signed token (x-clicktrace-client), verified by the
# edge, never as a bare id: so headers carry no client id.
HEADER_KEYS = Keys(CORRELATION_HEADER, CAUSATION_HEADER, None, DEADLINE_HEADER)
METADATA_KEYS = Keys("correlation_id", "causation_id", "client_id", "deadline")


class Extracted(NamedTuple):
    """What a carrier holds, each field ``None`` when absent or invalid. A NamedTuple, like
    :class:`~clicktrace.context.ClickContext`: built once per hop, and a frozen dataclass
    costs about twice as much to construct."""

    traceparent: TraceParent | None = None
    tracestate: str | None = None
    baggage: dict[str, str] | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    client_id: str | None = None
    deadline_ms: int | None = None
    raw_correlation_id: str | None = None
    """The correlation id as received when it was not a valid ULID (for safe logging)."""

    def otel_context(self, base: Context | None = None) -> Context | None:
        """An OpenTelemetry context whose remote parent is the extracted traceparent, with
        the extracted baggage; ``base`` when there is neither."""
        ctx = base
        tp = self.traceparent
        if tp is not None:
            span_context = SpanContext(
                tp.trace_id,
                tp.span_id,
                True,
                TRACE_FLAGS[tp.flags],
                trace_state(self.tracestate),
            )
            ctx = trace.set_span_in_context(NonRecordingSpan(span_context), base)
        if self.baggage:
            for name, value in self.baggage.items():
                ctx = otel_baggage.set_baggage(name, value, ctx)
        return ctx

    def click_context(self, *, fallback_correlation_id: str) -> click_context.ClickContext:
        return click_context.ClickContext(
            correlation_id=self.correlation_id or fallback_correlation_id,
            causation_id=self.causation_id,
            client_id=self.client_id,
            deadline_ms=self.deadline_ms,
        )


def _span_key() -> str:
    """The key OpenTelemetry keeps the current span under in a ``Context``, found through the
    public API."""
    (key,) = trace.set_span_in_context(NonRecordingSpan(INVALID_SPAN_CONTEXT), Context())
    return key


SPAN_KEY = _span_key()
"""Lets a hot path build a context as one dict, ``Context({**parent, SPAN_KEY: span})``,
instead of three nested API calls (the edge, lean spans)."""

_EMPTY_STATE = TraceState()


def trace_state(header: str | None) -> TraceState:
    """An OpenTelemetry ``TraceState`` of a tracestate header (empty when invalid).

    Validates with our Level 2 parser, then fills the ``TraceState`` without its own
    per-member checks, which are slower and stricter than the spec (they reject repeated
    keys that the parser has already reduced to one).
    """
    return otel_trace_state(tracestate_dict([header]) if header else None)


class LazyTraceState(TraceState):
    """A ``TraceState`` of an untrusted header, parsed (by :func:`tracestate_dict`) on first
    read. Most requests never read the caller's tracestate (only an outgoing inject or an
    exporter does), so the edge saves the parse; an invalid header reads as empty."""

    def __init__(self, fields: list[str]) -> None:  # without TraceState.__init__: lazy
        self._fields = fields

    def __getattr__(self, name: str) -> dict[str, str]:
        # Only reached while ``_dict`` is unset: parse once, then plain attribute reads.
        if name != "_dict":
            raise AttributeError(name)
        self._dict = tracestate_dict(self._fields) or {}
        return self._dict


def otel_trace_state(members: dict[str, str] | list[tuple[str, str]] | None) -> TraceState:
    """A ``TraceState`` of members that :func:`tracestate_dict` has validated."""
    if not members:
        return _EMPTY_STATE
    state = TraceState()
    state._dict = members if isinstance(members, dict) else dict(members)
    return state


def _one(values: list[str] | None) -> str | None:
    return values[0] if values and len(values) == 1 else None


MAX_DEADLINE_DIGITS = 15  # Unix ms until the year 33658


def parse_deadline(value: bytes | str | None) -> int | None:
    """Unix time in ms from decimal ASCII digits, or ``None``."""
    if not isinstance(value, str | bytes) or not 0 < len(value) <= MAX_DEADLINE_DIGITS:
        return None
    if not value.isascii() or not value.isdigit():
        return None
    return int(value)


def _trace(
    carrier: Any, getter: Getter[Any], keys: Keys
) -> tuple[TraceParent | None, str | None, dict[str, str] | None]:
    # More than one traceparent field is invalid: a new trace starts.
    tp = parse_traceparent(_one(getter.get(carrier, keys.traceparent)))
    state = parse_tracestate(getter.get(carrier, keys.tracestate)) if tp else None
    return tp, state, parse_baggage(getter.get(carrier, keys.baggage)) or None


def extract_trace(
    carrier: C, getter: Getter[Any] = MAPPING_GETTER, keys: Keys = METADATA_KEYS
) -> Extracted:
    """Only the W3C fields of ``carrier`` (traceparent, tracestate, baggage). Never raises.

    For a carrier whose clicktrace ids are not read (a broker's native headers: the
    envelope carries the ids the consumer trusts), so they are not parsed for nothing.
    """
    tp, state, bag = _trace(carrier, getter, keys)
    return Extracted(traceparent=tp, tracestate=state, baggage=bag)


def extract(
    carrier: C, getter: Getter[Any] = MAPPING_GETTER, keys: Keys = METADATA_KEYS
) -> Extracted:
    """Read trace context and clicktrace ids from ``carrier``. Never raises."""
    tp, state, bag = _trace(carrier, getter, keys)
    raw_corr = _one(getter.get(carrier, keys.correlation_id))
    corr = parse_id(raw_corr)
    return Extracted(
        traceparent=tp,
        tracestate=state,
        baggage=bag,
        correlation_id=corr,
        causation_id=parse_id(_one(getter.get(carrier, keys.causation_id))),
        client_id=parse_id(_one(getter.get(carrier, keys.client_id))) if keys.client_id else None,
        deadline_ms=parse_deadline(_one(getter.get(carrier, keys.deadline))),
        raw_correlation_id=raw_corr if corr is None else None,
    )


def inject(
    carrier: C,
    setter: Setter[Any] = MAPPING_SETTER,
    keys: Keys = METADATA_KEYS,
    *,
    click: click_context.ClickContext | None = None,
    otel: Context | None = None,
) -> None:
    """Write the current (or given) trace context and clicktrace ids into ``carrier``."""
    span_context = trace.get_current_span(otel).get_span_context()
    if span_context.is_valid:
        setter.set(
            carrier,
            keys.traceparent,
            format_traceparent(
                span_context.trace_id, span_context.span_id, int(span_context.trace_flags)
            ),
        )
        if span_context.trace_state:
            setter.set(carrier, keys.tracestate, span_context.trace_state.to_header())
    bag = format_baggage({k: str(v) for k, v in otel_baggage.get_all(otel).items()})
    if bag:
        setter.set(carrier, keys.baggage, bag)
    click = click or click_context.current()
    if click is None:
        return
    setter.set(carrier, keys.correlation_id, click.correlation_id)
    if click.causation_id:
        setter.set(carrier, keys.causation_id, click.causation_id)
    if click.client_id and keys.client_id:
        setter.set(carrier, keys.client_id, click.client_id)
    if click.deadline_ms is not None:
        setter.set(carrier, keys.deadline, str(click.deadline_ms))
