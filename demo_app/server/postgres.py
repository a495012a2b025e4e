"""The distributed store: the same event store and read model in PostgreSQL (asyncpg), in a
schema of the demo's own (``CLICKTRACE_PG_SCHEMA``), shared by the API nodes, the relay and
the projection worker."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from starlette.requests import HTTPConnection
from starlette.responses import Response

from clicktrace.claims import PostgresClaims
from clicktrace.commands import once
from clicktrace.envelope import Envelope, encode, new_envelope
from clicktrace.outbox import PostgresOutbox

from .catalogue import CATALOGUE, CREATED, stream_of
from .store import NOT_FOUND, Outcome, StoreUnavailable, taken

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE, envelope BYTEA NOT NULL, UNIQUE (stream, version));
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, price DOUBLE PRECISION NOT NULL,
    version INTEGER NOT NULL);
"""
# The schema's name goes into SQL as it is (an identifier cannot be a bound parameter).
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Every process creates the schema at start: one at a time.
_SETUP_LOCK = 0x636C69636B
# What a server that is down, restarting or full raises (a refused connect, a connection
# dropped mid-query, "the database system is starting up", too many clients).
_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
# How long a request waits for a pooled connection (or a new one) before it is a 503.
ACQUIRE_TIMEOUT_SECONDS = 5.0


class PostgresStore:
    def __init__(self, dsn: str, schema: str = "clicktrace_demo") -> None:
        if not _IDENTIFIER.match(schema):
            raise ValueError(f"invalid schema name {schema!r}")
        self._dsn, self.schema = dsn, schema
        self.outbox = PostgresOutbox()
        # One table of claims: the commands' (retried commands answered once) and the
        # projection's (each message applied once, with the outcome the tab was told).
        self._claims = PostgresClaims()
        self._pool: Any = None

    def _settings(self) -> dict[str, str]:
        return {"search_path": self.schema}

    async def start(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _SETUP_LOCK)
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
                await conn.execute(f"SET LOCAL search_path = {self.schema}")
                await conn.execute(SCHEMA)
                await self.outbox.create_tables(conn)
                await self._claims.create_tables(conn)
                await self._claims.prune(conn)
                if not await conn.fetchval("SELECT count(*) FROM products"):
                    await self._seed(conn)
        finally:
            await conn.close()
        self._pool = await asyncpg.create_pool(
            self._dsn, min_size=1, max_size=5, server_settings=self._settings()
        )

    async def _seed(self, conn: Any) -> None:
        for product_id, (name, price) in enumerate(CATALOGUE, start=1):
            payload = {"id": product_id, "name": name, "price": price}
            await _append(conn, stream_of(product_id), new_envelope(CREATED, payload))
            await conn.execute(
                "INSERT INTO products (id, name, price, version) VALUES ($1, $2, $3, 1)",
                product_id,
                name,
                price,
            )

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A pooled connection; :class:`StoreUnavailable` when the server cannot be reached."""
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
                yield conn
        except _UNREACHABLE as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def products(self) -> list[dict[str, Any]]:
        async with self._connection() as conn:
            rows = await conn.fetch("SELECT id, name, price, version FROM products ORDER BY id")
        return [dict(r) for r in rows]

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
        async with self._connection() as conn, conn.transaction():

            async def apply() -> Response:
                # The product's row is its stream's lock: two tabs renaming it at once append
                # one after the other (the second reads the first's version), where both would
                # take the same next version and one would hit the unique index.
                found = await conn.fetchval(
                    "SELECT 1 FROM products WHERE id = $1 FOR UPDATE", product_id
                )
                if found is None:
                    return answer(False)
                await _append(conn, stream_of(product_id), envelope)
                if outbox:  # same transaction as the event: committed together, or not at all
                    await self.outbox.add(conn, topic, envelope)
                return answer(True)

            return await once(self._claims, request, apply, conn)

    @property
    def claims(self) -> PostgresClaims:
        """The projection's claims (the outbox relay confirms delivery by them: retention
        and the reconciler in docs/bus.md)."""
        return self._claims

    async def settle_dead_letter(self, consumer: str, message_id: str, outcome: Outcome) -> bool:
        """Claim a message the projection gave up on, with the outcome the tab was told, so a
        later copy (the reconciler re-publishes what has no claim) is never applied after the
        tab heard "rejected". False when it was claimed before (applied, or settled)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await self._claims.claim(conn, consumer, message_id):
                return False
            await self._claims.record_outcome(conn, consumer, message_id, outcome)
            return True

    async def apply_rename(
        self, consumer: str, message_id: str, product_id: int, name: str
    ) -> Outcome | None:
        async with self._pool.acquire() as conn, conn.transaction():
            if not await self._claims.claim(conn, consumer, message_id):
                # Applied before, maybe by a process killed before it told the tab: again.
                return await self._claims.recorded_outcome(conn, consumer, message_id)
            outcome = await _rename(conn, product_id, name)
            await self._claims.record_outcome(conn, consumer, message_id, outcome)
            return outcome

    async def connect_relay(self) -> Any:
        return await asyncpg.connect(self._dsn, server_settings=self._settings())


async def _append(conn: Any, stream: str, envelope: Envelope) -> None:
    version = await conn.fetchval(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM events WHERE stream = $1", stream
    )
    await conn.execute(
        "INSERT INTO events (stream, version, type, message_id, envelope) "
        "VALUES ($1, $2, $3, $4, $5)",
        stream,
        version,
        envelope.metadata.type,
        envelope.metadata.message_id,
        encode(envelope),
    )


async def _rename(conn: Any, product_id: int, name: str) -> Outcome:
    current = await _product(conn, product_id)
    if current is None:
        return Outcome.rejected(NOT_FOUND["code"], NOT_FOUND["message"])
    if await conn.fetchval("SELECT 1 FROM products WHERE name = $1 AND id != $2", name, product_id):
        return Outcome("rejected", current, taken(name))
    await conn.execute(
        "UPDATE products SET name = $1, version = version + 1 WHERE id = $2", name, product_id
    )
    return Outcome.confirmed(await _product(conn, product_id))


async def _product(conn: Any, product_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT id, name, price, version FROM products WHERE id = $1", product_id
    )
    return dict(row) if row else None
