"""The memory ring: bounded by count (oldest dropped first, counted) and by age."""

from __future__ import annotations

import pytest

from clicktrace.ids import new_id
from clicktrace.journal import Entry, MemoryStore
from clicktrace.journal._store import MAX_ENTRIES_PER_ID

A, B = "01JD8X3Q7E8W5V4T2N9R6M0K1A", "01JD8X3Q7E8W5V4T2N9R6M0K1B"


def entry(cid: str, stage: str, at: float = 1.0) -> Entry:
    return Entry(correlation_id=cid, stage=stage, at=at)


async def test_a_flood_past_the_bound_drops_the_oldest_and_counts_them() -> None:
    store = MemoryStore(max_entries=3)
    store.add(entry(A, "accepted"))
    store.add(entry(A, "stored"))
    for i in range(4):
        store.add(entry(B, f"s{i}"))
    assert len(store) == 3
    assert store.dropped == 3
    assert await store.read(A) == []
    assert [e.stage for e in await store.read(B)] == ["s1", "s2", "s3"]


async def test_entries_older_than_the_age_are_gone_and_not_counted_as_drops() -> None:
    now = [0.0]
    store = MemoryStore(max_age_seconds=10, clock=lambda: now[0])
    store.add(entry(A, "accepted"))
    now[0] = 5
    store.add(entry(B, "accepted"))
    now[0] = 12
    assert await store.read(A) == []
    assert len(await store.read(B)) == 1
    assert (store.dropped, store.expired) == (0, 1)


async def test_one_looping_id_cannot_fill_the_ring_alone() -> None:
    store = MemoryStore()
    for _ in range(MAX_ENTRIES_PER_ID + 5):
        store.add(entry(A, "delivered"))
    assert len(await store.read(A)) == MAX_ENTRIES_PER_ID
    assert store.dropped == 5


async def test_recent_lists_the_most_recently_active_ids_first() -> None:
    store = MemoryStore()
    store.add(entry(A, "accepted", at=100))
    store.add(entry(B, "accepted", at=200))
    assert await store.recent(0, 10) == [B, A]
    assert await store.recent(150, 10) == [B]
    assert await store.recent(0, 1) == [B]


async def test_the_dead_letter_index_is_bounded_and_follows_evictions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from clicktrace.journal import _memory

    monkeypatch.setattr(_memory, "MAX_DEAD", 2)
    store = MemoryStore(max_entries=3)
    ids = [new_id() for _ in range(3)]
    for i, cid in enumerate(ids):
        store.add(Entry(correlation_id=cid, stage="dead_lettered", at=1000.0 + i))
    assert await store.dead_lettered(10) == (ids[1:], 2)  # the oldest went first
    for _ in range(2):  # the ring holds 3: ids[0] and ids[1] are evicted
        store.add(Entry(correlation_id=new_id(), stage="acked", at=2000.0))
    assert await store.dead_lettered(10) == ([ids[2]], 1)  # its entries evicted: gone too
