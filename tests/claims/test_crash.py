"""A process SIGKILLed between applying a command and committing: the claim goes with the
command's write, so the retry is applied exactly once (real SQLite file, real PostgreSQL).
What ``clicktrace.commands.once`` stands on, driven by hand."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import pytest

from clicktrace.claims import Answer, PostgresClaims, SqliteClaims
from clicktrace.claims._base import decode_answer, encode_answer
from clicktrace.testing import unique_name

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"

# Claims the command, writes its event, records its answer, says so, and waits to be killed
# before it commits.
CHILD = """
import asyncio, sys
from clicktrace.claims import Answer, PostgresClaims, SqliteClaims
from clicktrace.claims._base import encode_answer

async def main() -> None:
    kind, target, table, events = sys.argv[1:5]
    if kind == "sqlite":
        import aiosqlite
        store = SqliteClaims(table)
        conn = await aiosqlite.connect(target, isolation_level=None)
        await conn.execute("BEGIN IMMEDIATE")
        assert await store.claim(conn, "commands", "key")
        await conn.execute(f"INSERT INTO {events} VALUES ('first')")
    else:
        import asyncpg
        store = PostgresClaims(table)
        conn = await asyncpg.connect(target)
        await conn.transaction().start()
        assert await store.claim(conn, "commands", "key")
        await conn.execute(f"INSERT INTO {events} VALUES ('first')")
    await store.keep(conn, "commands", "key", encode_answer(Answer(202, b"first")))
    print("applied", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def killed_after_applying(kind: str, target: str, table: str, events: str) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        kind,
        target,
        table,
        events,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ},
    )
    assert child.stdout is not None
    assert await asyncio.wait_for(child.stdout.readline(), 30) == b"applied\n"
    child.send_signal(signal.SIGKILL)
    assert await child.wait() == -signal.SIGKILL


async def retry(store: Any, conn: Any, append: Any) -> Answer | None:
    """What once() does for the retry, inside its transaction."""
    if await store.claim(conn, "commands", "key"):
        await append()
        await store.keep(conn, "commands", "key", encode_answer(Answer(202, b"retry")))
        return None
    return decode_answer(await store.kept(conn, "commands", "key"))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_command_killed_before_its_commit_is_applied_once_by_its_retry(
    kind: str, tmp_path: Path
) -> None:
    suffix = unique_name(sql=True)
    table, events = f"{suffix}_commands", f"{suffix}_events"
    if kind == "sqlite":
        target = str(tmp_path / "db.sqlite")
        store: Any = SqliteClaims(table)
        async with aiosqlite.connect(target) as setup:
            await setup.execute("PRAGMA journal_mode = WAL")
            await setup.execute(f"CREATE TABLE {events} (event TEXT NOT NULL)")
            await store.create_tables(setup)
            await setup.commit()
        await killed_after_applying(kind, target, table, events)
        answers = []
        async with aiosqlite.connect(target, isolation_level=None) as conn:
            for _ in range(2):
                await conn.execute("BEGIN IMMEDIATE")
                answers.append(
                    await retry(
                        store, conn, lambda: conn.execute(f"INSERT INTO {events} VALUES ('retry')")
                    )
                )
                await conn.execute("COMMIT")
            async with conn.execute(f"SELECT event FROM {events}") as rows:
                applied = [row[0] for row in await rows.fetchall()]
    else:
        target = PG_DSN
        store = PostgresClaims(table)
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f"CREATE TABLE {events} (event TEXT NOT NULL)")
            await store.create_tables(conn)
            await killed_after_applying(kind, target, table, events)
            answers = []
            for _ in range(2):
                async with conn.transaction():
                    answers.append(
                        await retry(
                            store,
                            conn,
                            lambda: conn.execute(f"INSERT INTO {events} VALUES ('retry')"),
                        )
                    )
            applied = [row[0] for row in await conn.fetch(f"SELECT event FROM {events}")]
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS {events}; DROP TABLE IF EXISTS {table}")
            await conn.close()
    # the killed attempt left nothing: its retry applied it, and the next retry was answered
    assert applied == ["retry"]
    assert answers == [None, Answer(202, b"retry")]
