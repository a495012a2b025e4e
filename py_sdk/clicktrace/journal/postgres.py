"""The journal in PostgreSQL (asyncpg pool), shared by every process of the app. Bounded by
age and by count, pruned every ``PRUNE_EVERY`` writes of this process."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from clicktrace._optional import require
from clicktrace._sql import check_table
from clicktrace.journal.codec import decode_many, encode
from clicktrace.journal.entry import Entry
from clicktrace.journal.store import (
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_ENTRIES,
    MAX_ENTRIES_PER_ID,
)

__all__ = ["PRUNE_EVERY", "PostgresStore"]

PRUNE_EVERY = 100


class PostgresStore:
    """``PostgresStore("postgresql://user@host/db")``; the table is created on first use."""

    def __init__(
        self,
        dsn: str,
        *,
        table: str = "clicktrace_journal",
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        timeout: float = 2.0,
    ) -> None:
        self._asyncpg = require("asyncpg", "postgres")
        if max_entries < 1 or not max_age_seconds > 0 or not timeout > 0:
            raise ValueError("max_entries, max_age_seconds and timeout must be positive")
        self._dsn, self.table = dsn, check_table(table)
        self._max, self._age, self._timeout = max_entries, max_age_seconds, timeout
        self._pool: Any = None
        self._lock = asyncio.Lock()
        self._writes = 0
        self.dropped = 0

    async def _get_pool(self) -> Any:
        async with self._lock:
            if self._pool is None:
                pool = await self._asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=2,
                    timeout=self._timeout,
                    command_timeout=self._timeout,
                )
                try:
                    await self._create(pool)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
            return self._pool

    async def _create(self, pool: Any) -> None:
        t = self.table
        async with pool.acquire() as conn, conn.transaction():
            # Several processes start at once: CREATE ... IF NOT EXISTS alone races.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", t)
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {t} (id BIGINT GENERATED ALWAYS AS IDENTITY "
                "PRIMARY KEY, correlation_id TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, "
                "stored_at TIMESTAMPTZ NOT NULL DEFAULT now(), entry BYTEA NOT NULL);"
                f"CREATE INDEX IF NOT EXISTS {t}_cid ON {t} (correlation_id);"
                f"CREATE INDEX IF NOT EXISTS {t}_at ON {t} (at)"
            )

    async def write(self, entries: Sequence[Entry]) -> None:
        pool = await self._get_pool()
        t = self.table
        await pool.executemany(
            f"INSERT INTO {t} (correlation_id, at, entry) VALUES ($1, $2, $3)",
            [(e.correlation_id, e.at, encode(e)) for e in entries],
        )
        self._writes += 1
        if self._writes % PRUNE_EVERY == 1:
            await pool.execute(
                f"DELETE FROM {t} WHERE stored_at < now() - $1::float8 * interval '1 second'",
                self._age,
            )
            status: str = await pool.execute(
                f"DELETE FROM {t} WHERE id <= (SELECT max(id) FROM {t}) - $1", self._max
            )
            self.dropped += int(status.split()[-1])

    async def read(self, correlation_id: str) -> list[Entry]:
        pool = await self._get_pool()
        rows = await pool.fetch(
            f"SELECT entry FROM {self.table} WHERE correlation_id = $1 ORDER BY id LIMIT $2",
            correlation_id,
            MAX_ENTRIES_PER_ID,
        )
        return decode_many([bytes(row[0]) for row in rows])

    async def recent(self, since_ms: float, limit: int) -> list[str]:
        pool = await self._get_pool()
        rows = await pool.fetch(
            f"SELECT correlation_id, max(at) AS last FROM {self.table} WHERE at >= $1 "
            "GROUP BY correlation_id ORDER BY last DESC LIMIT $2",
            since_ms,
            limit,
        )
        return [str(row[0]) for row in rows]

    async def ping(self) -> None:
        pool = await self._get_pool()
        await pool.fetchval("SELECT 1")

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
