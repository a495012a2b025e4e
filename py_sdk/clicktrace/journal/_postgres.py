"""The journal in PostgreSQL (asyncpg pool), shared by every process of the app. Bounded by
age and by count, pruned every ``PRUNE_EVERY`` writes of this process (the count bound passes
over the entries of clicks still open). Beside the entries: the open-click index
(``<table>_open``, one row per click, ``closed_at`` null while open), the dead-letter index
(``<table>_dead``, one row per click with a dead letter) and the process table
(``<table>_processes``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from clicktrace._optional import require
from clicktrace._sql import check_table
from clicktrace.journal._entry import Entry
from clicktrace.journal._store import (
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_ENTRIES,
    DEFAULT_MAX_OPEN,
    MAX_ENTRIES_PER_ID,
    MAX_PROCESSES,
    Process,
    dead_letters,
    decode_many,
    encode,
    marks,
    merge,
)

__all__ = ["PRUNE_EVERY", "PostgresStore"]

PRUNE_EVERY = 100
# store.merge in SQL, against the row already there ($4 first, $5 settle, $6 202; -1: none).
_CLOSED = (
    "(CASE WHEN $5::float8 >= 0 AND (o.closed_at IS NULL OR $5::float8 > o.closed_at) "
    "THEN $5::float8 ELSE o.closed_at END)"
)
_REOPEN = f"($6::float8 >= 0 AND $6::float8 > {_CLOSED})"
_UPSERT = (
    "INSERT INTO {t}_open AS o (correlation_id, opened_at, closed_at) VALUES ($1, $2, $3) "
    "ON CONFLICT (correlation_id) DO UPDATE SET "
    f"opened_at = CASE WHEN {_CLOSED} IS NULL THEN least(o.opened_at, $4::float8) "
    f"WHEN {_REOPEN} THEN $6::float8 ELSE NULL END, "
    f"closed_at = CASE WHEN {_REOPEN} THEN NULL ELSE {_CLOSED} END"
)


class PostgresStore:
    """``PostgresStore("postgresql://user@host/db")``; the table is created on first use."""

    def __init__(
        self,
        dsn: str,
        *,
        table: str = "clicktrace_journal",
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_open: int = DEFAULT_MAX_OPEN,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        timeout: float = 2.0,
    ) -> None:
        self._asyncpg = require("asyncpg", "postgres")
        if max_entries < 1 or max_open < 1 or not max_age_seconds > 0 or not timeout > 0:
            raise ValueError("max_entries, max_open, max_age_seconds and timeout must be positive")
        self._dsn, self.table = dsn, check_table(table)
        check_table(f"{table}_processes")
        check_table(f"{table}_dead")
        self._max, self._age, self._timeout = max_entries, max_age_seconds, timeout
        self._max_open = max_open
        self._pool: Any = None
        self._lock = asyncio.Lock()
        self._writes = 0
        self.dropped = 0
        self.open_dropped = 0
        """Open clicks taken out of the index before their age (its bound was reached)."""

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
                f"CREATE INDEX IF NOT EXISTS {t}_at ON {t} (at);"
                f"CREATE TABLE IF NOT EXISTS {t}_open (correlation_id TEXT PRIMARY KEY, "
                "opened_at DOUBLE PRECISION, closed_at DOUBLE PRECISION);"
                f"CREATE INDEX IF NOT EXISTS {t}_open_at ON {t}_open (opened_at) "
                "WHERE closed_at IS NULL;"
                f"CREATE TABLE IF NOT EXISTS {t}_processes (process TEXT PRIMARY KEY, "
                "started_at DOUBLE PRECISION NOT NULL, seen_at DOUBLE PRECISION NOT NULL, "
                "heartbeat DOUBLE PRECISION NOT NULL);"
                f"CREATE TABLE IF NOT EXISTS {t}_dead (correlation_id TEXT PRIMARY KEY, "
                "at DOUBLE PRECISION NOT NULL);"
                f"CREATE INDEX IF NOT EXISTS {t}_dead_at ON {t}_dead (at)"
            )

    async def write(self, entries: Sequence[Entry]) -> None:
        pool = await self._get_pool()
        t = self.table
        rows = []
        # Sorted: two processes upserting the same clicks lock their rows in one order.
        for cid, m in sorted(marks(entries).items()):
            opened, closed = merge(m, None, None)
            rows.append((cid, opened, closed, *m))
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                f"INSERT INTO {t} (correlation_id, at, entry) VALUES ($1, $2, $3)",
                [(e.correlation_id, e.at, encode(e)) for e in entries],
            )
            await conn.executemany(_UPSERT.format(t=t), rows)
            dead = dead_letters(entries)
            if dead:
                await conn.executemany(
                    f"INSERT INTO {t}_dead AS d (correlation_id, at) VALUES ($1, $2) "
                    "ON CONFLICT (correlation_id) DO UPDATE SET at = greatest(d.at, excluded.at)",
                    sorted(dead.items()),
                )
        self._writes += 1
        if self._writes % PRUNE_EVERY == 1:
            await self._prune(pool)

    async def _prune(self, pool: Any) -> None:
        t = self.table
        await pool.execute(
            f"DELETE FROM {t} WHERE stored_at < now() - $1::float8 * interval '1 second'",
            self._age,
        )
        status: str = await pool.execute(
            f"DELETE FROM {t} WHERE id <= (SELECT max(id) FROM {t}) - $1 AND correlation_id "
            f"NOT IN (SELECT correlation_id FROM {t}_open WHERE closed_at IS NULL)",
            self._max,
        )
        self.dropped += int(status.split()[-1])
        horizon = (time.time() - self._age) * 1000.0
        await pool.execute(
            f"DELETE FROM {t}_open WHERE coalesce(closed_at, opened_at) < $1", horizon
        )
        await pool.execute(  # settled rows past the bound: the oldest, uncounted
            f"DELETE FROM {t}_open WHERE correlation_id IN (SELECT correlation_id FROM {t}_open "
            "WHERE closed_at IS NOT NULL ORDER BY closed_at LIMIT greatest(0, "
            f"(SELECT count(*) FROM {t}_open) - $1))",
            self._max_open,
        )
        status = await pool.execute(
            f"DELETE FROM {t}_open WHERE correlation_id IN (SELECT correlation_id FROM {t}_open "
            "WHERE closed_at IS NULL ORDER BY opened_at LIMIT greatest(0, "
            f"(SELECT count(*) FROM {t}_open) - $1))",
            self._max_open,
        )
        self.open_dropped += int(status.split()[-1])
        await pool.execute(f"DELETE FROM {t}_processes WHERE seen_at < $1", horizon)
        await pool.execute(f"DELETE FROM {t}_dead WHERE at < $1", horizon)
        await pool.execute(
            f"DELETE FROM {t}_dead WHERE correlation_id IN (SELECT correlation_id FROM {t}_dead "
            f"ORDER BY at LIMIT greatest(0, (SELECT count(*) FROM {t}_dead) - $1))",
            self._max_open,
        )

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

    async def open_clicks(self, before_ms: float, limit: int) -> tuple[list[str], int]:
        pool = await self._get_pool()
        horizon = (time.time() - self._age) * 1000.0
        where = f"FROM {self.table}_open WHERE closed_at IS NULL AND opened_at BETWEEN $1 AND $2"
        rows = await pool.fetch(
            f"SELECT correlation_id {where} ORDER BY opened_at LIMIT $3",
            horizon,
            before_ms,
            max(0, limit),
        )
        total = await pool.fetchval(f"SELECT count(*) {where}", horizon, before_ms)
        return [str(row[0]) for row in rows], int(total)

    async def dead_lettered(self, limit: int) -> tuple[list[str], int]:
        pool = await self._get_pool()
        t = self.table
        horizon = (time.time() - self._age) * 1000.0
        # Only ids whose entries are still kept (the count bound may have taken them).
        where = (
            f"FROM {t}_dead d WHERE d.at >= $1 AND EXISTS (SELECT 1 FROM {t} e WHERE "
            "e.correlation_id = d.correlation_id)"
        )
        rows = await pool.fetch(
            f"SELECT d.correlation_id {where} ORDER BY d.at LIMIT $2", horizon, max(0, limit)
        )
        total = await pool.fetchval(f"SELECT count(*) {where}", horizon)
        return [str(row[0]) for row in rows], int(total)

    async def register(self, process: str, info: Process) -> None:
        pool = await self._get_pool()
        t = self.table
        await pool.execute(
            f"INSERT INTO {t}_processes (process, started_at, seen_at, heartbeat) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (process) DO UPDATE SET "
            "started_at = excluded.started_at, seen_at = excluded.seen_at, "
            "heartbeat = excluded.heartbeat",
            process,
            *info,
        )
        await pool.execute(
            f"DELETE FROM {t}_processes WHERE process IN (SELECT process FROM "
            f"{t}_processes ORDER BY seen_at DESC OFFSET $1)",
            MAX_PROCESSES,
        )

    async def unregister(self, process: str) -> None:
        pool = await self._get_pool()
        await pool.execute(f"DELETE FROM {self.table}_processes WHERE process = $1", process)

    async def processes(self) -> dict[str, Process]:
        pool = await self._get_pool()
        rows = await pool.fetch(
            f"SELECT process, started_at, seen_at, heartbeat FROM {self.table}_processes"
        )
        return {str(r[0]): Process(r[1], r[2], r[3]) for r in rows}

    async def ping(self) -> None:
        pool = await self._get_pool()
        await pool.fetchval("SELECT 1")

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
