"""Claims in one process's memory: bounded by count and age, and a bus Dedupe."""

from __future__ import annotations

import pytest

from clicktrace.claims import MemoryClaims, Outcome


async def test_memory_dedupe_forgets_the_oldest_beyond_capacity() -> None:
    store = MemoryClaims(capacity=2)
    for message_id in ("a", "b", "c"):
        await store.remember("c", message_id)
    assert [await store.seen("c", m) for m in ("a", "b", "c")] == [False, True, True]
    with pytest.raises(ValueError):
        MemoryClaims(capacity=0)


async def test_a_claim_holds_its_first_answer_until_it_expires() -> None:
    now = [0.0]
    store = MemoryClaims(keep_seconds=60, clock=lambda: now[0])
    assert await store.claim(None, "s", "k")
    assert not await store.claim(None, "s", "k")
    assert await store.kept(None, "s", "k") is None  # claimed, not answered yet
    await store.keep(None, "s", "k", b"first")
    await store.keep(None, "other", "k", b"never claimed")  # nothing written
    assert await store.kept(None, "s", "k") == b"first"
    assert await store.claimed(None, "s", ["k", "x"]) == {"k"}
    assert await store.claimed(None, "other", ["k"]) == set()
    now[0] = 60.0
    assert await store.claim(None, "s", "k")  # expired: claimed afresh
    assert await store.kept(None, "s", "k") is None


async def test_release_drops_only_an_unanswered_claim() -> None:
    store = MemoryClaims()
    assert await store.claim(None, "s", "failed")
    await store.release(None, "s", "failed")
    assert await store.claim(None, "s", "failed")
    assert await store.claim(None, "s", "answered")
    await store.record_outcome(None, "s", "answered", Outcome.confirmed(1))
    await store.release(None, "s", "answered")
    assert await store.recorded_outcome(None, "s", "answered") == Outcome.confirmed(1)


@pytest.mark.parametrize("options", [{"keep_seconds": 0}, {"capacity": True}])
def test_bad_settings_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        MemoryClaims(**options)  # type: ignore[arg-type]
