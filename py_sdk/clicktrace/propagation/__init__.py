"""Carrier-agnostic propagation of W3C trace context and clicktrace ids."""

from clicktrace.propagation.carriers import (
    ASGI_GETTER,
    ASGI_SETTER,
    ATTRIBUTE_GETTER,
    EXACT_MAPPING_GETTER,
    MAPPING_GETTER,
    MAPPING_SETTER,
    PAIRS_GETTER,
    PAIRS_SETTER,
    Getter,
    Setter,
)
from clicktrace.propagation.core import (
    HEADER_KEYS,
    METADATA_KEYS,
    Extracted,
    Keys,
    extract,
    extract_trace,
    inject,
)
from clicktrace.propagation.traceparent import TraceParent, format_traceparent, parse_traceparent

__all__ = [
    "ASGI_GETTER",
    "ASGI_SETTER",
    "ATTRIBUTE_GETTER",
    "EXACT_MAPPING_GETTER",
    "HEADER_KEYS",
    "MAPPING_GETTER",
    "MAPPING_SETTER",
    "METADATA_KEYS",
    "PAIRS_GETTER",
    "PAIRS_SETTER",
    "Extracted",
    "Getter",
    "Keys",
    "Setter",
    "TraceParent",
    "extract",
    "extract_trace",
    "format_traceparent",
    "inject",
    "parse_traceparent",
]
