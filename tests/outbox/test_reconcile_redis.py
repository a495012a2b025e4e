"""A real broker that loses messages it acknowledged: Redis Streams on a private redis-server
(its own port, no persistence), the stream deleted under the relay and the projection. A
PostgreSQL outbox and PostgreSQL claims; the reconciler publishes again what was lost, and the
claims make every command apply exactly once.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from clicktrace.bus import Bus, create_bus
from clicktrace.claims import PostgresClaims, RedisClaims
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.outbox import ClaimsConfirmation, OutboxRelay, PostgresOutbox
from clicktrace.testing import free_port, unique_name

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
WAIT = 90.0  # a guard against hangs, not a timing assertion
GROUP = "projection"


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A redis-server of this test's own: deleting its data touches nobody else."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(30)


async def _until_up(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    deadline = asyncio.get_running_loop().time() + WAIT
    try:
        while True:
            try:
                await client.ping()
                return
            except (ConnectionError, OSError, aioredis.ConnectionError):
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()


@dataclass
class _Loop:
    pool: Any
    outbox: PostgresOutbox
    claims: PostgresClaims
    model: str
    topic: str
    skipped: list[str]

    async def add(self, n: int, start: int = 0) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for i in range(start, start + n):
                await self.outbox.add(conn, self.topic, new_envelope("Commanded", {"n": i}))

    async def applied(self) -> dict[int, int]:
        rows = await self.pool.fetch(f"SELECT n, count(*) FROM {self.model} GROUP BY n")
        return {int(r[0]): int(r[1]) for r in rows}

    async def wait_applied(self, count: int) -> None:
        deadline = asyncio.get_running_loop().time() + WAIT
        while len(await self.applied()) < count:
            assert asyncio.get_running_loop().time() < deadline, await self.applied()
            await asyncio.sleep(0.05)

    async def age(self, seconds: float) -> None:
        await self.pool.execute(
            f"UPDATE {self.outbox.table} SET sent_at = sent_at - $1::float8 * interval '1 second' "
            "WHERE sent_at IS NOT NULL",
            seconds,
        )

    def consumer(self, url: str, delay: float = 0.0, gate: asyncio.Event | None = None) -> Bus:
        bus = create_bus(url, block_ms=100)

        async def project(envelope: Envelope) -> None:
            if gate is not None:
                await gate.wait()  # the test holds the projection while the broker forgets
            await asyncio.sleep(delay)  # a projection with some work to do
            message_id = envelope.metadata.message_id
            async with self.pool.acquire() as conn, conn.transaction():
                if await self.claims.claim(conn, GROUP, message_id):
                    await conn.execute(
                        f"INSERT INTO {self.model} (message_id, n) VALUES ($1, $2)",
                        message_id,
                        envelope.payload["n"],
                    )
                else:
                    self.skipped.append(message_id)

        bus.subscribe(self.topic, project, group=GROUP)
        return bus


@pytest.fixture
async def loop(redis_url: str) -> AsyncIterator[_Loop]:
    prefix = unique_name("reconcile", sql=True)
    pool = await asyncpg.create_pool(PG_DSN, min_size=1, max_size=4)
    outbox = PostgresOutbox(table=f"{prefix}_outbox")
    claims = PostgresClaims(table=f"{prefix}_processed")
    async with pool.acquire() as conn:
        await outbox.create_tables(conn)
        await claims.create_tables(conn)
        await conn.execute(f"CREATE TABLE {prefix}_model (message_id text, n int)")
    await _until_up(redis_url)
    try:
        yield _Loop(pool, outbox, claims, f"{prefix}_model", unique_name("products"), [])
    finally:
        for table in (outbox.table, claims.table, f"{prefix}_model"):
            await pool.execute(f"DROP TABLE IF EXISTS {table}")
        await pool.close()


def _relay(loop: _Loop, bus: Bus, confirm: ClaimsConfirmation | None, **kw: Any) -> OutboxRelay:
    return OutboxRelay(
        loop.outbox,
        connect=lambda: asyncpg.connect(PG_DSN),
        bus=bus,
        confirm=confirm,
        **kw,
    )


async def test_a_deleted_stream_costs_no_command_step_by_step(loop: _Loop, redis_url: str) -> None:
    producer = create_bus(redis_url)
    await producer.start()
    confirm = ClaimsConfirmation(loop.claims, groups=[GROUP], grace_seconds=30)
    relay = _relay(loop, producer, confirm)
    consumer = loop.consumer(redis_url)
    try:
        await loop.add(20)
        assert await relay.drain() == 20  # XADD answered: the broker has them
        wiped = aioredis.Redis.from_url(redis_url)
        await wiped.delete(loop.topic)  # ...and forgets them before anyone read them
        await wiped.aclose()

        await consumer.start()
        await loop.add(30, start=20)
        await relay.drain()
        await loop.wait_applied(30)
        assert set(await loop.applied()) == set(range(20, 50))  # 20 lost, so far

        await loop.age(31)
        result = await relay.reconcile_once()
        assert (result.checked, result.confirmed, result.republished) == (50, 30, 20)
        await loop.wait_applied(50)
        await loop.age(100)
        result = await relay.reconcile_once()
        assert (result.checked, result.confirmed, result.republished) == (20, 20, 0)
        stats = await relay.stats()
        assert (stats.unsent, stats.awaiting_claims, stats.gave_up) == (0, 0, 0)
    finally:
        await relay.close()
        await consumer.close()
        await producer.close()
    assert await loop.applied() == dict.fromkeys(range(50), 1)  # none lost, none twice


async def test_without_the_reconciler_the_deleted_stream_loses_the_commands(
    loop: _Loop, redis_url: str
) -> None:
    # The same loss with the relay trusting the broker: what the reconciler fixes.
    producer = create_bus(redis_url)
    await producer.start()
    relay = _relay(loop, producer, None)
    consumer = loop.consumer(redis_url)
    try:
        await loop.add(10)
        await relay.drain()
        wiped = aioredis.Redis.from_url(redis_url)
        await wiped.delete(loop.topic)
        await wiped.aclose()
        await consumer.start()
        await loop.add(1, start=10)
        await relay.drain()
        await loop.wait_applied(1)
        await loop.age(1000)
        assert (await relay.reconcile_once()).checked == 0
        assert (await relay.stats()).awaiting_claims == 0  # every row "done"
    finally:
        await relay.close()
        await consumer.close()
        await producer.close()
    assert await loop.applied() == {10: 1}  # ten accepted commands lost


async def test_a_stream_deleted_mid_burst_under_a_running_relay_and_projection(
    loop: _Loop, redis_url: str
) -> None:
    """Everything in the background, as deployed: the relay reconciles on its own, the
    projection (a little slow, so a backlog builds and some re-publications overtake their
    first copy) re-creates its group; every command applies exactly once."""
    producer = create_bus(redis_url)
    gate = asyncio.Event()
    gate.set()
    consumer = loop.consumer(redis_url, delay=0.005, gate=gate)
    confirm = ClaimsConfirmation(loop.claims, groups=[GROUP], grace_seconds=1.0)
    relay = _relay(loop, producer, confirm, poll_interval=0.05)
    await producer.start()
    await consumer.start()
    await relay.start()
    total = 300
    try:
        for burst in range(0, total, 20):
            if burst == 140:
                gate.clear()  # the projection stops at its next message...
            await loop.add(20, start=burst)
            relay.wake()
            if burst == 140:
                deadline = asyncio.get_running_loop().time() + WAIT
                while (await relay.stats()).unsent:  # ...the relay hands the broker 20 more...
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.02)
                wiped = aioredis.Redis.from_url(redis_url)
                await wiped.delete(loop.topic)  # ...which forgets every unread one
                await wiped.aclose()
                gate.set()
            await asyncio.sleep(0.02)
        await loop.wait_applied(total)
        deadline = asyncio.get_running_loop().time() + WAIT
        while (stats := await relay.stats()).awaiting_claims or stats.unsent:
            assert asyncio.get_running_loop().time() < deadline, stats
            await asyncio.sleep(0.1)
        republished = await loop.pool.fetchval(
            f"SELECT coalesce(sum(republished), 0) FROM {loop.outbox.table}"
        )
    finally:
        await relay.close()
        await consumer.close()
        await producer.close()
    applied = await loop.applied()
    print(
        f"mid-burst stream deletion: {total} accepted, {len(applied)} applied, "
        f"{total - len(applied)} lost, {sum(1 for c in applied.values() if c > 1)} twice, "
        f"{republished} re-published, {len(loop.skipped)} duplicates absorbed by the claims"
    )
    assert applied == dict.fromkeys(range(total), 1)
    assert republished >= 19  # at least the burst the broker forgot came back this way
    assert stats.gave_up == 0


async def test_redis_claims_confirm_a_postgres_outbox_too(loop: _Loop, redis_url: str) -> None:
    """Claims the bus keeps in Redis (``dedupe=``) instead of the projection's database: the
    relay reads them in one round trip per batch, over no database connection of theirs."""
    dedupe = RedisClaims(redis_url, prefix=f"{unique_name('done')}:")
    applied: list[int] = []
    consumer = create_bus(redis_url, block_ms=100)

    async def project(envelope: Envelope) -> None:
        applied.append(envelope.payload["n"])

    consumer.subscribe(loop.topic, project, group=GROUP, dedupe=dedupe)
    producer = create_bus(redis_url)
    await producer.start()
    # The bus keeps them under "<topic>:<group>" (Subscription.consumer).
    confirm = ClaimsConfirmation(dedupe, groups=[f"{loop.topic}:{GROUP}"], grace_seconds=30)
    relay = _relay(loop, producer, confirm)
    try:
        await loop.add(5)
        await relay.drain()
        wiped = aioredis.Redis.from_url(redis_url)
        await wiped.delete(loop.topic)
        await wiped.aclose()
        await consumer.start()
        await loop.add(5, start=5)
        await relay.drain()
        deadline = asyncio.get_running_loop().time() + WAIT
        while len(await dedupe.claimed(None, confirm.groups[0], await _ids(loop))) < 5:
            assert asyncio.get_running_loop().time() < deadline, applied
            await asyncio.sleep(0.05)
        await loop.age(31)
        result = await relay.reconcile_once()
        assert (result.confirmed, result.republished) == (5, 5)
        while len(await dedupe.claimed(None, confirm.groups[0], await _ids(loop))) < 10:
            assert asyncio.get_running_loop().time() < deadline, applied
            await asyncio.sleep(0.05)
        await loop.age(100)
        assert (await relay.reconcile_once()).confirmed == 5
    finally:
        await relay.close()
        await consumer.close()
        await producer.close()
        await dedupe.aclose()
    assert sorted(applied) == list(range(10))


async def _ids(loop: _Loop) -> list[str]:
    rows = await loop.pool.fetch(f"SELECT message_id FROM {loop.outbox.table}")
    return [str(r[0]) for r in rows]
