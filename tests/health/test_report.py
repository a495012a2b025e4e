"""The report behind every health endpoint: at most one run per interval, shared by the callers
that arrive during it, never cancelled by one of them going away. (The bearer-token rule is
tested in tests/web/test_limits.py.)

/clicktrace/health: the shape, the status rules, a store or broker that is down, and what
an anonymous caller may see (the status alone) against the operator (everything)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiosqlite
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from clicktrace.bus import MemoryBus, create_bus
from clicktrace.envelope import new_envelope
from clicktrace.health import (
    Check,
    Result,
    bus_check,
    correlations_check,
    health_route,
    journal_check,
    outbox_check,
    replay_check,
)
from clicktrace.health._report import Report, report_of
from clicktrace.journal import Entry, Journal, MemoryStore, Thresholds, create_journal
from clicktrace.notify import MemoryReplayBuffer
from clicktrace.outbox import SqliteOutbox


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


CID = "01JD8X3Q7E8W5V4T2N9R6M0K1A"
TOKEN = "operator-token-of-this-test-0123456789"
OPERATOR = {"authorization": f"Bearer {TOKEN}"}


async def get(
    *checks: Check, headers: dict[str, str] | None = None, method: str = "GET"
) -> httpx.Response:
    """One request to a fresh route over ``checks``; the operator's unless ``headers``."""
    app = Starlette(routes=[health_route(list(checks), timeout=1.0, operator_token=TOKEN)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        return await client.request(
            method, "/clicktrace/health", headers=OPERATOR if headers is None else headers
        )


async def test_all_healthy_is_200_in_the_usual_shape() -> None:
    bus = MemoryBus()
    await bus.start()
    journal = Journal(MemoryStore())
    r = await get(
        bus_check(bus),
        journal_check(journal),
        correlations_check(journal),
        replay_check(MemoryReplayBuffer()),
    )
    await bus.close()
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "Healthy"
    assert set(body["entries"]) == {"bus", "journal", "correlations", "notify_replay"}
    for entry in body["entries"].values():
        assert set(entry) == {"status", "description", "duration", "data"}
        assert entry["duration"].startswith("00:00:")


async def test_an_unreachable_broker_is_unhealthy_and_503() -> None:
    bus = create_bus("redis://127.0.0.1:1/0")  # nothing listens on port 1
    r = await get(bus_check(bus))  # never started: ping refuses
    assert r.status_code == 503
    assert r.json()["status"] == "Unhealthy"


async def test_a_journal_store_that_is_down_is_degraded_and_still_200() -> None:
    journal = create_journal("redis://127.0.0.1:1/0", timeout=0.2)
    journal.put(Entry(correlation_id=CID, stage="accepted", at=1.0))  # never raises
    await journal.flush()
    r = await get(journal_check(journal))
    assert r.status_code == 200
    entry = r.json()["entries"]["journal"]
    assert (r.json()["status"], entry["status"]) == ("Degraded", "Degraded")
    assert entry["data"]["drops"] == 1
    await journal.aclose()


async def test_a_check_that_hangs_reports_its_failure_status() -> None:
    async def hang() -> Result:
        await asyncio.sleep(10)
        return Result("Healthy", "never")

    r = await get(Check("slow", hang, "Degraded"))
    assert r.json()["entries"]["slow"]["status"] == "Degraded"
    assert "no answer within" in r.json()["entries"]["slow"]["description"]


async def test_stuck_correlations_are_counted_with_the_oldest() -> None:
    journal = Journal(MemoryStore())
    old = time.time() * 1000 - 60_000
    for stage in ("accepted", "stored", "relayed", "published", "delivered"):
        journal.put(Entry(correlation_id=CID, stage=stage, at=old, trace_id="a" * 32))
    r = await get(correlations_check(journal, thresholds=Thresholds(stuck_after_ms=1000)))
    data = r.json()["entries"]["correlations"]["data"]
    assert r.json()["status"] == "Degraded"
    assert data["stuck"] == 1
    assert data["oldest_stuck"]["correlation_id"] == CID
    assert data["oldest_stuck"]["verdict"].startswith("stuck at delivered")


async def test_outbox_lag_names_the_oldest_unrelayed_row(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    outbox = SqliteOutbox()
    async with aiosqlite.connect(path) as conn:
        await outbox.create_tables(conn)
        await outbox.add(conn, "t", new_envelope("T", {}))
        await conn.execute("UPDATE clicktrace_outbox SET created_at = created_at - 100")
        await conn.commit()
    r = await get(outbox_check(outbox, lambda: aiosqlite.connect(path)))
    entry = r.json()["entries"]["outbox"]
    assert entry["status"] == "Degraded"
    assert entry["data"]["unrelayed"] == 1
    assert entry["data"]["oldest_age_seconds"] >= 100


@pytest.mark.broker
@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "amqp://guest:guest@127.0.0.1:5672/",
        "nats://127.0.0.1:4222",
        "memory://",
    ],
)
async def test_every_bus_answers_a_real_ping(url: str) -> None:
    bus = create_bus(url)
    await bus.start()
    try:
        await bus.ping()
        r = await get(bus_check(bus))
        assert r.json()["entries"]["bus"]["status"] == "Healthy"
    finally:
        await bus.close()


async def stuck_and_unreachable() -> tuple[list[Check], Journal]:
    """A stuck click (its id in the entries) and a journal store that refuses (its host:port
    and the client's error text in the entries): what an anonymous caller must not learn."""
    journal = Journal(MemoryStore())
    old = time.time() * 1000 - 60_000
    for stage in ("accepted", "stored"):
        journal.put(Entry(correlation_id=CID, stage=stage, at=old, trace_id="a" * 32))
    down = create_journal("redis://127.0.0.1:1/0", timeout=0.2)
    checks = [
        correlations_check(journal, thresholds=Thresholds(stuck_after_ms=1000)),
        journal_check(down, name="shared_journal"),
    ]
    return checks, down


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer not-the-token"},
        {"authorization": f"Basic {TOKEN}"},
        {"authorization": f"Bearer {TOKEN}x"},
        {"authorization": "Bearer " + " " * 2000 + TOKEN},
    ],
    ids=["none", "wrong", "not-bearer", "longer", "oversized"],
)
async def test_an_anonymous_caller_learns_the_status_and_nothing_else(
    headers: dict[str, str],
) -> None:
    checks, down = await stuck_and_unreachable()
    r = await get(*checks, headers=headers)
    await down.aclose()
    assert (r.status_code, r.json()) == (200, {"status": "Degraded"})
    for secret in (CID, "127.0.0.1", ":1", "Error", "stuck"):
        assert secret not in r.text


