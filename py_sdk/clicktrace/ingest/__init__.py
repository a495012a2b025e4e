"""Browser span ingestion: OTLP/JSON from the Pinia plugin into the server's trace pipeline.

The decoder builds OpenTelemetry SDK spans, and the SDK is the ``sdk`` extra: its names here
load on first use (PEP 562), so importing the package does not need it.
"""

from typing import TYPE_CHECKING, Any

from clicktrace.ingest.attributes import MAX_ATTRIBUTES_PER_SPAN
from clicktrace.ingest.limits import MAX_SPANS_PER_REQUEST
from clicktrace.ingest.route import DEFAULT_MAX_BODY_BYTES, TRACES_PATH, browser_traces_route
from clicktrace.web._limits import RateLimit, RateLimiter

if TYPE_CHECKING:
    from clicktrace.ingest.otlp_json import Decoded, decode_request

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_ATTRIBUTES_PER_SPAN",
    "MAX_SPANS_PER_REQUEST",
    "TRACES_PATH",
    "Decoded",
    "RateLimit",
    "RateLimiter",
    "browser_traces_route",
    "decode_request",
]

_DECODER = frozenset({"Decoded", "decode_request"})


def __getattr__(name: str) -> Any:
    if name in _DECODER:
        from clicktrace.ingest import otlp_json

        return getattr(otlp_json, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
