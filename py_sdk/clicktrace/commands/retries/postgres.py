"""Command claims in PostgreSQL (asyncpg), claimed in the command's own transaction."""

from __future__ import annotations

from typing import Any

from clicktrace._optional import require
from clicktrace._sql import check_table
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
    committed answer (or claims afresh if it rolled back)."""

    transactional = True

    def __init__(
        self, table: str = "clicktrace_commands", *, ttl_seconds: float = DEFAULT_TTL_SECONDS
    ) -> None:
        require("asyncpg", "postgres")
        self.table = check_table(table)
        self._ttl = check_ttl(ttl_seconds)

    async def create_tables(self, conn: Any) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (key TEXT PRIMARY KEY, "
            "claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(), status INTEGER, "
            "content_type TEXT, body BYTEA)"
        )

    async def claim(self, key: str, conn: Any) -> Answer | None:
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

    async def prune(self, conn: Any) -> int:
        status: str = await conn.execute(
            f"DELETE FROM {self.table} WHERE claimed_at < now() - $1::float8 * interval '1 second'",
            self._ttl,
        )
        return int(status.rsplit(" ", 1)[-1])
