"""Claims are bounded by age without anyone having to remember to prune: every
``prune_every`` claims, a claim also deletes (at most ``PRUNE_LIMIT``) claims older than
``keep_seconds``; the reconciler's batch query and the health figures read them cheaply."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import asyncpg
import pytest
import redis.asyncio as aioredis

from clicktrace.bus.idempotency import PostgresIdempotency, RedisIdempotency, SqliteIdempotency
from clicktrace.ids import new_id
from clicktrace.testing import unique_name

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


async def test_sqlite_claims_older_than_keep_seconds_go_on_their_own(tmp_path: Path) -> None:
    store = SqliteIdempotency(keep_seconds=60, prune_every=3)
    async with aiosqlite.connect(str(tmp_path / "p.db")) as conn:
        await store.create_tables(conn)
        for i in range(4):
            await store.claim(conn, "projection", f"old{i}")
        await conn.execute(f"UPDATE {store.table} SET processed_at = processed_at - 3600")
        await conn.commit()
        assert (await store.stats(conn)).rows == 4
        await store.claim(conn, "projection", "new1")  # 5th and 6th claims: the 6th prunes
        await store.claim(conn, "projection", "new2")
        await conn.commit()
        stats = await store.stats(conn)
        assert stats.rows == 2
        assert stats.oldest is not None
        assert await store.claimed(conn, "projection", ["old0", "new1", "new2"]) == {
            "new1",
            "new2",
        }


async def test_sqlite_prune_deletes_at_most_its_limit(tmp_path: Path) -> None:
    store = SqliteIdempotency()
    async with aiosqlite.connect(str(tmp_path / "p.db")) as conn:
        await store.create_tables(conn)
        for i in range(7):
            await store.claim(conn, "projection", f"m{i}")
        await conn.commit()
        assert await store.prune(conn, -1, limit=5) == 5
        assert await store.prune(conn, -1, limit=5) == 2


async def test_postgres_claims_older_than_keep_seconds_go_on_their_own() -> None:
    table = unique_name("processed", sql=True)
    store = PostgresIdempotency(table=table, keep_seconds=60, prune_every=3)
    conn = await asyncpg.connect(PG_DSN)
    try:
        await store.create_tables(conn)
        for i in range(4):
            await store.claim(conn, "projection", f"old{i}")
        await conn.execute(f"UPDATE {table} SET processed_at = processed_at - interval '1 hour'")
        async with conn.transaction():
            await store.claim(conn, "projection", "new1")
            await store.claim(conn, "projection", "new2")  # the 6th claim prunes
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 2
        stats = await store.stats(conn)
        assert stats.rows == 2
        assert stats.bytes is not None and stats.bytes > 0
        assert await store.claimed(conn, "projection", ["old1", "new1", "new2", "x"]) == {
            "new1",
            "new2",
        }
        assert await store.claimed(conn, "elsewhere", ["new1"]) == set()
        for i in range(7):
            await store.claim(conn, "other", f"m{i}")
        assert await store.prune(conn, -1, limit=5) == 5  # bounded, whatever is due
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


async def test_redis_claims_are_read_in_one_round_trip() -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    prefix = f"{unique_name('done')}:"
    store = RedisIdempotency(client, prefix=prefix, ttl_seconds=60)
    ids = [new_id() for _ in range(3)]
    try:
        await store.claim("projection", ids[0])
        await store.remember("projection", ids[2])
        assert await store.claimed(None, "projection", ids) == {ids[0], ids[2]}
        assert await store.claimed(None, "projection", []) == set()
    finally:
        for message_id in ids:
            await client.delete(f"{prefix}projection:{message_id}")
        await client.aclose()


@pytest.mark.parametrize(
    "options", [{"keep_seconds": 0}, {"prune_every": 0}, {"prune_every": True}]
)
def test_bad_retention_settings_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SqliteIdempotency(**options)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PostgresIdempotency(**options)  # type: ignore[arg-type]
