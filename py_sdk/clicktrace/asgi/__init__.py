"""The HTTP edge: ASGI middleware, the protocol's error responses, CORS settings."""

from clicktrace.asgi.errors import error_body, error_response
from clicktrace.asgi.middleware import ClicktraceMiddleware

__all__ = ["ClicktraceMiddleware", "error_body", "error_response"]
