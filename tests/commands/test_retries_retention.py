"""The SQL retry stores bound themselves: every ``prune_every`` claims, a claim also deletes
(at most ``PRUNE_LIMIT``) claims older than the TTL, in the command's own transaction; the
demo used to prune only at start, so a node that ran for weeks kept every claim."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from clicktrace.commands import PostgresRetryStore, SqliteRetryStore
from clicktrace.commands.retries import Answer
from clicktrace.testing import unique_name

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
ANSWER = Answer(202, b"{}")


async def test_sqlite_expired_claims_go_without_a_prune_call(tmp_path: Path) -> None:
    store = SqliteRetryStore(ttl_seconds=60, prune_every=3)
    async with aiosqlite.connect(str(tmp_path / "c.db")) as conn:
        await store.create_tables(conn)
        for i in range(4):
            assert await store.claim(f"old{i}", conn) is None
            await store.record(f"old{i}", ANSWER, conn)
        await conn.execute(f"UPDATE {store.table} SET claimed_at = claimed_at - 3600")
        await conn.commit()
        assert (await store.stats(conn)).rows == 4
        await store.claim("new1", conn)
        await store.claim("new2", conn)  # the 6th claim prunes
        await conn.commit()
        stats = await store.stats(conn)
        assert stats.rows == 2
        assert await store.prune(conn, limit=1) == 0


async def test_postgres_expired_claims_go_without_a_prune_call() -> None:
    table = unique_name("commands", sql=True)
    store = PostgresRetryStore(table, ttl_seconds=60, prune_every=3)
    conn = await asyncpg.connect(PG_DSN)
    try:
        await store.create_tables(conn)
        for i in range(4):
            async with conn.transaction():
                assert await store.claim(f"old{i}", conn) is None
                await store.record(f"old{i}", ANSWER, conn)
        await conn.execute(f"UPDATE {table} SET claimed_at = claimed_at - interval '1 hour'")
        async with conn.transaction():
            await store.claim("new1", conn)
            await store.claim("new2", conn)  # the 6th claim prunes
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 2
        stats = await store.stats(conn)
        assert stats.rows == 2
        assert stats.bytes is not None and stats.bytes > 0
        await conn.execute(f"UPDATE {table} SET claimed_at = claimed_at - interval '1 hour'")
        assert await store.prune(conn, limit=1) == 1  # bounded
        assert await store.prune(conn) == 1
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


def test_a_bad_prune_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        SqliteRetryStore(prune_every=0)
    with pytest.raises(ValueError):
        PostgresRetryStore(prune_every=-1)
