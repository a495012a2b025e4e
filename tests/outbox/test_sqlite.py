"""The SQLite outbox with its relay: atomic with the caller's write, in order, and a crash
in the middle of a batch loses nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clicktrace.bus import BusNotRunning, MemoryBus
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.outbox import OutboxRelay, SqliteOutbox
from clicktrace.testing import unique_name

WAIT = 20  # a guard against hangs, not a timing assertion


async def _collecting_bus(
    got: asyncio.Queue[Envelope], provider: TracerProvider | None = None
) -> MemoryBus:
    bus = MemoryBus(tracer_provider=provider)

    async def handler(envelope: Envelope) -> None:
        await got.put(envelope)

    bus.subscribe("products", handler, group="projection")
    await bus.start()
    return bus


async def test_rows_commit_with_the_event_and_go_out_in_order_in_the_request_trace(
    tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    db = str(tmp_path / "app.db")
    outbox = SqliteOutbox(table="events_outbox")
    got: asyncio.Queue[Envelope] = asyncio.Queue()
    bus = await _collecting_bus(got, provider)
    async with aiosqlite.connect(db) as conn:
        await outbox.create_tables(conn)
        await conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT)")
        with provider.get_tracer("t").start_as_current_span("POST /rename") as request:
            envelopes = [new_envelope("Renamed", {"n": i}) for i in range(3)]
        for i, envelope in enumerate(envelopes):
            await conn.execute("INSERT INTO events (name) VALUES (?)", (f"e{i}",))
            await outbox.add(conn, "products", envelope)
        await conn.commit()
        await conn.execute("INSERT INTO events (name) VALUES ('rolled back')")
        await outbox.add(conn, "products", new_envelope("Renamed", {"n": "never"}))
        await conn.rollback()

    relay = OutboxRelay(outbox, connect=lambda: aiosqlite.connect(db), bus=bus)
    await relay.start()
    relay.wake()
    received = [await asyncio.wait_for(got.get(), WAIT) for _ in range(3)]
    await relay.close()
    await bus.close()
    assert [e.payload for e in received] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert got.empty()
    async with aiosqlite.connect(db) as conn:
        assert await outbox.unsent(conn) == 0
    sends = [s for s in exporter.get_finished_spans() if s.name == "send products"]
    trace_id = request.get_span_context().trace_id
    assert len(sends) == 3
    assert all(s.context.trace_id == trace_id for s in sends)
    assert all(s.parent and s.parent.span_id == request.get_span_context().span_id for s in sends)


class _FailingBus(MemoryBus):
    """Publishes ``fail_after`` messages, then fails like a broker going away."""

    def __init__(self, fail_after: int) -> None:
        super().__init__()
        self.fail_after = fail_after
        self.sent: list[object] = []

    async def _send(
        self, topic: str, body: bytes, headers: dict[str, str], message_id: str
    ) -> None:
        if len(self.sent) >= self.fail_after:
            raise ConnectionError("broker went away")
        self.sent.append(message_id)


async def test_a_crash_mid_batch_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    db = str(tmp_path / "app.db")
    outbox = SqliteOutbox()
    async with aiosqlite.connect(db) as conn:
        await outbox.create_tables(conn)
        envelopes = [new_envelope("T", i) for i in range(5)]
        for envelope in envelopes:
            await outbox.add(conn, "products", envelope)
        await conn.commit()

    bus = _FailingBus(fail_after=2)
    await bus.start()
    relay = OutboxRelay(outbox, connect=lambda: aiosqlite.connect(db), bus=bus)
    with pytest.raises(ConnectionError):
        await relay.run_once()
    async with aiosqlite.connect(db) as conn:
        assert await outbox.unsent(conn) == 3  # the two that went out are marked
    bus.fail_after = 100
    assert await relay.drain() == 3
    await relay.close()
    await bus.close()
    assert bus.sent == [e.metadata.message_id for e in envelopes]


async def test_wake_publishes_without_waiting_for_the_poll(tmp_path: Path) -> None:
    db = str(tmp_path / "app.db")
    outbox = SqliteOutbox()
    got: asyncio.Queue[Envelope] = asyncio.Queue()
    bus = await _collecting_bus(got)
    async with aiosqlite.connect(db) as conn:
        await outbox.create_tables(conn)
        relay = OutboxRelay(
            outbox, connect=lambda: aiosqlite.connect(db), bus=bus, poll_interval=3600
        )
        await relay.start()
        await asyncio.sleep(0.05)  # let it make its first (empty) pass and sleep
        await outbox.add(conn, "products", new_envelope("T", "now"))
        await conn.commit()
        relay.wake()
        assert (await asyncio.wait_for(got.get(), WAIT)).payload == "now"
    await relay.close()
    await bus.close()


async def test_prune_deletes_only_done_rows(tmp_path: Path) -> None:
    outbox = SqliteOutbox()
    async with aiosqlite.connect(str(tmp_path / "app.db")) as conn:
        await outbox.create_tables(conn)
        await outbox.add(conn, "products", new_envelope("T", 1))
        await conn.execute(f"UPDATE {outbox.table} SET sent_at = 0, done_at = 0")
        await outbox.add(conn, "products", new_envelope("T", "waits for its claims"))
        await conn.execute(f"UPDATE {outbox.table} SET sent_at = 0 WHERE done_at IS NULL")
        await outbox.add(conn, "products", new_envelope("T", "unsent"))
        await conn.commit()
        assert await outbox.prune(conn, older_than_seconds=60) == 1
        assert await outbox.unsent(conn) == 1
        stats = await outbox.stats(conn)
        assert (stats.rows, stats.unsent, stats.awaiting_claims) == (2, 1, 1)


async def test_misuse(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SqliteOutbox(table="x; DROP TABLE y")
    outbox = SqliteOutbox()
    async with aiosqlite.connect(str(tmp_path / "app.db")) as conn:
        await outbox.create_tables(conn)
        with pytest.raises(TypeError):
            await outbox.add(conn, "products", {"not": "an envelope"})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        OutboxRelay(outbox, connect=lambda: aiosqlite.connect(":memory:"), bus=MemoryBus(), batch=0)


async def test_a_relay_process_killed_mid_publish_loses_nothing(tmp_path: Path) -> None:
    import os
    import signal
    import sys

    import redis.asyncio as aioredis

    db = str(tmp_path / "app.db")
    topic = unique_name("relay-crash")
    outbox = SqliteOutbox()
    async with aiosqlite.connect(db) as conn:
        await outbox.create_tables(conn)
        envelopes = [new_envelope("T", i) for i in range(1000)]
        for envelope in envelopes:
            await outbox.add(conn, topic, envelope)
        await conn.commit()
    worker = str(Path(__file__).parent.parent / "bus" / "worker.py")
    url = "redis://127.0.0.1:6379/0"
    client = aioredis.Redis.from_url(url)

    async def spawn() -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, worker, "relay-sqlite", url, db, stdout=asyncio.subprocess.PIPE
        )
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"ready"
        return proc

    async def unsent() -> int:
        async with aiosqlite.connect(db) as conn:
            return await outbox.unsent(conn)

    try:
        relay = await spawn()
        while (left := await unsent()) == len(envelopes):
            await asyncio.sleep(0.005)
        os.kill(relay.pid, signal.SIGKILL)  # part way through the rows
        await relay.wait()
        relay = await spawn()
        while await unsent():
            await asyncio.sleep(0.05)
        relay.kill()
        await relay.wait()
        entries: Any = await client.xrange(topic)
    finally:
        await client.delete(topic)
        await client.aclose()
    published = [fields[b"x-correlation-id"] for _, fields in entries]
    assert 0 < left < len(envelopes)  # the kill did land mid-way
    # Every row went out; the crash may have repeated some, never dropped one.
    assert set(published) == {e.metadata.correlation_id.encode() for e in envelopes}


async def test_on_the_memory_bus_a_row_is_marked_sent_only_once_it_was_handled(
    tmp_path: Path,
) -> None:
    # The embedded default: until the projection has handled a message, it exists only in
    # this process's memory, so the row must stay unsent (a crash then publishes it again).
    db = str(tmp_path / "app.db")
    outbox = SqliteOutbox()
    entered, release = asyncio.Event(), asyncio.Event()
    bus = MemoryBus()

    async def handler(envelope: Envelope) -> None:
        entered.set()
        await release.wait()

    bus.subscribe("products", handler, group="projection")
    await bus.start()
    async with aiosqlite.connect(db) as conn:
        await outbox.create_tables(conn)
        await outbox.add(conn, "products", new_envelope("T", 1))
        await conn.commit()
    relay = OutboxRelay(outbox, connect=lambda: aiosqlite.connect(db), bus=bus)
    try:
        running = asyncio.create_task(relay.run_once())
        await asyncio.wait_for(entered.wait(), WAIT)
        async with aiosqlite.connect(db) as conn:
            assert await outbox.unsent(conn) == 1  # queued and being handled: not yet sent
        release.set()
        assert await asyncio.wait_for(running, WAIT) == 1
        async with aiosqlite.connect(db) as conn:
            assert await outbox.unsent(conn) == 0
    finally:
        release.set()
        await relay.close()
        await bus.close()


async def test_a_memory_bus_closing_before_handling_leaves_the_row_unsent(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "app.db")
    outbox = SqliteOutbox()
    entered = asyncio.Event()
    bus = MemoryBus()

    async def handler(envelope: Envelope) -> None:
        entered.set()
        await asyncio.Event().wait()  # never finishes

    bus.subscribe("products", handler, group="projection")
    await bus.start()
    async with aiosqlite.connect(db) as conn:
        await outbox.create_tables(conn)
        await outbox.add(conn, "products", new_envelope("T", 1))
        await outbox.add(conn, "products", new_envelope("T", 2))
        await conn.commit()
    relay = OutboxRelay(outbox, connect=lambda: aiosqlite.connect(db), bus=bus)
    try:
        running = asyncio.create_task(relay.run_once())
        await asyncio.wait_for(entered.wait(), WAIT)
        await bus.close(drain_timeout=0.1)
        with pytest.raises(BusNotRunning):
            await asyncio.wait_for(running, WAIT)
        async with aiosqlite.connect(db) as conn:
            assert await outbox.unsent(conn) == 2
    finally:
        await relay.close()
        await bus.close(drain_timeout=0.1)
