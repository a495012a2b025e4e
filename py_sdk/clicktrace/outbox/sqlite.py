"""The outbox in SQLite (aiosqlite)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from clicktrace._optional import require
from clicktrace._sql import check_table
from clicktrace.envelope import Envelope, decode, encode
from clicktrace.journal.record import record
from clicktrace.outbox.relay import PublishEnvelope

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["SqliteOutbox"]


class SqliteOutbox:
    """Outbox rows in table ``table`` of the caller's aiosqlite database::

        await outbox.add(conn, "products", envelope)  # beside the event's INSERT
        await conn.commit()                            # both, or neither

    Meant for one relay per database file: two relays would publish rows twice (harmless
    with idempotent consumers, but wasteful).
    """

    def __init__(self, table: str = "clicktrace_outbox") -> None:
        require("aiosqlite", "sqlite")
        self.table = check_table(table)

    async def create_tables(self, conn: aiosqlite.Connection) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "topic TEXT NOT NULL, envelope BLOB NOT NULL, message_id TEXT NOT NULL, "
            "created_at REAL NOT NULL, sent_at REAL)"
        )
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS {self.table}_unsent ON {self.table} (id) "
            "WHERE sent_at IS NULL"
        )
        await conn.commit()

    async def add(self, conn: aiosqlite.Connection, topic: str, envelope: Envelope) -> None:
        """Queue ``envelope`` for ``topic`` in the caller's open transaction (not committed)."""
        if not isinstance(envelope, Envelope):
            raise TypeError(f"add needs an Envelope, not {type(envelope).__name__}")
        await conn.execute(
            f"INSERT INTO {self.table} (topic, envelope, message_id, created_at) "
            "VALUES (?, ?, ?, ?)",
            (topic, encode(envelope), envelope.metadata.message_id, time.time()),
        )
        record(
            "stored",
            correlation_id=envelope.metadata.correlation_id,
            client_id=envelope.metadata.client_id,
            detail=topic,
        )

    async def relay_batch(self, conn: Any, limit: int, publish: PublishEnvelope) -> int:
        """Publish up to ``limit`` unsent rows in order; mark those that went out."""
        cursor = await conn.execute(
            f"SELECT id, topic, envelope FROM {self.table} WHERE sent_at IS NULL "
            "ORDER BY id LIMIT ?",
            (limit,),
        )
        rows = await cursor.fetchall()
        sent: list[int] = []
        try:
            for row_id, topic, body in rows:
                await publish(topic, decode(body))
                sent.append(row_id)
        finally:
            if sent:
                now = time.time()
                await conn.executemany(
                    f"UPDATE {self.table} SET sent_at = ? WHERE id = ?", [(now, i) for i in sent]
                )
                await conn.commit()
        return len(sent)

    async def unsent(self, conn: aiosqlite.Connection) -> int:
        cursor = await conn.execute(f"SELECT count(*) FROM {self.table} WHERE sent_at IS NULL")
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def lag(self, conn: aiosqlite.Connection) -> tuple[int, float | None]:
        """Unsent rows and the Unix time the oldest was stored (None when there is none)."""
        cursor = await conn.execute(
            f"SELECT count(*), min(created_at) FROM {self.table} WHERE sent_at IS NULL"
        )
        row = await cursor.fetchone()
        if row is None:
            return 0, None
        return int(row[0]), None if row[1] is None else float(row[1])

    async def prune(self, conn: aiosqlite.Connection, older_than_seconds: float) -> int:
        """Delete rows sent more than ``older_than_seconds`` ago (commits)."""
        cursor = await conn.execute(
            f"DELETE FROM {self.table} WHERE sent_at IS NOT NULL AND sent_at < ?",
            (time.time() - older_than_seconds,),
        )
        await conn.commit()
        return cursor.rowcount
