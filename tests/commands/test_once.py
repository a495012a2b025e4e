"""Retried commands get the first answer and are applied once, on every claims backend.

Each backend runs the same tiny app: ``POST /things/{id}`` appends one event (to a table in the
command's own transaction for SQL stores) and answers 202. SQLite and PostgreSQL are real
databases, Redis is the shared server (unique table names and key prefixes per test).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.claims import Claims, MemoryClaims, PostgresClaims, RedisClaims, SqliteClaims
from clicktrace.commands import accepted, once
from clicktrace.ids import new_id
from clicktrace.protocol import REPLAYED_HEADER
from clicktrace.testing import unique_name
from clicktrace.web import error_response

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
TOKENS = {"token-a": new_id(), "token-b": new_id()}


@dataclass
class Backend:
    """A store, the command's unit of work, and how many events were really appended."""

    store: Claims
    transaction: Callable[[], AbstractAsyncContextManager[Any]]
    append: Callable[[Any, str], Awaitable[None]]
    applied: Callable[[], Awaitable[int]]


def in_memory(store: Claims) -> Backend:
    events: list[str] = []

    @asynccontextmanager
    async def transaction() -> AsyncIterator[None]:
        yield None

    async def append(conn: Any, event: str) -> None:
        events.append(event)

    async def applied() -> int:
        return len(events)

    return Backend(store, transaction, append, applied)


@asynccontextmanager
async def sqlite_backend(path: Path, ttl: float) -> AsyncIterator[Backend]:
    store = SqliteClaims(keep_seconds=ttl)
    async with aiosqlite.connect(path) as conn:
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("CREATE TABLE events (event TEXT NOT NULL)")
        await store.create_tables(conn)
        await conn.commit()

    @asynccontextmanager
    async def transaction() -> AsyncIterator[aiosqlite.Connection]:
        async with aiosqlite.connect(path, isolation_level=None) as conn:
            await conn.execute("PRAGMA busy_timeout = 5000")
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    async def append(conn: aiosqlite.Connection, event: str) -> None:
        await conn.execute("INSERT INTO events VALUES (?)", (event,))

    async def applied() -> int:
        async with (
            aiosqlite.connect(path) as conn,
            conn.execute("SELECT count(*) FROM events") as rows,
        ):
            row = await rows.fetchone()
        return int(row[0]) if row else 0

    yield Backend(store, transaction, append, applied)


@asynccontextmanager
async def postgres_backend(ttl: float) -> AsyncIterator[Backend]:
    suffix = unique_name(sql=True)
    store = PostgresClaims(f"{suffix}_commands", keep_seconds=ttl)
    events = f"{suffix}_events"
    admin = await asyncpg.connect(PG_DSN)
    await admin.execute(f"CREATE TABLE {events} (event TEXT NOT NULL)")
    await store.create_tables(admin)

    @asynccontextmanager
    async def transaction() -> AsyncIterator[Any]:
        conn = await asyncpg.connect(PG_DSN)
        try:
            async with conn.transaction():
                yield conn
        finally:
            await conn.close()

    async def append(conn: Any, event: str) -> None:
        await conn.execute(f"INSERT INTO {events} VALUES ($1)", event)

    async def applied() -> int:
        return int(await admin.fetchval(f"SELECT count(*) FROM {events}"))

    try:
        yield Backend(store, transaction, append, applied)
    finally:
        await admin.execute(f"DROP TABLE {events}; DROP TABLE {store.table}")
        await admin.close()


@asynccontextmanager
async def redis_backend(ttl: float) -> AsyncIterator[Backend]:
    prefix = unique_name("commands") + ":"
    client = aioredis.Redis.from_url(REDIS_URL)
    store = RedisClaims(client, keep_seconds=ttl, prefix=prefix)
    try:
        yield in_memory(store)
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await store.aclose()


KINDS = ["memory", "sqlite", "postgres", "redis"]


