"""The HTTP edge: ASGI middleware, the protocol's error responses, CORS settings."""

from clicktrace.asgi.cors import (
    ALLOW_HEADERS,
    EXPOSE_HEADERS,
    add_cors,
    cors_middleware,
    cors_options,
)
from clicktrace.asgi.errors import Refusal, error_body, error_response, send_error
from clicktrace.asgi.middleware import ClicktraceMiddleware

__all__ = [
    "ALLOW_HEADERS",
    "EXPOSE_HEADERS",
    "ClicktraceMiddleware",
    "Refusal",
    "add_cors",
    "cors_middleware",
    "cors_options",
    "error_body",
    "error_response",
    "send_error",
]
