"""``GET /clicktrace/health``: the checks, in the usual health-check shape.

``{"status": "Healthy" | "Degraded" | "Unhealthy", "totalDuration": "00:00:00.0123456",
"entries": {name: {"status", "description", "duration", "data"}}}``; the worst entry decides
the status; 200 for Healthy and Degraded, 503 for Unhealthy (a load balancer takes the node
out only when it cannot serve). Checks run concurrently, each bounded by ``timeout``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace.health.checks import RANK, Check, Result

__all__ = ["HEALTH_PATH", "health_route", "run_checks"]

HEALTH_PATH = "/clicktrace/health"


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


async def run_checks(checks: Sequence[Check], timeout: float = 2.0) -> dict[str, Any]:
    """The health document for ``checks`` (never raises)."""
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


def health_route(
    checks: Sequence[Check], *, timeout: float = 2.0, path: str = HEALTH_PATH
) -> Route:
    """The health route over ``checks`` (see :mod:`clicktrace.health.checks`)."""
    names = [check.name for check in checks]
    if len(set(names)) != len(names):
        raise ValueError("every check needs its own name")
    if not timeout > 0:
        raise ValueError("timeout must be positive")
    chosen = list(checks)

    async def endpoint(request: Request) -> Response:
        body = await run_checks(chosen, timeout)
        return JSONResponse(
            body,
            503 if body["status"] == "Unhealthy" else 200,
            headers={"cache-control": "no-store"},
        )

    return Route(path, endpoint, methods=["GET"])
