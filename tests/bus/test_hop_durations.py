"""The bus times its hops for the metrics: accept→publish on ``published``, publish→consume on
the first ``delivered`` (from the header the producer stamps), through every broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from clicktrace import journal
from clicktrace.bus._tracing import since_published
from clicktrace.bus._types import PUBLISHED_AT_HEADER
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.journal import Entry

from .conftest import MakeBus


class Kept:
    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def put(self, entry: Entry) -> None:
        self.entries.append(entry)


@pytest.fixture
def kept() -> Iterator[Kept]:
    sink = Kept()
    previous = journal.use(sink)
    yield sink
    journal.use(previous)


@pytest.mark.broker
@pytest.mark.parametrize("broker", ["memory", "redis", "rabbitmq", "nats"])
async def test_published_and_delivered_carry_their_hop_durations(
    make_bus: MakeBus,
    topic: str,
    kept: Kept,
) -> None:
    bus = make_bus()
    got = asyncio.Event()

    async def handler(envelope: Envelope) -> None:
        got.set()

    bus.subscribe(topic, handler, group="g")
    async with bus:
        await bus.publish(topic, new_envelope("T", {}))
        await asyncio.wait_for(got.wait(), 10)
    by_stage = {e.stage: e for e in kept.entries}
    published, delivered = by_stage["published"], by_stage["delivered"]
    assert published.duration_ms is not None and published.duration_ms >= 0
    assert delivered.duration_ms is not None and delivered.duration_ms >= 0
    assert delivered.attempt == 1


@pytest.mark.parametrize("raw", [None, "", "soon", "-5", "1.5", "٣٣", "9" * 17, b"\xff", 12])
def test_a_missing_or_malformed_stamp_gives_no_duration(raw: object) -> None:
    assert since_published({} if raw is None else {PUBLISHED_AT_HEADER: raw}) is None


def test_a_stamp_from_a_clock_ahead_gives_zero_not_a_negative_duration() -> None:
    ahead = str(int(time.time() * 1000) + 60_000)
    assert since_published({PUBLISHED_AT_HEADER: ahead}) == 0.0
    behind = str(int(time.time() * 1000) - 1_000).encode()
    took = since_published({PUBLISHED_AT_HEADER: behind})
    assert took is not None and took >= 1_000
