"""The replay-buffer contract, run against the in-memory and the Redis buffer alike; then the
Redis-only behaviour, and the Replay options that choose a buffer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
import redis.asyncio as redis_asyncio
import redis.exceptions as redis_exceptions

from clicktrace.ids import new_id
from clicktrace.notify._frames import Confirmed, Progress
from clicktrace.notify._replay import (
    MAX_REDIS_FRAMES,
    MemoryReplayBuffer,
    RedisReplayBuffer,
    Replay,
    ReplayBuffer,
)
from clicktrace.testing import unique_name

REDIS_URL = "redis://127.0.0.1:6379/0"


Make = Callable[[int], ReplayBuffer]


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    made: list[ReplayBuffer] = []
    prefix = unique_name("replay")

    def build(max_frames: int) -> ReplayBuffer:
        buffer: ReplayBuffer
        if request.param == "memory":
            buffer = MemoryReplayBuffer(max_frames)
        else:
            buffer = RedisReplayBuffer(REDIS_URL, max_frames=max_frames, prefix=prefix)
        made.append(buffer)
        return buffer

    yield build
    for buffer in made:
        await buffer.aclose()


def frame(n: int) -> Progress:
    return Progress(correlation_id="01J0000000000000000000000" + str(n % 10), data={"n": n})


async def test_seq_is_per_client_and_gap_free(make: Make) -> None:
    buffer = make(16)
    a, b = new_id(), new_id()
    assert await buffer.current(a) == 0
    stamped = [await buffer.append(a, frame(i)) for i in range(5)]
    assert [f.seq for f in stamped] == [1, 2, 3, 4, 5]
    epoch = await buffer.epoch(a)
    assert stamped[2] == msgspec.structs.replace(frame(2), seq=3, epoch=epoch)
    assert {f.epoch for f in stamped} == {epoch}
    assert (await buffer.append(b, frame(9))).seq == 1
    assert await buffer.current(a) == 5


async def test_since_replays_what_was_missed_in_order(make: Make) -> None:
    buffer = make(16)
    cid = new_id()
    for i in range(6):
        await buffer.append(cid, frame(i))
    missed = await buffer.since(cid, 3)
    assert missed is not None
    assert [f.seq for f in missed] == [4, 5, 6]
    assert missed[0].data == {"n": 3}
    assert await buffer.since(cid, 6) == []
    full = await buffer.since(cid, 0)
    assert full is not None and len(full) == 6
    assert await buffer.since(new_id(), 0) == []


async def test_overflow_means_resync(make: Make) -> None:
    buffer = make(4)
    cid = new_id()
    for i in range(10):
        await buffer.append(cid, frame(i))
    assert await buffer.since(cid, 5) is None  # 6 was evicted: never skip silently
    kept = await buffer.since(cid, 6)
    assert kept is not None and [f.seq for f in kept] == [7, 8, 9, 10]


async def test_a_seq_from_the_future_means_resync(make: Make) -> None:
    buffer = make(4)
    cid = new_id()
    await buffer.append(cid, frame(1))
    assert await buffer.since(cid, 5) is None
    assert await buffer.since(new_id(), 1) is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_frames_expire_but_seq_continues() -> None:
    clock = Clock()
    buffer = MemoryReplayBuffer(8, ttl_seconds=10, seq_ttl_seconds=100, clock=clock)
    cid = new_id()
    await buffer.append(cid, frame(1))
    clock.now += 5
    await buffer.append(cid, frame(2))
    clock.now += 6  # the first frame is now 11 s old
    assert await buffer.since(cid, 0) is None
    later = await buffer.since(cid, 1)
    assert later is not None and [f.seq for f in later] == [2]
    clock.now += 50  # sweep runs; the client is idle but its counter is kept
    other = new_id()
    await buffer.append(other, frame(3))
    assert (await buffer.append(cid, frame(4))).seq == 3
    clock.now += 200  # past seq_ttl: an idle client is forgotten entirely
    await buffer.append(other, frame(5))
    assert await buffer.current(cid) == 0


def test_bad_limits() -> None:
    with pytest.raises(ValueError):
        MemoryReplayBuffer(0)
    with pytest.raises(ValueError):
        MemoryReplayBuffer(4, ttl_seconds=0)
    with pytest.raises(ValueError):
        MemoryReplayBuffer(4, ttl_seconds=10, seq_ttl_seconds=5)


async def _lose_counters(buffer: ReplayBuffer, cid: str) -> ReplayBuffer:
    """What a restart does to the memory buffer, and a flush (or eviction) to Redis."""
    if isinstance(buffer, MemoryReplayBuffer):
        return MemoryReplayBuffer()
    assert isinstance(buffer, RedisReplayBuffer)
    await buffer._redis.delete(*buffer._keys(cid))
    return buffer


async def test_a_buffer_that_lost_its_counters_numbers_in_a_new_epoch(make: Make) -> None:
    # The case: a tab saw seq 1-2; after the restart three new outcomes are numbered
    # 1-3. Presenting last_seq 2 with its old epoch must mean a resync, never "only seq 3".
    buffer, cid = make(16), new_id()
    seen = [await buffer.append(cid, frame(i)) for i in range(2)]
    old = seen[-1].epoch
    assert await buffer.since(cid, 2, old) == []  # same numbering: nothing missed
    buffer = await _lose_counters(buffer, cid)
    after = [await buffer.append(cid, frame(i)) for i in range(3)]
    new = await buffer.epoch(cid)
    assert new != old and [f.epoch for f in after] == [new] * 3
    assert await buffer.since(cid, 2, old) is None
    assert await buffer.since(cid, 0, new) == after
    assert await buffer.since(cid, 2) == after[2:]  # a client without epochs: as before


async def test_a_resync_for_a_client_without_a_counter_names_the_epoch_that_follows(
    make: Make,
) -> None:
    buffer, cid = make(16), new_id()
    assert await buffer.since(cid, 4, "01JOLDEPOCH000000000000000") is None
    epoch = await buffer.epoch(cid)
    assert (await buffer.append(cid, frame(1))).epoch == epoch
    assert await buffer.epoch(cid) == epoch


# Redis only.


async def test_frames_expire_by_redis_time_and_seq_continues() -> None:
    prefix = unique_name("replay")
    buffer = RedisReplayBuffer(REDIS_URL, ttl_seconds=0.2, seq_ttl_seconds=60, prefix=prefix)
    cid = new_id()
    try:
        await buffer.append(cid, Progress(correlation_id=cid))
        await asyncio.sleep(0.4)  # let the frame age past its ttl (not a timing assertion)
        assert await buffer.since(cid, 0) is None
        stamped = await buffer.append(cid, Confirmed(correlation_id=cid))
        assert stamped.seq == 2
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
            await buffer.append(cid, Progress(correlation_id=cid))
        assert await client.zcard(f"{prefix}:buf:{cid}") == 3
        assert 0 < await client.pttl(f"{prefix}:buf:{cid}") <= 300_000
        assert await client.pttl(f"{prefix}:seq:{cid}") > 300_000
        await buffer.aclose()  # a borrowed client stays open
        assert await client.ping()
    finally:
        await client.aclose()


async def test_a_frame_that_comes_numbered_is_numbered_again() -> None:
    # The script splices seq and epoch into the frame's JSON: they must not be there twice.
    buffer, cid = RedisReplayBuffer(REDIS_URL, prefix=unique_name("replay")), new_id()
    try:
        stamped = await buffer.append(cid, Progress(correlation_id=cid, seq=40, epoch="old"))
        assert stamped.seq == 1 and stamped.epoch == await buffer.epoch(cid)
        assert await buffer.since(cid, 0) == [stamped]
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
                buffer.append(a if i % 3 else b, Progress(correlation_id=a, data={"n": i}))
                for i in range(30)
            )
        )
        for cid in (a, b):
            mine = [f for i, f in enumerate(stamped) if (cid == a) == bool(i % 3)]
            assert [f.seq for f in mine] == list(range(1, len(mine) + 1))
            assert [f.data["n"] for f in mine] == sorted(f.data["n"] for f in mine)
            assert await buffer.since(cid, 0) == mine
        assert buffer.batches == [30]  # one round trip for the 30
    finally:
        await buffer.aclose()


async def test_a_lost_script_is_loaded_again() -> None:
    buffer = RedisReplayBuffer(REDIS_URL, prefix=unique_name("replay"))
    cid = new_id()
    try:
        await buffer.append(cid, Progress(correlation_id=cid))
        buffer._append_sha = "0" * 40  # as after a Redis restart: NOSCRIPT
        stamped = await buffer.append(cid, Confirmed(correlation_id=cid))
        assert stamped.seq == 2
    finally:
        await buffer.aclose()


async def test_redis_unreachable_fails_every_append_in_the_batch() -> None:
    buffer = RedisReplayBuffer("redis://127.0.0.1:1/0", prefix="ct-test")
    try:
        results = await asyncio.gather(
            *(buffer.append(new_id(), Progress(correlation_id=new_id())) for _ in range(3)),
            return_exceptions=True,
        )
        assert all(isinstance(r, redis_exceptions.ConnectionError) for r in results)
    finally:
        await buffer.aclose()


async def test_replay_chooses_memory_redis_or_the_apps_own_buffer() -> None:
    assert isinstance(Replay().make(), MemoryReplayBuffer) and not Replay().shared
    own = MemoryReplayBuffer()
    assert Replay(buffer=own).make() is own and Replay(buffer=own).shared
    redis = Replay(redis_url=REDIS_URL, prefix=unique_name("replay"), max_frames=7).make()
    try:
        assert isinstance(redis, RedisReplayBuffer) and redis._max == 7
    finally:
        await redis.aclose()


@pytest.mark.parametrize(
    "options",
    [
        {"redis_url": REDIS_URL, "buffer": MemoryReplayBuffer()},
        {"max_frames": 0},
        {"ttl_seconds": 0},
        {"sweep_seconds": 0},
    ],
)
def test_replay_refuses_options_that_cannot_work(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Replay(**options)


def test_replay_keeps_the_redis_password_out_of_its_repr() -> None:
    assert "hunter2" not in repr(Replay(redis_url="redis://:hunter2@redis/"))
