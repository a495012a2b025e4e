"""``GET /clicktrace/health``: the app's health endpoint, served from a :class:`Report`.

``{"status": "Healthy" | "Degraded" | "Unhealthy", "totalDuration": "00:00:00.0123456",
"entries": {name: {"status", "description", "duration", "data"}}}`` for the operator token,
``{"status": …}`` alone for anyone else; the worst entry decides the status; 200 for Healthy
and Degraded, 503 (with ``retry-after``) for Unhealthy: a load balancer takes the node out
only when it cannot serve. The endpoint is a bare ASGI app: a probe, however frequent, costs
a header lookup and a write of bytes encoded once per run. :func:`in_front` answers it before
the app's stack (middleware, spans, routing) even sees the request: what
``clicktrace.install`` does, so a probe opens no span and costs the node next to nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from clicktrace.health.checks import Check
from clicktrace.health.report import (
    DEFAULT_INTERVAL,
    DEFAULT_TIMEOUT,
    HEALTH_PATH,
    Report,
)
from clicktrace.web._limits import MAX_AUTHORIZATION_LENGTH

__all__ = ["HEALTH_PATH", "health_route", "in_front"]

_JSON = (b"content-type", b"application/json")
_NO_STORE = (b"cache-control", b"no-store")


class _Endpoint:
    def __init__(self, report: Report) -> None:
        self._report = report
        self._retry_after = (b"retry-after", str(report.retry_after).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if len(value) <= MAX_AUTHORIZATION_LENGTH:
                    authorization = value.decode("latin-1")
                break
        code, body = await self._report.answer(authorization)
        headers = [_JSON, _NO_STORE, (b"content-length", str(len(body)).encode())]
        if code == 503:
            headers.append(self._retry_after)
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )


def health_route(
    checks: Sequence[Check],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    operator_token: str | None = None,
    path: str = HEALTH_PATH,
) -> Route:
    """The health route over ``checks`` (see :mod:`clicktrace.health.checks`), run at most
    once per ``interval`` seconds, each bounded by ``timeout``; ``operator_token`` (default
    ``$CLICKTRACE_OPERATOR_TOKEN``) unlocks the entries."""
    report = Report(checks, timeout=timeout, interval=interval, operator_token=operator_token)
    return Route(path, _Endpoint(report), methods=["GET"])  # Starlette adds HEAD


class _InFront:
    def __init__(self, app: ASGIApp, endpoint: ASGIApp, path: str) -> None:
        self._app = app
        self._endpoint = endpoint
        self._path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == self._path
            and scope["method"] in ("GET", "HEAD")
        ):
            await self._endpoint(scope, receive, send)
        else:
            await self._app(scope, receive, send)


def in_front(app: ASGIApp, route: Route) -> ASGIApp:
    """``app`` with the GET and HEAD requests of ``route`` (a :func:`health_route`) answered
    before ``app`` sees them. Keep the route in the app too: it answers what this does not
    match (a path under a ``root_path``, another method with 405)."""
    if not isinstance(route.endpoint, _Endpoint):
        raise TypeError("in_front() takes a route made by health_route()")
    return _InFront(app, route.endpoint, route.path)
