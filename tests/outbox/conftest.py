"""Fixtures for outbox tests: a private tracer provider and a PostgreSQL connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from clicktrace.testing import unique_name

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def table() -> str:
    return unique_name("outbox", sql=True)


@pytest.fixture
async def pg(table: str) -> AsyncIterator[Any]:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    yield conn
    for name in (table, f"{table}_events"):
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
    await conn.close()
