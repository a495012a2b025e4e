"""Claims in SQLite (aiosqlite), made in the caller's own transaction.

Bounded by age: every ``prune_every`` claims of a process, a claim also deletes (in the same
transaction, at most ``PRUNE_LIMIT`` rows) claims older than ``keep_seconds``. A claim older
than that is taken over by the next ``claim`` of its key even before it is pruned.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from clicktrace._sql import PRUNE_EVERY, PRUNE_LIMIT, TableStats, check_prune_every, check_table
from clicktrace.claims._base import DEFAULT_KEEP_SECONDS, ClaimsBase, check_keep

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["SqliteClaims"]

# SQLite caps the bound parameters of one statement (999 before 3.32).
_IN_CHUNK: Final = 500


class SqliteClaims(ClaimsBase):
    """Over aiosqlite, inside the caller's write transaction (``BEGIN IMMEDIATE`` serialises
    writers, so a concurrent retry waits for the first attempt's commit)::

        async with db.transaction() as conn:
            return await once(claims, request, lambda: apply(conn), conn)

    One table, ``(scope, key, claimed_at, answer)``; ``create_tables(conn)`` at start.
    Instances sharing a table share its ``keep_seconds`` (pruning is table-wide).
    """

    transactional = True

    def __init__(
        self,
        table: str = "clicktrace_claims",
        *,
        keep_seconds: float = DEFAULT_KEEP_SECONDS,
        prune_every: int = PRUNE_EVERY,
    ) -> None:
        self.table = check_table(table)
        self.keep_seconds = check_keep(keep_seconds)
        self._prune_every, self._claims = check_prune_every(prune_every), 0

    async def create_tables(self, conn: aiosqlite.Connection) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (scope TEXT NOT NULL, key TEXT NOT NULL, "
            "claimed_at REAL NOT NULL, answer BLOB, PRIMARY KEY (scope, key))"
        )
        # Pruning by age reads the oldest claims first.
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS {self.table}_age ON {self.table} (claimed_at)"
        )

    async def claim(self, conn: aiosqlite.Connection, scope: str, key: str) -> bool:
        now = time.time()
        # A new key is inserted, an expired one taken over; a live one is left as it is.
        cursor = await conn.execute(
            f"INSERT INTO {self.table} (scope, key, claimed_at) VALUES (?, ?, ?) "
            "ON CONFLICT (scope, key) DO UPDATE SET claimed_at = excluded.claimed_at, "
            f"answer = NULL WHERE {self.table}.claimed_at < ?",
            (scope, key, now, now - self.keep_seconds),
        )
        self._claims += 1
        if self._claims % self._prune_every == 0:
            await self.prune(conn)  # in the caller's transaction, at most PRUNE_LIMIT rows
        return cursor.rowcount == 1

    async def keep(self, conn: aiosqlite.Connection, scope: str, key: str, answer: bytes) -> None:
        await conn.execute(
            f"UPDATE {self.table} SET answer = ? WHERE scope = ? AND key = ?",
            (answer, scope, key),
        )

    async def kept(self, conn: aiosqlite.Connection, scope: str, key: str) -> bytes | None:
        async with conn.execute(
            f"SELECT answer FROM {self.table} WHERE scope = ? AND key = ?", (scope, key)
        ) as rows:
            row = await rows.fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    async def release(self, conn: aiosqlite.Connection, scope: str, key: str) -> None:
        await conn.execute(
            f"DELETE FROM {self.table} WHERE scope = ? AND key = ? AND answer IS NULL",
            (scope, key),
        )

    async def claimed(
        self, conn: aiosqlite.Connection, scope: str, keys: Sequence[str]
    ) -> set[str]:
        """Which of ``keys`` are claimed (one query per 500 keys)."""
        found: set[str] = set()
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = list(keys[start : start + _IN_CHUNK])
            marks = ",".join("?" * len(chunk))
            async with conn.execute(
                f"SELECT key FROM {self.table} WHERE scope = ? AND key IN ({marks})",
                (scope, *chunk),
            ) as rows:
                found.update(str(row[0]) for row in await rows.fetchall())
        return found

    async def prune(
        self,
        conn: aiosqlite.Connection,
        older_than_seconds: float | None = None,
        *,
        limit: int = PRUNE_LIMIT,
    ) -> int:
        """Delete at most ``limit`` claims older than ``older_than_seconds`` (default
        ``keep_seconds``) in the caller's transaction; the number deleted."""
        age = self.keep_seconds if older_than_seconds is None else older_than_seconds
        cursor = await conn.execute(
            f"DELETE FROM {self.table} WHERE rowid IN (SELECT rowid FROM {self.table} "
            "WHERE claimed_at < ? ORDER BY claimed_at LIMIT ?)",
            (time.time() - age, limit),
        )
        return cursor.rowcount

    async def stats(self, conn: aiosqlite.Connection) -> TableStats:
        """Claims kept and the oldest one's time (for health: older than ``keep_seconds`` by
        much means nothing prunes)."""
        async with conn.execute(f"SELECT count(*), min(claimed_at) FROM {self.table}") as rows:
            row = await rows.fetchone()
        if row is None:
            return TableStats(0, None)
        return TableStats(int(row[0]), None if row[1] is None else float(row[1]))