async def test_the_operator_sees_the_ids_and_the_errors() -> None:
    checks, down = await stuck_and_unreachable()
    r = await get(*checks)
    await down.aclose()
    entries = r.json()["entries"]
    assert entries["correlations"]["data"]["oldest_stuck"]["correlation_id"] == CID
    assert "127.0.0.1:1" in entries["shared_journal"]["data"]["last_error"]


async def test_without_an_operator_token_nobody_sees_the_entries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CLICKTRACE_OPERATOR_TOKEN", raising=False)
    app = Starlette(routes=[health_route([bus_check(MemoryBus())])])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        for authorization in ("Bearer ", "Bearer", "Bearer None"):
            r = await client.get("/clicktrace/health", headers={"authorization": authorization})
            assert r.json() == {"status": "Unhealthy"}


async def test_the_operator_token_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLICKTRACE_OPERATOR_TOKEN", "from-the-environment")
    app = Starlette(routes=[health_route([replay_check(MemoryReplayBuffer())])])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        r = await client.get(
            "/clicktrace/health", headers={"authorization": "bearer from-the-environment"}
        )
    assert set(r.json()["entries"]) == {"notify_replay"}


async def test_unhealthy_is_503_with_retry_after_for_everyone() -> None:
    never_started = MemoryBus()
    for headers in ({}, OPERATOR):
        r = await get(bus_check(never_started), headers=headers)
        assert (r.status_code, r.json()["status"]) == (503, "Unhealthy")
        assert r.headers["retry-after"] == "5"  # the default interval: the next run
        assert r.headers["cache-control"] == "no-store"


async def test_head_answers_the_status_code_without_a_body() -> None:
    r = await get(bus_check(MemoryBus()), method="HEAD")
    assert (r.status_code, r.content) == (503, b"")


async def test_another_method_is_405() -> None:
    r = await get(replay_check(MemoryReplayBuffer()), method="POST")
    assert r.status_code == 405


async def test_many_callers_within_the_interval_share_one_run() -> None:
    counted = Gated()
    counted.gate.clear()
    app = Starlette(routes=[health_route([Check("counted", counted)], interval=3600)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        first = [asyncio.create_task(client.get("/clicktrace/health")) for _ in range(20)]
        await asyncio.wait_for(counted.started.wait(), 10)
        counted.gate.set()
        answers = await asyncio.gather(*first)
        later = [await client.get("/clicktrace/health") for _ in range(20)]
    assert counted.runs == 1
    assert {r.status_code for r in [*answers, *later]} == {200}


async def test_an_interval_of_zero_runs_the_checks_for_every_request() -> None:
    counted = Gated()
    app = Starlette(routes=[health_route([Check("counted", counted)], interval=0)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        for _ in range(3):
            await client.get("/clicktrace/health")
    assert counted.runs == 3


def test_the_route_refuses_settings_it_cannot_honour() -> None:
    check = replay_check(MemoryReplayBuffer())
    with pytest.raises(ValueError, match="own name"):
        health_route([check, check])
    with pytest.raises(ValueError, match="timeout"):
        health_route([check], timeout=0)
    for interval in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="interval"):
            health_route([check], interval=interval)


async def test_the_report_a_route_serves_is_reachable_for_the_console() -> None:
    async def fine() -> Result:
        return Result("Healthy", "ok")

    route = health_route([Check("fine", fine)], operator_token="t")
    document = await report_of(route).latest()
    assert document["entries"]["fine"]["status"] == "Healthy"
    with pytest.raises(TypeError, match="health_route"):
        report_of(Route("/x", fine))
