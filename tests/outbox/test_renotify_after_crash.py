"""A projection SIGKILLed between its commit and its notification (tests/outbox/renotify_app.py),
with the Redis bus and the Redis replay buffer: the restarted process gets the message again,
its claim says "already applied", and the outcome kept with the claim goes to the tab, which
hears it as a notification (the buffer kept its epoch, so there is no resync to cover it).

Without the kept outcome the redelivery is skipped and the tab never hears that command:
the test then fails on the first assertion after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from clicktrace.testing import free_port, unique_name

from ..bus.conftest import URLS, cleanup
from .test_sigkill_mid_burst import SECRET, Tab, _listen

APP = str(Path(__file__).with_name("renotify_app.py"))
CONSUMER = "renotify-projection"
GIVE_UP_AFTER = 60.0  # seconds: a hang guard, not a timing assertion


async def _start(
    topic: str, data: Path, port: int, prefix: str, kill_at: int | None
) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k != "RENOTIFY_KILL_AT"}
    if kill_at is not None:
        env["RENOTIFY_KILL_AT"] = str(kill_at)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, APP, URLS["redis"], topic, str(data), str(port), SECRET, prefix, env=env
    )
    async with httpx.AsyncClient() as client:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"the app exited with {proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"http://127.0.0.1:{port}/ready")).status_code == 200:
                    return proc
            await asyncio.sleep(0.05)


async def _until(condition: Callable[[], bool], what: str) -> None:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > GIVE_UP_AFTER:
            raise AssertionError(f"gave up waiting: {what}")
        await asyncio.sleep(0.05)


def _rows(db: Path, table: str, correlation_id: str) -> int:
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        row = conn.execute(
            f"SELECT COUNT(*) FROM {table} WHERE correlation_id = ?", (correlation_id,)
        ).fetchone()
    return int(row[0])


@pytest.mark.timeout(180)
async def test_a_projection_killed_between_commit_and_notify_still_tells_the_tab(
    tmp_path: Path,
) -> None:
    topic, prefix, port = unique_name("renotify"), unique_name("renotify"), free_port()
    db = tmp_path / "renotify.sqlite3"
    proc = await _start(topic, tmp_path, port, prefix, kill_at=2)
    stop = asyncio.Event()
    listener: asyncio.Task[None] | None = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            issued = (await http.post("/clicktrace/session")).json()
            tab = Tab(issued["client_id"], issued["token"])
            listener = asyncio.create_task(_listen(tab, port, stop))

            async def command(n: int) -> str:
                response = await http.post(
                    "/commands", json={"n": n}, headers={"x-clicktrace-client": tab.token}
                )
                assert response.status_code == 202
                return str(response.json()["correlation_id"])

            first = await command(1)  # heard as usual: the tab now has the buffer's epoch
            await _until(lambda: first in tab.heard, "the first outcome")
            epoch = tab.epoch
            killed = await command(2)
            assert await asyncio.wait_for(proc.wait(), GIVE_UP_AFTER) == -signal.SIGKILL
            assert _rows(db, "applied", killed) == 1  # committed before the kill...
            assert killed not in tab.heard  # ...and never told

            proc = await _start(topic, tmp_path, port, prefix, kill_at=None)
            await _until(lambda: _rows(db, "handled", killed) >= 2, "the redelivery")
            # The bus hands one message at a time to the projection, so once a command sent
            # after the redelivery is heard, whatever the redelivery sent was heard first.
            after = await command(3)
            await _until(lambda: after in tab.heard, "the outcome of a command after it")
    finally:
        stop.set()
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        await cleanup("redis", topic, {(topic, CONSUMER)})
        client = aioredis.Redis.from_url(URLS["redis"])
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    assert killed in tab.heard  # the outcome kept with the claim, sent again
    assert tab.epoch == epoch and tab.resyncs == []  # heard as itself, not covered by a resync
    assert _rows(db, "applied", killed) == 1  # and applied once
    print(
        f"\nrenotify: killed after commit, redelivered {_rows(db, 'handled', killed)}x, "
        f"heard {sorted(tab.heard) == sorted([first, killed, after])}"
    )
