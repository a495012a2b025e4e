"""The HTTP kit every clicktrace route stands on: the protocol's error responses and refusals,
bounded body readers, rate limits and peer addresses, CORS settings, exception handlers.

It sits below every route (the journal's, health's, the ingest's, the notifier's session route,
an app's command routes) and above nothing but ``ids``, ``context`` and ``protocol``.
"""

from clicktrace.web._body import path_int, read_body, read_json, read_json_object
from clicktrace.web._cors import (
    ALLOW_HEADERS,
    EXPOSE_HEADERS,
    add_cors,
    cors_middleware,
    cors_options,
)
from clicktrace.web._errors import Refusal, error_body, error_response, is_outage, send_error
from clicktrace.web._handlers import exception_handlers
from clicktrace.web._peer import forwarded_peer, peer_address
from clicktrace.web._ratelimit import RateLimit, RateLimiter
from clicktrace.web._refusal import correlation_id_of, refuse

__all__ = [
    "ALLOW_HEADERS",
    "EXPOSE_HEADERS",
    "RateLimit",
    "RateLimiter",
    "Refusal",
    "add_cors",
    "correlation_id_of",
    "cors_middleware",
    "cors_options",
    "error_body",
    "error_response",
    "exception_handlers",
    "forwarded_peer",
    "is_outage",
    "path_int",
    "peer_address",
    "read_body",
    "read_json",
    "read_json_object",
    "refuse",
    "send_error",
]