def backend(kind: str, tmp_path: Path, ttl: float = 60) -> AbstractAsyncContextManager[Backend]:
    if kind == "sqlite":
        return sqlite_backend(tmp_path / "db.sqlite", ttl)
    if kind == "postgres":
        return postgres_backend(ttl)
    if kind == "redis":
        return redis_backend(ttl)

    @asynccontextmanager
    async def memory() -> AsyncIterator[Backend]:
        yield in_memory(MemoryClaims(keep_seconds=ttl))

    return memory()


def app(b: Backend, *, fail: list[str] | None = None) -> Starlette:
    """``fail`` holds what the next attempts do instead of succeeding: "raise" (after the
    write) or "503" (before it)."""
    failures = fail if fail is not None else []

    async def command(request: Request) -> Response:
        async def apply(conn: Any) -> Response:
            if request.path_params["id"] == "0":
                return error_response(404, "not_found", "No such thing.")
            failure = failures.pop(0) if failures else None
            if failure == "503":  # refused before writing anything
                return error_response(503, "unavailable", "Busy.")
            await b.append(conn, request.path_params["id"])
            if failure == "raise":
                raise RuntimeError("crashed after the write")
            return accepted()

        async with b.transaction() as conn:
            return await once(b.store, request, lambda: apply(conn), conn)

    application = Starlette(routes=[Route("/things/{id}", command, methods=["POST"])])
    application.add_middleware(ClicktraceMiddleware, spans=False, client_verifier=TOKENS.get)
    return application


