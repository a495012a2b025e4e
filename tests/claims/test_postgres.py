"""PostgreSQL claims: made in the caller's transaction (gone with a rollback, with the answer
kept beside them), and bounded by age without anyone having to remember to prune: every
``prune_every`` claims, a claim also deletes (at most ``PRUNE_LIMIT``) claims older than
``keep_seconds``; the reconciler's batch query and the health figures read them cheaply."""

from __future__ import annotations

import asyncpg
import pytest

from clicktrace.claims import Answer, Outcome, PostgresClaims
from clicktrace.claims._base import encode_answer
from clicktrace.ids import new_id
from clicktrace.testing import unique_name

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
ANSWER = encode_answer(Answer(202, b"{}"))


async def test_postgres_claim_is_part_of_the_transaction() -> None:
    table = unique_name("processed", sql=True)
    store = PostgresClaims(table=table)
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


async def test_postgres_keeps_the_outcome_with_the_claim_or_not_at_all() -> None:
    table = unique_name("processed", sql=True)
    store, message_id = PostgresClaims(table=table), new_id()
    refused = Outcome.rejected(
        "name_taken", "Another product is already called 'Tea'.", data={"id": 3, "name": "Coffee"}
    )
    conn = await asyncpg.connect(PG_DSN)
    try:
        await store.create_tables(conn)
        await store.create_tables(conn)  # twice: nothing to do the second time
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


async def test_postgres_claims_older_than_keep_seconds_go_on_their_own() -> None:
    table = unique_name("processed", sql=True)
    store = PostgresClaims(table=table, keep_seconds=60, prune_every=3)
    conn = await asyncpg.connect(PG_DSN)
    try:
        await store.create_tables(conn)
        for i in range(4):
            await store.claim(conn, "projection", f"old{i}")
        await conn.execute(f"UPDATE {table} SET claimed_at = claimed_at - interval '1 hour'")
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


async def test_postgres_expired_answered_claims_go_without_a_prune_call() -> None:
    table = unique_name("commands", sql=True)
    store = PostgresClaims(table, keep_seconds=60, prune_every=3)
    conn = await asyncpg.connect(PG_DSN)
    try:
        await store.create_tables(conn)
        for i in range(4):
            async with conn.transaction():
                assert await store.claim(conn, "commands", f"old{i}")
                await store.keep(conn, "commands", f"old{i}", ANSWER)
        await conn.execute(f"UPDATE {table} SET claimed_at = claimed_at - interval '1 hour'")
        async with conn.transaction():
            await store.claim(conn, "commands", "new1")
            await store.claim(conn, "commands", "new2")  # the 6th claim prunes
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 2
        stats = await store.stats(conn)
        assert stats.rows == 2
        assert stats.bytes is not None and stats.bytes > 0
        await conn.execute(f"UPDATE {table} SET claimed_at = claimed_at - interval '1 hour'")
        assert await store.prune(conn, limit=1) == 1  # bounded
        assert await store.prune(conn) == 1
        async with conn.transaction():
            assert await store.claim(conn, "commands", "k")
            await store.keep(conn, "commands", "k", ANSWER)
        await conn.execute(f"UPDATE {table} SET claimed_at = claimed_at - interval '1 hour'")
        async with conn.transaction():  # an expired claim is taken over, without its answer
            assert await store.claim(conn, "commands", "k")
            assert await store.kept(conn, "commands", "k") is None
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


def test_table_names_are_checked() -> None:
    with pytest.raises(ValueError):
        PostgresClaims(table="1abc")


@pytest.mark.parametrize(
    "options",
    [{"keep_seconds": 0}, {"prune_every": 0}, {"prune_every": True}, {"prune_every": -1}],
)
def test_bad_retention_settings_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PostgresClaims(**options)  # type: ignore[arg-type]
