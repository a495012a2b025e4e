"""Redis-only behaviour; the shared contract is in test_replay.py."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis_asyncio

from clicktrace.ids import new_id
from clicktrace.notify.replay_redis import MAX_REDIS_FRAMES, RedisReplayBuffer

REDIS_URL = "redis://127.0.0.1:6379/0"


async def test_frames_expire_by_redis_time_and_seq_continues() -> None:
    prefix = f"ct-test-{new_id().lower()}"
    buffer = RedisReplayBuffer(REDIS_URL, ttl_seconds=0.2, seq_ttl_seconds=60, prefix=prefix)
    cid = new_id()
    try:
        await buffer.append(cid, {"correlation_id": cid, "status": "progress"})
        await asyncio.sleep(0.4)  # let the frame age past its ttl (not a timing assertion)
        assert await buffer.since(cid, 0) is None
        stamped = await buffer.append(cid, {"correlation_id": cid, "status": "confirmed"})
        assert stamped["seq"] == 2
        assert await buffer.since(cid, 1) == [stamped]
    finally:
        await buffer.aclose()


async def test_keys_are_bounded_and_expire() -> None:
    prefix = f"ct-test-{new_id().lower()}"
    client = redis_asyncio.Redis.from_url(REDIS_URL)
    buffer = RedisReplayBuffer(client=client, max_frames=3, prefix=prefix)
    cid = new_id()
    try:
        for _ in range(5):
            await buffer.append(cid, {"correlation_id": cid, "status": "progress"})
        assert await client.zcard(f"{prefix}:buf:{cid}") == 3
        assert 0 < await client.pttl(f"{prefix}:buf:{cid}") <= 300_000
        assert await client.pttl(f"{prefix}:seq:{cid}") > 300_000
        await buffer.aclose()  # a borrowed client stays open
        assert await client.ping()
    finally:
        await client.aclose()


async def test_frame_must_be_an_object() -> None:
    buffer = RedisReplayBuffer(REDIS_URL, prefix=f"ct-test-{new_id().lower()}")
    try:
        with pytest.raises(ValueError):
            await buffer.append(new_id(), {})
    finally:
        await buffer.aclose()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        RedisReplayBuffer()
    with pytest.raises(ValueError):
        RedisReplayBuffer(REDIS_URL, max_frames=MAX_REDIS_FRAMES + 1)
