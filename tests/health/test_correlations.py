"""``correlations_check`` reads every open click, not the most recent few."""

from __future__ import annotations

import time

from clicktrace.health import correlations_check
from clicktrace.ids import new_id
from clicktrace.journal import Entry, Journal, MemoryStore, Thresholds


async def test_a_stuck_click_behind_600_newer_ones_is_still_seen_and_the_cut_counted() -> None:
    store = MemoryStore()
    journal = Journal(store)
    now = time.time() * 1000.0
    stuck = new_id()
    store.add(Entry(correlation_id=stuck, stage="accepted", at=now - 120_000, outcome="202"))
    store.add(Entry(correlation_id=stuck, stage="delivered", at=now - 119_000))
    for i in range(600):  # newer, settled: the newest 500 of the journal hold none stuck
        cid = new_id()
        store.add(Entry(correlation_id=cid, stage="accepted", at=now - 1000 + i, outcome="202"))
        store.add(
            Entry(correlation_id=cid, stage="notified", at=now - 999 + i, outcome="confirmed")
        )
    for _ in range(3):  # open, recent: in flight
        store.add(Entry(correlation_id=new_id(), stage="accepted", at=now - 10, outcome="202"))
    result = await correlations_check(journal, thresholds=Thresholds(30_000), limit=2)()
    assert result.status == "Degraded"
    assert result.data["stuck"] == 1
    assert result.data["oldest_stuck"]["correlation_id"] == stuck
    assert (result.data["open"], result.data["scanned"], result.data["not_scanned"]) == (4, 2, 2)
    assert "the oldest 2 of 4 open read" in result.description
