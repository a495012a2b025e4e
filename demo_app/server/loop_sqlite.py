"""SQLite on the event loop's own thread, behind the part of aiosqlite's interface the demo
and clicktrace's SQLite outbox and claims use (``execute``, ``execute_fetchall``,
``executemany``, ``commit``, ``rollback``).

Why not aiosqlite: it runs every statement on a thread of its own, and each statement is then
two thread wake-ups (the worker's, then the loop's). A click's command and its projection are
about twenty statements of tens of microseconds each on a local file; on a loaded 2-core
machine each wake-up waits for a core, and the hops cost the click more than the SQL did
(bench/click.py, docs/benchmarks.md). Run inline, the statements block the loop for what they
take, which is less. That holds for small transactions on a local file with
``synchronous = NORMAL`` (no fsync per commit), not for slow queries.

Nothing here ever waits for SQLite's lock on the loop's thread: the connection's busy timeout
is 0, and a statement that finds the database locked (another connection writing: the relay,
another process) is retried after an ``asyncio.sleep``, up to ``busy_timeout`` seconds, so the
connection holding the lock (maybe on this very loop) can finish.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["LoopConnection", "LoopCursor", "as_aiosqlite", "connect"]

T = TypeVar("T")
_FIRST_WAIT = 0.001
_LONGEST_WAIT = 0.05


def _locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


class LoopCursor:
    """What a statement gave: its rows (read at once) and ``rowcount``."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows, self.rowcount = rows, rowcount

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def close(self) -> None:
        self._rows = []


class _Statement:
    """``await conn.execute(...)`` and ``async with conn.execute(...) as cursor`` alike."""

    def __init__(self, run: Callable[[], Any]) -> None:
        self._run = run

    def __await__(self) -> Any:
        return self._run().__await__()

    async def __aenter__(self) -> LoopCursor:
        cursor: LoopCursor = await self._run()
        return cursor

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class LoopConnection:
    def __init__(self, conn: sqlite3.Connection, busy_timeout: float) -> None:
        self._conn, self._busy = conn, busy_timeout

    @property
    def row_factory(self) -> Any:
        return self._conn.row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._conn.row_factory = factory

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    async def _retry(self, call: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._busy
        wait = _FIRST_WAIT
        while True:
            try:
                return call()
            except sqlite3.OperationalError as exc:
                if not _locked(exc) or time.monotonic() + wait > deadline:
                    raise
            await asyncio.sleep(wait)
            wait = min(wait * 2, _LONGEST_WAIT)

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Statement:
        def run() -> LoopCursor:
            cursor = self._conn.execute(sql, parameters)
            try:
                return LoopCursor(cursor.fetchall(), cursor.rowcount)
            finally:
                cursor.close()

        return _Statement(lambda: self._retry(run))

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        cursor: LoopCursor = await self.execute(sql, parameters)
        return await cursor.fetchall()

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> LoopCursor:
        batch = list(rows)

        def run() -> LoopCursor:
            cursor = self._conn.executemany(sql, batch)
            try:
                return LoopCursor([], cursor.rowcount)
            finally:
                cursor.close()

        return await self._retry(run)

    async def executescript(self, script: str) -> None:
        await self._retry(lambda: self._conn.executescript(script))

    async def commit(self) -> None:
        await self._retry(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()  # never busy: it only gives locks up

    async def close(self) -> None:
        self._conn.close()


def connect(
    path: Path,
    *,
    busy_timeout: float = 5.0,
    isolation_level: Literal["DEFERRED", "IMMEDIATE", "EXCLUSIVE"] | None = "DEFERRED",
) -> LoopConnection:
    """Open ``path`` (WAL is the database's setting; ``synchronous = NORMAL`` is set here)."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=isolation_level)
    conn.execute("PRAGMA synchronous = NORMAL")
    return LoopConnection(conn, busy_timeout)


def as_aiosqlite(conn: LoopConnection) -> aiosqlite.Connection:
    """``conn`` where clicktrace's SQLite outbox and claims are typed for aiosqlite's
    connection: they use only the part ``LoopConnection`` has."""
    return cast("aiosqlite.Connection", conn)
