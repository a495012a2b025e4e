"""The bus times its hops for the metrics: accept→publish on ``published``, publish→consume on
the first ``delivered`` (from the header the producer stamps), through every broker; and
records nothing when nothing would keep it (no journal, no MeterProvider)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from clicktrace import journal
from clicktrace.bus import Backoff, MemoryBus, _base
from clicktrace.bus._tracing import since_published
from clicktrace.bus._types import PUBLISHED_AT_HEADER
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.journal import Entry
from clicktrace.journal._record import enabled

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


async def test_with_neither_a_journal_nor_a_meter_provider_the_bus_records_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(_base, "record", lambda stage, **kw: calls.append(stage))
    assert not enabled()
    await _fail_once_then_ack(MemoryBus())
    assert calls == []
    sink = Kept()
    previous = journal.use(sink)
    try:
        await _fail_once_then_ack(MemoryBus())
    finally:
        journal.use(previous)
    assert calls == ["published", "delivered", "retried", "delivered", "acked"]


async def test_the_entries_carry_the_ids_of_the_bus_spans(
    provider: TracerProvider, exporter: InMemorySpanExporter, kept: Kept
) -> None:
    await _fail_once_then_ack(MemoryBus(tracer_provider=provider))
    spans = exporter.get_finished_spans()
    (send,) = [s for s in spans if s.kind is SpanKind.PRODUCER]
    attempt_of = {
        (s.attributes or {})["messaging.clicktrace.attempt"]: s
        for s in spans
        if s.kind is SpanKind.CONSUMER
    }
    seen = []
    for entry in kept.entries:
        span = send if entry.stage == "published" else attempt_of[entry.attempt]
        assert entry.trace_id == f"{span.context.trace_id:032x}"
        assert entry.span_id == f"{span.context.span_id:016x}"
        assert entry.sampled is True
        seen.append(entry.stage)
    assert seen == ["published", "delivered", "retried", "delivered", "acked"]
    assert [e.attempt for e in kept.entries] == [None, 1, 1, 2, 2]


async def _fail_once_then_ack(bus: MemoryBus) -> None:
    attempts = 0

    async def handler(envelope: Envelope) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("once")

    bus.subscribe("hops", handler, group="g", backoff=Backoff(initial=0.0, maximum=0.0))
    async with bus:
        await bus.publish_durable("hops", new_envelope("T", {}))
    assert attempts == 2
