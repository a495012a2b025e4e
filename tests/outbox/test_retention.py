"""Outbox retention: done rows go after ``keep_seconds`` (the relay prunes every minute, a
batch at a time), unsent rows and rows waiting for their claims never do (a warning names
old unsent ones). And a fill: every table of the write path stays bounded while commands
keep coming."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import pytest

from clicktrace.bus import MemoryBus
from clicktrace.claims import Answer, PostgresClaims
from clicktrace.claims._base import encode_answer
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.ids import new_id
from clicktrace.outbox import ClaimsConfirmation, OutboxRelay, PostgresOutbox, SqliteOutbox
from clicktrace.outbox import _relay as relay_module
from clicktrace.testing import unique_name

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


async def _bus() -> MemoryBus:
    bus = MemoryBus()
    await bus.start()
    return bus


async def test_the_relay_prunes_done_rows_only_and_names_old_unsent_ones(
    pg: Any, table: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(relay_module, "PRUNE_LIMIT", 3)  # so it takes several batches
    outbox = PostgresOutbox(table=table)
    await outbox.create_tables(pg)
    bus = await _bus()
    relay = OutboxRelay(outbox, connect=lambda: asyncpg.connect(PG_DSN), bus=bus, keep_seconds=3600)
    for i in range(8):
        await outbox.add(pg, "products", new_envelope("T", i))
    await relay.drain()
    await outbox.add(pg, "products", new_envelope("T", "waits for its claim"))
    await pg.execute(f"UPDATE {table} SET sent_at = now() WHERE done_at IS NULL")
    await outbox.add(pg, "products", new_envelope("T", "unsent"))
    assert await relay.prune_once() == 0  # nothing is an hour old yet
    await pg.execute(
        f"UPDATE {table} SET done_at = done_at - interval '2 hours', "
        "sent_at = sent_at - interval '2 hours', created_at = created_at - interval '2 hours'"
    )
    with caplog.at_level(logging.WARNING, "clicktrace.outbox"):
        assert await relay.prune_once() == 8
    assert "1 unsent row(s)" in caplog.text
    stats = await relay.stats()
    assert (stats.rows, stats.unsent, stats.awaiting_claims) == (2, 1, 1)
    await relay.close()
    await bus.close()


def test_bad_retention_settings_are_refused() -> None:
    bus = MemoryBus()
    with pytest.raises(ValueError):
        OutboxRelay(SqliteOutbox(), connect=lambda: None, bus=bus, keep_seconds=0)  # type: ignore[arg-type, return-value]
    with pytest.raises(ValueError):
        OutboxRelay(SqliteOutbox(), connect=lambda: None, bus=bus, prune_interval=0)  # type: ignore[arg-type, return-value]


ROUNDS, PER_ROUND = 10, 1000
PRUNE_EVERY = 200


async def _fill(prefix: str, *, retention: bool) -> dict[str, tuple[int, int]]:
    """``ROUNDS * PER_ROUND`` commands, each with its retry claim and outbox row in one
    transaction, relayed over the memory bus to a projection that claims it in PostgreSQL.
    Between rounds the clock "moves" a day (rows are back-dated) and the tables are vacuumed
    (as autovacuum would): what retention keeps is then at most the last round. Returns each
    table's (rows, bytes) at the end, and checks the bound after every round."""
    pool = await asyncpg.create_pool(PG_DSN, min_size=2, max_size=4)
    keep = 3600.0
    outbox = PostgresOutbox(table=f"{prefix}_outbox")
    claims = PostgresClaims(table=f"{prefix}_processed", keep_seconds=keep, prune_every=PRUNE_EVERY)
    retries = PostgresClaims(f"{prefix}_commands", keep_seconds=keep, prune_every=PRUNE_EVERY)
    if not retention:  # the same writes, nothing ever deleted
        claims = PostgresClaims(table=claims.table, keep_seconds=keep, prune_every=10**9)
        retries = PostgresClaims(retries.table, keep_seconds=keep, prune_every=10**9)
    tables = [outbox.table, claims.table, retries.table]
    bus = MemoryBus()

    async def project(envelope: Envelope) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await claims.claim(conn, "projection", envelope.metadata.message_id)

    bus.subscribe("products", project, group="projection")
    await bus.start()
    relay = OutboxRelay(
        outbox,
        connect=lambda: asyncpg.connect(PG_DSN),
        bus=bus,
        batch=500,
        confirm=ClaimsConfirmation(claims, groups=["projection"], grace_seconds=60),
        keep_seconds=keep if retention else None,
    )
    try:
        async with pool.acquire() as conn:
            await outbox.create_tables(conn)
            await claims.create_tables(conn)
            await retries.create_tables(conn)
        for _ in range(ROUNDS):
            async with pool.acquire() as conn:
                for _ in range(PER_ROUND):
                    key = new_id()
                    async with conn.transaction():
                        await retries.claim(conn, "commands", key)
                        body = {"id": 7, "name": "Assam tea, loose leaf, 250 g"}
                        await outbox.add(conn, "products", new_envelope("ProductRenamed", body))
                        answer = encode_answer(Answer(202, b'{"accepted":true}'))
                        await retries.keep(conn, "commands", key, answer)
            await relay.drain()
            async with pool.acquire() as conn:
                await conn.execute(  # the claims' grace has passed: the reconciler confirms
                    f"UPDATE {outbox.table} SET sent_at = sent_at - interval '2 minutes'"
                )
            checked = await relay.reconcile_once()
            assert checked.republished == 0
            await relay.prune_once()
            counts = {}
            async with pool.acquire() as conn:
                for t in tables:
                    counts[t] = await conn.fetchval(f"SELECT count(*) FROM {t}")
                if retention:
                    # A whole round, plus what the next automatic prune has not reached yet.
                    assert counts[outbox.table] <= PER_ROUND, counts
                    assert counts[claims.table] <= PER_ROUND + PRUNE_EVERY, counts
                    assert counts[retries.table] <= PER_ROUND + PRUNE_EVERY, counts
                for t, column in zip(
                    tables, ["created_at", "claimed_at", "claimed_at"], strict=True
                ):
                    extra = ", done_at = done_at - interval '1 day'" if t == outbox.table else ""
                    await conn.execute(
                        f"UPDATE {t} SET {column} = {column} - interval '1 day'{extra}"
                    )
                    await conn.execute(f"VACUUM {t}")  # what autovacuum does, in its time
        async with pool.acquire() as conn:
            sizes = {}
            for t in tables:
                await conn.execute(f"VACUUM {t}")
                rows = await conn.fetchval(f"SELECT count(*) FROM {t}")
                size = await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", t)
                sizes[t.removeprefix(prefix + "_")] = (int(rows), int(size))
        return sizes
    finally:
        await relay.close()
        await bus.close()
        async with pool.acquire() as conn:
            for t in tables:
                await conn.execute(f"DROP TABLE IF EXISTS {t}")
        await pool.close()


