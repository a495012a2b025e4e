"""What a Redis stream and its dead-letter stream hold after N messages, without bounds (the
old behaviour: no trimming, no caps) and with the defaults. Not a test (pytest does not collect
it): a measurement for docs/bus.md, on a private redis-server.

    PYTHONPATH=$PWD/py_sdk:$PWD .venv/bin/python -m tests.bus.retention 50000
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

import redis.asyncio as aioredis

from clicktrace import context as click_context
from clicktrace.bus import Backoff, RedisBus
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.ids import new_id

from .private import PrivateRedis

UNBOUNDED: dict[str, Any] = {"maxlen": None, "trim_interval": 0, "dead_letter_maxlen": 10**9}


async def measure(url: str, n: int, options: dict[str, Any], label: str) -> None:
    topic = f"retention-{label}"
    handled = dead = 0

    async def project(envelope: Envelope) -> None:
        nonlocal handled
        handled += 1

    async def dead_lettered(envelope: Envelope, reason: str) -> None:
        nonlocal dead
        dead += 1

    async def refuse(envelope: Envelope) -> None:
        raise ValueError("the projection cannot handle it")

    bus = RedisBus(url, **options)
    bus.subscribe(topic, project, group="projection")
    bus.subscribe(
        topic,
        refuse,
        group="refuses",
        max_attempts=1,
        backoff=Backoff(0, 0),
        on_dead_letter=dead_lettered,
    )
    await bus.start()
    click = click_context.ClickContext(correlation_id=new_id())
    with click_context.bound(click):
        for i in range(n):
            body = {"id": i, "name": f"product {i}", "version": 3}
            await bus.publish(topic, new_envelope("ProductRenamed", body))
    client = aioredis.Redis.from_url(url)
    dlq = f"{topic}:dlq:refuses"
    deadline = time.monotonic() + 600
    while handled < n or dead < n:
        if time.monotonic() > deadline:
            raise RuntimeError("the consumers did not finish")
        await asyncio.sleep(0.2)
    if options.get("trim_interval", 10.0):
        await bus.trim(topic, "projection")  # what the next periodic pass would do
    for key in (topic, dlq):
        length = int(await client.xlen(key))
        size = int(await client.memory_usage(key, samples=0) or 0)
        per = size / length if length else 0.0
        line = f"{label:9} {key:34} {length:>7} entries {size:>12,} bytes ({per:,.0f} B/entry)"
        print(line, flush=True)
    await client.aclose()
    await bus.close()


async def main(n: int) -> None:
    logging.disable(logging.WARNING)  # one line per dead letter is not what is measured
    server = PrivateRedis()
    await server.start()
    try:
        await measure(server.url, n, UNBOUNDED, "unbounded")
        await measure(server.url, n, {}, "defaults")
    finally:
        await server.kill()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000))
