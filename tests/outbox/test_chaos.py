"""Chaos: 500 commands through PostgreSQL outbox -> relay process -> broker -> projection
process, while the projection is SIGKILLed again and again at random points and the relay
is SIGKILLed too. Every command must be applied exactly once: nothing lost, no duplicates.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from clicktrace.bus import create_bus
from clicktrace.claims import PostgresClaims
from clicktrace.envelope import new_envelope
from clicktrace.outbox import PostgresOutbox
from clicktrace.testing import unique_name

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
URLS = {
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
    "nats": "nats://127.0.0.1:4222",
}
WORKER = str(Path(__file__).parent.parent / "bus" / "worker.py")
COMMANDS = 500
MIN_CONSUMER_KILLS = 5
MIN_RELAY_KILLS = 2
GIVE_UP_AFTER = 150.0  # seconds: a hang guard, not a timing assertion


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, WORKER, *args, stdout=asyncio.subprocess.PIPE
    )
    if proc.stdout is None:
        raise RuntimeError("no stdout")
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if line.strip() != b"ready":
        raise RuntimeError(f"worker did not start: {line!r}")
    return proc


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()


async def _produce(pool: Any, outbox: PostgresOutbox, topic: str) -> None:
    """The API side: each command appends its event and outbox row in one transaction."""
    for i in range(COMMANDS):
        async with pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, topic, new_envelope("Commanded", {"command": i}))
        if i % 25 == 0:
            await asyncio.sleep(0.05)  # spread the commands over the kills


@pytest.mark.timeout(240)  # above GIVE_UP_AFTER, so a stuck run reports its figures
@pytest.mark.parametrize("broker", ["redis", "rabbitmq", "nats"])
async def test_exactly_once_through_consumer_and_relay_kills(broker: str) -> None:
    group = unique_name("chaos", sql=True)
    topic = unique_name("chaos")
    url = URLS[broker]
    outbox = PostgresOutbox(table=f"{group}_outbox")
    pool = await asyncpg.create_pool(PG_DSN, min_size=1, max_size=3)
    async with pool.acquire() as conn:
        await outbox.create_tables(conn)
        await PostgresClaims(table=f"{group}_processed").create_tables(conn)
        await conn.execute(f"CREATE TABLE {group}_model (message_id text, command int)")
        await conn.execute(f"CREATE TABLE {group}_skipped (message_id text)")
    consumer = await _spawn("project", url, topic, group, PG_DSN)
    relay = await _spawn("relay", url, outbox.table, PG_DSN)
    kills = relay_kills = 0
    rng = random.Random()
    producing = asyncio.create_task(_produce(pool, outbox, topic))
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        while True:
            await asyncio.sleep(rng.uniform(0.1, 0.6))
            applied = await pool.fetchval(f"SELECT count(DISTINCT message_id) FROM {group}_model")
            kills_done = kills >= MIN_CONSUMER_KILLS and relay_kills >= MIN_RELAY_KILLS
            if applied == COMMANDS and producing.done() and kills_done:
                break
            if loop.time() - started > GIVE_UP_AFTER:
                break
            if kills < MIN_CONSUMER_KILLS or rng.random() < 0.5:
                await _kill(consumer)
                kills += 1
                consumer = await _spawn("project", url, topic, group, PG_DSN)
            if relay_kills < MIN_RELAY_KILLS and kills % 2 == 0:
                await _kill(relay)
                relay_kills += 1
                relay = await _spawn("relay", url, outbox.table, PG_DSN)
        await producing
        # Let any redelivery still in flight arrive: a duplicate would show up now.
        await asyncio.sleep(1.5)
        rows = await pool.fetch(f"SELECT message_id, command FROM {group}_model")
        absorbed = await pool.fetchval(f"SELECT count(*) FROM {group}_skipped")
        unsent = await outbox.unsent(pool)
    finally:
        producing.cancel()
        await _kill(consumer)
        await _kill(relay)
        await _cleanup(pool, group, broker, url, topic)
        await pool.close()

    commands = [r["command"] for r in rows]
    lost = COMMANDS - len(set(commands))
    duplicated = len(commands) - len(set(commands))
    print(
        f"\nchaos[{broker}]: commands={COMMANDS} consumer_kills={kills} "
        f"relay_kills={relay_kills} lost={lost} duplicated={duplicated} "
        f"redeliveries_absorbed={absorbed}"
    )
    assert kills >= MIN_CONSUMER_KILLS and relay_kills >= MIN_RELAY_KILLS
    assert unsent == 0
    assert sorted(commands) == list(range(COMMANDS))  # each exactly once
    assert len({r["message_id"] for r in rows}) == COMMANDS


async def _cleanup(pool: Any, group: str, broker: str, url: str, topic: str) -> None:
    for suffix in ("outbox", "processed", "model", "skipped"):
        await pool.execute(f"DROP TABLE IF EXISTS {group}_{suffix}")
    bus = create_bus(url)
    await bus.start()
    dead = await bus.dead_letters(topic, group)
    await bus.close()
    if broker == "redis":
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(url)
        await client.delete(topic, f"{topic}:dlq:{group}")
        await client.aclose()
    elif broker == "rabbitmq":
        import aio_pika

        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(f"{topic}:{group}")
            await channel.queue_delete(f"{topic}:{group}:dlq")
    else:
        import nats

        from clicktrace.bus._nats import stream_name

        nc = await nats.connect(url)
        await nc.jetstream().delete_stream(stream_name(topic))
        await nc.close()
    if dead:
        raise AssertionError(f"{len(dead)} dead letters: {dead[0].reason}")
