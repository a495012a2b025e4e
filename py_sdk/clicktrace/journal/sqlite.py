"""The journal in SQLite (aiosqlite): one process, or several on one machine, kept across
restarts. Bounded by age and by count, pruned every ``PRUNE_EVERY`` writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from clicktrace._optional import require
from clicktrace._sql import check_table
from clicktrace.journal.codec import decode_many, encode
from clicktrace.journal.entry import Entry
from clicktrace.journal.store import (
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_ENTRIES,
    MAX_ENTRIES_PER_ID,
)

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["PRUNE_EVERY", "SqliteStore"]

PRUNE_EVERY = 100


class SqliteStore:
    """``SqliteStore("data/journal.sqlite3")`` (``sqlite:///data/journal.sqlite3``)."""

    def __init__(
        self,
        path: str,
        *,
        table: str = "clicktrace_journal",
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
    ) -> None:
        self._sqlite = require("aiosqlite", "sqlite")
        if max_entries < 1 or not max_age_seconds > 0:
            raise ValueError("max_entries and max_age_seconds must be positive")
        self._path, self.table = path, check_table(table)
        self._max, self._age = max_entries, max_age_seconds
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._writes = 0
        self.dropped = 0

    async def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            conn = await self._sqlite.connect(self._path)
            t = self.table
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {t} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "correlation_id TEXT NOT NULL, at REAL NOT NULL, stored_at REAL NOT NULL, "
                "entry BLOB NOT NULL)"
            )
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {t}_cid ON {t} (correlation_id)")
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {t}_at ON {t} (at)")
            await conn.commit()
            self._conn = conn
        return self._conn

    async def write(self, entries: Sequence[Entry]) -> None:
        async with self._lock:
            conn = await self._connection()
            now = time.time()
            await conn.executemany(
                f"INSERT INTO {self.table} (correlation_id, at, stored_at, entry) "
                "VALUES (?, ?, ?, ?)",
                [(e.correlation_id, e.at, now, encode(e)) for e in entries],
            )
            self._writes += 1
            if self._writes % PRUNE_EVERY == 1:
                await self._prune(conn, now)
            await conn.commit()

    async def _prune(self, conn: aiosqlite.Connection, now: float) -> None:
        t = self.table
        await conn.execute(f"DELETE FROM {t} WHERE stored_at < ?", (now - self._age,))
        cursor = await conn.execute(
            f"DELETE FROM {t} WHERE id <= (SELECT max(id) FROM {t}) - ?", (self._max,)
        )
        self.dropped += max(0, cursor.rowcount)

    async def read(self, correlation_id: str) -> list[Entry]:
        conn = await self._connection()
        cursor = await conn.execute(
            f"SELECT entry FROM {self.table} WHERE correlation_id = ? ORDER BY id LIMIT ?",
            (correlation_id, MAX_ENTRIES_PER_ID),
        )
        return decode_many([row[0] for row in await cursor.fetchall()])

    async def recent(self, since_ms: float, limit: int) -> list[str]:
        conn = await self._connection()
        cursor = await conn.execute(
            f"SELECT correlation_id, max(at) AS last FROM {self.table} WHERE at >= ? "
            "GROUP BY correlation_id ORDER BY last DESC LIMIT ?",
            (since_ms, limit),
        )
        return [row[0] for row in await cursor.fetchall()]

    async def ping(self) -> None:
        conn = await self._connection()
        await conn.execute("SELECT 1")

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
