"""The embedded store: SQLite, an append-only event store and the products read model.

Every statement runs on the event loop's thread (``loop_sqlite``: a click's twenty statements
cost less than the forty thread wake-ups aiosqlite would add). Writes go through one
connection the store keeps, one transaction at a time (an asyncio lock; SQLite has one writer
anyway). Reads and the outbox relay have connections of their own (WAL: a reader never waits
for the writer).

``synchronous = NORMAL`` in WAL mode: a commit is atomic (an event and its outbox row are
stored together or not at all) and survives the process dying; only the operating system
crashing or the power failing can lose the last commits. FULL would add an fsync per commit,
two per click, for that case, which an embedded demo does not need.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import Response

from clicktrace.claims import SqliteClaims
from clicktrace.commands import once
from clicktrace.envelope import Envelope, encode, new_envelope
from clicktrace.outbox import SqliteOutbox

from . import loop_sqlite
from .catalogue import CATALOGUE, CREATED, stream_of
from .loop_sqlite import LoopConnection, as_aiosqlite
from .store import NOT_FOUND, Outcome, taken

# How long a write waits for SQLite's lock before "database is locked" (answered 503).
BUSY_TIMEOUT_MS = 5000

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


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.outbox = SqliteOutbox()
        # One table of claims: the commands' (retried commands answered once) and the
        # projection's (each message applied once, with the outcome the tab was told).
        self._claims = SqliteClaims()
        self._writer: LoopConnection | None = None
        self._write_lock = asyncio.Lock()

    def _open(self) -> LoopConnection:
        conn = loop_sqlite.connect(
            self.path, busy_timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
        )
        conn.row_factory = sqlite3.Row
        return conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[LoopConnection]:
        """A connection of its own, for reads."""
        conn = self._open()
        try:
            yield conn
        finally:
            await conn.close()

    async def connect_relay(self) -> LoopConnection:
        return loop_sqlite.connect(self.path, busy_timeout=BUSY_TIMEOUT_MS / 1000)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[LoopConnection]:
        """A write transaction on the kept connection, taken up front (BEGIN IMMEDIATE: the
        relay's connection writes too) and one at a time."""
        async with self._write_lock:
            if self._writer is None:
                self._writer = self._open()
            conn = self._writer
            if conn.in_transaction:  # a rollback that was itself interrupted
                await conn.rollback()
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                try:
                    await conn.rollback()
                except sqlite3.Error:
                    await self._drop_writer()
                raise
            try:
                await conn.commit()
            except sqlite3.Error:
                # A failed commit may leave the transaction open: never reuse it.
                await self._drop_writer()
                raise

    async def _drop_writer(self) -> None:
        conn, self._writer = self._writer, None
        if conn is not None:
            await conn.close()

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        async with self.connect() as conn:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.executescript(SCHEMA)
            await self.outbox.create_tables(as_aiosqlite(conn))
            await self._claims.create_tables(as_aiosqlite(conn))
            await self._claims.prune(as_aiosqlite(conn))
        async with self.transaction() as conn:
            async with conn.execute("SELECT COUNT(*) FROM products") as cur:
                row = await cur.fetchone()
            if row and row[0]:
                return
            for product_id, (name, price) in enumerate(CATALOGUE, start=1):
                payload = {"id": product_id, "name": name, "price": price}
                await _append(conn, stream_of(product_id), new_envelope(CREATED, payload))
                await conn.execute(
                    "INSERT INTO products (id, name, price, version) VALUES (?, ?, ?, 1)",
                    (product_id, name, price),
                )

    async def aclose(self) -> None:
        async with self._write_lock:
            await self._drop_writer()

    async def products(self) -> list[dict[str, Any]]:
        async with (
            self.connect() as conn,
            conn.execute("SELECT * FROM products ORDER BY id") as cur,
        ):
            return [_row(r) for r in await cur.fetchall()]

    async def accept_rename(
        self,
        request: HTTPConnection,
        product_id: int,
        envelope: Envelope,
        topic: str,
        answer: Callable[[bool], Response],
        *,
        outbox: bool = True,
    ) -> Response:
        async with self.transaction() as conn:

            async def apply() -> Response:
                if await _product(conn, product_id) is None:
                    return answer(False)
                await _append(conn, stream_of(product_id), envelope)
                if outbox:  # same transaction as the event: committed together, or not at all
                    await self.outbox.add(as_aiosqlite(conn), topic, envelope)
                return answer(True)

            return await once(self._claims, request, apply, conn)

    @property
    def claims(self) -> SqliteClaims:
        """The projection's claims (the outbox relay confirms delivery by them: retention
        and the reconciler in docs/bus.md)."""
        return self._claims

    async def settle_dead_letter(self, consumer: str, message_id: str, outcome: Outcome) -> bool:
        """Claim a message the projection gave up on, with the outcome the tab was told, so a
        later copy (the reconciler re-publishes what has no claim) is never applied after the
        tab heard "rejected". False when it was claimed before (applied, or settled)."""
        async with self.transaction() as own:
            conn = as_aiosqlite(own)
            if not await self._claims.claim(conn, consumer, message_id):
                return False
            await self._claims.record_outcome(conn, consumer, message_id, outcome)
            return True

    async def apply_rename(
        self, consumer: str, message_id: str, product_id: int, name: str
    ) -> Outcome | None:
        async with self.transaction() as own:
            conn = as_aiosqlite(own)
            if not await self._claims.claim(conn, consumer, message_id):
                # Applied before, maybe by a process killed before it told the tab: again.
                return await self._claims.recorded_outcome(conn, consumer, message_id)
            outcome = await _rename(own, product_id, name)
            await self._claims.record_outcome(conn, consumer, message_id, outcome)
            return outcome


async def _rename(conn: LoopConnection, product_id: int, name: str) -> Outcome:
    current = await _product(conn, product_id)
    if current is None:
        return Outcome.rejected(NOT_FOUND["code"], NOT_FOUND["message"])
    if await conn.execute_fetchall(
        "SELECT 1 FROM products WHERE name = ? AND id != ?", (name, product_id)
    ):
        return Outcome("rejected", current, taken(name))
    await conn.execute(
        "UPDATE products SET name = ?, version = version + 1 WHERE id = ?",
        (name, product_id),
    )
    return Outcome.confirmed(await _product(conn, product_id))


async def _append(conn: LoopConnection, stream: str, envelope: Envelope) -> None:
    """Append to ``stream`` at its next version; the unique index refuses a concurrent twin."""
    rows = await conn.execute_fetchall(
        "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?", (stream,)
    )
    version = int(next(iter(rows))[0]) + 1 if rows else 1
    await conn.execute(
        "INSERT INTO events (stream, version, type, message_id, envelope) VALUES (?, ?, ?, ?, ?)",
        (stream, version, envelope.metadata.type, envelope.metadata.message_id, encode(envelope)),
    )


def _row(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "price": row["price"], "version": row["version"]}


async def _product(conn: LoopConnection, product_id: int) -> dict[str, Any] | None:
    rows = await conn.execute_fetchall("SELECT * FROM products WHERE id = ?", (product_id,))
    return next((_row(row) for row in rows), None)
