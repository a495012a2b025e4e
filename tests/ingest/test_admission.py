"""clicktrace.ingest._admission: a tab's spans add stages only to its own clicks, at times
clamped to a window around receipt, within a share per click and per client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from clicktrace import journal as journal_api
from clicktrace.ids import new_id
from clicktrace.ingest._admission import (
    MAX_BROWSER_ENTRIES_PER_ID,
    MAX_FUTURE_MS,
    MAX_PAST_MS,
    Admission,
)
from clicktrace.journal import Entry, Journal, MemoryStore
from clicktrace.journal._browser import BrowserStage

from .app import LaggingStore

TAB, OTHER = new_id(), new_id()
NOW_MS = 1_800_000_000_000.0
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def journal() -> Iterator[Journal]:
    j = Journal(MemoryStore())
    previous = journal_api.use(j)
    yield j
    journal_api.use(previous)


def edge(journal: Journal, cid: str, client: str | None, at: float = NOW_MS - 1000) -> None:
    """The edge's entry for a command ``client`` sent."""
    journal.put(Entry(correlation_id=cid, stage="accepted", at=at, client_id=client))


def stage(
    cid: str, name: str = "http", at: float = NOW_MS, span: str | None = None
) -> BrowserStage:
    return BrowserStage(cid, name, at, TRACE, span or new_id()[-16:], duration_ms=10.0)


def admission(**options: Any) -> Admission:
    """An admission whose clock reads NOW_MS."""
    return Admission(clock=lambda: NOW_MS / 1000.0, **options)


async def test_stages_of_the_clients_own_click_are_taken(journal: Journal) -> None:
    cid = new_id()
    edge(journal, cid, TAB)
    got = await admission().admit(journal, TAB, [stage(cid, "clicked"), stage(cid, "settled")])
    assert [s.stage for s in got.stages] == ["clicked", "settled"]
    assert got.counts == {"recorded": 2}


async def test_a_click_of_another_client_or_of_nobody_takes_nothing(journal: Journal) -> None:
    theirs, anonymous, unknown = new_id(), new_id(), new_id()
    edge(journal, theirs, OTHER)
    edge(journal, anonymous, None)  # a command sent without a token
    spoofed = [stage(c, "settled") for c in (theirs, anonymous, unknown)]
    got = await admission().admit(journal, TAB, spoofed)
    assert got.stages == []
    assert got.counts == {"other_client": 2, "unknown_click": 1}


async def test_the_first_edge_entry_owns_the_click(journal: Journal) -> None:
    # The attacker learnt a stuck click's id and sent a command naming it: the edge journals
    # that too, under the attacker's client id, but the click was the victim's first.
    cid = new_id()
    edge(journal, cid, OTHER, at=NOW_MS - 5000)
    edge(journal, cid, TAB, at=NOW_MS - 10)
    got = await admission().admit(journal, TAB, [stage(cid, "settled")])
    assert got.counts == {"other_client": 1}
    got = await admission().admit(journal, OTHER, [stage(cid, "settled")])
    assert got.counts == {"recorded": 1}


async def test_times_are_clamped_to_a_window_around_receipt(journal: Journal) -> None:
    cid = new_id()
    edge(journal, cid, TAB)
    sent = [
        stage(cid, "clicked", at=NOW_MS + 86_400_000),  # a day ahead
        stage(cid, "http", at=NOW_MS - 10 * MAX_PAST_MS),
        stage(cid, "received", at=NOW_MS + MAX_FUTURE_MS),  # just inside
        stage(cid, "settled", at=NOW_MS)._replace(duration_ms=1e15),
    ]
    got = await admission().admit(journal, TAB, sent)
    at = {s.stage: s.at for s in got.stages}
    assert at == {
        "clicked": NOW_MS + MAX_FUTURE_MS,
        "http": NOW_MS - MAX_PAST_MS,
        "received": NOW_MS + MAX_FUTURE_MS,
        "settled": NOW_MS,
    }
    assert got.stages[-1].duration_ms == MAX_PAST_MS + MAX_FUTURE_MS
    assert got.counts == {"clamped": 3, "recorded": 1}


