"""Processed message ids in the projection's own database, claimed in its transaction, with
the outcome the projection decided (so a redelivery after a crash can still tell the tab).

Bounded by age: every ``prune_every`` claims of a process, the claim itself also deletes (in
the same transaction, at most ``PRUNE_LIMIT`` rows) claims older than ``keep_seconds``. Keep
it longer than any message can come back: the outbox's reconciler re-publishes for minutes,
a relay restarted after a crash re-sends what it had not marked (docs/bus.md).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from clicktrace._sql import PRUNE_EVERY, PRUNE_LIMIT, TableStats, check_prune_every, check_table
from clicktrace.bus.idempotency.outcome import Outcome, decode_outcome, encode_outcome

if TYPE_CHECKING:
    import aiosqlite

__all__ = [
    "DEFAULT_KEEP_SECONDS",
    "PRUNE_EVERY",
    "PRUNE_LIMIT",
    "PostgresIdempotency",
    "SqliteIdempotency",
    "TableStats",
    "check_table",
]

DEFAULT_KEEP_SECONDS: Final = 7 * 24 * 3600.0
# SQLite caps the bound parameters of one statement (999 before 3.32).
_SQLITE_IN_CHUNK: Final = 500


def _check_retention(keep_seconds: float, prune_every: int) -> tuple[float, int]:
    if isinstance(keep_seconds, bool) or not keep_seconds > 0:
        raise ValueError("keep_seconds must be > 0")
    return float(keep_seconds), check_prune_every(prune_every)


class SqliteIdempotency:
    """``claim(conn, consumer, message_id)`` inside the handler's aiosqlite transaction::

    async with conn:  # or BEGIN ... COMMIT
        if await processed.claim(conn, "projection", message_id):
            await conn.execute("UPDATE products ...")
            outcome = Outcome.confirmed({"id": 3, "name": "Tea"})
            await processed.record_outcome(conn, "projection", message_id, outcome)
        else:  # processed before, maybe by a process that died before telling the tab
            outcome = await processed.recorded_outcome(conn, "projection", message_id)
    await send_outcome(notify, envelope, outcome)  # after the commit; None sends nothing
    """

    def __init__(
        self,
        table: str = "clicktrace_processed",
        *,
        keep_seconds: float = DEFAULT_KEEP_SECONDS,
        prune_every: int = PRUNE_EVERY,
    ) -> None:
        self.table = check_table(table)
        self.keep_seconds, self._prune_every = _check_retention(keep_seconds, prune_every)
        self._claims = 0

    async def create_tables(self, conn: aiosqlite.Connection) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (consumer TEXT NOT NULL, "
            "message_id TEXT NOT NULL, processed_at REAL NOT NULL, outcome TEXT, "
            "PRIMARY KEY (consumer, message_id))"
        )
        async with conn.execute(f"PRAGMA table_info({self.table})") as rows:
            columns = {row[1] for row in await rows.fetchall()}
        if "outcome" not in columns:  # a table from before outcomes were kept
            try:
                await conn.execute(f"ALTER TABLE {self.table} ADD COLUMN outcome TEXT")
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise
        # Pruning by age reads the oldest rows first.
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS {self.table}_age ON {self.table} (processed_at)"
        )

    async def claim(self, conn: aiosqlite.Connection, consumer: str, message_id: str) -> bool:
        """True the first time; False when this consumer already processed it."""
        cursor = await conn.execute(
            f"INSERT OR IGNORE INTO {self.table} (consumer, message_id, processed_at) "
            "VALUES (?, ?, ?)",
            (consumer, message_id, time.time()),
        )
        self._claims += 1
        if self._claims % self._prune_every == 0:
            await self.prune(conn, self.keep_seconds)
        return cursor.rowcount == 1

    async def claimed(
        self, conn: aiosqlite.Connection, consumer: str, message_ids: Sequence[str]
    ) -> set[str]:
        """Which of ``message_ids`` ``consumer`` has claimed (one query per 500 ids)."""
        found: set[str] = set()
        for start in range(0, len(message_ids), _SQLITE_IN_CHUNK):
            chunk = list(message_ids[start : start + _SQLITE_IN_CHUNK])
            marks = ",".join("?" * len(chunk))
            async with conn.execute(
                f"SELECT message_id FROM {self.table} WHERE consumer = ? "
                f"AND message_id IN ({marks})",
                (consumer, *chunk),
            ) as rows:
                found.update(str(row[0]) for row in await rows.fetchall())
        return found

    async def record_outcome(
        self, conn: aiosqlite.Connection, consumer: str, message_id: str, outcome: Outcome
    ) -> None:
        """Keep what the projection decided with its claim, in the same transaction."""
        await conn.execute(
            f"UPDATE {self.table} SET outcome = ? WHERE consumer = ? AND message_id = ?",
            (encode_outcome(outcome), consumer, message_id),
        )

    async def recorded_outcome(
        self, conn: aiosqlite.Connection, consumer: str, message_id: str
    ) -> Outcome | None:
        """The outcome kept with a claim, or ``None`` (none recorded, or unreadable)."""
        async with conn.execute(
            f"SELECT outcome FROM {self.table} WHERE consumer = ? AND message_id = ?",
            (consumer, message_id),
        ) as rows:
            row = await rows.fetchone()
        return decode_outcome(row[0]) if row else None

    async def prune(
        self, conn: aiosqlite.Connection, older_than_seconds: float, *, limit: int = PRUNE_LIMIT
    ) -> int:
        """Delete at most ``limit`` claims older than ``older_than_seconds`` (in the caller's
        transaction); the number deleted."""
        cursor = await conn.execute(
            f"DELETE FROM {self.table} WHERE rowid IN (SELECT rowid FROM {self.table} "
            "WHERE processed_at < ? ORDER BY processed_at LIMIT ?)",
            (time.time() - older_than_seconds, limit),
        )
        return cursor.rowcount

    async def stats(self, conn: aiosqlite.Connection) -> TableStats:
        """Rows kept and the oldest one's time (for health: older than ``keep_seconds`` by
        much means nothing prunes)."""
        async with conn.execute(f"SELECT count(*), min(processed_at) FROM {self.table}") as rows:
            row = await rows.fetchone()
        if row is None:
            return TableStats(0, None)
        return TableStats(int(row[0]), None if row[1] is None else float(row[1]))


class PostgresIdempotency:
    """The same over an asyncpg connection, inside ``async with conn.transaction():``."""

    def __init__(
        self,
        table: str = "clicktrace_processed",
        *,
        keep_seconds: float = DEFAULT_KEEP_SECONDS,
        prune_every: int = PRUNE_EVERY,
    ) -> None:
        self.table = check_table(table)
        self.keep_seconds, self._prune_every = _check_retention(keep_seconds, prune_every)
        self._claims = 0

    async def create_tables(self, conn: Any) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (consumer TEXT NOT NULL, "
            "message_id TEXT NOT NULL, processed_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
            "outcome TEXT, PRIMARY KEY (consumer, message_id))"
        )
        # A table from before outcomes were kept (checked first: ALTER locks the table).
        if not await conn.fetchval(
            "SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass "
            "AND attname = 'outcome' AND NOT attisdropped",
            self.table,
        ):
            await conn.execute(f"ALTER TABLE {self.table} ADD COLUMN IF NOT EXISTS outcome TEXT")
        # Pruning by age reads the oldest rows first.
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS {self.table}_age ON {self.table} (processed_at)"
        )

    async def claim(self, conn: Any, consumer: str, message_id: str) -> bool:
        status: str = await conn.execute(
            f"INSERT INTO {self.table} (consumer, message_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            consumer,
            message_id,
        )
        self._claims += 1
        if self._claims % self._prune_every == 0:
            await self.prune(conn, self.keep_seconds)
        return status.endswith(" 1")

    async def claimed(self, conn: Any, consumer: str, message_ids: Sequence[str]) -> set[str]:
        """Which of ``message_ids`` ``consumer`` has claimed (one query)."""
        rows = await conn.fetch(
            f"SELECT message_id FROM {self.table} WHERE consumer = $1 "
            "AND message_id = ANY($2::text[])",
            consumer,
            list(message_ids),
        )
        return {str(row[0]) for row in rows}

    async def record_outcome(
        self, conn: Any, consumer: str, message_id: str, outcome: Outcome
    ) -> None:
        await conn.execute(
            f"UPDATE {self.table} SET outcome = $1 WHERE consumer = $2 AND message_id = $3",
            encode_outcome(outcome),
            consumer,
            message_id,
        )

    async def recorded_outcome(self, conn: Any, consumer: str, message_id: str) -> Outcome | None:
        raw = await conn.fetchval(
            f"SELECT outcome FROM {self.table} WHERE consumer = $1 AND message_id = $2",
            consumer,
            message_id,
        )
        return decode_outcome(raw)

    async def prune(self, conn: Any, older_than_seconds: float, *, limit: int = PRUNE_LIMIT) -> int:
        """Delete at most ``limit`` claims older than ``older_than_seconds``; the number."""
        status: str = await conn.execute(
            f"DELETE FROM {self.table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {self.table} "
            "WHERE processed_at < now() - $1::float8 * interval '1 second' "
            "ORDER BY processed_at LIMIT $2))",
            older_than_seconds,
            limit,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def stats(self, conn: Any) -> TableStats:
        """Rows kept and the oldest one's time (None when empty)."""
        t = self.table
        row = await conn.fetchrow(
            f"SELECT (SELECT extract(epoch FROM min(processed_at)) FROM {t}), "
            "reltuples, pg_total_relation_size(oid) FROM pg_class WHERE oid = $1::regclass",
            t,
        )
        rows = int(row[1])
        if rows < 0:  # never analysed yet: count (the table is young, so small)
            rows = int(await conn.fetchval(f"SELECT count(*) FROM {t}"))
        return TableStats(rows, None if row[0] is None else float(row[0]), int(row[2]))
