"""The demo's projection stores (SQLite and PostgreSQL) keep each outcome with its claim, so a
redelivery (after a projection process died between its commit and its notification) gets
the outcome to tell the tab again, and the rename is applied once."""

from __future__ import annotations

from pathlib import Path

import pytest

from clicktrace.claims import Outcome
from clicktrace.ids import new_id
from clicktrace.testing import unique_name
from demo_app.server.database import SqliteStore
from demo_app.server.postgres import PostgresStore
from demo_app.server.store import Store
from e2e.serve import run_coroutine

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


async def deliver_twice(store: Store) -> list[Outcome | None]:
    renamed, refused = new_id(), new_id()
    return [
        await store.apply_rename("projection", renamed, 3, "Kept"),
        await store.apply_rename("projection", renamed, 3, "Kept"),  # the redelivery
        await store.apply_rename("projection", refused, 4, "Kept"),
        await store.apply_rename("projection", refused, 4, "Kept"),
    ]


def check(outcomes: list[Outcome | None]) -> None:
    confirmed, again, refused, refused_again = outcomes
    assert confirmed is not None and confirmed.status == "confirmed"
    assert confirmed.data is not None and confirmed.data["version"] == 2  # applied once
    assert again == confirmed
    assert refused is not None and refused.error is not None
    assert refused.error["code"] == "name_taken"
    assert refused_again == refused


def test_sqlite_gives_a_redelivery_the_outcome_kept_with_its_claim(tmp_path: Path) -> None:
    async def run() -> list[Outcome | None]:
        store = SqliteStore(tmp_path / "catalogue.sqlite3")
        await store.start()
        return await deliver_twice(store)

    check(run_coroutine(run()))


@pytest.mark.timeout(60)
def test_postgres_gives_a_redelivery_the_outcome_kept_with_its_claim() -> None:
    import asyncpg

    schema = unique_name("demo", sql=True)

    async def run() -> list[Outcome | None]:
        store = PostgresStore(PG_DSN, schema)
        try:
            await store.start()
            return await deliver_twice(store)
        finally:
            await store.aclose()
            conn = await asyncpg.connect(PG_DSN)
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await conn.close()

    check(run_coroutine(run()))
