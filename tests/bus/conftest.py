"""Fixtures for bus tests: a private tracer provider, unique topics, and buses on every
broker (real services on loopback), cleaned up after each test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from clicktrace.bus import Bus, create_bus
from clicktrace.testing import unique_name

URLS = {
    "memory": "memory://",
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
    "nats": "nats://127.0.0.1:4222",
}
# Short timers so redelivery after a crash shows up within a test.
FAST: dict[str, dict[str, Any]] = {
    "memory": {},
    "redis": {"block_ms": 100, "claim_idle_ms": 1000},
    "rabbitmq": {},
    "nats": {"ack_wait": 1.0, "fetch_timeout": 0.2},
}
BROKERS = list(URLS)


@pytest.fixture
def topic() -> str:
    return unique_name()


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> str:
    return str(request.param)


MakeBus = Callable[..., Bus]


@pytest.fixture
async def make_bus(broker: str, provider: TracerProvider, topic: str) -> AsyncIterator[MakeBus]:
    buses: list[Bus] = []

    def make(**options: Any) -> Bus:
        bus = create_bus(URLS[broker], tracer_provider=provider, **{**FAST[broker], **options})
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()
    queues = {(s.topic, s.group) for bus in buses for s in bus._subscriptions}
    await cleanup(broker, topic, queues)


async def cleanup(broker: str, topic: str, queues: set[tuple[str, str]]) -> None:
    """Delete everything a test made on ``broker`` for topics starting with ``topic``."""
    if broker == "redis":
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(URLS["redis"])
        keys = [key async for key in client.scan_iter(match=f"{topic}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    elif broker == "rabbitmq":
        await _cleanup_rabbitmq(queues)
    elif broker == "nats":
        await _cleanup_nats(queues)


async def _cleanup_rabbitmq(queues: set[tuple[str, str]]) -> None:
    import aio_pika

    connection = await aio_pika.connect(URLS["rabbitmq"])
    async with connection:
        channel = await connection.channel()
        for topic, group in queues:
            for name in (f"{topic}:{group}", f"{topic}:{group}:dlq"):
                await channel.queue_delete(name)


async def _cleanup_nats(queues: set[tuple[str, str]]) -> None:
    import nats
    from nats.js.errors import NotFoundError

    from clicktrace.bus._nats import DLQ_STREAM, dlq_subject, stream_name

    client = await nats.connect(URLS["nats"])
    js = client.jetstream()
    for topic, group in queues:
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream_name(topic))
        with contextlib.suppress(NotFoundError):
            await js.purge_stream(DLQ_STREAM, subject=dlq_subject(topic, group))
    await client.close()


WORKER = str(Path(__file__).with_name("worker.py"))


async def spawn(*args: str) -> asyncio.subprocess.Process:
    """Start ``worker.py`` with ``args`` and wait until it says it is consuming."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        WORKER,
        *args,
        stdout=asyncio.subprocess.PIPE,
    )
    await expect_line(proc, "ready")
    return proc


async def expect_line(proc: asyncio.subprocess.Process, prefix: str) -> str:
    if proc.stdout is None:
        raise RuntimeError("spawn with stdout=PIPE")
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        if not line:
            raise RuntimeError(f"worker exited before printing {prefix!r}")
        if line.startswith(prefix):
            return line.strip()


def kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        os.kill(proc.pid, signal.SIGKILL)
