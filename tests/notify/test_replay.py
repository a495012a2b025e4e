"""The replay-buffer contract, run against the in-memory and the Redis buffer alike."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from clicktrace.ids import new_id
from clicktrace.notify.replay import MemoryReplayBuffer, ReplayBuffer
from clicktrace.notify.replay_redis import RedisReplayBuffer
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


def frame(n: int) -> dict[str, object]:
    return {
        "correlation_id": "01J0000000000000000000000" + str(n % 10),
        "status": "progress",
        "data": {"n": n},
    }


async def test_seq_is_per_client_and_gap_free(make: Make) -> None:
    buffer = make(16)
    a, b = new_id(), new_id()
    assert await buffer.current(a) == 0
    stamped = [await buffer.append(a, frame(i)) for i in range(5)]
    assert [f["seq"] for f in stamped] == [1, 2, 3, 4, 5]
    epoch = await buffer.epoch(a)
    assert stamped[2] == {"seq": 3, "epoch": epoch, **frame(2)}
    assert {f["epoch"] for f in stamped} == {epoch}
    assert (await buffer.append(b, frame(9)))["seq"] == 1
    assert await buffer.current(a) == 5


async def test_since_replays_what_was_missed_in_order(make: Make) -> None:
    buffer = make(16)
    cid = new_id()
    for i in range(6):
        await buffer.append(cid, frame(i))
    missed = await buffer.since(cid, 3)
    assert missed is not None
    assert [f["seq"] for f in missed] == [4, 5, 6]
    assert missed[0]["data"] == {"n": 3}
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
    assert kept is not None and [f["seq"] for f in kept] == [7, 8, 9, 10]


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
    assert later is not None and [f["seq"] for f in later] == [2]
    clock.now += 50  # sweep runs; the client is idle but its counter is kept
    other = new_id()
    await buffer.append(other, frame(3))
    assert (await buffer.append(cid, frame(4)))["seq"] == 3
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
    old = seen[-1]["epoch"]
    assert await buffer.since(cid, 2, old) == []  # same numbering: nothing missed
    buffer = await _lose_counters(buffer, cid)
    after = [await buffer.append(cid, frame(i)) for i in range(3)]
    new = await buffer.epoch(cid)
    assert new != old and [f["epoch"] for f in after] == [new] * 3
    assert await buffer.since(cid, 2, old) is None
    assert await buffer.since(cid, 0, new) == after
    assert await buffer.since(cid, 2) == after[2:]  # a client without epochs: as before


async def test_a_resync_for_a_client_without_a_counter_names_the_epoch_that_follows(
    make: Make,
) -> None:
    buffer, cid = make(16), new_id()
    assert await buffer.since(cid, 4, "01JOLDEPOCH000000000000000") is None
    epoch = await buffer.epoch(cid)
    assert (await buffer.append(cid, frame(1)))["epoch"] == epoch
    assert await buffer.epoch(cid) == epoch
