"""Redis-only behaviour; the shared contract is in test_replay.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
import redis.exceptions as redis_exceptions

from clicktrace.ids import new_id
from clicktrace.notify.replay_redis import MAX_REDIS_FRAMES, RedisReplayBuffer
from clicktrace.testing import unique_name

REDIS_URL = "redis://127.0.0.1:6379/0"


async def test_frames_expire_by_redis_time_and_seq_continues() -> None:
    prefix = unique_name("replay")
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
    prefix = unique_name("replay")
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
    buffer = RedisReplayBuffer(REDIS_URL, prefix=unique_name("replay"))
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


class CountingBuffer(RedisReplayBuffer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []

    async def _run_appends(self, batch: list[Any]) -> list[Any]:
        self.batches.append(len(batch))
        return await super()._run_appends(batch)


async def test_concurrent_appends_share_a_pipeline_and_keep_call_order() -> None:
    buffer = CountingBuffer(REDIS_URL, prefix=unique_name("replay"))
    a, b = new_id(), new_id()
    try:
        stamped = await asyncio.gather(
            *(
                buffer.append(
                    a if i % 3 else b, {"correlation_id": a, "status": "progress", "data": {"n": i}}
                )
                for i in range(30)
            )
        )
        for cid in (a, b):
            mine = [f for i, f in enumerate(stamped) if (cid == a) == bool(i % 3)]
            assert [f["seq"] for f in mine] == list(range(1, len(mine) + 1))
            assert [f["data"]["n"] for f in mine] == sorted(f["data"]["n"] for f in mine)
            assert await buffer.since(cid, 0) == mine
        assert buffer.batches == [30]  # one round trip for the 30
    finally:
        await buffer.aclose()


async def test_a_lost_script_is_loaded_again() -> None:
    buffer = RedisReplayBuffer(REDIS_URL, prefix=unique_name("replay"))
    cid = new_id()
    try:
        await buffer.append(cid, {"correlation_id": cid, "status": "progress"})
        buffer._append_sha = "0" * 40  # as after a Redis restart: NOSCRIPT
        stamped = await buffer.append(cid, {"correlation_id": cid, "status": "confirmed"})
        assert stamped["seq"] == 2
    finally:
        await buffer.aclose()


async def test_redis_unreachable_fails_every_append_in_the_batch() -> None:
    buffer = RedisReplayBuffer("redis://127.0.0.1:1/0", prefix="ct-test")
    try:
        results = await asyncio.gather(
            *(
                buffer.append(new_id(), {"correlation_id": new_id(), "status": "progress"})
                for _ in range(3)
            ),
            return_exceptions=True,
        )
        assert all(isinstance(r, redis_exceptions.ConnectionError) for r in results)
    finally:
        await buffer.aclose()
