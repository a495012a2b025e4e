"""A route's refusal in the protocol's error shape, with the correlation id in the body and
in ``x-correlation-id``, whether or not the middleware runs in front of the route.

Behind :class:`~clicktrace.asgi.ClicktraceMiddleware` the id is the bound one; without it, the
request's own valid ``x-correlation-id``, else a fresh one.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import HTTPConnection
from starlette.responses import Response

from clicktrace import context as click_context
from clicktrace.ids import new_id, parse_id
from clicktrace.web._errors import Refusal

__all__ = ["correlation_id_of", "refuse"]


def correlation_id_of(conn: HTTPConnection) -> str:
    bound = click_context.current()
    if bound is not None:
        return bound.correlation_id
    values = conn.headers.getlist("x-correlation-id")
    parsed = parse_id(values[0].strip(" \t")) if len(values) == 1 else None
    return parsed or new_id()


def refuse(
    refusal: Refusal, correlation_id: str, headers: Mapping[str, str] | None = None
) -> Response:
    """``refusal`` as a response whose body and ``x-correlation-id`` carry ``correlation_id``."""
    return Response(
        refusal.body(correlation_id),
        refusal.status,
        headers={**(headers or {}), "x-correlation-id": correlation_id},
        media_type="application/json",
    )
