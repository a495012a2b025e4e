"""Command claims in PostgreSQL (asyncpg), claimed in the command's own transaction."""

from __future__ import annotations

from typing import Any

from clicktrace._optional import require
from clicktrace._sql import PRUNE_EVERY, PRUNE_LIMIT, TableStats, check_prune_every, check_table
from clicktrace.commands.retries.base import (
    DEFAULT_TTL_SECONDS,
    Answer,
    check_ttl,
    in_progress,
)

__all__ = ["PostgresRetryStore"]


class PostgresRetryStore:
    """The same over an asyncpg connection, inside ``async with conn.transaction():``. A
    concurrent retry's insert waits on the first attempt's uncommitted row, then reads its
    committed answer (or claims afresh if it rolled back). Every ``prune_every`` claims of a
    process, a claim also deletes expired ones (at most ``PRUNE_LIMIT``)."""

    transactional = True

    def __init__(
        self,
        table: str = "clicktrace_commands",
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        prune_every: int = PRUNE_EVERY,
    ) -> None:
        require("asyncpg", "postgres")
        self.table = check_table(table)
        self._ttl = check_ttl(ttl_seconds)
        self._prune_every, self._claims = check_prune_every(prune_every), 0

    async def create_tables(self, conn: Any) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (key TEXT PRIMARY KEY, "
            "claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(), status INTEGER, "
            "content_type TEXT, body BYTEA);"
            # Pruning by age reads the oldest claims first.
            f"CREATE INDEX IF NOT EXISTS {self.table}_age ON {self.table} (claimed_at)"
        )

    async def claim(self, key: str, conn: Any) -> Answer | None:
        self._claims += 1
        if self._claims % self._prune_every == 0:
            await self.prune(conn)  # in the command's transaction, at most PRUNE_LIMIT rows
        status: str = await conn.execute(
            f"INSERT INTO {self.table} AS t (key) VALUES ($1) ON CONFLICT (key) DO UPDATE "
            "SET claimed_at = now(), status = NULL, content_type = NULL, body = NULL "
            "WHERE t.claimed_at < now() - $2::float8 * interval '1 second'",
            key,
            self._ttl,
        )
        if status.endswith(" 1"):
            return None
        row = await conn.fetchrow(
            f"SELECT status, content_type, body FROM {self.table} WHERE key = $1", key
        )
        if row is None or row["status"] is None:
            return in_progress()
        return Answer(int(row["status"]), bytes(row["body"]), str(row["content_type"]))

    async def record(self, key: str, answer: Answer, conn: Any) -> None:
        await conn.execute(
            f"UPDATE {self.table} SET status = $2, content_type = $3, body = $4 WHERE key = $1",
            key,
            answer.status,
            answer.content_type,
            answer.body,
        )

    async def release(self, key: str, conn: Any) -> None:
        await conn.execute(f"DELETE FROM {self.table} WHERE key = $1", key)

    async def prune(self, conn: Any, *, limit: int = PRUNE_LIMIT) -> int:
        """Delete at most ``limit`` claims older than the TTL; the number deleted."""
        status: str = await conn.execute(
            f"DELETE FROM {self.table} WHERE key = ANY(ARRAY(SELECT key FROM {self.table} "
            "WHERE claimed_at < now() - $1::float8 * interval '1 second' "
            "ORDER BY claimed_at LIMIT $2))",
            self._ttl,
            limit,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def stats(self, conn: Any) -> TableStats:
        """Claims kept (the planner's estimate once analysed), the oldest one's time and the
        table's size with its indexes."""
        t = self.table
        row = await conn.fetchrow(
            f"SELECT (SELECT extract(epoch FROM min(claimed_at)) FROM {t}), "
            "reltuples, pg_total_relation_size(oid) FROM pg_class WHERE oid = $1::regclass",
            t,
        )
        rows = int(row[1])
        if rows < 0:  # never analysed yet: count (the table is young, so small)
            rows = int(await conn.fetchval(f"SELECT count(*) FROM {t}"))
        return TableStats(rows, None if row[0] is None else float(row[0]), int(row[2]))
