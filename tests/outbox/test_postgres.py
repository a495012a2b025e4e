"""The PostgreSQL outbox: atomic with the caller's transaction, in order, one relay at a
time, and a failure mid-batch loses nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from clicktrace.bus import MemoryBus
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.outbox import OutboxRelay, PostgresOutbox

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


class _RecordingBus(MemoryBus):
    def __init__(self, fail_after: int = 1_000_000, delay: float = 0.0) -> None:
        super().__init__()
        self.fail_after, self.delay = fail_after, delay
        self.sent: list[str] = []

    async def _send(
        self, topic: str, body: bytes, headers: dict[str, str], message_id: str
    ) -> None:
        if len(self.sent) >= self.fail_after:
            raise ConnectionError("broker went away")
        await asyncio.sleep(self.delay)
        self.sent.append(message_id)


async def test_commit_goes_out_in_order_rollback_never(pg: Any, table: str) -> None:
    outbox = PostgresOutbox(table=table)
    await outbox.create_tables(pg)
    await pg.execute(f"CREATE TABLE {table}_events (id serial PRIMARY KEY, name text)")
    envelopes = [new_envelope("T", i) for i in range(4)]
    async with pg.transaction():
        for envelope in envelopes:
            await pg.execute(f"INSERT INTO {table}_events (name) VALUES ('x')")
            await outbox.add(pg, "products", envelope)
    with pytest.raises(RuntimeError):
        async with pg.transaction():
            await outbox.add(pg, "products", new_envelope("T", "never"))
            raise RuntimeError("the command failed")

    bus = _RecordingBus(fail_after=2)
    await bus.start()
    relay = OutboxRelay(outbox, connect=lambda: asyncpg.connect(PG_DSN), bus=bus)
    with pytest.raises(ConnectionError):
        await relay.run_once()
    assert await outbox.unsent(pg) == 2  # what went out before the failure is marked
    bus.fail_after = 100
    assert await relay.drain() == 2
    await relay.close()
    await bus.close()
    assert bus.sent == [e.metadata.message_id for e in envelopes]


async def test_two_relays_never_publish_a_row_twice(pg: Any, table: str) -> None:
    outbox = PostgresOutbox(table=table)
    await outbox.create_tables(pg)
    envelopes = [new_envelope("T", i) for i in range(30)]
    async with pg.transaction():
        for envelope in envelopes:
            await outbox.add(pg, "products", envelope)
    bus = _RecordingBus(delay=0.001)
    await bus.start()
    relays = [
        OutboxRelay(outbox, connect=lambda: asyncpg.connect(PG_DSN), bus=bus, batch=5)
        for _ in range(2)
    ]
    while await outbox.unsent(pg):
        await asyncio.gather(*(r.run_once() for r in relays))
    for relay in relays:
        await relay.close()
    await bus.close()
    assert bus.sent == [e.metadata.message_id for e in envelopes]


async def test_background_relay_delivers_and_prune_clears(pg: Any, table: str) -> None:
    outbox = PostgresOutbox(table=table)
    await outbox.create_tables(pg)
    bus = MemoryBus()
    got: asyncio.Queue[Envelope] = asyncio.Queue()

    async def handler(envelope: Envelope) -> None:
        await got.put(envelope)

    bus.subscribe("products", handler, group="projection")
    await bus.start()
    relay = OutboxRelay(outbox, connect=lambda: asyncpg.connect(PG_DSN), bus=bus)
    await relay.start()
    async with pg.transaction():
        await outbox.add(pg, "products", new_envelope("T", "hello"))
    relay.wake()
    assert (await asyncio.wait_for(got.get(), 20)).payload == "hello"
    await relay.close()
    await bus.close()
    assert await outbox.unsent(pg) == 0
    assert await outbox.prune(pg, older_than_seconds=-1) == 1
