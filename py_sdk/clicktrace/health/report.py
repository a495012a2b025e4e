"""The health report every health endpoint serves (the app's route, a worker's listener).

Checks cost round trips to brokers and stores; a probe costs the node nothing much only if
they run at most once per ``interval`` whoever asks, so a :class:`Report` keeps the last
result and every caller during a run waits for that one run (single flight). What a caller is
shown depends on who it is: anonymous callers get the status alone (entries name correlation
ids, hosts and error texts); the operator token (``authorization: Bearer …``, from the
``operator_token`` setting or ``CLICKTRACE_OPERATOR_TOKEN``) gets the whole document.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from clicktrace.health.checks import RANK, Check, Result
from clicktrace.web._limits import OPERATOR_TOKEN_ENV, is_operator

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_TIMEOUT",
    "HEALTH_PATH",
    "Report",
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
        value, or ``None``): the whole document for the operator, the status for anyone."""
        answer = await self._answer()
        body = answer.full if is_operator(authorization, self.operator_token) else answer.public
        return answer.code, body

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
