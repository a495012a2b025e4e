"""The writer: put never blocks or raises; a full queue and a failing store are counted."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence

import pytest

from clicktrace.journal import Entry, Journal, MemoryStore, create_store, set_process
from clicktrace.journal._record import process_name
from clicktrace.journal._store import Process
from clicktrace.journal._writer import restarted
from clicktrace.testing import unique_name

A = "01JD8X3Q7E8W5V4T2N9R6M0K1A"


class Down:
    """A store whose backend is unreachable."""

    dropped = 0

    async def write(self, entries: Sequence[Entry]) -> None:
        raise ConnectionError("connection refused")

    async def read(self, correlation_id: str) -> list[Entry]:
        raise ConnectionError("connection refused")

    async def recent(self, since_ms: float, limit: int) -> list[str]:
        raise ConnectionError("connection refused")

    async def open_clicks(self, before_ms: float, limit: int) -> tuple[list[str], int]:
        raise ConnectionError("connection refused")

    async def dead_lettered(self, limit: int) -> tuple[list[str], int]:
        raise ConnectionError("connection refused")

    async def register(self, process: str, info: Process) -> None:
        raise ConnectionError("connection refused")

    async def unregister(self, process: str) -> None:
        raise ConnectionError("connection refused")

    async def processes(self) -> dict[str, Process]:
        raise ConnectionError("connection refused")

    async def ping(self) -> None:
        raise ConnectionError("connection refused")

    async def aclose(self) -> None:
        return None


class Slow(MemoryStore):
    """An async store (no in-place add) backed by the ring."""

    add = None  # type: ignore[assignment]

    async def write(self, entries: Sequence[Entry]) -> None:
        for e in entries:
            MemoryStore.add(self, e)


def entry(stage: str) -> Entry:
    return Entry(correlation_id=A, stage=stage, at=1.0)


async def test_a_store_that_is_down_costs_entries_never_an_exception() -> None:
    journal = Journal(Down())
    for i in range(3):
        journal.put(entry(f"s{i}"))
    await journal.flush()
    assert journal.write_failures == 3
    assert journal.failing_since is not None
    assert journal.last_error == "ConnectionError: connection refused"


async def test_a_full_queue_drops_and_counts_instead_of_waiting() -> None:
    journal = Journal(Slow(), max_queue=2)
    for i in range(5):
        journal.put(entry(f"s{i}"))  # no await in between: the writer has not run yet
    assert journal.queue_drops == 3
    await journal.flush()
    assert [e.stage for e in await journal.read(A)] == ["s0", "s1"]
    assert journal.drops == 3


async def test_a_store_that_answers_again_is_healthy_again() -> None:
    store = Slow()
    journal = Journal(store)
    journal.failing_since, journal.last_error = 1.0, "x"
    journal.put(entry("accepted"))
    await journal.flush()
    assert journal.failing_since is None
    assert len(await journal.read(A)) == 1


def test_put_without_an_event_loop_keeps_the_entry_for_later() -> None:
    journal = Journal(Slow())
    journal.put(entry("accepted"))
    assert journal.queued == 1


class Lagging(Slow):
    """An async store that takes its time over each batch."""

    async def write(self, entries: Sequence[Entry]) -> None:
        await asyncio.sleep(0.05)
        await Slow.write(self, entries)


def test_entries_still_queued_when_the_loop_ends_are_written() -> None:
    store = Lagging()

    async def app() -> None:
        journal = Journal(store, batch=10)
        for i in range(95):
            journal.put(Entry(correlation_id=A, stage=f"s{i}", at=float(i)))
        await asyncio.sleep(0)  # the writer starts its first batch; then the app returns

    asyncio.run(app())  # cancels the writer: its last chance writes the rest
    assert len(store) == 95


async def test_a_writer_keeps_its_process_in_the_table_until_it_closes_cleanly() -> None:
    store = Slow()
    journal = Journal(store, heartbeat=0.05)
    previous = set_process("writer-under-test")
    try:
        journal.put(entry("accepted"))
        await journal.flush()
        deadline = time.monotonic() + 30
        while "writer-under-test" not in await store.processes():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        table = await journal.restarted()
        assert table["writer-under-test"] <= time.time() * 1000.0
        await journal.aclose()
        assert await store.processes() == {}
    finally:
        set_process(None if previous == process_name() else previous)


def test_restarted_is_the_start_of_a_live_process_and_now_for_a_silent_one() -> None:
    table = {
        "alive": Process(1_000.0, 9_000.0, 1_000.0),
        "dead": Process(1_000.0, 5_000.0, 1_000.0),  # silent for 5 heartbeats
    }
    assert restarted(table, 10_000.0) == {"alive": 1_000.0, "dead": 10_000.0}


KILLED = """
import asyncio, sys
from clicktrace.journal import Entry, Journal, create_store, set_process
async def main():
    set_process(sys.argv[2])
    journal = Journal(create_store(sys.argv[1]), heartbeat=0.1)
    journal.put(Entry(correlation_id=sys.argv[3], stage="delivered", at=1.0, process=sys.argv[2]))
    await journal.flush()
    while sys.argv[2] not in await journal.store.processes():
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


@pytest.mark.broker
async def test_a_process_killed_with_sigkill_is_said_to_have_died() -> None:
    name = unique_name("killed", sql=True)
    url = f"redis://127.0.0.1:6379/0?prefix={name}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED, url, name, A, stdout=asyncio.subprocess.PIPE
    )
    store = create_store(url)
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"ready\n"
        started = (await store.processes())[name].started_at_ms
        assert restarted(await store.processes(), time.time() * 1000.0)[name] == started
        proc.kill()
        await proc.wait()
        deadline = time.monotonic() + 60
        while True:  # silent for three heartbeats: taken for dead, whatever its entries say
            now = time.time() * 1000.0
            if restarted(await store.processes(), now)[name] == now:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await store.aclose()
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = [k async for k in client.scan_iter(match=f"{name}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_a_store_that_hangs_costs_entries_never_a_wait_in_put(silent_port: int) -> None:
    journal = Journal(create_store(f"redis://127.0.0.1:{silent_port}/0", timeout=0.3))
    for i in range(3):
        journal.put(entry(f"s{i}"))  # synchronous: queued, no I/O on the caller's path
    assert journal.queued == 3
    await journal.flush()  # the writer's batch times out against the silent store
    assert journal.write_failures == 3
    assert journal.failing_since is not None
    await journal.aclose()


def _built(stage: str) -> Entry:
    if stage == "broken":
        raise ValueError(stage)
    return entry(stage)


async def test_entries_in_parts_are_built_in_the_writers_batch() -> None:
    journal = Journal(Slow(), linger=0)
    journal.put_later(_built, ("accepted",))
    journal.put_later(_built, ("broken",))
    journal.put(entry("stored"))
    before = journal.drops
    await journal.flush()
    assert [e.stage for e in await journal.read(A)] == ["accepted", "stored"]
    assert journal.drops == before + 1  # the build that failed, counted
    await journal.aclose()


async def test_the_ring_keeps_the_order_of_entries_in_parts_and_whole() -> None:
    journal = Journal(MemoryStore())
    journal.put_later(_built, ("accepted",))
    journal.put(entry("stored"))  # writes what is still in parts first
    journal.put_later(_built, ("published",))
    await journal.flush()
    assert [e.stage for e in await journal.read(A)] == ["accepted", "stored", "published"]
    await journal.aclose()
