"""Fill a running distributed demo with N commands, then print what every table, stream and key
of it holds: the sizes an operator sees after a burst, with the default retention.

Start the demo first (``make demo-distributed``, any bus), then, with the same environment
(``CLICKTRACE_DATABASE_URL``, ``CLICKTRACE_PG_SCHEMA``, ``CLICKTRACE_REDIS_URL``,
``CLICKTRACE_CHANNEL``, ``CLICKTRACE_TOPIC``, ``CLICKTRACE_BUS_URL``)::

    .venv/bin/python bench/fill.py --nodes http://127.0.0.1:8001,http://127.0.0.1:8002 \\
        --commands 100000 [--concurrency 32] [--tabs 50]

Each command is a rename from one of ``--tabs`` sessions, with its own correlation id; the
script waits until the projection has claimed every accepted command (or ``--wait`` seconds
pass), then measures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import time
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis

from clicktrace.ids import new_id

PRODUCTS = 6  # the demo's catalogue


async def _fill(nodes: list[str], commands: int, concurrency: int, tabs: int) -> dict[str, int]:
    statuses: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        tokens = [
            (await http.post(f"{nodes[i % len(nodes)]}/clicktrace/session")).json()["token"]
            for i in range(tabs)
        ]
        counter = itertools.count()

        async def worker() -> None:
            while (n := next(counter)) < commands:
                node = nodes[n % len(nodes)]
                reply = await http.post(
                    f"{node}/api/products/{n % PRODUCTS + 1}/rename",
                    json={"name": f"Fill {n}"},
                    headers={
                        "x-clicktrace-client": tokens[n % tabs],
                        "x-correlation-id": new_id(),
                    },
                )
                key = str(reply.status_code)
                statuses[key] = statuses.get(key, 0) + 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.monotonic() - started
    print(f"{commands} commands in {took:.0f} s ({commands / took:.0f}/s): {statuses}")
    return statuses


async def _tables(dsn: str, schema: str) -> dict[str, tuple[int, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        names = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema
            )
        ]
        out = {}
        for name in sorted(names):
            rows = await conn.fetchval(f'SELECT count(*) FROM "{schema}"."{name}"')
            size = await conn.fetchval(
                "SELECT pg_total_relation_size(format('%I.%I', $1::text, $2::text))", schema, name
            )
            out[name] = (int(rows), int(size))
        return out
    finally:
        await conn.close()


async def _claimed(dsn: str, schema: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".clicktrace_processed'))
    finally:
        await conn.close()


async def _redis(url: str, channel: str, topic: str) -> dict[str, Any]:
    client = aioredis.Redis.from_url(url)
    try:
        info: Any = await client.info("memory")
        keys = [k async for k in client.scan_iter(match=f"{channel}:*", count=1000)]
        out: dict[str, Any] = {"used_memory": info["used_memory"], f"{channel}:* keys": len(keys)}
        for stream in (topic, f"{topic}:dlq:projection"):
            if await client.exists(stream):
                out[f"stream {stream}"] = (
                    await client.xlen(stream),
                    await client.memory_usage(stream),
                )
        journal = f"{channel}:journal"
        for index in ("recent", "open", "settled"):
            if await client.exists(f"{journal}:{index}"):
                out[f"{journal}:{index}"] = await client.zcard(f"{journal}:{index}")
        # The journal's per-click lists: a sample's MEMORY USAGE times their number.
        clicks = [k for k in keys if k.decode().startswith(f"{journal}:")]
        sample = clicks[:: max(1, len(clicks) // 200)][:200]
        if sample:
            sizes = [int(await client.memory_usage(k) or 0) for k in sample]
            out["journal lists (estimate)"] = f"{len(clicks)} x {sum(sizes) // len(sizes)} B"
        return out
    finally:
        await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", default="http://127.0.0.1:8001,http://127.0.0.1:8002")
    parser.add_argument("--commands", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--tabs", type=int, default=50)
    parser.add_argument("--wait", type=float, default=600.0)
    args = parser.parse_args()
    env = os.environ
    dsn = env.get("CLICKTRACE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = env.get("CLICKTRACE_PG_SCHEMA", "clicktrace_demo")
    redis_url = env.get("CLICKTRACE_REDIS_URL", "redis://127.0.0.1:6379/0")
    channel = env.get("CLICKTRACE_CHANNEL", "clicktrace")
    topic = env.get("CLICKTRACE_TOPIC", "products")

    before = await _claimed(dsn, schema)
    statuses = await _fill(args.nodes.split(","), args.commands, args.concurrency, args.tabs)
    accepted = statuses.get("202", 0)
    deadline = time.monotonic() + args.wait
    while (claimed := await _claimed(dsn, schema) - before) < accepted:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    print(f"accepted {accepted}, claimed by the projection {claimed}")
    for name, (rows, size) in (await _tables(dsn, schema)).items():
        print(f"  {schema}.{name:<28} {rows:>9} rows {size / 1e6:>9.1f} MB")
    for key, value in (await _redis(redis_url, channel, topic)).items():
        print(f"  redis {key}: {value}")


if __name__ == "__main__":
    asyncio.run(main())
