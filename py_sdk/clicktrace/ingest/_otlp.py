"""OTLP/JSON ``ExportTraceServiceRequest`` → OpenTelemetry SDK ``ReadableSpan`` objects: the
browser's spans, read defensively from untrusted JSON.

Reads the standard OTLP JSON encoding (hex ids, int64 times as strings or numbers, enums as
numbers or names). Never raises: a body whose shape is wrong is reported as invalid, a span
that does not validate is counted as rejected and dropped (the field readers raise
:class:`Rejected`, which never leaves this module), and everything is capped (the span count,
resource, span and event attributes, names, events), each limit beside the code that reads it.

Only what the browser plugin emits is taken: its instrumentation scope (``scopes``) and the
span kinds a browser has (INTERNAL, CLIENT, CONSUMER); a SERVER span or the server's scope
posted by a browser would pass for the server's own word in the trace. Each span is rebuilt
from checked fields only: its ``clicktrace.client_id`` is never read from the payload: the
verified client id (or nothing) is stamped on every span and resource.

Every string a browser sends ends up in a trace viewer, a log line or a terminal, so
:func:`clean_text` escapes control characters (C0, DEL, C1, the Unicode line separators, lone
surrogates) as ``\\uXXXX`` and bounds the length; attribute keys holding any are dropped.

The SDK is the ``sdk`` extra: its types are imported on the first request (:func:`_sdk`), so
the route (and its limits here) can be imported without it; the route checks for it when built.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from clicktrace.propagation._tracestate import parse_tracestate

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

__all__ = [
    "BROWSER_KINDS",
    "BROWSER_SCOPES",
    "CLIENT_ID_ATTRIBUTE",
    "MAX_ARRAY_LENGTH",
    "MAX_ATTRIBUTES_PER_SPAN",
    "MAX_ATTRIBUTE_KEY_LENGTH",
    "MAX_ATTRIBUTE_VALUE_LENGTH",
    "MAX_EVENTS_PER_SPAN",
    "MAX_EVENT_ATTRIBUTES",
    "MAX_NAME_LENGTH",
    "MAX_RESOURCE_ATTRIBUTES",
    "MAX_SPANS_PER_REQUEST",
    "MAX_STATUS_MESSAGE_LENGTH",
    "Decoded",
    "Rejected",
    "clean_text",
    "decode_request",
    "parse_attributes",
]

MAX_SPANS_PER_REQUEST = 512
BROWSER_SCOPES = frozenset({"clicktrace-pinia"})  # the plugin's tracer name
BROWSER_KINDS = frozenset({SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.CONSUMER})


class _Sdk(NamedTuple):
    Event: type[Event]
    InstrumentationScope: type[InstrumentationScope]
    ReadableSpan: type[ReadableSpan]
    Resource: type[Resource]


@functools.cache
def _sdk() -> _Sdk:
    """The SDK types spans are built from, imported once, on the first request."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    return _Sdk(Event, InstrumentationScope, ReadableSpan, Resource)


# Attributes: OTLP/JSON ``AnyValue`` and ``KeyValue`` lists; what does not fit is dropped.

MAX_ATTRIBUTES_PER_SPAN = 64
MAX_ATTRIBUTE_KEY_LENGTH = 128
MAX_ATTRIBUTE_VALUE_LENGTH = 4096
MAX_ARRAY_LENGTH = 64

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INT_TEXT = re.compile(r"-?[0-9]{1,19}")
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


def clean_text(text: str, limit: int) -> str:
    """``text`` with unsafe characters escaped, at most ``limit`` characters."""
    text = text[:limit]
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)[:limit]


Primitive = str | bool | int | float
AttributeValue = Primitive | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]


def _int64(value: Any) -> int | None:
    # proto3 JSON writes int64 as a string; numbers are accepted too.
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not _INT_TEXT.fullmatch(value):
            return None
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX:
        return value
    return None


def _primitive(value: Any) -> Primitive | None:
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((kind, raw),) = value.items()
    if kind == "stringValue" and isinstance(raw, str):
        return clean_text(raw, MAX_ATTRIBUTE_VALUE_LENGTH)
    if kind == "boolValue" and isinstance(raw, bool):
        return raw
    if kind == "intValue":
        return _int64(raw)
    if kind == "doubleValue" and isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    return None


def _value(value: Any) -> AttributeValue | None:
    if isinstance(value, dict) and len(value) == 1 and "arrayValue" in value:
        array = value["arrayValue"]
        items = array.get("values", []) if isinstance(array, dict) else None
        if not isinstance(items, list):
            return None
        parsed = [_primitive(item) for item in items[:MAX_ARRAY_LENGTH]]
        # OpenTelemetry attributes are homogeneous arrays of primitives.
        kinds = {type(p) for p in parsed}
        if None in parsed or len(kinds) > 1:
            return None
        return tuple(parsed)  # type: ignore[return-value]
    return _primitive(value)


def parse_attributes(items: Any, limit: int = MAX_ATTRIBUTES_PER_SPAN) -> dict[str, AttributeValue]:
    """The valid attributes of an OTLP ``KeyValue`` list, at most ``limit``. Never raises."""
    if not isinstance(items, list):
        return {}
    attributes: dict[str, AttributeValue] = {}
    for item in items:
        if len(attributes) >= limit:
            break
        if not isinstance(item, dict):
            continue
        key = item.get("key")
        if (
            not isinstance(key, str)
            or not key
            or len(key) > MAX_ATTRIBUTE_KEY_LENGTH
            or _UNSAFE.search(key) is not None
        ):
            continue
        value = _value(item.get("value"))
        if value is not None:
            attributes[key] = value
    return attributes


