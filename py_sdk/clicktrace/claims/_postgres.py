"""Claims in PostgreSQL (asyncpg), made in the caller's own transaction.

A concurrent claim of the same key waits on the first one's uncommitted row, then sees it
committed (claimed before: read its answer) or rolled back (claims it afresh). Bounded by age
as the SQLite backend is: every ``prune_every`` claims of a process, a claim also deletes (at
most ``PRUNE_LIMIT``) claims older than ``keep_seconds``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clicktrace._optional import require
from clicktrace._sql import PRUNE_EVERY, PRUNE_LIMIT, TableStats, check_prune_every, check_table
from clicktrace.claims._base import DEFAULT_KEEP_SECONDS, ClaimsBase, check_keep

__all__ = ["PostgresClaims"]


class PostgresClaims(ClaimsBase):
    """Over an asyncpg connection, inside ``async with conn.transaction():``. One table,
    ``(scope, key, claimed_at, answer)``; ``create_tables(conn)`` at start. Instances sharing
    a table share its ``keep_seconds`` (pruning is table-wide)."""

    transactional = True

    def __init__(
        self,
        table: str = "clicktrace_claims",
        *,
        keep_seconds: float = DEFAULT_KEEP_SECONDS,
        prune_every: int = PRUNE_EVERY,
    ) -> None:
        require("asyncpg", "postgres")
        self.table = check_table(table)
        self.keep_seconds = check_keep(keep_seconds)
        self._prune_every, self._claims = check_prune_every(prune_every), 0

    async def create_tables(self, conn: Any) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (scope TEXT NOT NULL, key TEXT NOT NULL, "
            "claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(), answer BYTEA, "
            "PRIMARY KEY (scope, key));"
            # Pruning by age reads the oldest claims first.
            f"CREATE INDEX IF NOT EXISTS {self.table}_age ON {self.table} (claimed_at)"
        )

    async def claim(self, conn: Any, scope: str, key: str) -> bool:
        # A new key is inserted, an expired one taken over; a live one is left as it is.
        status: str = await conn.execute(
            f"INSERT INTO {self.table} AS t (scope, key) VALUES ($1, $2) "
            "ON CONFLICT (scope, key) DO UPDATE SET claimed_at = now(), answer = NULL "
            "WHERE t.claimed_at < now() - $3::float8 * interval '1 second'",
            scope,
            key,
            self.keep_seconds,
        )
        self._claims += 1
        if self._claims % self._prune_every == 0:
            await self.prune(conn)  # in the caller's transaction, at most PRUNE_LIMIT rows
        return status.endswith(" 1")

    async def keep(self, conn: Any, scope: str, key: str, answer: bytes) -> None:
        await conn.execute(
            f"UPDATE {self.table} SET answer = $3 WHERE scope = $1 AND key = $2",
            scope,
            key,
            answer,
        )

    async def kept(self, conn: Any, scope: str, key: str) -> bytes | None:
        answer = await conn.fetchval(
            f"SELECT answer FROM {self.table} WHERE scope = $1 AND key = $2", scope, key
        )
        return None if answer is None else bytes(answer)

    async def release(self, conn: Any, scope: str, key: str) -> None:
        await conn.execute(
            f"DELETE FROM {self.table} WHERE scope = $1 AND key = $2 AND answer IS NULL",
            scope,
            key,
        )

    async def claimed(self, conn: Any, scope: str, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` are claimed (one query)."""
        rows = await conn.fetch(
            f"SELECT key FROM {self.table} WHERE scope = $1 AND key = ANY($2::text[])",
            scope,
            list(keys),
        )
        return {str(row[0]) for row in rows}

    async def prune(
        self, conn: Any, older_than_seconds: float | None = None, *, limit: int = PRUNE_LIMIT
    ) -> int:
        """Delete at most ``limit`` claims older than ``older_than_seconds`` (default
        ``keep_seconds``); the number deleted."""
        age = self.keep_seconds if older_than_seconds is None else older_than_seconds
        status: str = await conn.execute(
            f"DELETE FROM {self.table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {self.table} "
            "WHERE claimed_at < now() - $1::float8 * interval '1 second' "
            "ORDER BY claimed_at LIMIT $2))",
            age,
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
