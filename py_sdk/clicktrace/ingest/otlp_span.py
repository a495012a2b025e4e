"""One OTLP/JSON span → an OpenTelemetry SDK ``ReadableSpan``, or :class:`Rejected`.

The span is rebuilt from checked fields only: its kind must be one the request allows, its
``clicktrace.client_id`` attribute is dropped and the policy's stamp (the verified client id)
put in its place, its events and their attributes are capped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, TraceState

from clicktrace.ingest.attributes import clean_text, parse_attributes
from clicktrace.ingest.otlp_fields import (
    MAX_NAME_LENGTH,
    SPAN_ID,
    TRACE_ID,
    Rejected,
    field_list,
    hex_id,
    json_object,
    nanos,
    required_name,
    span_kind,
    span_status,
)
from clicktrace.propagation._tracestate import parse_tracestate

__all__ = [
    "CLIENT_ID_ATTRIBUTE",
    "MAX_EVENTS_PER_SPAN",
    "MAX_EVENT_ATTRIBUTES",
    "Policy",
    "build_span",
    "instrumentation_scope",
]

MAX_EVENTS_PER_SPAN = 32
MAX_EVENT_ATTRIBUTES = 16
CLIENT_ID_ATTRIBUTE = "clicktrace.client_id"

# The browser exported these spans, so they were sampled there; span processors drop
# unsampled spans, so the flag is set whatever the (optional) ``flags`` field says.
_FLAGS = TraceFlags(TraceFlags.SAMPLED)


def _events(span: Mapping[str, Any]) -> list[Event]:
    events = []
    for raw in field_list(span, "events")[:MAX_EVENTS_PER_SPAN]:
        event = json_object(raw, "event")
        events.append(
            Event(
                required_name(event.get("name"), "event name"),
                parse_attributes(event.get("attributes"), MAX_EVENT_ATTRIBUTES),
                nanos(event.get("timeUnixNano"), "event timeUnixNano"),
            )
        )
    return events


@dataclass(frozen=True, slots=True)
class Policy:
    """What the server takes from this request's spans, and stamps on them."""

    kinds: frozenset[SpanKind]
    stamp: Mapping[str, str]  # span attributes that replace whatever the payload says


def build_span(
    raw: Any, resource: Resource, scope: InstrumentationScope, policy: Policy
) -> ReadableSpan:
    """The span ``raw`` describes, under ``resource`` and ``scope``; raises :class:`Rejected`."""
    span = json_object(raw, "span")
    trace_id = hex_id(span.get("traceId"), TRACE_ID, "traceId")
    span_id = hex_id(span.get("spanId"), SPAN_ID, "spanId")
    parent_raw = span.get("parentSpanId")
    parent = None
    if parent_raw not in (None, ""):
        parent_id = hex_id(parent_raw, SPAN_ID, "parentSpanId")
        parent = SpanContext(trace_id, parent_id, is_remote=False, trace_flags=_FLAGS)
    start = nanos(span.get("startTimeUnixNano"), "startTimeUnixNano")
    end = nanos(span.get("endTimeUnixNano"), "endTimeUnixNano")
    if end < start:
        raise Rejected("endTimeUnixNano is before startTimeUnixNano")
    state = span.get("traceState")
    header = parse_tracestate([state]) if isinstance(state, str) and state else None
    context = SpanContext(
        trace_id,
        span_id,
        is_remote=False,
        trace_flags=_FLAGS,
        trace_state=TraceState.from_header([header]) if header else TraceState(),
    )
    kind = span_kind(span.get("kind"), policy.kinds)
    attributes = parse_attributes(span.get("attributes"))
    attributes.pop(CLIENT_ID_ATTRIBUTE, None)
    return ReadableSpan(
        name=required_name(span.get("name"), "name"),
        context=context,
        parent=parent,
        resource=resource,
        attributes={**attributes, **policy.stamp},
        events=_events(span),
        kind=kind,
        status=span_status(span.get("status")),
        start_time=start,
        end_time=end,
        instrumentation_scope=scope,
    )


def instrumentation_scope(raw: Any, allowed: frozenset[str]) -> InstrumentationScope | None:
    """The scope ``raw`` names, if it is one of ``allowed`` (``None``: its spans are rejected)."""
    scope = raw if isinstance(raw, dict) else {}
    name, version = scope.get("name"), scope.get("version")
    if not isinstance(name, str) or name not in allowed:
        return None
    return InstrumentationScope(
        name,
        clean_text(version, MAX_NAME_LENGTH) if isinstance(version, str) and version else None,
    )
