"""The demo's stores give the relay their claims (so it can confirm delivery by them) and
settle a dead-lettered message with a claim: a copy the reconciler publishes later finds the
claim and is never applied after the tab was told "rejected"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from clicktrace.claims import Outcome
from clicktrace.ids import new_id
from clicktrace.testing import unique_name
from demo_app.server.database import SqliteStore
from demo_app.server.postgres import PostgresStore

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "sqlite":
        made: Any = SqliteStore(tmp_path / "demo.db")
        await made.start()
        yield made
        await made.aclose()
        return
    schema = unique_name("demo", sql=True)
    made = PostgresStore(PG_DSN, schema)
    await made.start()
    try:
        yield made
    finally:
        await made.aclose()
        conn = await asyncpg.connect(PG_DSN)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


async def test_a_dead_lettered_rename_is_never_applied_by_a_later_copy(store: Any) -> None:
    message_id = new_id()
    rejected = Outcome.rejected("processing_failed", "The change could not be applied.")
    assert await store.settle_dead_letter("projection", message_id, rejected)
    assert not await store.settle_dead_letter("projection", message_id, rejected)
    before = await store.products()
    # The reconciler's copy arrives: the claim answers with what the tab was told.
    again = await store.apply_rename("projection", message_id, 1, "Renamed after rejection")
    assert again == rejected
    assert await store.products() == before


async def test_the_relay_can_read_the_projections_claims(store: Any) -> None:
    message_id = new_id()
    await store.apply_rename("projection", message_id, 1, "Darjeeling")
    conn = await store.connect_relay()
    try:
        found = await store.claims.claimed(conn, "projection", [message_id, new_id()])
    finally:
        await conn.close()
    assert found == {message_id}
