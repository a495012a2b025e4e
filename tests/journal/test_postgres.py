"""The PostgreSQL store, on the real server: its table is the one the URL names, and a new store
(a restarted process) reads what an earlier one wrote. (The interface every store shares is held
in test_store.py.)"""

from __future__ import annotations

import asyncpg
import pytest

from clicktrace.ids import new_id
from clicktrace.journal import Entry, create_store
from clicktrace.testing import unique_name

PG = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.mark.broker
async def test_entries_outlive_the_store_and_sit_in_the_named_table() -> None:
    table = unique_name("journal", sql=True)
    cid = new_id()
    first = create_store(f"{PG}?table={table}")
    await first.write([Entry(correlation_id=cid, stage="accepted", at=1.0)])
    await first.aclose()
    second = create_store(PG, table=table)
    conn = await asyncpg.connect(PG)
    try:
        assert [e.stage for e in await second.read(cid)] == ["accepted"]
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 1
    finally:
        await second.aclose()
        for name in (table, f"{table}_open", f"{table}_processes"):
            await conn.execute(f"DROP TABLE IF EXISTS {name}")
        await conn.close()
