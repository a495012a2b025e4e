"""Processed message ids in the projection's own database, claimed in its transaction, with
the outcome the projection decided (so a redelivery after a crash can still tell the tab)."""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any

from clicktrace._sql import check_table
from clicktrace.bus.idempotency.outcome import Outcome, decode_outcome, encode_outcome

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["PostgresIdempotency", "SqliteIdempotency", "check_table"]


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

    def __init__(self, table: str = "clicktrace_processed") -> None:
        self.table = check_table(table)

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

    async def claim(self, conn: aiosqlite.Connection, consumer: str, message_id: str) -> bool:
        """True the first time; False when this consumer already processed it."""
        cursor = await conn.execute(
            f"INSERT OR IGNORE INTO {self.table} (consumer, message_id, processed_at) "
            "VALUES (?, ?, ?)",
            (consumer, message_id, time.time()),
        )
        return cursor.rowcount == 1

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

    async def prune(self, conn: aiosqlite.Connection, older_than_seconds: float) -> int:
        cursor = await conn.execute(
            f"DELETE FROM {self.table} WHERE processed_at < ?",
            (time.time() - older_than_seconds,),
        )
        return cursor.rowcount


class PostgresIdempotency:
    """The same over an asyncpg connection, inside ``async with conn.transaction():``."""

    def __init__(self, table: str = "clicktrace_processed") -> None:
        self.table = check_table(table)

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

    async def claim(self, conn: Any, consumer: str, message_id: str) -> bool:
        status: str = await conn.execute(
            f"INSERT INTO {self.table} (consumer, message_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            consumer,
            message_id,
        )
        return status.endswith(" 1")

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

    async def prune(self, conn: Any, older_than_seconds: float) -> int:
        status: str = await conn.execute(
            f"DELETE FROM {self.table} "
            "WHERE processed_at < now() - $1::float8 * interval '1 second'",
            older_than_seconds,
        )
        return int(status.rsplit(" ", 1)[-1])
