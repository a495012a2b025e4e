"""The Redis store, on the real server: bounded by the number of ids it keeps (the rest are
counted, never silently lost), and every key under the prefix the URL names. (The interface
every store shares is held in test_store.py.)"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from clicktrace.ids import new_id
from clicktrace.journal import Entry, create_store
from clicktrace.testing import unique_name

REDIS = "redis://127.0.0.1:6379/0"


async def _keys(prefix: str) -> list[bytes]:
    client = aioredis.Redis.from_url(REDIS)
    try:
        return [k async for k in client.scan_iter(match=f"{prefix}*")]
    finally:
        await client.aclose()


async def _drop(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS)
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.mark.broker
async def test_redis_keeps_at_most_max_ids_and_counts_the_rest() -> None:
    name = unique_name("journal", sql=True)
    s = create_store(REDIS, prefix=name, max_ids=3)
    try:
        ids = [new_id() for _ in range(5)]
        await s.write(
            [Entry(correlation_id=cid, stage="accepted", at=float(i)) for i, cid in enumerate(ids)]
        )
        assert s.dropped == 2
        assert await s.read(ids[0]) == []
        assert sorted(await s.recent(0, 10)) == sorted(ids[2:])
    finally:
        await s.aclose()
        await _drop(name)


@pytest.mark.broker
async def test_every_key_is_under_the_prefix_from_the_url() -> None:
    prefix = unique_name("app1", sql=True)
    s = create_store(f"{REDIS}?prefix={prefix}")
    try:
        await s.write([Entry(correlation_id=new_id(), stage="accepted", at=1.0)])
        keys = await _keys(prefix)
        assert keys and all(k.startswith(prefix.encode()) for k in keys)
    finally:
        await s.aclose()
        await _drop(prefix)