async def test_a_click_takes_at_most_its_cap_and_each_stage_once(journal: Journal) -> None:
    cid = new_id()
    edge(journal, cid, TAB)
    first = await admission().admit(journal, TAB, [stage(cid, "clicked"), stage(cid, "settled")])
    for s in first.stages:  # journaled; read back by another process's route
        journal.put(Entry(correlation_id=cid, stage=s.stage, at=s.at, span_id=s.span_id))
    again = [stage(cid, "settled"), stage(cid, "clicked")]  # a second action span: no
    http = [stage(cid, "http", span=f"{i:016x}") for i in range(1, 31)]
    resent = [stage(cid, "http", span=f"{1:016x}")]  # an export sent twice: once
    got = await admission().admit(journal, TAB, [*again, *http, *resent])
    assert len(got.stages) == MAX_BROWSER_ENTRIES_PER_ID - 2
    assert got.counts == {
        "duplicate": 3,
        "recorded": MAX_BROWSER_ENTRIES_PER_ID - 2,
        "per_click_cap": 30 - (MAX_BROWSER_ENTRIES_PER_ID - 2),
    }


async def test_the_cap_holds_before_the_store_has_the_entries(journal: Journal) -> None:
    # Two exports close together: the first one's entries are not in the store yet.
    cid = new_id()
    edge(journal, cid, TAB)
    gate = admission()
    spans = [stage(cid, "http", span=f"{i:016x}") for i in range(1, 31)]
    first = await gate.admit(journal, TAB, spans[:10])
    second = await gate.admit(journal, TAB, [*spans[:10], *spans[10:]])
    assert len(first.stages) + len(second.stages) == MAX_BROWSER_ENTRIES_PER_ID
    assert second.counts["duplicate"] == 10


async def test_a_client_has_a_share_per_minute_whatever_the_clicks(journal: Journal) -> None:
    now = [0.0]
    gate = admission(per_minute=10, monotonic=lambda: now[0])
    clicks = [new_id() for _ in range(4)]
    for cid in clicks:
        edge(journal, cid, TAB)
    sent = [stage(cid, "http") for cid in clicks for _ in range(4)]
    got = await gate.admit(journal, TAB, sent)
    assert got.counts == {"recorded": 10, "client_budget": 6}
    other_cid = new_id()
    edge(journal, other_cid, OTHER)
    other = await gate.admit(journal, OTHER, [stage(other_cid, "settled")])
    assert other.counts == {"recorded": 1}  # another client's share is its own
    now[0] += 60.0
    got = await gate.admit(journal, TAB, [stage(cid, "received") for cid in clicks])
    assert got.counts == {"recorded": 4}


async def test_an_edge_entry_still_queued_in_this_process_is_found() -> None:
    store = LaggingStore()
    journal = Journal(store, linger=3600.0)  # nothing written until flushed
    cid = new_id()
    edge(journal, cid, TAB)
    await asyncio.sleep(0)  # the writer starts gathering its batch
    assert store.entries == {} and journal.queued == 1
    got = await admission().admit(journal, TAB, [stage(cid, "settled")])
    assert got.counts == {"recorded": 1}
    await journal.aclose()


async def test_a_store_that_fails_or_hangs_takes_nothing_and_raises_nothing() -> None:
    store = LaggingStore()
    journal = Journal(store)
    cid = new_id()
    edge(journal, cid, TAB)
    await journal.flush()
    store.failing = ConnectionError("redis is down")
    got = await admission().admit(journal, TAB, [stage(cid, "settled")])
    assert got.counts == {"journal_unavailable": 1}
    store.failing, store.hanging = None, True
    got = await admission(check_seconds=0.05).admit(journal, TAB, [stage(cid, "settled")])
    assert got.counts == {"journal_unavailable": 1}
    await journal.aclose()


async def test_a_request_naming_too_many_clicks_reads_only_the_first(journal: Journal) -> None:
    from clicktrace.ingest._admission import MAX_CLICKS_PER_REQUEST

    clicks = [new_id() for _ in range(MAX_CLICKS_PER_REQUEST + 2)]
    for cid in clicks:
        edge(journal, cid, TAB)
    got = await admission().admit(journal, TAB, [stage(cid, "settled") for cid in clicks])
    assert got.counts == {"recorded": MAX_CLICKS_PER_REQUEST, "too_many_clicks": 2}


def test_configuration_errors() -> None:
    with pytest.raises(ValueError, match="per_minute"):
        Admission(per_minute=0)
    with pytest.raises(ValueError, match="check_seconds"):
        Admission(check_seconds=0)
