"""OTLP/JSON ``ExportTraceServiceRequest`` → OpenTelemetry SDK ``ReadableSpan`` objects.

Reads the standard OTLP JSON encoding: the fields through ``otlp_fields``, each span built by
``otlp_span``. Never raises: a body whose shape is wrong is reported as invalid, a span that
does not validate is counted as rejected and dropped, and everything is capped (the span
count and resource attributes here, names and events beside the code that reads them).

Only what the browser plugin emits is taken: its instrumentation scope (``scopes``) and the
span kinds a browser has (INTERNAL, CLIENT, CONSUMER); a SERVER span or the server's scope
posted by a browser would pass for the server's own word in the trace. ``clicktrace.client_id``
is never read from the payload: the verified client id (or nothing) is stamped on every span
and resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from clicktrace.ingest.attributes import parse_attributes
from clicktrace.ingest.limits import BROWSER_SCOPES, MAX_SPANS_PER_REQUEST
from clicktrace.ingest.otlp_fields import MAX_NAME_LENGTH, Rejected, field_list, json_object
from clicktrace.ingest.otlp_span import (
    CLIENT_ID_ATTRIBUTE,
    MAX_EVENTS_PER_SPAN,
    Policy,
    build_span,
    instrumentation_scope,
)

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

MAX_RESOURCE_ATTRIBUTES = 32
BROWSER_KINDS = frozenset({SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.CONSUMER})


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
    client_id: str | None = None,
    scopes: frozenset[str] = BROWSER_SCOPES,
    kinds: frozenset[SpanKind] = BROWSER_KINDS,
) -> Decoded:
    """The spans in a decoded OTLP/JSON body; ``base`` resource attributes win, ``client_id``
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
        resource = Resource({**own, **base, **stamp})
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
