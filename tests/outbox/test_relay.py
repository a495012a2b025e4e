"""The reconciler: a row is done when the consumers claimed its message, not when the bus
took it; what nobody claimed in time is published again (same message id, so the claims
absorb a duplicate), a bounded number of times, and the journal says so.

Unit tests on the memory bus with a SQLite outbox and SQLite claims in the same file; the
"broker" drops chosen messages after accepting them. Time is moved by back-dating rows, not
by sleeping, except in the one background run, which waits on a condition.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from clicktrace import journal
from clicktrace.bus import MemoryBus
from clicktrace.claims import MemoryClaims, SqliteClaims
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.journal import Entry
from clicktrace.outbox import ClaimsConfirmation, OutboxRelay, SqliteOutbox
from clicktrace.outbox import _relay as relay_module

WAIT = 30.0  # a guard against hangs, not a timing assertion
TOPIC = "products"


class _LossyBus(MemoryBus):
    """Accepts every publish; loses the messages whose payload is in ``lose`` (each time it
    is published while there) before any consumer sees them, as a broker that restarted
    without its data would."""

    def __init__(self) -> None:
        super().__init__()
        self.lose: set[Any] = set()
        self.published: Counter[str] = Counter()
        self.order: list[Any] = []

    async def _send(
        self, topic: str, body: bytes, headers: dict[str, str], message_id: str
    ) -> None:
        self.published[message_id] += 1
        self.order.append(self._payload(body))
        if self._payload(body) in self.lose:
            return  # taken, then forgotten: publish_durable sees no group waiting
        await super()._send(topic, body, headers, message_id)

    @staticmethod
    def _payload(body: bytes) -> Any:
        from clicktrace.envelope import decode

        return decode(body).payload


@dataclass
class _Sink:
    entries: list[Entry] = field(default_factory=list)

    def put(self, entry: Entry) -> None:
        self.entries.append(entry)


@pytest.fixture
def sink() -> Iterator[_Sink]:
    ours = _Sink()
    previous = journal.use(ours)
    yield ours
    journal.use(previous)


@dataclass
class _World:
    db: str
    outbox: SqliteOutbox
    claims: SqliteClaims
    bus: _LossyBus
    applied: Counter[Any]
    conn: aiosqlite.Connection
    relays: list[OutboxRelay] = field(default_factory=list)

    def relay(self, confirm: ClaimsConfirmation | None, **options: Any) -> OutboxRelay:
        relay = OutboxRelay(
            self.outbox,
            connect=lambda: aiosqlite.connect(self.db),
            bus=self.bus,
            confirm=confirm,
            **options,
        )
        self.relays.append(relay)  # closed by the fixture, even when a test fails
        return relay

    async def add(self, *payloads: Any) -> list[Envelope]:
        envelopes = [new_envelope("Renamed", p) for p in payloads]
        for envelope in envelopes:
            await self.outbox.add(self.conn, TOPIC, envelope)
        await self.conn.commit()
        return envelopes

    async def age(self, seconds: float) -> None:
        """Move every publication ``seconds`` into the past (the grace runs out)."""
        await self.conn.execute(
            f"UPDATE {self.outbox.table} SET sent_at = sent_at - ? WHERE sent_at IS NOT NULL",
            (seconds,),
        )
        await self.conn.commit()

    async def column(self, name: str) -> list[Any]:
        async with self.conn.execute(f"SELECT {name} FROM {self.outbox.table} ORDER BY id") as rows:
            return [row[0] for row in await rows.fetchall()]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[_World]:
    db = str(tmp_path / "app.db")
    outbox, claims = SqliteOutbox(), SqliteClaims()
    applied: Counter[Any] = Counter()
    bus = _LossyBus()
    async with aiosqlite.connect(db) as conn:
        await outbox.create_tables(conn)
        await claims.create_tables(conn)
        await conn.commit()

        async with aiosqlite.connect(db) as projection:

            async def project(envelope: Envelope) -> None:
                # The claim and the "write" commit together, as a projection's would.
                if await claims.claim(projection, "projection", envelope.metadata.message_id):
                    applied[envelope.payload] += 1
                await projection.commit()

            bus.subscribe(TOPIC, project, group="projection")
            await bus.start()
            made = _World(db, outbox, claims, bus, applied, conn)
            try:
                yield made
            finally:
                for relay in made.relays:
                    await relay.close()
                await bus.close()


def _confirm(claims: Any, **options: Any) -> ClaimsConfirmation:
    options.setdefault("grace_seconds", 10.0)
    return ClaimsConfirmation(claims, groups=["projection"], **options)


async def test_a_message_the_broker_lost_is_published_again_and_applied_once(
    world: _World, sink: _Sink
) -> None:
    envelopes = await world.add(1, 2, 3, 4, 5)
    world.bus.lose = {2, 4}
    relay = world.relay(_confirm(world.claims))
    assert await relay.drain() == 5
    assert world.applied == Counter({1: 1, 3: 1, 5: 1})
    assert await world.column("done_at") == [None] * 5  # sent, but nobody claimed them yet

    first = await relay.reconcile_once()  # the claimed are done; the others within the grace
    assert (first.checked, first.confirmed, first.republished) == (5, 3, 0)

    await world.age(11)
    world.bus.lose = set()  # the broker is back (with none of its old data)
    result = await relay.reconcile_once()
    assert (result.checked, result.confirmed, result.republished, result.gave_up) == (2, 0, 2, 0)
    assert world.applied == Counter({1: 1, 2: 1, 3: 1, 4: 1, 5: 1})
    ids = [e.metadata.message_id for e in envelopes]
    assert [world.bus.published[i] for i in ids] == [1, 2, 1, 2, 1]  # same message ids again
    assert await world.column("republished") == [0, 1, 0, 1, 0]

    await world.age(100)
    done = await relay.reconcile_once()
    assert (done.checked, done.confirmed, done.republished) == (2, 2, 0)
    assert None not in await world.column("done_at")
    await relay.close()

    again = [e for e in sink.entries if e.stage == "relayed" and e.outcome == "republished"]
    assert sorted(e.correlation_id for e in again) == sorted(
        envelopes[i].metadata.correlation_id for i in (1, 3)
    )
    assert {e.attempt for e in again} == {2}
    assert all(e.detail == "products: published again, not claimed by projection" for e in again)


async def test_a_row_no_later_row_was_claimed_for_waits_a_backlog_is_not_a_loss(
    world: _World,
) -> None:
    # A consumer that is behind leaves the newest rows unclaimed past any grace: publishing
    # them again would only lengthen the backlog they wait in, and giving up on them would
    # call "lost" commands that are merely late. Only a row skipped while later ones were
    # claimed is published again.
    world.bus.lose = {"late-1", "late-2"}  # stands for "still in the backlog"
    relay = world.relay(_confirm(world.claims, max_republish=1))
    await world.add("applied", "late-1", "late-2")
    await relay.drain()
    for _ in range(3):
        await world.age(1000)
        result = await relay.reconcile_once()
        assert (result.republished, result.gave_up) == (0, 0)
    assert await world.column("republished") == [0, 0, 0]
    assert (await relay.stats()).awaiting_claims == 2  # health sees them wait
    world.bus.lose = set()
    await world.add("after")  # the consumer gets past them: now they were skipped
    await relay.drain()
    assert (await relay.reconcile_once()).republished == 2  # "after" claimed: the frontier
    assert world.applied == Counter({"applied": 1, "late-1": 1, "late-2": 1, "after": 1})
    await relay.close()


async def test_a_duplicate_of_a_message_that_did_arrive_is_absorbed_by_the_claim(
    world: _World,
) -> None:
    # Claimed rows are never re-published; but a check that comes before the claim (a slow
    # consumer) does re-publish, and the consumer's claim then skips the second copy.
    claims = world.claims
    relay = world.relay(_confirm(claims))
    envelopes = await world.add("a", "z")
    await relay.drain()
    await world.conn.execute(  # as if "a" were not yet claimed ("z", after it, is)
        f"DELETE FROM {claims.table} WHERE key = ?", (envelopes[0].metadata.message_id,)
    )
    await world.conn.commit()
    await world.age(11)
    assert (await relay.reconcile_once()).republished == 1
    assert world.applied == Counter({"a": 2, "z": 1})  # the claim was gone, so it ran again...
    await world.age(100)
    assert (await relay.reconcile_once()).confirmed == 1  # ...and now it is claimed

    # With the claim in place, the same re-publication changes nothing.
    await world.add("b")
    await relay.drain()
    await world.conn.execute(f"UPDATE {world.outbox.table} SET done_at = NULL")
    await world.conn.commit()
    await world.age(11)
    bus_copy = dict(world.bus.published)
    result = await relay.reconcile_once()
    assert (result.confirmed, result.republished) == (3, 0)
    assert dict(world.bus.published) == bus_copy
    await relay.close()


async def test_republication_backs_off_and_gives_up_after_max_republish(
    world: _World, sink: _Sink, caplog: pytest.LogCaptureFixture
) -> None:
    world.bus.lose = {"never"}  # lost every time: e.g. a consumer that dead-letters it
    relay = world.relay(_confirm(world.claims, max_republish=2))
    await world.add("never", "later")  # "later" is claimed: "never" was skipped
    await relay.drain()
    await world.age(11)
    assert (await relay.reconcile_once()).republished == 1
    await world.age(11)  # 11 s since the re-publication, the next one waits for 20
    assert (await relay.reconcile_once()).republished == 0
    await world.age(10)
    assert (await relay.reconcile_once()).republished == 1
    await world.age(39)  # then 40
    assert (await relay.reconcile_once()).republished == 0
    await world.age(2)
    with caplog.at_level(logging.WARNING, "clicktrace.outbox"):
        result = await relay.reconcile_once()
    assert (result.republished, result.gave_up) == (0, 1)
    assert "never claimed by projection after 2 re-publications" in caplog.text
    assert await world.column("gave_up") == [1, 0]
    stats = await relay.stats()
    assert (stats.gave_up, stats.awaiting_claims, stats.unsent) == (1, 0, 0)
    await world.age(1000)
    assert (await relay.reconcile_once()).checked == 0  # given up: never checked again
    await relay.close()
    attempts = [e.attempt for e in sink.entries if e.outcome == "republished"]
    assert attempts == [2, 3]
    assert world.applied == Counter({"later": 1})


async def test_each_background_check_is_bounded_and_the_next_goes_on_from_there(
    world: _World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A consumer down for long leaves every row waiting: a check must not read them all,
    # and must not read the same first ones forever either.
    monkeypatch.setattr(relay_module, "RECONCILE_BATCHES", 1)
    world.bus.lose = {0, 1, 2, 3, 4, 5}
    relay = world.relay(_confirm(world.claims), batch=2)
    await world.add(*range(6), "claimed")
    await relay.drain()
    await world.conn.execute(  # rows 0-3 were re-published once already: not due again yet
        f"UPDATE {world.outbox.table} SET republished = 1 WHERE id <= 4"
    )
    await world.conn.commit()
    await world.age(11)
    # Each check reads one batch of unclaimed rows and stops; the next goes on from there and
    # reaches rows 4 and 5 (below the frontier, the claimed row: skipped, so due).
    for _ in range(3):
        relay._next_reconcile = 0.0  # due now (the background loop's clock, not a sleep)
        await relay._maintain()
    assert await world.column("republished") == [1, 1, 1, 1, 1, 1, 0]
    await relay.close()


async def test_a_check_marks_every_claimed_row_however_many_batches_they_take(
    world: _World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bound is for rows nobody claims. A relay that marked only RECONCILE_BATCHES batches
    # of claimed rows a check fell behind any stream of commands faster than that (a 100,000
    # command fill: 77,055 rows left waiting), and its outbox was never pruned.
    monkeypatch.setattr(relay_module, "RECONCILE_BATCHES", 1)
    relay = world.relay(_confirm(world.claims), batch=2)
    await world.add(*range(7))
    await relay.drain()
    relay._next_reconcile = 0.0  # due now (the background loop's clock, not a sleep)
    await relay._maintain()
    assert None not in await world.column("done_at")
    await relay.close()


async def test_rows_claimed_behind_the_cursor_are_marked_at_the_next_check(
    world: _World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under a steady stream the cursor walks ahead through rows the consumers have not reached;
    # what they claim meanwhile lies behind it and must not wait for the cursor to wrap around
    # (a 100,000-command fill left 25,000 claimed rows unmarked that way).
    monkeypatch.setattr(relay_module, "RECONCILE_BATCHES", 1)
    world.bus.lose = set(range(6))  # in the consumers' backlog, for now
    relay = world.relay(_confirm(world.claims), batch=2)
    envelopes = await world.add(*range(6))
    await relay.drain()
    relay._next_reconcile = 0.0  # due now (the background loop's clock, not a sleep)
    await relay._maintain()
    assert relay._reconcile_after == 4  # the cursor went past rows 1 to 4
    for envelope in envelopes[:2]:  # the consumers reach the first two
        await world.claims.claim(world.conn, "projection", envelope.metadata.message_id)
    await world.conn.commit()
    relay._next_reconcile = 0.0
    await relay._maintain()
    assert [d is not None for d in await world.column("done_at")] == [True, True] + [False] * 4
    await relay.close()


async def test_a_burst_does_not_hold_the_reconciler_back(world: _World) -> None:
    world.bus.lose = {"lost"}
    relay = world.relay(_confirm(world.claims, check_interval=3600), batch=1, poll_interval=3600)
    await world.add("lost", "seen")  # "seen" is claimed: "lost" was skipped
    await relay.drain()
    await world.age(11)
    world.bus.lose = set()
    await world.add(*range(30))  # every batch comes back full for a while
    await relay.start()
    deadline = asyncio.get_running_loop().time() + WAIT
    while len(world.applied) < 32:
        assert asyncio.get_running_loop().time() < deadline, world.applied
        await asyncio.sleep(0.02)
    await relay.close()
    # The lost one went out again within the burst, not after it.
    assert world.bus.order.index("lost", 1) < world.bus.order.index(29)


async def test_without_confirmation_the_relay_trusts_the_broker(world: _World) -> None:
    world.bus.lose = {"lost"}
    relay = world.relay(None)
    await world.add("lost")
    await relay.drain()
    assert await world.column("done_at") != [None]  # done once the bus took it
    await world.age(1000)
    assert await relay.reconcile_once() == (None, 0, 0, 0, 0, 0)
    assert world.applied == Counter()  # the broker's loss is the command's loss
    await relay.close()


async def test_a_row_is_done_only_when_every_group_claimed_it(world: _World) -> None:
    relay = world.relay(
        ClaimsConfirmation(world.claims, groups=["projection", "mailer"], grace_seconds=10)
    )
    envelopes = await world.add("x", "y")
    await relay.drain()
    await world.claims.claim(world.conn, "mailer", envelopes[1].metadata.message_id)
    await world.conn.commit()
    await world.age(11)
    assert (await relay.reconcile_once()).republished == 1  # the mailer skipped "x"
    await world.claims.claim(world.conn, "mailer", envelopes[0].metadata.message_id)
    await world.conn.commit()
    await world.age(100)
    assert (await relay.reconcile_once()).confirmed == 1
    assert world.applied == Counter({"x": 1, "y": 1})
    await relay.close()


async def test_in_the_background_the_relay_recovers_what_the_broker_lost(world: _World) -> None:
    relay = world.relay(
        _confirm(world.claims, grace_seconds=0.2, check_interval=0.05), poll_interval=0.05
    )
    world.bus.lose = {0, 7, 13}
    await world.add(*range(20))
    await relay.start()
    relay.wake()
    # Lost once: the re-publication goes through.
    deadline = asyncio.get_running_loop().time() + WAIT
    while len(world.applied) < 17:
        assert asyncio.get_running_loop().time() < deadline, world.applied
        await asyncio.sleep(0.02)
    world.bus.lose = set()
    while len(world.applied) < 20 or None in await world.column("done_at"):
        assert asyncio.get_running_loop().time() < deadline, world.applied
        await asyncio.sleep(0.02)
    await relay.close()
    assert world.applied == Counter(dict.fromkeys(range(20), 1))


async def test_memory_and_redis_style_claims_answer_in_one_call() -> None:
    dedupe = MemoryClaims()
    await dedupe.remember("projection", "m1")
    assert await dedupe.claimed(None, "projection", ["m1", "m2"]) == {"m1"}
    confirm = ClaimsConfirmation(dedupe, groups=["projection"])
    assert await confirm.claimed(None, ["m1", "m2"]) == {"m1"}
    assert confirm.check_interval == pytest.approx(10.0)


async def test_sqlite_claims_are_read_in_chunks_under_the_parameter_limit(tmp_path: Path) -> None:
    claims = SqliteClaims()
    async with aiosqlite.connect(str(tmp_path / "c.db")) as conn:
        await claims.create_tables(conn)
        ids = [f"m{i}" for i in range(1500)]
        for message_id in ids[::2]:
            await claims.claim(conn, "projection", message_id)
        await conn.commit()
        assert await claims.claimed(conn, "projection", ids) == set(ids[::2])
        assert await claims.claimed(conn, "other", ids) == set()


@pytest.mark.parametrize(
    "options",
    [
        {"groups": []},
        {"groups": "projection"},
        {"groups": ["projection"], "grace_seconds": 0},
        {"groups": ["projection"], "max_republish": -1},
        {"groups": ["projection"], "max_republish": True},
        {"groups": ["projection"], "check_interval": 0},
    ],
)
def test_bad_confirmation_settings_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ClaimsConfirmation(MemoryClaims(), **options)


def test_claims_without_a_batch_query_are_refused() -> None:
    with pytest.raises(TypeError):
        ClaimsConfirmation(object(), groups=["projection"])  # type: ignore[arg-type]


async def test_rows_left_waiting_by_a_confirming_relay_are_done_under_one_that_is_not(
    world: _World,
) -> None:
    # Confirmation switched off: rows that waited for claims would otherwise wait (and be
    # kept) forever.
    await world.add("a", "b")
    await world.relay(_confirm(world.claims)).drain()
    assert await world.column("done_at") == [None, None]
    relay = world.relay(None)
    await relay._maintain()  # what the background loop runs once the relay is up
    assert None not in await world.column("done_at")
    assert await world.column("republished") == [0, 0]
