"""The journal in SQLite (aiosqlite): one process, or several on one machine, kept across
restarts. Bounded by age and by count, pruned every ``PRUNE_EVERY`` writes (the count bound
passes over the entries of clicks still open). Beside the entries: the open-click index
(``<table>_open``, one row per click, ``closed_at`` null while open), the dead-letter index
(``<table>_dead``, one row per click with a dead letter) and the process table
(``<table>_processes``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["PRUNE_EVERY", "SqliteStore"]

PRUNE_EVERY = 100
# store.merge in SQL, against the row already there (:f first, :s settle, :a 202; -1: none).
_CLOSED = "(CASE WHEN :s >= 0 AND (closed_at IS NULL OR :s > closed_at) THEN :s ELSE closed_at END)"
_REOPEN = f"(:a >= 0 AND :a > {_CLOSED})"
_UPSERT = (
    "INSERT INTO {t}_open (correlation_id, opened_at, closed_at) VALUES (:cid, :o, :c) "
    "ON CONFLICT (correlation_id) DO UPDATE SET "
    f"opened_at = CASE WHEN {_CLOSED} IS NULL THEN "
    "(CASE WHEN opened_at IS NULL OR :f < opened_at THEN :f ELSE opened_at END) "
    f"WHEN {_REOPEN} THEN :a ELSE NULL END, "
    f"closed_at = CASE WHEN {_REOPEN} THEN NULL ELSE {_CLOSED} END"
)


class SqliteStore:
    """``SqliteStore("data/journal.sqlite3")`` (``sqlite:///data/journal.sqlite3``)."""

    def __init__(
        self,
        path: str,
        *,
        table: str = "clicktrace_journal",
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_open: int = DEFAULT_MAX_OPEN,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
    ) -> None:
        self._sqlite = require("aiosqlite", "sqlite")
        if max_entries < 1 or max_open < 1 or not max_age_seconds > 0:
            raise ValueError("max_entries, max_open and max_age_seconds must be positive")
        self._path, self.table = path, check_table(table)
        check_table(f"{table}_processes")
        check_table(f"{table}_dead")
        self._max, self._max_open, self._age = max_entries, max_open, max_age_seconds
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._writes = 0
        self.dropped = 0
        self.open_dropped = 0
        """Open clicks taken out of the index before their age (its bound was reached)."""

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
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {t}_open (correlation_id TEXT PRIMARY KEY, "
                "opened_at REAL, closed_at REAL)"
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS {t}_open_at ON {t}_open (opened_at) "
                "WHERE closed_at IS NULL"
            )
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {t}_processes (process TEXT PRIMARY KEY, "
                "started_at REAL NOT NULL, seen_at REAL NOT NULL, heartbeat REAL NOT NULL)"
            )
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {t}_dead (correlation_id TEXT PRIMARY KEY, "
                "at REAL NOT NULL)"
            )
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {t}_dead_at ON {t}_dead (at)")
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
            rows = []
            for cid, m in marks(entries).items():
                opened, closed = merge(m, None, None)
                rows.append(
                    {
                        "cid": cid,
                        "o": opened,
                        "c": closed,
                        "f": m[0],
                        "s": m[1],
                        "a": m[2],
                    }
                )
            await conn.executemany(_UPSERT.format(t=self.table), rows)
            dead = dead_letters(entries)
            if dead:
                await conn.executemany(
                    f"INSERT INTO {self.table}_dead (correlation_id, at) VALUES (?, ?) "
                    "ON CONFLICT (correlation_id) DO UPDATE SET at = max(at, excluded.at)",
                    list(dead.items()),
                )
            self._writes += 1
            if self._writes % PRUNE_EVERY == 1:
                await self._prune(conn, now)
            await conn.commit()

    async def _prune(self, conn: aiosqlite.Connection, now: float) -> None:
        t = self.table
        await conn.execute(f"DELETE FROM {t} WHERE stored_at < ?", (now - self._age,))
        cursor = await conn.execute(
            f"DELETE FROM {t} WHERE id <= (SELECT max(id) FROM {t}) - ? AND correlation_id "
            f"NOT IN (SELECT correlation_id FROM {t}_open WHERE closed_at IS NULL)",
            (self._max,),
        )
        self.dropped += max(0, cursor.rowcount)
        horizon = (now - self._age) * 1000.0
        await conn.execute(
            f"DELETE FROM {t}_open WHERE coalesce(closed_at, opened_at) < ?", (horizon,)
        )
        await conn.execute(  # settled rows past the bound: the oldest, uncounted
            f"DELETE FROM {t}_open WHERE correlation_id IN (SELECT correlation_id FROM {t}_open "
            "WHERE closed_at IS NOT NULL ORDER BY closed_at LIMIT max(0, "
            f"(SELECT count(*) FROM {t}_open) - ?))",
            (self._max_open,),
        )
        cursor = await conn.execute(
            f"DELETE FROM {t}_open WHERE correlation_id IN (SELECT correlation_id FROM {t}_open "
            "WHERE closed_at IS NULL ORDER BY opened_at LIMIT max(0, "
            f"(SELECT count(*) FROM {t}_open) - ?))",
            (self._max_open,),
        )
        self.open_dropped += max(0, cursor.rowcount)
        await conn.execute(f"DELETE FROM {t}_processes WHERE seen_at < ?", (horizon,))
        await conn.execute(f"DELETE FROM {t}_dead WHERE at < ?", (horizon,))
        await conn.execute(
            f"DELETE FROM {t}_dead WHERE correlation_id IN (SELECT correlation_id FROM {t}_dead "
            f"ORDER BY at LIMIT max(0, (SELECT count(*) FROM {t}_dead) - ?))",
            (self._max_open,),
        )

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

    async def open_clicks(self, before_ms: float, limit: int) -> tuple[list[str], int]:
        conn = await self._connection()
        horizon = (time.time() - self._age) * 1000.0
        where = f"FROM {self.table}_open WHERE closed_at IS NULL AND opened_at BETWEEN ? AND ?"
        cursor = await conn.execute(
            f"SELECT correlation_id {where} ORDER BY opened_at LIMIT ?",
            (horizon, before_ms, max(0, limit)),
        )
        ids = [str(row[0]) for row in await cursor.fetchall()]
        cursor = await conn.execute(f"SELECT count(*) {where}", (horizon, before_ms))
        row = await cursor.fetchone()
        return ids, int(row[0]) if row else 0

    async def dead_lettered(self, limit: int) -> tuple[list[str], int]:
        conn = await self._connection()
        t = self.table
        horizon = (time.time() - self._age) * 1000.0
        # Only ids whose entries are still kept (the count bound may have taken them).
        where = (
            f"FROM {t}_dead d WHERE d.at >= ? AND EXISTS (SELECT 1 FROM {t} e WHERE "
            "e.correlation_id = d.correlation_id)"
        )
        cursor = await conn.execute(
            f"SELECT d.correlation_id {where} ORDER BY d.at LIMIT ?", (horizon, max(0, limit))
        )
        ids = [str(row[0]) for row in await cursor.fetchall()]
        cursor = await conn.execute(f"SELECT count(*) {where}", (horizon,))
        row = await cursor.fetchone()
        return ids, int(row[0]) if row else 0

    async def register(self, process: str, info: Process) -> None:
        async with self._lock:
            conn = await self._connection()
            t = self.table
            await conn.execute(
                f"INSERT INTO {t}_processes (process, started_at, seen_at, heartbeat) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (process) DO UPDATE SET "
                "started_at = excluded.started_at, seen_at = excluded.seen_at, "
                "heartbeat = excluded.heartbeat",
                (process, *info),
            )
            await conn.execute(
                f"DELETE FROM {t}_processes WHERE process IN (SELECT process FROM "
                f"{t}_processes ORDER BY seen_at DESC LIMIT -1 OFFSET ?)",
                (MAX_PROCESSES,),
            )
            await conn.commit()

    async def unregister(self, process: str) -> None:
        async with self._lock:
            conn = await self._connection()
            await conn.execute(f"DELETE FROM {self.table}_processes WHERE process = ?", (process,))
            await conn.commit()

    async def processes(self) -> dict[str, Process]:
        conn = await self._connection()
        cursor = await conn.execute(
            f"SELECT process, started_at, seen_at, heartbeat FROM {self.table}_processes"
        )
        return {str(r[0]): Process(r[1], r[2], r[3]) for r in await cursor.fetchall()}

    async def ping(self) -> None:
        conn = await self._connection()
        await conn.execute("SELECT 1")

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
