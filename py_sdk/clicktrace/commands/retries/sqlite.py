"""Command claims in SQLite (aiosqlite), claimed in the command's own transaction."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from clicktrace._sql import PRUNE_EVERY, PRUNE_LIMIT, TableStats, check_prune_every, check_table
from clicktrace.commands.retries.base import (
    DEFAULT_TTL_SECONDS,
    Answer,
    check_ttl,
    in_progress,
)

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["SqliteRetryStore"]


class SqliteRetryStore:
    """Over aiosqlite, inside the command's write transaction (``BEGIN IMMEDIATE`` serialises
    writers, so a concurrent retry waits for the first attempt's commit). Every
    ``prune_every`` claims of a process, a claim also deletes expired ones (at most
    ``PRUNE_LIMIT``)::

        async with db.transaction() as conn:
            return await once(retries, request, lambda: apply(conn), conn)
    """

    transactional = True

    def __init__(
        self,
        table: str = "clicktrace_commands",
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        prune_every: int = PRUNE_EVERY,
    ) -> None:
        self.table = check_table(table)
        self._ttl = check_ttl(ttl_seconds)
        self._prune_every, self._claims = check_prune_every(prune_every), 0

    async def create_tables(self, conn: aiosqlite.Connection) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (key TEXT PRIMARY KEY, "
            "claimed_at REAL NOT NULL, status INTEGER, content_type TEXT, body BLOB)"
        )
        # Pruning by age reads the oldest claims first.
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS {self.table}_age ON {self.table} (claimed_at)"
        )

    async def claim(self, key: str, conn: aiosqlite.Connection) -> Answer | None:
        self._claims += 1
        if self._claims % self._prune_every == 0:
            await self.prune(conn)  # in the command's transaction, at most PRUNE_LIMIT rows
        now = time.time()
        # A new key is inserted, an expired one taken over; a live one is left as it is.
        cursor = await conn.execute(
            f"INSERT INTO {self.table} (key, claimed_at) VALUES (?, ?) ON CONFLICT (key) DO "
            "UPDATE SET claimed_at = excluded.claimed_at, status = NULL, content_type = NULL, "
            f"body = NULL WHERE {self.table}.claimed_at < ?",
            (key, now, now - self._ttl),
        )
        if cursor.rowcount == 1:
            return None
        async with conn.execute(
            f"SELECT status, content_type, body FROM {self.table} WHERE key = ?", (key,)
        ) as rows:
            row = await rows.fetchone()
        if row is None or row[0] is None:
            return in_progress()
        return Answer(int(row[0]), bytes(row[2]), str(row[1]))

    async def record(self, key: str, answer: Answer, conn: aiosqlite.Connection) -> None:
        await conn.execute(
            f"UPDATE {self.table} SET status = ?, content_type = ?, body = ? WHERE key = ?",
            (answer.status, answer.content_type, answer.body, key),
        )

    async def release(self, key: str, conn: aiosqlite.Connection) -> None:
        await conn.execute(f"DELETE FROM {self.table} WHERE key = ?", (key,))

    async def prune(self, conn: aiosqlite.Connection, *, limit: int = PRUNE_LIMIT) -> int:
        """Delete at most ``limit`` expired claims; the number deleted."""
        cursor = await conn.execute(
            f"DELETE FROM {self.table} WHERE key IN (SELECT key FROM {self.table} "
            "WHERE claimed_at < ? ORDER BY claimed_at LIMIT ?)",
            (time.time() - self._ttl, limit),
        )
        return cursor.rowcount

    async def stats(self, conn: aiosqlite.Connection) -> TableStats:
        """Claims kept and the oldest one's time."""
        async with conn.execute(f"SELECT count(*), min(claimed_at) FROM {self.table}") as rows:
            row = await rows.fetchone()
        if row is None:
            return TableStats(0, None)
        return TableStats(int(row[0]), None if row[1] is None else float(row[1]))
