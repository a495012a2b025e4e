"""SQLite claims: made in the caller's transaction (gone with a rollback, with the answer kept
beside them), and bounded by age without anyone having to remember to prune: every
``prune_every`` claims, a claim also deletes (at most ``PRUNE_LIMIT``) claims older than
``keep_seconds``; the reconciler's batch query and the health figures read them cheaply."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import pytest

from clicktrace.claims import Answer, Outcome, SqliteClaims
from clicktrace.claims._base import encode_answer
from clicktrace.ids import new_id

RENAMED = Outcome.confirmed({"id": 3, "name": "Tea", "version": 2})
ANSWER = encode_answer(Answer(202, b"{}"))


async def test_sqlite_claim_is_part_of_the_transaction(tmp_path: Path) -> None:
    store = SqliteClaims(table="processed")
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


async def test_sqlite_keeps_the_outcome_with_the_claim_or_not_at_all(tmp_path: Path) -> None:
    store = SqliteClaims(table="processed")
    first, second = new_id(), new_id()
    async with aiosqlite.connect(str(tmp_path / "p.db")) as conn:
        await store.create_tables(conn)
        await store.create_tables(conn)  # twice: nothing to do the second time
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


async def test_sqlite_claims_older_than_keep_seconds_go_on_their_own(tmp_path: Path) -> None:
    store = SqliteClaims(keep_seconds=60, prune_every=3)
    async with aiosqlite.connect(str(tmp_path / "p.db")) as conn:
        await store.create_tables(conn)
        for i in range(4):
            await store.claim(conn, "projection", f"old{i}")
        await conn.execute(f"UPDATE {store.table} SET claimed_at = claimed_at - 3600")
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


async def test_sqlite_expired_answered_claims_go_without_a_prune_call(tmp_path: Path) -> None:
    store = SqliteClaims(keep_seconds=60, prune_every=3)
    async with aiosqlite.connect(str(tmp_path / "c.db")) as conn:
        await store.create_tables(conn)
        for i in range(4):
            assert await store.claim(conn, "commands", f"old{i}")
            await store.keep(conn, "commands", f"old{i}", ANSWER)
        await conn.execute(f"UPDATE {store.table} SET claimed_at = claimed_at - 3600")
        await conn.commit()
        assert (await store.stats(conn)).rows == 4
        await store.claim(conn, "commands", "new1")
        await store.claim(conn, "commands", "new2")  # the 6th claim prunes
        await conn.commit()
        stats = await store.stats(conn)
        assert stats.rows == 2
        assert await store.prune(conn, limit=1) == 0


async def test_sqlite_prune_deletes_at_most_its_limit(tmp_path: Path) -> None:
    store = SqliteClaims()
    async with aiosqlite.connect(str(tmp_path / "p.db")) as conn:
        await store.create_tables(conn)
        for i in range(7):
            await store.claim(conn, "projection", f"m{i}")
        await conn.commit()
        assert await store.prune(conn, -1, limit=5) == 5
        assert await store.prune(conn, -1, limit=5) == 2


async def test_an_expired_claim_is_taken_over_before_it_is_pruned(tmp_path: Path) -> None:
    store = SqliteClaims(keep_seconds=60)
    async with aiosqlite.connect(str(tmp_path / "p.db")) as conn:
        await store.create_tables(conn)
        assert await store.claim(conn, "commands", "k")
        await store.keep(conn, "commands", "k", ANSWER)
        await conn.execute(f"UPDATE {store.table} SET claimed_at = claimed_at - 3600")
        assert await store.claim(conn, "commands", "k")
        assert await store.kept(conn, "commands", "k") is None  # its old answer went too


def test_table_names_are_checked() -> None:
    with pytest.raises(ValueError):
        SqliteClaims(table="a b")
    with pytest.raises(ValueError):
        SqliteClaims("no; drop")


@pytest.mark.parametrize(
    "options",
    [{"keep_seconds": 0}, {"keep_seconds": -1}, {"prune_every": 0}, {"prune_every": True}],
)
def test_bad_retention_settings_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SqliteClaims(**options)  # type: ignore[arg-type]
