"""Every store honours the same interface: write, read, recent, bounds, ping; and a store
whose backend is down fails inside the writer, never in the caller."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from clicktrace.ids import new_id
from clicktrace.journal import Entry, Store, create_store
from clicktrace.journal._store import MAX_ENTRIES_PER_ID, NONE, Process, marks, merge
from clicktrace.testing import unique_name
from tests.journal.stores import KINDS, drop, url_for


@pytest.fixture(params=KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    kind = str(request.param)
    name = unique_name("journal", sql=True)
    options: dict[str, object] = {}
    if kind == "redis":
        options = {"prefix": name, "max_ids": 6}
    elif kind in ("postgres", "sqlite"):
        options = {"table": name}
    s = create_store(url_for(kind, tmp_path), **options)
    yield s
    await s.aclose()
    await drop(kind, name)


def entry(cid: str, stage: str, at: float) -> Entry:
    return Entry(
        correlation_id=cid,
        stage=stage,
        at=at,
        trace_id="a" * 32,
        attempt=1,
        detail="d",
        client_id=cid,
    )


@pytest.mark.broker
async def test_entries_round_trip_by_correlation_id(store: Store) -> None:
    a, b = new_id(), new_id()
    await store.write([entry(a, "accepted", 10), entry(b, "accepted", 20), entry(a, "stored", 11)])
    assert [e.stage for e in await store.read(a)] == ["accepted", "stored"]
    assert (await store.read(a))[0] == entry(a, "accepted", 10)
    assert await store.read(new_id()) == []
    assert await store.recent(0, 10) == [b, a]
    assert await store.recent(15, 10) == [b]
    await store.ping()


@pytest.mark.broker
async def test_one_id_keeps_at_most_the_cap(store: Store) -> None:
    cid = new_id()
    await store.write([entry(cid, "delivered", i) for i in range(MAX_ENTRIES_PER_ID + 10)])
    assert len(await store.read(cid)) == MAX_ENTRIES_PER_ID


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "postgresql://postgres@127.0.0.1:1/x"])
async def test_a_store_that_is_down_raises_to_the_writer_only(url: str) -> None:
    s = create_store(url, timeout=0.3)
    with pytest.raises(Exception):  # noqa: B017 (redis and asyncpg raise their own)
        await s.write([entry(new_id(), "accepted", 1)])
    with pytest.raises(Exception):  # noqa: B017 (redis and asyncpg raise their own)
        await s.ping()
    await s.aclose()


def server(cid: str, stage: str, at: float, outcome: str | None = None) -> Entry:
    return Entry(correlation_id=cid, stage=stage, at=at, outcome=outcome, process="api:1")


@pytest.mark.broker
async def test_the_open_index_opens_on_the_server_and_closes_on_a_settling_entry(
    store: Store,
) -> None:
    now = time.time() * 1000.0
    done, stuck, tab_only, later, retried, late = (new_id() for _ in range(6))
    await store.write(
        [
            server(stuck, "accepted", now - 5000, "202"),
            server(stuck, "stored", now - 4990),
            server(done, "accepted", now - 6000, "202"),
            # the tab's own "settled" never closes a click, nor do its spans open one
            Entry(correlation_id=stuck, stage="settled", at=now - 100, outcome="timed_out"),
            Entry(correlation_id=tab_only, stage="clicked", at=now - 9000),
            server(retried, "refused", now - 3000, "429"),
            server(late, "dead_lettered", now - 2000),
        ]
    )
    # another process's batch: the outcome, then a retry's 202 after the refusal, and a 202
    # older than the dead letter (a late batch, not a retry)
    await store.write(
        [
            server(done, "notified", now - 5900, "confirmed"),
            server(done, "pushed", now - 5890),  # after its settling entry: stays closed
            server(retried, "accepted", now - 2500, "202"),
            server(late, "accepted", now - 2100, "202"),
            server(later, "accepted", now - 1000, "202"),
        ]
    )
    ids, total = await store.open_clicks(now, 10)
    assert (ids, total) == ([stuck, retried, later], 3)  # oldest first
    assert await store.open_clicks(now - 2000, 10) == ([stuck, retried], 2)
    assert await store.open_clicks(now, 1) == ([stuck], 3)  # cut, and said so
    await store.write([server(stuck, "dead_lettered", now - 10)])
    assert await store.open_clicks(now, 10) == ([retried, later], 2)


@pytest.mark.broker
async def test_the_dead_letter_index_lists_each_click_once_oldest_first(store: Store) -> None:
    now = time.time() * 1000.0
    first, second, fine = new_id(), new_id(), new_id()
    await store.write(
        [
            server(second, "accepted", now - 4000, "202"),
            server(second, "dead_lettered", now - 3000),
            server(first, "dead_lettered", now - 5000),
            server(fine, "acked", now - 4500),
        ]
    )
    assert await store.dead_lettered(10) == ([first, second], 2)
    assert await store.dead_lettered(1) == ([first], 2)  # cut, and said so
    # dead-lettered again after a resend: listed once, at its last dead letter
    await store.write(
        [server(first, "resent", now - 200), server(first, "dead_lettered", now - 100)]
    )
    assert await store.dead_lettered(10) == ([second, first], 2)


@pytest.mark.broker
async def test_a_resend_reopens_a_dead_lettered_click(store: Store) -> None:
    now = time.time() * 1000.0
    cid = new_id()
    await store.write([server(cid, "accepted", now - 5000, "202")])
    await store.write([server(cid, "dead_lettered", now - 4000)])
    assert await store.open_clicks(now, 10) == ([], 0)
    await store.write([server(cid, "resent", now - 3000)])
    assert await store.open_clicks(now, 10) == ([cid], 1)
    await store.write(
        [server(cid, "acked", now - 2000), server(cid, "notified", now - 1990, "confirmed")]
    )
    assert await store.open_clicks(now, 10) == ([], 0)


@pytest.mark.broker
async def test_the_process_table_keeps_each_writer_once_until_it_leaves(store: Store) -> None:
    await store.register("api-1", Process(1000.0, 2000.0, 5000.0))
    await store.register("api-1", Process(1000.0, 7000.0, 5000.0))
    await store.register("relay", Process(3000.0, 3000.0, 5000.0))
    assert await store.processes() == {
        "api-1": Process(1000.0, 7000.0, 5000.0),
        "relay": Process(3000.0, 3000.0, 5000.0),
    }
    await store.unregister("api-1")
    assert list(await store.processes()) == ["relay"]


def test_every_store_applies_the_same_merge_rule() -> None:
    # The memory ring applies merge() one entry at a time; a batch's marks give the same.
    m = marks([server("A", "accepted", 10, "202"), server("A", "notified", 20, "confirmed")])
    assert merge(m["A"], None, None) == (None, 20)
    assert merge((30, NONE, 30), None, 20) == (30, None)  # a retry after the settle
    assert merge((15, NONE, 15), None, 20) == (None, 20)  # a late batch
    assert merge((5, NONE, NONE), 8, None) == (5, None)
    assert marks([Entry(correlation_id="A", stage="settled", at=1)]) == {}
    assert marks([server("A", "resent", 40)]) == {"A": (40, NONE, 40)}  # reopens like a 202


@pytest.mark.broker
@pytest.mark.parametrize("kind", ["redis", "sqlite", "postgres"])
async def test_a_store_at_its_bound_evicts_settled_clicks_before_open_ones(
    kind: str, tmp_path: Path
) -> None:
    name = unique_name("journal", sql=True)
    options: dict[str, object] = (
        {"prefix": name, "max_ids": 6} if kind == "redis" else {"table": name, "max_entries": 12}
    )
    s = create_store(url_for(kind, tmp_path), **options)
    now = time.time() * 1000.0
    try:
        stuck = [new_id(), new_id()]
        await s.write(
            [server(cid, "accepted", now - 9000 + i, "202") for i, cid in enumerate(stuck)]
        )
        for round_ in range(3):  # newer clicks that settle, past the bound
            batch = []
            for i in range(4):
                cid, at = new_id(), now - 5000 + round_ * 100 + i
                batch += [
                    server(cid, "accepted", at, "202"),
                    server(cid, "notified", at + 1, "confirmed"),
                ]
            await s.write(batch)
        if kind != "redis":  # the SQL stores prune every PRUNE_EVERY writes: make this one
            cast(Any, s)._writes = 0
            await s.write([server(new_id(), "refused", now, "400")])
        assert s.dropped > 0
        for cid in stuck:
            assert [e.stage for e in await s.read(cid)] == ["accepted"]
        assert (await s.open_clicks(now, 10))[0] == stuck
    finally:
        await s.aclose()
        await drop(kind, name)
