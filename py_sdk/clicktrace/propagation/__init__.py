"""Carrier-agnostic propagation of W3C trace context and clicktrace ids.

One :func:`extract` / :func:`inject` for every hop, with a getter or setter per carrier shape,
and :class:`ClicktracePropagator` for OpenTelemetry's own instrumentations. The parsers
(``_traceparent``, ``_tracestate``, ``_baggage``), the edge's one-pass header path
(``_edge_headers``) and the OpenTelemetry helpers other clicktrace layers share stay in the
package's private modules.
"""

from clicktrace.propagation._carriers import (
    ATTRIBUTE_GETTER,
    EXACT_MAPPING_GETTER,
    MAPPING_GETTER,
    MAPPING_SETTER,
    Getter,
    Setter,
)
from clicktrace.propagation._inject_extract import (
    HEADER_KEYS,
    METADATA_KEYS,
    Extracted,
    Keys,
    extract,
    inject,
)
from clicktrace.propagation._otel import ClicktracePropagator, click_from_context
from clicktrace.propagation._traceparent import TraceParent, parse_traceparent

__all__ = [
    "ATTRIBUTE_GETTER",
    "EXACT_MAPPING_GETTER",
    "HEADER_KEYS",
    "MAPPING_GETTER",
    "MAPPING_SETTER",
    "METADATA_KEYS",
    "ClicktracePropagator",
    "Extracted",
    "Getter",
    "Keys",
    "Setter",
    "TraceParent",
    "click_from_context",
    "extract",
    "inject",
    "parse_traceparent",
]
