"""Redis claims: remembered with a TTL, claimed once, the outcome kept in the claimed key, read
in one round trip; a claim nobody answers expires soon, an answered one holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from clicktrace.claims import Outcome, RedisClaims
from clicktrace.ids import new_id
from clicktrace.testing import unique_name

REDIS_URL = "redis://127.0.0.1:6379/0"
RENAMED = Outcome.confirmed({"id": 3, "name": "Tea", "version": 2})


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def _drop(client: aioredis.Redis, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)


async def test_redis_remembers_with_a_ttl_and_claims_once(client: aioredis.Redis) -> None:
    prefix = unique_name("test") + ":"
    store = RedisClaims(client, keep_seconds=60, prefix=prefix)
    try:
        assert not await store.seen("c", "m1")
        await store.remember("c", "m1")
        assert await store.seen("c", "m1")
        assert not await store.seen("other", "m1")
        assert 0 < await client.ttl(f"{prefix}c:m1") <= 60
        assert await store.claim(None, "c", "m2")
        assert not await store.claim(None, "c", "m2")
    finally:
        await _drop(client, prefix)


async def test_redis_keeps_the_outcome_in_the_claimed_key_with_its_ttl(
    client: aioredis.Redis,
) -> None:
    prefix = unique_name("test") + ":"
    store = RedisClaims(client, keep_seconds=60, prefix=prefix)
    try:
        await store.record_outcome(None, "c", "m0", RENAMED)  # never claimed: nothing written
        assert await client.exists(f"{prefix}c:m0") == 0
        assert await store.claim(None, "c", "m1")
        assert await store.recorded_outcome(None, "c", "m1") is None
        await store.record_outcome(None, "c", "m1", RENAMED)
        assert not await store.claim(None, "c", "m1")
        assert await store.recorded_outcome(None, "c", "m1") == RENAMED
        assert 0 < await client.ttl(f"{prefix}c:m1") <= 60
    finally:
        await _drop(client, prefix)


async def test_redis_claims_are_read_in_one_round_trip(client: aioredis.Redis) -> None:
    prefix = f"{unique_name('done')}:"
    store = RedisClaims(client, prefix=prefix, keep_seconds=60)
    ids = [new_id() for _ in range(3)]
    try:
        await store.claim(None, "projection", ids[0])
        await store.remember("projection", ids[2])
        assert await store.claimed(None, "projection", ids) == {ids[0], ids[2]}
        assert await store.claimed(None, "projection", []) == set()
    finally:
        await _drop(client, prefix)


async def test_an_unanswered_claim_expires_after_pending_seconds(client: aioredis.Redis) -> None:
    prefix = unique_name("test") + ":"
    store = RedisClaims(client, keep_seconds=60, pending_seconds=0.1, prefix=prefix)
    try:
        assert await store.claim(None, "commands", "crashed")  # its process died here
        assert await store.claim(None, "commands", "answered")
        await store.keep(None, "commands", "answered", b"first")
        await asyncio.sleep(0.3)
        assert await store.claim(None, "commands", "crashed")  # twice rather than never
        assert not await store.claim(None, "commands", "answered")
        assert await store.kept(None, "commands", "answered") == b"first"
        await store.release(None, "commands", "answered")  # an answer is never released
        await store.release(None, "commands", "crashed")
        assert await store.claimed(None, "commands", ["crashed", "answered"]) == {"answered"}
    finally:
        await _drop(client, prefix)


@pytest.mark.parametrize("options", [{"keep_seconds": 0}, {"pending_seconds": 0}])
def test_bad_settings_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RedisClaims(REDIS_URL, **options)  # type: ignore[arg-type]
