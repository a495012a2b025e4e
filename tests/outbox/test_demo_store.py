"""The demo's SQLite store writes through one connection it keeps: concurrent commands take
turns on it, and a transaction that fails or is cancelled leaves nothing behind and the
connection fit for the next one. Its statements run on the loop's thread (loop_sqlite), which
waits for a locked database in asyncio sleeps, never in SQLite's busy handler."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response

from clicktrace.context import ClickContext, bound
from clicktrace.envelope import new_envelope
from clicktrace.ids import new_id
from demo_app.server import loop_sqlite
from demo_app.server.catalogue import RENAMED
from demo_app.server.database import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    made = SqliteStore(tmp_path / "demo.db")
    await made.start()
    yield made
    await made.aclose()


def _request() -> Request:
    # A command without retry headers: once() runs it as a first attempt.
    return Request({"type": "http", "method": "POST", "path": "/", "headers": []})


async def _rename(store: SqliteStore, product_id: int, name: str) -> Response:
    # What the middleware binds for a click: once() keys the command by it.
    with bound(ClickContext(new_id(), client_id=new_id())):
        envelope = new_envelope(RENAMED, {"id": product_id, "name": name})
        return await store.accept_rename(
            _request(), product_id, envelope, "products", lambda found: Response(status_code=202)
        )


async def _events(store: SqliteStore) -> int:
    async with store.connect() as conn:
        rows = list(await conn.execute_fetchall("SELECT COUNT(*) FROM events"))
    return int(rows[0][0])


async def _outbox_rows(store: SqliteStore) -> int:
    async with store.connect() as conn:
        rows = list(await conn.execute_fetchall("SELECT COUNT(*) FROM clicktrace_outbox"))
    return int(rows[0][0])


async def test_concurrent_commands_each_commit_their_event_and_outbox_row(
    store: SqliteStore,
) -> None:
    before = await _events(store)
    answers = await asyncio.gather(*(_rename(store, 1 + i % 6, f"name {i}") for i in range(30)))
    assert [a.status_code for a in answers] == [202] * 30
    assert await _events(store) == before + 30
    assert await _outbox_rows(store) == 30


async def test_a_failed_transaction_leaves_nothing_and_the_next_one_commits(
    store: SqliteStore,
) -> None:
    before = await _events(store)
    with pytest.raises(RuntimeError):
        async with store.transaction() as conn:
            await conn.execute(
                "INSERT INTO products (id, name, price, version) VALUES (99, 'x', 1, 1)"
            )
            raise RuntimeError("the handler failed")
    assert (await _rename(store, 1, "after a failure")).status_code == 202
    assert await _events(store) == before + 1
    assert all(p["id"] != 99 for p in await store.products())


async def test_a_cancelled_transaction_is_rolled_back_and_the_connection_reused(
    store: SqliteStore,
) -> None:
    inside = asyncio.Event()

    async def stuck() -> None:
        async with store.transaction() as conn:
            await conn.execute(
                "INSERT INTO products (id, name, price, version) VALUES (98, 'y', 1, 1)"
            )
            inside.set()
            await asyncio.Event().wait()  # cancelled here, mid-transaction

    task = asyncio.create_task(stuck())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await _rename(store, 2, "after a cancel")).status_code == 202
    assert all(p["id"] != 98 for p in await store.products())


async def test_the_projection_applies_once_through_the_same_connection(
    store: SqliteStore,
) -> None:
    message_id = new_id()
    first = await store.apply_rename("projection", message_id, 3, "Moka pot")
    again = await store.apply_rename("projection", message_id, 3, "Moka pot")
    assert first is not None and first.status == "confirmed"
    assert again == first
    assert any(p["name"] == "Moka pot" and p["version"] == 2 for p in await store.products())


async def test_a_locked_database_is_waited_for_without_blocking_the_loop(tmp_path: Path) -> None:
    # Two connections on one loop: the second writes while the first holds the lock across an
    # await. Blocking the loop in SQLite's busy handler would never let the first commit.
    path = tmp_path / "locked.db"
    first = loop_sqlite.connect(path, isolation_level=None)
    second = loop_sqlite.connect(path, busy_timeout=30)
    try:
        await first.execute("PRAGMA journal_mode = WAL")
        await first.execute("CREATE TABLE t (v INTEGER)")
        await first.execute("BEGIN IMMEDIATE")
        await first.execute("INSERT INTO t VALUES (1)")
        writing = asyncio.create_task(second.executemany("INSERT INTO t VALUES (?)", [(2,)]))
        await asyncio.sleep(0)
        assert not writing.done()  # it waits for the lock, and the loop still runs this test
        await first.commit()
        await writing
        await second.commit()
        rows = await first.execute_fetchall("SELECT v FROM t ORDER BY v")
        assert [tuple(r) for r in rows] == [(1,), (2,)]
    finally:
        await first.close()
        await second.close()


async def test_a_lock_held_past_the_busy_timeout_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    first = loop_sqlite.connect(path, isolation_level=None)
    second = loop_sqlite.connect(path, busy_timeout=0.01)
    try:
        await first.execute("CREATE TABLE t (v INTEGER)")
        await first.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await second.execute("INSERT INTO t VALUES (2)")
        await first.rollback()
    finally:
        await first.close()
        await second.close()
