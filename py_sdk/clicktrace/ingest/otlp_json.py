"""OTLP/JSON ``ExportTraceServiceRequest`` → OpenTelemetry SDK ``ReadableSpan`` objects.

Reads the standard OTLP JSON encoding (hex ids, int64 times as strings, enums as numbers or
names). Never raises: a body whose shape is wrong is reported as invalid, a span that does not
validate is counted as rejected and dropped, and everything is capped by the constants below.

Only what the browser plugin emits is taken: its instrumentation scope (``scopes``) and the
span kinds a browser has (INTERNAL, CLIENT, CONSUMER); a SERVER span or the server's scope
posted by a browser would pass for the server's own word in the trace. ``clicktrace.client_id``
is never read from the payload: the verified client id (or nothing) is stamped on every span
and resource.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from clicktrace.ingest.attributes import clean_text, parse_attributes
from clicktrace.ingest.limits import BROWSER_SCOPES, MAX_SPANS_PER_REQUEST
from clicktrace.propagation.tracestate import parse_tracestate

__all__ = [
    "BROWSER_KINDS",
    "BROWSER_SCOPES",
    "CLIENT_ID_ATTRIBUTE",
    "MAX_EVENTS_PER_SPAN",
    "MAX_NAME_LENGTH",
    "MAX_RESOURCE_ATTRIBUTES",
    "MAX_SPANS_PER_REQUEST",
    "Decoded",
    "decode_request",
]

MAX_EVENTS_PER_SPAN = 32
MAX_EVENT_ATTRIBUTES = 16
MAX_RESOURCE_ATTRIBUTES = 32
MAX_NAME_LENGTH = 256
MAX_STATUS_MESSAGE_LENGTH = 1024
BROWSER_KINDS = frozenset({SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.CONSUMER})
CLIENT_ID_ATTRIBUTE = "clicktrace.client_id"

_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")
_NANOS = re.compile(r"[0-9]{1,19}")
_MAX_NANOS = 2**63 - 1
# OTLP numbers SpanKind from 1 (0 is "unspecified"); the OpenTelemetry API numbers it from 0.
_KINDS = {
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_KIND_NAMES = {f"SPAN_KIND_{kind.name}": number for number, kind in _KINDS.items()}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
# The browser exported these spans, so they were sampled there; span processors drop
# unsampled spans, so the flag is set whatever the (optional) ``flags`` field says.
_FLAGS = TraceFlags(TraceFlags.SAMPLED)


@dataclass(frozen=True, slots=True)
class Decoded:
    """The spans of one request; ``invalid`` names why the whole request was refused."""

    spans: tuple[ReadableSpan, ...] = ()
    rejected: int = 0
    invalid: str | None = None
    too_many: bool = False


class _Rejected(Exception):
    """Internal: one span does not validate (never escapes this module)."""


def _list(parent: Mapping[str, Any], key: str) -> list[Any]:
    value = parent.get(key, [])
    if not isinstance(value, list):
        raise _Rejected(f"{key} must be a list")
    return value


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Rejected(f"{what} must be an object")
    return value


def _id(value: Any, pattern: re.Pattern[str], what: str) -> int:
    if not isinstance(value, str) or not pattern.fullmatch(value) or not int(value, 16):
        raise _Rejected(f"{what} must be non-zero hex")
    return int(value, 16)


def _nanos(value: Any, what: str) -> int:
    if isinstance(value, str) and _NANOS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_NANOS:
        raise _Rejected(f"{what} must be a positive int64")
    return value


def _enum(value: Any, names: Mapping[str, int], default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str):
        return names.get(value, -1)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return -1


def _kind(value: Any, allowed: frozenset[SpanKind]) -> SpanKind:
    number = _enum(value, _KIND_NAMES, 0)
    kind = SpanKind.INTERNAL if number == 0 else _KINDS.get(number)
    if kind is None or kind not in allowed:
        raise _Rejected("kind is not one a browser emits")
    return kind


def _status(value: Any) -> Status:
    if value is None:
        return Status(StatusCode.UNSET)
    status = _object(value, "status")
    code = _enum(status.get("code"), _STATUS_NAMES, 0)
    if code not in (0, 1, 2):
        raise _Rejected("status.code is not a StatusCode")
    message = status.get("message")
    if code != 2 or not isinstance(message, str) or not message:
        return Status(StatusCode(code))
    return Status(StatusCode.ERROR, clean_text(message, MAX_STATUS_MESSAGE_LENGTH))


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise _Rejected(f"{what} must be a non-empty string")
    return clean_text(value, MAX_NAME_LENGTH)


def _events(span: Mapping[str, Any]) -> list[Event]:
    events = []
    for raw in _list(span, "events")[:MAX_EVENTS_PER_SPAN]:
        event = _object(raw, "event")
        events.append(
            Event(
                _name(event.get("name"), "event name"),
                parse_attributes(event.get("attributes"), MAX_EVENT_ATTRIBUTES),
                _nanos(event.get("timeUnixNano"), "event timeUnixNano"),
            )
        )
    return events


@dataclass(frozen=True, slots=True)
class _Policy:
    kinds: frozenset[SpanKind]
    stamp: Mapping[str, str]  # span attributes that replace whatever the payload says


def _span(
    raw: Any, resource: Resource, scope: InstrumentationScope, policy: _Policy
) -> ReadableSpan:
    span = _object(raw, "span")
    trace_id = _id(span.get("traceId"), _TRACE_ID, "traceId")
    span_id = _id(span.get("spanId"), _SPAN_ID, "spanId")
    parent_raw = span.get("parentSpanId")
    parent = None
    if parent_raw not in (None, ""):
        parent_id = _id(parent_raw, _SPAN_ID, "parentSpanId")
        parent = SpanContext(trace_id, parent_id, is_remote=False, trace_flags=_FLAGS)
    start = _nanos(span.get("startTimeUnixNano"), "startTimeUnixNano")
    end = _nanos(span.get("endTimeUnixNano"), "endTimeUnixNano")
    if end < start:
        raise _Rejected("endTimeUnixNano is before startTimeUnixNano")
    state = span.get("traceState")
    header = parse_tracestate([state]) if isinstance(state, str) and state else None
    context = SpanContext(
        trace_id,
        span_id,
        is_remote=False,
        trace_flags=_FLAGS,
        trace_state=TraceState.from_header([header]) if header else TraceState(),
    )
    kind = _kind(span.get("kind"), policy.kinds)
    attributes = parse_attributes(span.get("attributes"))
    attributes.pop(CLIENT_ID_ATTRIBUTE, None)
    return ReadableSpan(
        name=_name(span.get("name"), "name"),
        context=context,
        parent=parent,
        resource=resource,
        attributes={**attributes, **policy.stamp},
        events=_events(span),
        kind=kind,
        status=_status(span.get("status")),
        start_time=start,
        end_time=end,
        instrumentation_scope=scope,
    )


def _scope(raw: Any, allowed: frozenset[str]) -> InstrumentationScope | None:
    scope = raw if isinstance(raw, dict) else {}
    name, version = scope.get("name"), scope.get("version")
    if not isinstance(name, str) or name not in allowed:
        return None
    return InstrumentationScope(
        name,
        clean_text(version, MAX_NAME_LENGTH) if isinstance(version, str) and version else None,
    )


def _count(resource_spans: list[Any]) -> int:
    total = 0
    for rs in resource_spans:
        for ss in _list(_object(rs, "resourceSpans item"), "scopeSpans"):
            total += len(_list(_object(ss, "scopeSpans item"), "spans"))
    return total


def decode_request(
    data: Any,
    base: Mapping[str, str],
    *,
    client_id: str | None = None,
    scopes: frozenset[str] = BROWSER_SCOPES,
    kinds: frozenset[SpanKind] = BROWSER_KINDS,
) -> Decoded:
    """The spans in a decoded OTLP/JSON body; ``base`` resource attributes win, ``client_id``
    (the verified one, or ``None``) is stamped on every span and resource, spans of another
    scope or kind are rejected. Never raises."""
    try:
        resource_spans = _list(_object(data, "body"), "resourceSpans")
        if _count(resource_spans) > MAX_SPANS_PER_REQUEST:
            return Decoded(invalid=f"more than {MAX_SPANS_PER_REQUEST} spans", too_many=True)
    except _Rejected as exc:
        return Decoded(invalid=str(exc))
    stamp = {CLIENT_ID_ATTRIBUTE: client_id} if client_id is not None else {}
    policy = _Policy(kinds, stamp)
    spans: list[ReadableSpan] = []
    rejected = 0
    for rs in resource_spans:
        own = parse_attributes(
            rs.get("resource", {}).get("attributes")
            if isinstance(rs.get("resource"), dict)
            else None,
            MAX_RESOURCE_ATTRIBUTES,
        )
        own.pop(CLIENT_ID_ATTRIBUTE, None)
        resource = Resource({**own, **base, **stamp})
        for ss in rs.get("scopeSpans", []):
            scope = _scope(ss.get("scope"), scopes)
            if scope is None:
                rejected += len(ss.get("spans", []))
                continue
            for raw in ss.get("spans", []):
                try:
                    spans.append(_span(raw, resource, scope, policy))
                except _Rejected:
                    rejected += 1
    return Decoded(spans=tuple(spans), rejected=rejected)
