"""/clicktrace/health: the shape, the status rules, and a store or broker that is down."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiosqlite
import httpx
import pytest
from starlette.applications import Starlette

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
from clicktrace.journal import Entry, Journal, MemoryStore, Thresholds, create_journal
from clicktrace.notify.replay import MemoryReplayBuffer
from clicktrace.outbox import SqliteOutbox

CID = "01JD8X3Q7E8W5V4T2N9R6M0K1A"


async def get(*checks: Check) -> httpx.Response:
    app = Starlette(routes=[health_route(list(checks), timeout=1.0)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        return await client.get("/clicktrace/health")


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
