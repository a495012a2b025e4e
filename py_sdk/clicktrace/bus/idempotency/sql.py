"""Processed message ids in the projection's own database, claimed in its transaction."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["PostgresIdempotency", "SqliteIdempotency", "check_table"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_table(name: str) -> str:
    """A table name safe to put into SQL (it cannot be a bound parameter)."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"invalid table name {name!r}")
    return name


class SqliteIdempotency:
    """``claim(conn, consumer, message_id)`` inside the handler's aiosqlite transaction::

        async with conn:  # or BEGIN ... COMMIT
            if await processed.claim(conn, "projection", envelope.metadata.message_id):
                await conn.execute("UPDATE products ...")
    """

    def __init__(self, table: str = "clicktrace_processed") -> None:
        self.table = check_table(table)

    async def create_tables(self, conn: aiosqlite.Connection) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (consumer TEXT NOT NULL, "
            "message_id TEXT NOT NULL, processed_at REAL NOT NULL, "
            "PRIMARY KEY (consumer, message_id))"
        )

    async def claim(self, conn: aiosqlite.Connection, consumer: str, message_id: str) -> bool:
        """True the first time; False when this consumer already processed it."""
        cursor = await conn.execute(
            f"INSERT OR IGNORE INTO {self.table} (consumer, message_id, processed_at) "
            "VALUES (?, ?, ?)", (consumer, message_id, time.time()),
        )
        return cursor.rowcount == 1

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
            "PRIMARY KEY (consumer, message_id))"
        )

    async def claim(self, conn: Any, consumer: str, message_id: str) -> bool:
        status: str = await conn.execute(
            f"INSERT INTO {self.table} (consumer, message_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING", consumer, message_id,
        )
        return status.endswith(" 1")

    async def prune(self, conn: Any, older_than_seconds: float) -> int:
        status: str = await conn.execute(
            f"DELETE FROM {self.table} "
            "WHERE processed_at < now() - $1::float8 * interval '1 second'",
            older_than_seconds,
        )
        return int(status.rsplit(" ", 1)[-1])
