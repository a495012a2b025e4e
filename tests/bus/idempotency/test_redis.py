"""Redis and in-memory dedupe stores."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from clicktrace.bus.idempotency import MemoryDedupe, RedisIdempotency
from clicktrace.testing import unique_name


async def test_redis_remembers_with_a_ttl_and_claims_once() -> None:
    prefix = unique_name("test") + ":"
    client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    store = RedisIdempotency(client, ttl_seconds=60, prefix=prefix)
    try:
        assert not await store.seen("c", "m1")
        await store.remember("c", "m1")
        assert await store.seen("c", "m1")
        assert not await store.seen("other", "m1")
        assert 0 < await client.ttl(f"{prefix}c:m1") <= 60
        assert await store.claim("c", "m2")
        assert not await store.claim("c", "m2")
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        await client.delete(*keys)
        await store.aclose()


async def test_memory_dedupe_forgets_the_oldest_beyond_capacity() -> None:
    store = MemoryDedupe(capacity=2)
    for message_id in ("a", "b", "c"):
        await store.remember("c", message_id)
    assert [await store.seen("c", m) for m in ("a", "b", "c")] == [False, True, True]
    with pytest.raises(ValueError):
        MemoryDedupe(capacity=0)
    with pytest.raises(ValueError):
        RedisIdempotency("redis://127.0.0.1:6379/0", ttl_seconds=0)
