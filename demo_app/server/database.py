"""The catalogue's SQLite database: an append-only event store and the products read model.

Each unit of work opens its own connection (WAL mode), so concurrent requests never share a
transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from clicktrace.envelope import Envelope, encode

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    envelope BLOB NOT NULL,
    UNIQUE (stream, version)
);
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    price REAL NOT NULL,
    version INTEGER NOT NULL
);
"""

CATALOGUE = [
    ("Espresso cup", 9.5), ("French press", 34.0), ("Pour-over kettle", 58.0),
    ("Burr grinder", 129.0), ("Milk jug", 14.0), ("Tamper", 22.5),
]


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await conn.execute("PRAGMA busy_timeout = 5000")
            conn.row_factory = aiosqlite.Row
            yield conn
        finally:
            await conn.close()

    async def connect_relay(self) -> aiosqlite.Connection:
        """The outbox relay's own long-lived connection (it commits its own batches)."""
        return await aiosqlite.connect(self.path, timeout=5)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction, taken up front (BEGIN IMMEDIATE) to avoid upgrade deadlocks."""
        async with self.connect() as conn:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    async def create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        async with self.connect() as conn:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.executescript(SCHEMA)


async def append_event(conn: aiosqlite.Connection, stream: str, envelope: Envelope) -> int:
    """Append to ``stream`` at its next version; the unique index refuses a concurrent twin."""
    async with conn.execute(
        "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?", (stream,)
    ) as cur:
        row = await cur.fetchone()
    version = int(row[0]) + 1 if row else 1
    await conn.execute(
        "INSERT INTO events (stream, version, type, message_id, envelope) VALUES (?, ?, ?, ?, ?)",
        (stream, version, envelope.metadata.type, envelope.metadata.message_id, encode(envelope)),
    )
    return version


def product_row(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "price": row["price"], "version": row["version"]}


async def get_product(conn: aiosqlite.Connection, product_id: int) -> dict[str, Any] | None:
    async with conn.execute("SELECT * FROM products WHERE id = ?", (product_id,)) as cur:
        row = await cur.fetchone()
    return product_row(row) if row else None


async def list_products(conn: aiosqlite.Connection) -> list[dict[str, Any]]:
    async with conn.execute("SELECT * FROM products ORDER BY id") as cur:
        return [product_row(r) for r in await cur.fetchall()]
