"""SQL idempotency: the claim commits or rolls back with the projection's own write."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from clicktrace.bus.idempotency import PostgresIdempotency, SqliteIdempotency
from clicktrace.ids import new_id
from clicktrace.testing import unique_name

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


async def test_sqlite_claim_is_part_of_the_transaction(tmp_path: Path) -> None:
    store = SqliteIdempotency(table="processed")
    message_id = new_id()
    async with aiosqlite.connect(str(tmp_path / "p.db")) as conn:
        await store.create_tables(conn)
        assert await store.claim(conn, "projection", message_id)
        await conn.rollback()  # the projection's write failed: the claim goes too
        assert await store.claim(conn, "projection", message_id)
        await conn.commit()
        assert not await store.claim(conn, "projection", message_id)
        assert await store.claim(conn, "another-consumer", message_id)
        await conn.commit()
        assert await store.prune(conn, older_than_seconds=-1) == 2


async def test_postgres_claim_is_part_of_the_transaction() -> None:
    table = unique_name("processed", sql=True)
    store = PostgresIdempotency(table=table)
    message_id = new_id()
    conn = await asyncpg.connect(PG_DSN)
    try:
        await store.create_tables(conn)
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                assert await store.claim(conn, "projection", message_id)
                raise RuntimeError("projection failed")
        async with conn.transaction():
            assert await store.claim(conn, "projection", message_id)
        async with conn.transaction():
            assert not await store.claim(conn, "projection", message_id)
        assert await store.prune(conn, older_than_seconds=-1) == 1
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


def test_table_names_are_checked() -> None:
    with pytest.raises(ValueError):
        SqliteIdempotency(table="a b")
    with pytest.raises(ValueError):
        PostgresIdempotency(table="1abc")
