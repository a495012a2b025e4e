"""Nothing grows without bound: Redis streams are trimmed to what every group has acked (and
never past what a group still holds), dead-letter streams and queues are capped, JetStream
streams carry count and age limits. NATS runs privately here: the dead-letter stream's limits
would otherwise change the shared broker's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import nats
import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.trace import TracerProvider

from clicktrace.bus import Backoff, NatsBus, RabbitMQBus, RedisBus
from clicktrace.bus._nats import DLQ_STREAM, stream_name
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.testing import unique_name

from .conftest import URLS, cleanup
from .private import PrivateNats, wait_for

NOW = Backoff(initial=0.0, maximum=0.0)


async def nothing(envelope: Envelope) -> None:
    pass


async def refuse(envelope: Envelope) -> None:
    raise ValueError("refused")


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(URLS["redis"])
    yield client
    await client.aclose()


@pytest.fixture
async def topic() -> AsyncIterator[str]:
    name = unique_name()
    yield name
    await cleanup("redis", name, set())


async def test_redis_stream_and_dead_letters_stay_bounded_however_many_pass(
    client: Any, topic: str, provider: TracerProvider
) -> None:
    bus = RedisBus(
        URLS["redis"],
        tracer_provider=provider,
        block_ms=50,
        trim_interval=0.1,
        dead_letter_maxlen=100,
    )
    handled = dead = 0

    async def count(envelope: Envelope) -> None:
        nonlocal handled
        handled += 1

    async def count_dead(envelope: Envelope, reason: str) -> None:
        nonlocal dead
        dead += 1

    bus.subscribe(topic, count, group="acks")
    bus.subscribe(
        topic, refuse, group="refuses", max_attempts=1, backoff=NOW, on_dead_letter=count_dead
    )
    await bus.start()
    try:
        for n in range(2000):
            await bus.publish(topic, new_envelope("T", {"n": n}))
        await wait_for(lambda: handled == 2000 and dead == 2000, "every message handled")
        dlq = f"{topic}:dlq:refuses"
        # Both groups are done: the periodic trim brings the stream down to (about) nothing.
        for _ in range(600):
            if await client.xlen(topic) < 200:
                break
            await asyncio.sleep(0.1)
        stream_len, dlq_len = int(await client.xlen(topic)), int(await client.xlen(dlq))
        newest = await client.xrevrange(dlq, count=1)
    finally:
        await bus.close()
    # "~" trims whole nodes of 100 entries: what is left is less than two of them.
    assert stream_len < 200, stream_len
    assert 100 <= dlq_len < 300, dlq_len  # capped near dead_letter_maxlen
    assert b'"n":1999' in newest[0][1][b"body"]  # the newest kept, the oldest dropped


async def test_redis_trim_keeps_what_any_group_has_not_acked(
    client: Any, topic: str, provider: TracerProvider
) -> None:
    bus = RedisBus(URLS["redis"], tracer_provider=provider, block_ms=50, trim_interval=0)
    handled = 0

    async def count(envelope: Envelope) -> None:
        nonlocal handled
        handled += 1

    bus.subscribe(topic, count, group="fast")
    await client.xgroup_create(topic, "never-read", id="0", mkstream=True)
    await client.xgroup_create(topic, "read-not-acked", id="0")
    await bus.start()
    try:
        for n in range(500):
            await bus.publish(topic, new_envelope("T", {"n": n}))
        await wait_for(lambda: handled == 500, "the fast group to finish")
        await bus.trim(topic, "fast")
        assert await client.xlen(topic) == 500  # "never-read" has read nothing
        await client.xgroup_destroy(topic, "never-read")
        # "read-not-acked" read everything but acked nothing: still all pending.
        await client.xreadgroup("read-not-acked", "c", {topic: ">"}, count=1000)
        await bus.trim(topic, "fast")
        assert await client.xlen(topic) == 500
        # Acked up to the 400th: what is before that may go, the last 100 stay.
        entries = await client.xrange(topic)
        await client.xack(topic, "read-not-acked", *[i for i, _ in entries[:400]])
        await bus.trim(topic, "fast")
        left = await client.xrange(topic)
        assert len(left) < 500
        assert [i for i, _ in left[-100:]] == [i for i, _ in entries[400:]]
    finally:
        await bus.close()


async def test_redis_publishes_carry_a_safety_cap(
    client: Any, topic: str, provider: TracerProvider
) -> None:
    bus = RedisBus(URLS["redis"], tracer_provider=provider, maxlen=100)
    await bus.start()
    try:
        for n in range(1000):
            await bus.publish(topic, new_envelope("T", {"n": n}))
    finally:
        await bus.close()
    assert await client.xlen(topic) < 300  # about maxlen: "~" trims whole nodes


@pytest.fixture
async def nats_server() -> AsyncIterator[PrivateNats]:
    server = PrivateNats()
    await server.start()
    yield server
    await server.kill()
    server.remove()


async def test_jetstream_streams_carry_count_and_age_limits(
    nats_server: PrivateNats, provider: TracerProvider
) -> None:
    topic = unique_name()
    bus = NatsBus(
        nats_server.url,
        tracer_provider=provider,
        fetch_timeout=0.2,
        max_msgs=50,
        max_age=3600,
        dead_letter_max_msgs=20,
    )
    refused = 0

    async def refuse_counting(envelope: Envelope) -> None:
        nonlocal refused
        refused += 1
        raise ValueError("refused")

    bus.subscribe(topic, refuse_counting, group="g", max_attempts=1, backoff=NOW)
    await bus.start()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        for n in range(200):
            await bus.publish(topic, new_envelope("T", {"n": n}))
        await wait_for(lambda: refused >= 50, "the dead-lettering")
        info = await js.stream_info(stream_name(topic))
        assert info.config.max_msgs == 50 and info.config.max_age == 3600
        assert info.state.messages <= 50
        dlq = await js.stream_info(DLQ_STREAM)
        assert dlq.config.max_msgs_per_subject == 20
        assert 0 < dlq.state.messages <= 20
    finally:
        await nc.close()
        await bus.close()


async def test_a_jetstream_stream_made_without_limits_gets_them_at_start(
    nats_server: PrivateNats, provider: TracerProvider
) -> None:
    topic = unique_name()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(name=stream_name(topic), subjects=[topic])  # an older version's
    bus = NatsBus(nats_server.url, tracer_provider=provider, max_msgs=70)
    bus.subscribe(topic, nothing, group="g")
    await bus.start()
    try:
        assert (await js.stream_info(stream_name(topic))).config.max_msgs == 70
    finally:
        await bus.close()
        await nc.close()


async def test_rabbitmq_dead_letter_queue_is_capped(provider: TracerProvider) -> None:
    topic = unique_name()
    bus = RabbitMQBus(URLS["rabbitmq"], tracer_provider=provider, dead_letter_max_length=5)
    refused = 0

    async def refuse_counting(envelope: Envelope) -> None:
        nonlocal refused
        refused += 1
        raise ValueError("refused")

    bus.subscribe(topic, refuse_counting, group="g", max_attempts=1, backoff=NOW)
    await bus.start()
    connection = await aio_pika.connect(URLS["rabbitmq"])
    try:
        for n in range(20):
            await bus.publish(topic, new_envelope("T", {"n": n}))
        await wait_for(lambda: refused == 20, "every message refused")
        channel = await connection.channel()
        declared = await channel.declare_queue(f"{topic}:g:dlq", passive=True)
        count = declared.declaration_result.message_count
        assert count is not None and 0 < count <= 5
    finally:
        await bus.close()
        channel = await connection.channel()
        for name in (f"{topic}:g", f"{topic}:g:dlq"):
            await channel.queue_delete(name)
        await connection.close()


async def test_a_rabbitmq_dead_letter_queue_declared_without_limits_still_starts(
    provider: TracerProvider, caplog: pytest.LogCaptureFixture
) -> None:
    topic = unique_name()
    connection = await aio_pika.connect(URLS["rabbitmq"])
    channel = await connection.channel()
    await channel.declare_queue(f"{topic}:g:dlq", durable=True)  # an older version's
    bus = RabbitMQBus(URLS["rabbitmq"], tracer_provider=provider)
    bus.subscribe(topic, nothing, group="g")
    try:
        await bus.start()  # RabbitMQ refuses the new arguments: said once, not fatal
        kept = [r for r in caplog.records if "keeps its old limits" in r.getMessage()]
        assert len(kept) == 1 and kept[0].exc_info is None
        await bus.publish(topic, new_envelope("T", {}))  # and the group queue is there
    finally:
        await bus.close()
        for name in (f"{topic}:g", f"{topic}:g:dlq"):
            await channel.queue_delete(name)
        await connection.close()