def http(application: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def headers(correlation_id: str, token: str | None = "token-a") -> dict[str, str]:
    found = {"x-correlation-id": correlation_id}
    if token is not None:
        found["x-clicktrace-client"] = token
    return found


@pytest.mark.parametrize("kind", KINDS)
async def test_a_retried_command_gets_the_first_answer_and_is_applied_once(
    kind: str, tmp_path: Path
) -> None:
    correlation_id = new_id()
    async with backend(kind, tmp_path) as b, http(app(b)) as client:
        first = await client.post("/things/1", headers=headers(correlation_id))
        again = await client.post("/things/1", headers=headers(correlation_id))
        assert await b.applied() == 1
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.content == first.content
    assert first.json() == {"correlation_id": correlation_id, "status": "accepted"}
    assert again.headers[REPLAYED_HEADER] == "1" and REPLAYED_HEADER not in first.headers
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["x-correlation-id"] == correlation_id


@pytest.mark.parametrize("kind", KINDS)
async def test_the_key_is_the_verified_client_the_correlation_id_and_the_command(
    kind: str, tmp_path: Path
) -> None:
    correlation_id = new_id()
    async with backend(kind, tmp_path) as b, http(app(b)) as client:
        for token, path in [
            ("token-a", "/things/1"),
            ("token-b", "/things/1"),
            (None, "/things/1"),
            (None, "/things/1"),
            ("token-a", "/things/2"),
        ]:
            await client.post(path, headers=headers(correlation_id, token))
        # a, b and no client each once for /things/1 (the second anonymous one is a retry),
        # then a for another command
        assert await b.applied() == 4


@pytest.mark.parametrize("kind", KINDS)
async def test_a_refusal_is_kept_like_any_first_answer(kind: str, tmp_path: Path) -> None:
    correlation_id = new_id()
    async with backend(kind, tmp_path) as b, http(app(b)) as client:
        first = await client.post("/things/0", headers=headers(correlation_id))
        again = await client.post("/things/0", headers=headers(correlation_id))
    assert first.status_code == again.status_code == 404
    assert again.content == first.content and again.headers[REPLAYED_HEADER] == "1"


@pytest.mark.parametrize("kind", KINDS)
async def test_an_attempt_that_failed_is_applied_afresh_when_retried(
    kind: str, tmp_path: Path
) -> None:
    correlation_id = new_id()
    async with backend(kind, tmp_path) as b, http(app(b, fail=["raise", "503"])) as client:
        crashed = await client.post("/things/1", headers=headers(correlation_id))
        busy = await client.post("/things/1", headers=headers(correlation_id))
        done = await client.post("/things/1", headers=headers(correlation_id))
        replayed = await client.post("/things/1", headers=headers(correlation_id))
        applied = await b.applied()
    assert [r.status_code for r in (crashed, busy, done, replayed)] == [500, 503, 202, 202]
    assert replayed.headers[REPLAYED_HEADER] == "1"
    if b.store.transactional:
        # the failed attempts' writes rolled back with their claims: exactly one event
        assert applied == 1
    else:
        assert applied == 2  # outside the transaction: the crashed attempt's write stayed


@pytest.mark.parametrize("kind", KINDS)
async def test_concurrent_retries_apply_once(kind: str, tmp_path: Path) -> None:
    correlation_id = new_id()
    async with backend(kind, tmp_path) as b, http(app(b)) as client:
        answers = await asyncio.gather(
            *[client.post("/things/1", headers=headers(correlation_id)) for _ in range(5)]
        )
        assert await b.applied() == 1
    assert [a.status_code for a in answers] == [202] * 5
    assert sum(REPLAYED_HEADER in a.headers for a in answers) == 4


@pytest.mark.parametrize("kind", KINDS)
async def test_an_answer_is_forgotten_after_its_ttl(kind: str, tmp_path: Path) -> None:
    correlation_id = new_id()
    async with backend(kind, tmp_path, ttl=0.05) as b, http(app(b)) as client:
        await client.post("/things/1", headers=headers(correlation_id))
        await asyncio.sleep(0.2)
        again = await client.post("/things/1", headers=headers(correlation_id))
        assert await b.applied() == 2
    assert REPLAYED_HEADER not in again.headers


async def test_sqlite_prune_drops_expired_claims(tmp_path: Path) -> None:
    async with sqlite_backend(tmp_path / "db.sqlite", 0.05) as b, http(app(b)) as client:
        await client.post("/things/1", headers=headers(new_id()))
        await asyncio.sleep(0.1)
        assert isinstance(b.store, SqliteClaims)
        async with b.transaction() as conn:
            assert await b.store.prune(conn) == 1


async def test_postgres_prune_drops_expired_claims(tmp_path: Path) -> None:
    async with postgres_backend(0.05) as b, http(app(b)) as client:
        await client.post("/things/1", headers=headers(new_id()))
        await asyncio.sleep(0.1)
        assert isinstance(b.store, PostgresClaims)
        async with b.transaction() as conn:
            assert await b.store.prune(conn) == 1


async def test_a_retry_waiting_past_the_first_attempt_gets_409_in_progress_not_replayed() -> None:
    store = MemoryClaims()
    started, finish = asyncio.Event(), asyncio.Event()

    async def command(request: Request) -> Response:
        async def apply() -> Response:
            started.set()
            await finish.wait()
            return accepted()

        return await once(store, request, apply, wait_seconds=0)

    application = Starlette(routes=[Route("/slow", command, methods=["POST"])])
    application.add_middleware(ClicktraceMiddleware, spans=False)
    correlation_id = new_id()
    async with http(application) as client:
        first = asyncio.ensure_future(client.post("/slow", headers=headers(correlation_id, None)))
        await started.wait()
        second = await client.post("/slow", headers=headers(correlation_id, None))
        finish.set()
        assert (await first).status_code == 202
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "command_in_progress"
    assert second.json()["correlation_id"] == correlation_id
    assert REPLAYED_HEADER not in second.headers  # in progress is not a kept answer


async def test_a_negative_wait_is_refused() -> None:
    with pytest.raises(ValueError):
        await once(MemoryClaims(), None, accepted, wait_seconds=-1)  # type: ignore[arg-type]
