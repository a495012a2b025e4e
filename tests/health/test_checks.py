"""What the shipped checks report beyond a ping: a bus that had to re-create what its broker
forgot, and an outbox whose reconciler gave up on a row (a command nobody will apply unless a
person acts). Both against the real thing: a private redis-server restarted empty, a SQLite
outbox whose message no consumer ever claims.

``correlations_check`` reads every open click, not the most recent few."""

from __future__ import annotations

import time
from pathlib import Path

import aiosqlite

from clicktrace.bus import MemoryBus, create_bus
from clicktrace.claims import SqliteClaims
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.health import bus_check, correlations_check, outbox_check
from clicktrace.ids import new_id
from clicktrace.journal import Entry, Journal, MemoryStore, Thresholds
from clicktrace.outbox import ClaimsConfirmation, OutboxRelay, SqliteOutbox
from clicktrace.testing import unique_name

from ..bus.private import PrivateRedis, wait_for


async def test_a_bus_that_re_created_what_its_broker_forgot_is_degraded_and_says_what() -> None:
    redis = PrivateRedis()
    await redis.start()
    bus = create_bus(redis.url, block_ms=100)
    handled: list[str] = []

    async def handle(envelope: Envelope) -> None:
        handled.append(envelope.metadata.message_id)

    topic = unique_name("health")
    bus.subscribe(topic, handle, group="g")
    try:
        await bus.start()
        check = bus_check(bus)
        before = await check()
        assert before.status == "Healthy"
        assert "last_recovery" not in before.data
        await redis.kill()
        await redis.start()  # empty: the stream and its group are gone
        await bus.publish(topic, new_envelope("T", {"n": 1}))
        await wait_for(lambda: len(handled) == 1, "the message after the restart")
        after = await check()
        assert after.status == "Degraded"
        assert after.data["recoveries"] >= 1
        assert "had lost" in after.description
        assert after.data["last_recovery"]["seconds_ago"] >= 0
    finally:
        await bus.close()
        await redis.kill()


async def test_an_outbox_row_no_consumer_ever_claimed_makes_the_outbox_degraded(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "app.db")
    outbox, claims = SqliteOutbox(), SqliteClaims()
    bus = MemoryBus()  # nobody subscribes: the broker "loses" everything
    skipped, later = new_envelope("Renamed", {"id": 1}), new_envelope("Renamed", {"id": 2})
    async with aiosqlite.connect(db) as conn:
        await outbox.create_tables(conn)
        await claims.create_tables(conn)
        await outbox.add(conn, "products", skipped)
        await outbox.add(conn, "products", later)
        # The consumer claimed the later one: the first was skipped, not merely late.
        await claims.claim(conn, "projection", later.metadata.message_id)
        await conn.commit()
    relay = OutboxRelay(
        outbox,
        connect=lambda: aiosqlite.connect(db),
        bus=bus,
        confirm=ClaimsConfirmation(claims, groups=["projection"], max_republish=0),
    )
    check = outbox_check(outbox, lambda: aiosqlite.connect(db))
    await bus.start()
    try:
        await relay.drain()
        waiting = await check()
        assert waiting.status == "Healthy"
        assert (waiting.data["awaiting_claims"], waiting.data["gave_up"]) == (2, 0)
        async with aiosqlite.connect(db) as conn:  # the grace runs out
            await conn.execute(f"UPDATE {outbox.table} SET sent_at = ?", (time.time() - 3600,))
            await conn.commit()
        assert (await relay.reconcile_once()).gave_up == 1
        given_up = await check()
        assert given_up.status == "Degraded"
        assert given_up.data["gave_up"] == 1
        assert "never claimed" in given_up.description
    finally:
        await relay.close()
        await bus.close()


async def test_a_stuck_click_behind_600_newer_ones_is_still_seen_and_the_cut_counted() -> None:
    store = MemoryStore()
    journal = Journal(store)
    now = time.time() * 1000.0
    stuck = new_id()
    store.add(Entry(correlation_id=stuck, stage="accepted", at=now - 120_000, outcome="202"))
    store.add(Entry(correlation_id=stuck, stage="delivered", at=now - 119_000))
    for i in range(600):  # newer, settled: the newest 500 of the journal hold none stuck
        cid = new_id()
        store.add(Entry(correlation_id=cid, stage="accepted", at=now - 1000 + i, outcome="202"))
        store.add(
            Entry(correlation_id=cid, stage="notified", at=now - 999 + i, outcome="confirmed")
        )
    for _ in range(3):  # open, recent: in flight
        store.add(Entry(correlation_id=new_id(), stage="accepted", at=now - 10, outcome="202"))
    result = await correlations_check(journal, thresholds=Thresholds(30_000), limit=2)()
    assert result.status == "Degraded"
    assert result.data["stuck"] == 1
    assert result.data["oldest_stuck"]["correlation_id"] == stuck
    assert (result.data["open"], result.data["scanned"], result.data["not_scanned"]) == (4, 2, 2)
    assert "the oldest 2 of 4 open read" in result.description
