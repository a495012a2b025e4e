"""Browser span ingestion: OTLP/JSON from the Pinia plugin into the server's trace pipeline."""

from clicktrace.asgi.ratelimit import RateLimit, RateLimiter
from clicktrace.ingest.attributes import MAX_ATTRIBUTES_PER_SPAN
from clicktrace.ingest.otlp_json import MAX_SPANS_PER_REQUEST, Decoded, decode_request
from clicktrace.ingest.route import DEFAULT_MAX_BODY_BYTES, TRACES_PATH, browser_traces_route

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
