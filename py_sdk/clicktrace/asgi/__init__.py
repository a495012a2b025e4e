"""The HTTP edge: the ASGI middleware that binds a click's ids, spans and journal entry to each
request. The HTTP kit its routes share (errors, bodies, limits, CORS) is ``clicktrace.web``."""

from clicktrace.asgi.middleware import ClicktraceMiddleware

__all__ = ["ClicktraceMiddleware"]
