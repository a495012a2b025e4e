"""CORS settings for a browser on another origin: it may send the trace and clicktrace
headers, and read ``x-correlation-id``, ``traceresponse`` and ``Server-Timing`` back, the last
also through the Resource Timing API (``Timing-Allow-Origin``, set to the allowed origin on
every response CORS allows).

Add the CORS middleware *after* :class:`ClicktraceMiddleware` (so it is outermost): then the
500 the clicktrace middleware sends for an unhandled exception gets CORS headers too and
the tab can read its body. Preflight answers then come from CORS alone, without clicktrace
headers, which is harmless: a preflight is not the user's request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Send

from clicktrace import protocol

__all__ = [
    "ALLOW_HEADERS",
    "EXPOSE_HEADERS",
    "TimingCORSMiddleware",
    "add_cors",
    "cors_middleware",
    "cors_options",
]

ALLOW_HEADERS = (
    "content-type",
    protocol.TRACEPARENT_HEADER,
    protocol.TRACESTATE_HEADER,
    protocol.BAGGAGE_HEADER,
    protocol.CORRELATION_HEADER,
    protocol.CAUSATION_HEADER,
    protocol.CLIENT_HEADER,
    protocol.DEADLINE_HEADER,
)
EXPOSE_HEADERS = (
    protocol.CORRELATION_HEADER,
    protocol.TRACERESPONSE_HEADER,
    protocol.SERVER_TIMING_HEADER,
)


class TimingCORSMiddleware(CORSMiddleware):
    """Starlette's ``CORSMiddleware``, which also answers ``Timing-Allow-Origin`` with the
    ``Access-Control-Allow-Origin`` it allowed (the origin, or ``*``), unless the app set one:
    without it a page on another origin sees no ``serverTiming`` entries in its Resource
    Timing (what RUM tools such as Grafana Faro read the trace context from)."""

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        if message["type"] != "http.response.start":
            await send(message)
            return

        async def with_timing(start: Message) -> None:
            headers = MutableHeaders(scope=start)
            allowed = headers.get("access-control-allow-origin")
            if allowed is not None and protocol.TIMING_ALLOW_ORIGIN_HEADER not in headers:
                headers[protocol.TIMING_ALLOW_ORIGIN_HEADER] = allowed
            await send(start)

        await super().send(message, with_timing, request_headers)


def _merge(ours: Sequence[str], theirs: Sequence[str]) -> list[str]:
    merged = list(ours)
    merged += [h for h in (h.lower() for h in theirs) if h not in merged]
    return merged


def cors_options(
    allow_origins: Sequence[str],
    *,
    allow_methods: Sequence[str] = ("GET", "POST", "PUT", "PATCH", "DELETE"),
    allow_headers: Sequence[str] = (),
    expose_headers: Sequence[str] = (),
    **options: Any,
) -> dict[str, Any]:
    """Keyword arguments for Starlette's ``CORSMiddleware`` (or :class:`TimingCORSMiddleware`,
    which the two helpers below use): yours, plus the headers clicktrace needs. Other
    ``options`` (``allow_credentials``, ``max_age``, ...) pass through."""
    if isinstance(allow_origins, str):
        raise TypeError("allow_origins must be a sequence of origins, not one string")
    return {
        "allow_origins": list(allow_origins),
        "allow_methods": list(allow_methods),
        "allow_headers": _merge(ALLOW_HEADERS, allow_headers),
        "expose_headers": _merge(EXPOSE_HEADERS, expose_headers),
        **options,
    }


def cors_middleware(allow_origins: Sequence[str], **options: Any) -> Middleware:
    """For ``Starlette(middleware=[...])``: list it before ``Middleware(ClicktraceMiddleware)``."""
    return Middleware(TimingCORSMiddleware, **cors_options(allow_origins, **options))


def add_cors(app: Starlette, allow_origins: Sequence[str], **options: Any) -> None:
    """``app.add_middleware(TimingCORSMiddleware, ...)``; call it after adding the clicktrace
    one."""
    app.add_middleware(TimingCORSMiddleware, **cors_options(allow_origins, **options))