@pytest.mark.timeout(600)
async def test_a_fill_keeps_outbox_claims_and_retry_tables_bounded() -> None:
    bounded = await _fill(unique_name("fill", sql=True), retention=True)
    unbounded = await _fill(unique_name("nofill", sql=True), retention=False)
    print(f"after {ROUNDS * PER_ROUND} commands, (rows, bytes): with retention {bounded}")
    print(f"without retention {unbounded}")
    total = ROUNDS * PER_ROUND
    assert {t: rows for t, (rows, _) in unbounded.items()} == dict.fromkeys(unbounded, total)
    for t, (rows, size) in bounded.items():
        assert rows <= PER_ROUND + PRUNE_EVERY, (t, rows)
        assert size < unbounded[t][1] / 2, (t, size)  # the file reuses what was freed


async def test_a_background_prune_takes_a_bounded_share_of_a_big_backlog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A table from before retention may hold millions of done rows: the relay must go on
    # publishing while it catches up, a few statements per pass.
    monkeypatch.setattr(relay_module, "PRUNE_LIMIT", 2)
    monkeypatch.setattr(relay_module, "PRUNE_STATEMENTS", 1)
    db = str(tmp_path / "app.db")
    outbox = SqliteOutbox()
    async with aiosqlite.connect(db) as conn:
        await outbox.create_tables(conn)
        for i in range(5):
            await outbox.add(conn, "products", new_envelope("T", i))
        await conn.execute(f"UPDATE {outbox.table} SET sent_at = 1, done_at = 1")
        await conn.commit()
    bus = await _bus()
    relay = OutboxRelay(outbox, connect=lambda: aiosqlite.connect(db), bus=bus)
    left = []
    for _ in range(3):
        relay._next_prune = 0.0  # due now (the background loop's clock, not a sleep)
        await relay._maintain()
        left.append((await relay.stats()).rows)
    assert left == [3, 1, 0]
    await relay.close()
    await bus.close()
