"""A broker that forgets (Redis restarted without persistence, JetStream's store wiped, a
RabbitMQ queue deleted) mid-burst: the buses re-create what it lost by themselves, say so in
one log line and in ``recoveries``, and everything accepted after the loss is consumed with no
restart of the consumer. Redis and NATS run as private instances on this test's own ports."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aio_pika
import nats
import pytest
from opentelemetry.sdk.trace import TracerProvider

from clicktrace.bus import Bus, NatsBus, RabbitMQBus, RedisBus
from clicktrace.bus._nats import stream_name
from clicktrace.envelope import new_envelope
from clicktrace.testing import unique_name

from .conftest import URLS
from .private import Burst, PrivateNats, PrivateRedis, lose_and_recover


def _check_logs(caplog: pytest.LogCaptureFixture, consumer: Bus, producer: Bus) -> None:
    records = [r for r in caplog.records if r.name.startswith(("clicktrace", "nats"))]
    said = [r for r in records if "re-created" in r.getMessage()]
    # One line per recovery, and the broker's absence never logged a traceback.
    assert consumer.recoveries >= 1
    assert len(said) == consumer.recoveries + producer.recoveries, [r.getMessage() for r in said]
    assert [r.getMessage() for r in records if r.exc_info] == []


@pytest.fixture
async def redis_server() -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis()
    await server.start()
    yield server
    await server.kill()


async def test_a_redis_restarted_without_persistence_loses_nothing_published_after(
    redis_server: PrivateRedis, provider: TracerProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "clicktrace.bus")
    topic = unique_name()
    url = redis_server.url
    producer = RedisBus(url, tracer_provider=provider, block_ms=100, claim_idle_ms=1000)
    consumer = RedisBus(url, tracer_provider=provider, block_ms=100, claim_idle_ms=1000)
    burst = Burst(producer, topic)
    consumer.subscribe(topic, burst.handler, group="g")
    await consumer.start()
    await producer.start()

    async def restart_empty() -> None:
        await redis_server.kill()
        await redis_server.start()  # same port, no data: streams and groups are gone

    try:
        later, _ = await lose_and_recover(burst, restart_empty, case="redis restart")
    finally:
        await producer.close()
        await consumer.close()
    assert [m for m in later if m not in burst.handled] == []
    assert consumer.last_recovery is not None
    assert "consumer group 'g'" in consumer.last_recovery.what
    _check_logs(caplog, consumer, producer)


@pytest.fixture
async def nats_server() -> AsyncIterator[PrivateNats]:
    server = PrivateNats()
    await server.start()
    yield server
    await server.kill()
    server.remove()


async def test_a_nats_whose_store_was_wiped_loses_nothing_published_after(
    nats_server: PrivateNats, provider: TracerProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "clicktrace.bus")
    topic = unique_name()
    url = nats_server.url
    producer = NatsBus(url, tracer_provider=provider, ack_wait=1.0, fetch_timeout=0.2)
    consumer = NatsBus(url, tracer_provider=provider, ack_wait=1.0, fetch_timeout=0.2)
    burst = Burst(producer, topic)
    consumer.subscribe(topic, burst.handler, group="g")
    await consumer.start()
    await producer.start()

    async def wipe() -> None:
        await nats_server.kill()
        nats_server.wipe()
        await nats_server.start()

    try:
        later, _ = await lose_and_recover(burst, wipe, case="nats store wiped")
    finally:
        await producer.close()
        await consumer.close()
    assert [m for m in later if m not in burst.handled] == []
    _check_logs(caplog, consumer, producer)


async def test_a_nats_producer_whose_stream_is_gone_makes_it_and_publishes_again(
    nats_server: PrivateNats, provider: TracerProvider
) -> None:
    topic = unique_name()
    producer = NatsBus(nats_server.url, tracer_provider=provider)
    await producer.start()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await producer.publish(topic, new_envelope("T", {"n": 1}))
        await js.delete_stream(stream_name(topic))  # no consumer here to notice
        await producer.publish(topic, new_envelope("T", {"n": 2}))
        assert (await js.stream_info(stream_name(topic))).state.messages == 1
        assert producer.recoveries == 1
    finally:
        await producer.close()
        await nc.close()


async def test_a_rabbitmq_queue_deleted_mid_burst_loses_nothing_published_after(
    provider: TracerProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "clicktrace.bus")
    topic = unique_name()
    url = URLS["rabbitmq"]
    producer = RabbitMQBus(url, tracer_provider=provider)
    consumer = RabbitMQBus(url, tracer_provider=provider)
    burst = Burst(producer, topic)
    consumer.subscribe(topic, burst.handler, group="g")
    await consumer.start()
    await producer.start()
    connection = await aio_pika.connect(url)

    async def delete_queue() -> None:
        channel = await connection.channel()
        await channel.queue_delete(f"{topic}:g")  # this test's own queue on the shared broker

    try:
        later, _ = await lose_and_recover(burst, delete_queue, case="rabbitmq queue deleted")
    finally:
        await producer.close()
        await consumer.close()
        channel = await connection.channel()
        for name in (f"{topic}:g", f"{topic}:g:dlq"):
            await channel.queue_delete(name)
        await connection.close()
    assert [m for m in later if m not in burst.handled] == []
    _check_logs(caplog, consumer, producer)
