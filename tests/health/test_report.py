"""The report behind every health endpoint: at most one run per interval, shared by the callers
that arrive during it, never cancelled by one of them going away. (The bearer-token rule is
tested in tests/web/test_limits.py.)"""

from __future__ import annotations

import asyncio

import pytest

from clicktrace.health import Check, Result
from clicktrace.health.report import Report


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Gated:
    """A check whose runs are counted and held until ``gate`` is set."""

    def __init__(self) -> None:
        self.runs = 0
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self) -> Result:
        self.runs += 1
        self.started.set()
        await self.gate.wait()
        return Result("Healthy", f"run {self.runs}")


async def test_the_checks_run_again_once_the_interval_has_passed() -> None:
    gated, clock = Gated(), Clock()
    report = Report([Check("gated", gated)], interval=5.0, clock=clock)
    assert (await report.latest())["entries"]["gated"]["description"] == "run 1"
    clock.now += 4.9
    assert (await report.latest())["entries"]["gated"]["description"] == "run 1"
    clock.now += 0.1
    assert (await report.latest())["entries"]["gated"]["description"] == "run 2"
    assert (gated.runs, report.runs) == (2, 2)


async def test_a_caller_going_away_does_not_cancel_the_run_the_others_wait_for() -> None:
    gated = Gated()
    gated.gate.clear()
    report = Report([Check("gated", gated)], interval=60.0)
    leaving = asyncio.create_task(report.answer(None))
    await asyncio.wait_for(gated.started.wait(), 10)
    staying = asyncio.create_task(report.answer(None))
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    gated.gate.set()
    assert await asyncio.wait_for(staying, 10) == (200, b'{"status":"Healthy"}')
    assert gated.runs == 1


async def test_the_document_handed_out_is_a_copy() -> None:
    report = Report([Check("gated", Gated())], interval=60.0)
    (await report.latest())["status"] = "Unhealthy"
    assert (await report.latest())["status"] == "Healthy"


async def test_retry_after_is_the_interval_rounded_up_and_at_least_one_second() -> None:
    assert Report([], interval=0).retry_after == 1
    assert Report([], interval=2.5).retry_after == 3


def test_the_same_report_serves_event_loops_one_after_the_other() -> None:
    # An app served again (a test's second server) finds the run of a loop that has gone.
    gated = Gated()
    report = Report([Check("gated", gated)], interval=0)
    assert asyncio.run(report.answer(None))[0] == 200
    assert asyncio.run(report.answer(None))[0] == 200
    assert gated.runs == 2