# Field values: each reader checks one untrusted JSON value and returns it typed, or raises
# Rejected.

MAX_NAME_LENGTH = 256
MAX_STATUS_MESSAGE_LENGTH = 1024
TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")

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


class Rejected(Exception):
    """A value does not validate (never escapes the decoder)."""


def field_list(parent: Mapping[str, Any], key: str) -> list[Any]:
    value = parent.get(key, [])
    if not isinstance(value, list):
        raise Rejected(f"{key} must be a list")
    return value


def json_object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise Rejected(f"{what} must be an object")
    return value


def hex_id(value: Any, pattern: re.Pattern[str], what: str) -> int:
    if not isinstance(value, str) or not pattern.fullmatch(value) or not int(value, 16):
        raise Rejected(f"{what} must be non-zero hex")
    return int(value, 16)


def nanos(value: Any, what: str) -> int:
    if isinstance(value, str) and _NANOS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_NANOS:
        raise Rejected(f"{what} must be a positive int64")
    return value


def _enum(value: Any, names: Mapping[str, int], default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str):
        return names.get(value, -1)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return -1


def span_kind(value: Any, allowed: frozenset[SpanKind]) -> SpanKind:
    number = _enum(value, _KIND_NAMES, 0)
    kind = SpanKind.INTERNAL if number == 0 else _KINDS.get(number)
    if kind is None or kind not in allowed:
        raise Rejected("kind is not one a browser emits")
    return kind


def span_status(value: Any) -> Status:
    if value is None:
        return Status(StatusCode.UNSET)
    status = json_object(value, "status")
    code = _enum(status.get("code"), _STATUS_NAMES, 0)
    if code not in (0, 1, 2):
        raise Rejected("status.code is not a StatusCode")
    message = status.get("message")
    if code != 2 or not isinstance(message, str) or not message:
        return Status(StatusCode(code))
    return Status(StatusCode.ERROR, clean_text(message, MAX_STATUS_MESSAGE_LENGTH))


def required_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise Rejected(f"{what} must be a non-empty string")
    return clean_text(value, MAX_NAME_LENGTH)


# One span.

MAX_EVENTS_PER_SPAN = 32
MAX_EVENT_ATTRIBUTES = 16
CLIENT_ID_ATTRIBUTE = "clicktrace.client_id"

# The browser exported these spans, so they were sampled there; span processors drop
# unsampled spans, so the flag is set whatever the (optional) ``flags`` field says.
_FLAGS = TraceFlags(TraceFlags.SAMPLED)


def _events(span: Mapping[str, Any]) -> list[Event]:
    event_type = _sdk().Event
    events = []
    for raw in field_list(span, "events")[:MAX_EVENTS_PER_SPAN]:
        event = json_object(raw, "event")
        events.append(
            event_type(
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
    return _sdk().ReadableSpan(
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
    return _sdk().InstrumentationScope(
        name,
        clean_text(version, MAX_NAME_LENGTH) if isinstance(version, str) and version else None,
    )


# One request.

MAX_RESOURCE_ATTRIBUTES = 32


@dataclass(frozen=True, slots=True)
class Decoded:
    """The spans of one request; ``invalid`` names why the whole request was refused."""

    spans: tuple[ReadableSpan, ...] = ()
    rejected: int = 0
    invalid: str | None = None
    too_many: bool = False


def _count(resource_spans: list[Any]) -> int:
    total = 0
    for rs in resource_spans:
        for ss in field_list(json_object(rs, "resourceSpans item"), "scopeSpans"):
            total += len(field_list(json_object(ss, "scopeSpans item"), "spans"))
    return total


def decode_request(
    data: Any,
    base: Mapping[str, str],
    *,
    defaults: Mapping[str, str] = {},
    client_id: str | None = None,
    scopes: frozenset[str] = BROWSER_SCOPES,
    kinds: frozenset[SpanKind] = BROWSER_KINDS,
) -> Decoded:
    """The spans in a decoded OTLP/JSON body; ``base`` resource attributes win over the
    sender's, the sender's over ``defaults``; ``client_id``
    (the verified one, or ``None``) is stamped on every span and resource, spans of another
    scope or kind are rejected. Never raises."""
    try:
        resource_spans = field_list(json_object(data, "body"), "resourceSpans")
        if _count(resource_spans) > MAX_SPANS_PER_REQUEST:
            return Decoded(invalid=f"more than {MAX_SPANS_PER_REQUEST} spans", too_many=True)
    except Rejected as exc:
        return Decoded(invalid=str(exc))
    stamp = {CLIENT_ID_ATTRIBUTE: client_id} if client_id is not None else {}
    policy = Policy(kinds, stamp)
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
        for key in defaults:  # a default stands in for a blank or non-string value
            if not (isinstance(own.get(key), str) and own[key]):
                own.pop(key, None)
        resource = _sdk().Resource({**defaults, **own, **base, **stamp})
        for ss in rs.get("scopeSpans", []):
            scope = instrumentation_scope(ss.get("scope"), scopes)
            if scope is None:
                rejected += len(ss.get("spans", []))
                continue
            for raw in ss.get("spans", []):
                try:
                    spans.append(build_span(raw, resource, scope, policy))
                except Rejected:
                    rejected += 1
    return Decoded(spans=tuple(spans), rejected=rejected)
