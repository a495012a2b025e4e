"""The outbox in PostgreSQL (asyncpg)."""

from __future__ import annotations

import hashlib
from typing import Any

from clicktrace._optional import require
from clicktrace._sql import check_table
from clicktrace.envelope import Envelope, decode, encode
from clicktrace.journal.record import record
from clicktrace.outbox.relay import PublishEnvelope

__all__ = ["PostgresOutbox"]


class PostgresOutbox:
    """Outbox rows in table ``table``, over asyncpg connections::

        async with conn.transaction():
            await conn.execute("INSERT INTO events ...")
            await outbox.add(conn, "products", envelope)

    Several relays may run: a transaction-scoped advisory lock lets one publish at a time,
    so rows go out in id order.
    """

    def __init__(self, table: str = "clicktrace_outbox") -> None:
        require("asyncpg", "postgres")
        self.table = check_table(table)
        digest = hashlib.sha1(self.table.encode(), usedforsecurity=False).digest()
        self._lock_key = int.from_bytes(digest[:8], "big", signed=True)

    async def create_tables(self, conn: Any) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (id BIGINT GENERATED ALWAYS AS IDENTITY "
            "PRIMARY KEY, topic TEXT NOT NULL, envelope BYTEA NOT NULL, message_id TEXT NOT NULL, "
            "created_at TIMESTAMPTZ NOT NULL DEFAULT now(), sent_at TIMESTAMPTZ);"
            f"CREATE INDEX IF NOT EXISTS {self.table}_unsent ON {self.table} (id) "
            "WHERE sent_at IS NULL"
        )

    async def add(self, conn: Any, topic: str, envelope: Envelope) -> None:
        """Queue ``envelope`` for ``topic`` in the caller's transaction."""
        if not isinstance(envelope, Envelope):
            raise TypeError(f"add needs an Envelope, not {type(envelope).__name__}")
        await conn.execute(
            f"INSERT INTO {self.table} (topic, envelope, message_id) VALUES ($1, $2, $3)",
            topic,
            encode(envelope),
            envelope.metadata.message_id,
        )
        record(
            "stored",
            correlation_id=envelope.metadata.correlation_id,
            client_id=envelope.metadata.client_id,
            detail=topic,
        )

    async def relay_batch(self, conn: Any, limit: int, publish: PublishEnvelope) -> int:
        """Publish up to ``limit`` unsent rows in order; mark those that went out."""
        sent: list[int] = []
        failure: Exception | None = None
        async with conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_key):
                return 0  # another relay is at it
            rows = await conn.fetch(
                f"SELECT id, topic, envelope FROM {self.table} WHERE sent_at IS NULL "
                "ORDER BY id LIMIT $1",
                limit,
            )
            try:
                for row in rows:
                    await publish(row["topic"], decode(row["envelope"]))
                    sent.append(row["id"])
            except Exception as exc:
                failure = exc  # still mark what went out, then report it
            if sent:
                await conn.execute(
                    f"UPDATE {self.table} SET sent_at = now() WHERE id = ANY($1::bigint[])", sent
                )
        if failure is not None:
            raise failure
        return len(sent)

    async def unsent(self, conn: Any) -> int:
        return int(await conn.fetchval(f"SELECT count(*) FROM {self.table} WHERE sent_at IS NULL"))

    async def lag(self, conn: Any) -> tuple[int, float | None]:
        """Unsent rows and the Unix time the oldest was stored (None when there is none)."""
        row = await conn.fetchrow(
            f"SELECT count(*), extract(epoch FROM min(created_at)) FROM {self.table} "
            "WHERE sent_at IS NULL"
        )
        return int(row[0]), None if row[1] is None else float(row[1])

    async def prune(self, conn: Any, older_than_seconds: float) -> int:
        status: str = await conn.execute(
            f"DELETE FROM {self.table} WHERE sent_at < now() - $1::float8 * interval '1 second'",
            older_than_seconds,
        )
        return int(status.rsplit(" ", 1)[-1])
