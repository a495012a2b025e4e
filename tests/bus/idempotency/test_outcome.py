"""The outcome kept with a claim: written in the claim's transaction (gone with a rollback),
read back by a redelivery, bounded, and never a crash when what is stored is not readable."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import asyncpg
import pytest
import redis.asyncio as aioredis

from clicktrace.bus.idempotency import (
    Outcome,
    PostgresIdempotency,
    RedisIdempotency,
    SqliteIdempotency,
)
from clicktrace.bus.idempotency.outcome import MAX_OUTCOME_BYTES, decode_outcome, encode_outcome
from clicktrace.ids import new_id
from clicktrace.testing import unique_name

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
RENAMED = Outcome.confirmed({"id": 3, "name": "Tea", "version": 2})


async def test_sqlite_keeps_the_outcome_with_the_claim_or_not_at_all(tmp_path: Path) -> None:
    store = SqliteIdempotency(table="processed")
    first, second = new_id(), new_id()
    async with aiosqlite.connect(str(tmp_path / "p.db")) as conn:
        await store.create_tables(conn)
        assert await store.claim(conn, "projection", first)
        await store.record_outcome(conn, "projection", first, RENAMED)
        await conn.rollback()  # the projection's transaction failed: claim and outcome go
        assert await store.recorded_outcome(conn, "projection", first) is None
        assert await store.claim(conn, "projection", first)
        await store.record_outcome(conn, "projection", first, RENAMED)
        assert await store.claim(conn, "projection", second)  # claimed, no outcome kept
        await conn.commit()
        assert not await store.claim(conn, "projection", first)  # the redelivery
        assert await store.recorded_outcome(conn, "projection", first) == RENAMED
        assert await store.recorded_outcome(conn, "projection", second) is None
        assert await store.recorded_outcome(conn, "another-consumer", first) is None


async def test_sqlite_adds_the_outcome_column_to_a_table_from_before(tmp_path: Path) -> None:
    store, message_id = SqliteIdempotency(table="processed"), new_id()
    async with aiosqlite.connect(str(tmp_path / "p.db")) as conn:
        await conn.execute(
            "CREATE TABLE processed (consumer TEXT NOT NULL, message_id TEXT "
            "NOT NULL, processed_at REAL NOT NULL, PRIMARY KEY (consumer, "
            "message_id))"
        )
        await conn.execute("INSERT INTO processed VALUES ('projection', ?, 0)", (message_id,))
        await store.create_tables(conn)
        await store.create_tables(conn)  # twice: nothing to add the second time
        assert await store.recorded_outcome(conn, "projection", message_id) is None
        await store.record_outcome(conn, "projection", message_id, RENAMED)
        assert await store.recorded_outcome(conn, "projection", message_id) == RENAMED


async def test_postgres_keeps_the_outcome_with_the_claim_or_not_at_all() -> None:
    table = unique_name("processed", sql=True)
    store, message_id = PostgresIdempotency(table=table), new_id()
    refused = Outcome.rejected(
        "name_taken", "Another product is already called 'Tea'.", data={"id": 3, "name": "Coffee"}
    )
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(
            f"CREATE TABLE {table} (consumer TEXT NOT NULL, message_id TEXT "
            "NOT NULL, processed_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
            "PRIMARY KEY (consumer, message_id))"
        )  # from before outcomes
        await store.create_tables(conn)
        await store.create_tables(conn)
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                assert await store.claim(conn, "projection", message_id)
                await store.record_outcome(conn, "projection", message_id, refused)
                raise RuntimeError("projection failed")
        assert await store.recorded_outcome(conn, "projection", message_id) is None
        async with conn.transaction():
            assert await store.claim(conn, "projection", message_id)
            await store.record_outcome(conn, "projection", message_id, refused)
        async with conn.transaction():
            assert not await store.claim(conn, "projection", message_id)
            assert await store.recorded_outcome(conn, "projection", message_id) == refused
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


async def test_redis_keeps_the_outcome_in_the_claimed_key_with_its_ttl() -> None:
    prefix = unique_name("test") + ":"
    client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    store = RedisIdempotency(client, ttl_seconds=60, prefix=prefix)
    try:
        await store.record_outcome("c", "m0", RENAMED)  # never claimed: nothing written
        assert await client.exists(f"{prefix}c:m0") == 0
        assert await store.claim("c", "m1")
        assert await store.recorded_outcome("c", "m1") is None
        await store.record_outcome("c", "m1", RENAMED)
        assert not await store.claim("c", "m1")
        assert await store.recorded_outcome("c", "m1") == RENAMED
        assert 0 < await client.ttl(f"{prefix}c:m1") <= 60
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await store.aclose()


def test_an_outcome_too_big_to_keep_is_kept_without_its_data() -> None:
    big = Outcome.rejected("too_long", "x" * 1000, data={"blob": "y" * MAX_OUTCOME_BYTES})
    raw = encode_outcome(big)
    assert len(raw) <= MAX_OUTCOME_BYTES
    assert decode_outcome(raw) == Outcome(
        "rejected", None, {"code": "too_long", "message": "x" * 200}
    )


def test_data_that_is_not_json_is_refused_loudly() -> None:
    with pytest.raises(TypeError):
        encode_outcome(Outcome.confirmed({"when": object()}))
    with pytest.raises(ValueError):
        encode_outcome(Outcome("progress"))


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "1",
        b"1",
        "[]",
        "{",
        '{"status": "maybe"}',
        '{"status": "rejected"}',
        '{"status": "rejected", "error": {"code": 7}}',
        '{"status": "confirmed", "error": "no"}',
        b"\xff\xfe",
        "[" * 5000,
        "x" * (MAX_OUTCOME_BYTES + 1),
    ],
)
def test_a_stored_value_that_is_not_an_outcome_reads_as_none(raw: str | bytes | None) -> None:
    assert decode_outcome(raw) is None
