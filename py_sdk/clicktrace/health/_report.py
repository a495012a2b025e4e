"""The health report every health endpoint serves, and the app's route that serves it
(a worker without HTTP serves it with :mod:`._listener`).

Checks cost round trips to brokers and stores; a probe costs the node nothing much only if
they run at most once per ``interval`` whoever asks, so a :class:`Report` keeps the last
result and every caller during a run waits for that one run (single flight). What a caller is
shown depends on who it is: anonymous callers get the status alone (entries name correlation
ids, hosts and error texts); the operator token (``authorization: Bearer …``, from the
``operator_token`` setting or ``CLICKTRACE_OPERATOR_TOKEN``) gets the whole document.

``GET /clicktrace/health`` answers ``{"status": "Healthy" | "Degraded" | "Unhealthy",
"totalDuration": "00:00:00.0123456", "entries": {name: {"status", "description", "duration",
"data"}}}`` for the operator token, ``{"status": …}`` alone for anyone else; the worst entry
decides the status; 200 for Healthy and Degraded, 503 (with ``retry-after``) for Unhealthy: a
load balancer takes the node out only when it cannot serve. The endpoint is a bare ASGI app: a
probe, however frequent, costs a header lookup and a write of bytes encoded once per run.
:func:`in_front` answers it before the app's stack (middleware, spans, routing) even sees the
request: what ``clicktrace.install`` does, so a probe opens no span and costs the node next to
nothing. This module imports Starlette only when a route is built.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from clicktrace.health._checks import RANK, Check, Result
from clicktrace.web._limits import OPERATOR_TOKEN_ENV, is_operator

if TYPE_CHECKING:
    from starlette.routing import Route
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_TIMEOUT",
    "HEALTH_PATH",
    "Report",
    "health_route",
    "in_front",
    "report_of",
    "run_checks",
]

HEALTH_PATH = "/clicktrace/health"
DEFAULT_INTERVAL = 5.0
DEFAULT_TIMEOUT = 2.0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(max(0.0, seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:02d}:{minutes:02d}:{secs:010.7f}"


async def _run(check: Check, timeout: float) -> tuple[Result, float]:
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(check(), timeout)
    except TimeoutError:
        result = Result(check.failure, f"no answer within {timeout} s")
    except Exception as exc:
        result = Result(check.failure, f"{type(exc).__name__}: {exc}"[:200])
    return result, time.perf_counter() - started


async def run_checks(checks: Sequence[Check], timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """The health document for ``checks``, run concurrently now (never raises)."""
    started = time.perf_counter()
    results = await asyncio.gather(*(_run(check, timeout) for check in checks))
    status = "Healthy"
    entries: dict[str, Any] = {}
    for check, (result, took) in zip(checks, results, strict=True):
        if RANK[result.status] > RANK[status]:
            status = result.status
        entries[check.name] = {
            "status": result.status,
            "description": result.description,
            "duration": _duration(took),
            "data": result.data,
        }
    return {
        "status": status,
        "totalDuration": _duration(time.perf_counter() - started),
        "entries": entries,
    }


_HEADERS = [("content-type", "application/json"), ("cache-control", "no-store")]


class _Answer:
    """One report, encoded once for each kind of caller."""

    __slots__ = ("body", "code", "full", "public")

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.code = 503 if body["status"] == "Unhealthy" else 200
        self.full = json.dumps(body, separators=(",", ":"), default=str).encode()
        self.public = json.dumps({"status": body["status"]}, separators=(",", ":")).encode()


class Report:
    """``checks`` run at most once per ``interval`` seconds; :meth:`answer` serves the last
    result. A caller that finds the result older than ``interval`` starts a run (each check
    bounded by ``timeout``); callers arriving during it wait for the same run, which a
    caller going away does not cancel."""

    def __init__(
        self,
        checks: Sequence[Check],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        interval: float = DEFAULT_INTERVAL,
        operator_token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [check.name for check in checks]
        if len(set(names)) != len(names):
            raise ValueError("every check needs its own name")
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        if not interval >= 0 or math.isinf(interval):
            raise ValueError("interval must be a finite number of seconds, 0 or more")
        self.checks = tuple(checks)
        self.timeout = timeout
        self.interval = interval
        self.operator_token = (
            operator_token if operator_token is not None else os.environ.get(OPERATOR_TOKEN_ENV)
        )
        self.runs = 0
        """How many times the checks ran (what the interval bounds)."""
        self._clock = clock
        self._last: _Answer | None = None
        self._last_at = 0.0
        self._running: asyncio.Task[_Answer] | None = None

    @property
    def retry_after(self) -> int:
        """Seconds until a 503 could read otherwise: the next run, at least 1."""
        return max(1, math.ceil(self.interval))

    async def latest(self) -> dict[str, Any]:
        """The whole document of the last run (a new run if it is older than ``interval``)."""
        return copy.deepcopy((await self._answer()).body)

    async def answer(self, authorization: str | None) -> tuple[int, bytes]:
        """The HTTP status and JSON body for a caller sending ``authorization`` (the header's
        value, or ``None``; one over the token length limit is nobody's): the whole document
        for the operator, the status for anyone."""
        answer = await self._answer()
        body = answer.full if is_operator(authorization, self.operator_token) else answer.public
        return answer.code, body

    def headers(self, code: int) -> list[tuple[str, str]]:
        """The headers every endpoint sends beside :meth:`answer`'s body of status ``code``
        (its length aside): JSON, never cached, and when to ask again after a 503."""
        if code == 503:
            return [*_HEADERS, ("retry-after", str(self.retry_after))]
        return _HEADERS

    async def _answer(self) -> _Answer:
        last = self._last
        if last is not None and self._clock() - self._last_at < self.interval:
            return last
        running = self._running
        loop = asyncio.get_running_loop()
        # A run left by another event loop (an app served again, in tests) cannot be awaited.
        if running is None or running.get_loop() is not loop:
            running = self._running = loop.create_task(self._run())
        return await asyncio.shield(running)

    async def _run(self) -> _Answer:
        try:
            self.runs += 1
            answer = _Answer(await run_checks(self.checks, self.timeout))
            self._last, self._last_at = answer, self._clock()
            return answer
        finally:
            if self._running is asyncio.current_task():
                self._running = None


class _Endpoint:
    def __init__(self, report: Report) -> None:
        self.report = self._report = report
        # Encoded once: a probe costs a header lookup and a write.
        self._headers = {
            code: [(k.encode(), v.encode()) for k, v in report.headers(code)] for code in (200, 503)
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        code, body = await self._report.answer(authorization)
        headers = [*self._headers[code], (b"content-length", str(len(body)).encode())]
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
    """The health route over ``checks`` (see :mod:`clicktrace.health._checks`), run at most
    once per ``interval`` seconds, each bounded by ``timeout``; ``operator_token`` (default
    ``$CLICKTRACE_OPERATOR_TOKEN``) unlocks the entries."""
    from starlette.routing import Route

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


def report_of(route: Route) -> Report:
    """The :class:`Report` a :func:`health_route` serves (the console shows its document)."""
    if not isinstance(route.endpoint, _Endpoint):
        raise TypeError("report_of() takes a route made by health_route()")
    return route.endpoint.report


def in_front(app: ASGIApp, route: Route) -> ASGIApp:
    """``app`` with the GET and HEAD requests of ``route`` (a :func:`health_route`) answered
    before ``app`` sees them. Keep the route in the app too: it answers what this does not
    match (a path under a ``root_path``, another method with 405)."""
    if not isinstance(route.endpoint, _Endpoint):
        raise TypeError("in_front() takes a route made by health_route()")
    return _InFront(app, route.endpoint, route.path)
