"""Command claims in SQLite (aiosqlite), claimed in the command's own transaction."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from clicktrace._sql import check_table
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
    writers, so a concurrent retry waits for the first attempt's commit)::

        async with db.transaction() as conn:
            return await once(retries, request, lambda: apply(conn), conn)
    """

    transactional = True

    def __init__(
        self, table: str = "clicktrace_commands", *, ttl_seconds: float = DEFAULT_TTL_SECONDS
    ) -> None:
        self.table = check_table(table)
        self._ttl = check_ttl(ttl_seconds)

    async def create_tables(self, conn: aiosqlite.Connection) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (key TEXT PRIMARY KEY, "
            "claimed_at REAL NOT NULL, status INTEGER, content_type TEXT, body BLOB)"
        )

    async def claim(self, key: str, conn: aiosqlite.Connection) -> Answer | None:
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

    async def prune(self, conn: aiosqlite.Connection) -> int:
        """Delete the expired claims; the number deleted."""
        cursor = await conn.execute(
            f"DELETE FROM {self.table} WHERE claimed_at < ?", (time.time() - self._ttl,)
        )
        return cursor.rowcount
