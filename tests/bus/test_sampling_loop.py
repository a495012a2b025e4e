"""Sampling end to end: one decision per click, the browser's or the server's, honoured by
every hop (edge, step, producer, consumer in each trace mode, notify), on a real broker too;
and the journal has every click whatever was sampled."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from clicktrace import journal
from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.bus import Bus
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.ids import new_id
from clicktrace.journal import Entry
from clicktrace.notify._frames import Frame
from clicktrace.notify._notifier import Producer
from clicktrace.notify._replay import MemoryReplayBuffer
from clicktrace.sampling import ClickSampler
from clicktrace.step import step

from .conftest import MakeBus

pytestmark = pytest.mark.broker
CLICKS = 30
SERVER_SIDE = 6  # SERVER, step in the route, PRODUCER; CONSUMER, step in the handler, notify
CONSUMER_SIDE = 3


class Kept:
    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def put(self, entry: Entry) -> None:
        self.entries.append(entry)


@pytest.fixture
def ratio() -> float:
    return 1.0


@pytest.fixture
def provider(exporter: InMemorySpanExporter, ratio: float) -> TracerProvider:
    """The server's provider, sampling ``ratio`` of the clicks that come without a decision."""
    tp = TracerProvider(sampler=ClickSampler(ratio))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


@pytest.fixture
def kept() -> Iterator[Kept]:
    sink = Kept()
    previous = journal.use(sink)
    yield sink
    journal.use(previous)


async def loop(
    make_bus: MakeBus,
    topic: str,
    provider: TracerProvider,
    flags: list[str | None],
    mode: str,
    resample: bool = False,
) -> list[str]:
    """Send one command per entry of ``flags`` (the browser's trace-flags, or None for no
    traceparent) through edge → bus → handler → notify; returns the correlation ids."""
    bus: Bus = make_bus()
    frames: list[Frame] = []
    done = asyncio.Event()

    async def publish(client_id: str, frame: Frame) -> None:
        frames.append(frame)
        if len(frames) == len(flags):
            done.set()

    producer = Producer(MemoryReplayBuffer(), publish, tracer_provider=provider)
    client_id = new_id()

    async def command(request: Request) -> JSONResponse:
        async with step("validate", tracer_provider=provider):
            envelope = new_envelope("Renamed", {"id": 1})
        await bus.publish(topic, envelope)
        return JSONResponse({"accepted": True}, status_code=202)

    async def handle(envelope: Envelope) -> None:
        async with step("apply", tracer_provider=provider):
            pass
        await producer.notify(
            client_id, correlation_id=envelope.metadata.correlation_id, status="confirmed"
        )

    bus.subscribe(
        topic,
        handle,
        group="projection",
        trace_mode=mode,  # type: ignore[arg-type]
        resample=resample,
    )
    app = Starlette(
        routes=[Route("/cmd", command, methods=["POST"])],
        middleware=[Middleware(ClicktraceMiddleware, tracer_provider=provider)],
    )
    ids = []
    async with (
        bus,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        for flag in flags:
            cid = new_id()
            headers = {"x-correlation-id": cid}
            if flag is not None:
                headers["traceparent"] = f"00-{random.getrandbits(128):032x}-{'1' * 16}-{flag}"
            assert (await client.post("/cmd", headers=headers)).status_code == 202
            ids.append(cid)
        await asyncio.wait_for(done.wait(), 30)
    return ids


def by_click(exporter: InMemorySpanExporter) -> Counter[str]:
    """How many spans carry each correlation id."""
    spans: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    return Counter(str((s.attributes or {}).get("clicktrace.correlation_id")) for s in spans)


def stages(kept: Kept) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for entry in kept.entries:
        out.setdefault(entry.correlation_id, []).append(entry.stage)
    return {cid: sorted(s) for cid, s in out.items()}


def assert_journal_complete(kept: Kept, ids: list[str]) -> None:
    """Every click has the same stages, whether it was traced or not."""
    got = stages(kept)
    assert set(got) == set(ids)
    first = got[ids[0]]
    assert first.count("step") == 2
    assert {"accepted", "published", "delivered", "acked", "notified"} <= set(first)
    assert all(got[cid] == first for cid in ids)


@pytest.mark.parametrize("broker", ["memory", "redis"])
@pytest.mark.parametrize("mode", ["child", "link", "new"])
@pytest.mark.parametrize("ratio", [0.0, 0.1, 1.0])
async def test_the_browsers_decision_holds_on_every_hop_whatever_the_servers_ratio(
    make_bus: MakeBus,
    topic: str,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    kept: Kept,
    mode: str,
    ratio: float,
) -> None:
    # The browser samples at ``ratio`` too (its sampleRate), independently of the server.
    rng = random.Random(f"{mode}-{ratio}")
    flags: list[str | None] = ["03" if rng.random() < ratio else "02" for _ in range(CLICKS)]
    ids = await loop(make_bus, topic, provider, flags, mode)
    counts = by_click(exporter)
    for cid, flag in zip(ids, flags, strict=True):
        assert counts[cid] == (SERVER_SIDE if flag == "03" else 0), (cid, flag)
    assert_journal_complete(kept, ids)
    assert (kept.entries[0].sampled is True) == (flags[0] == "03")


@pytest.mark.parametrize("broker", ["memory", "redis"])
@pytest.mark.parametrize("mode", ["child", "link", "new"])
@pytest.mark.parametrize("ratio", [0.0, 0.1, 1.0])
async def test_without_a_browser_decision_the_servers_sampler_decides_once(
    make_bus: MakeBus,
    topic: str,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    kept: Kept,
    mode: str,
    ratio: float,
) -> None:
    ids = await loop(make_bus, topic, provider, [None] * CLICKS, mode)
    counts = by_click(exporter)
    bound = TraceIdRatioBased.get_bound_for_rate(ratio)
    # The decision is the one the ratio makes on the trace id the edge started.
    trace_of: dict[str, str] = {}
    for entry in kept.entries:  # the first entry of a click is the edge's (step "validate")
        if entry.trace_id:
            trace_of.setdefault(entry.correlation_id, entry.trace_id)
    for cid in ids:
        sampled = int(trace_of[cid], 16) & TraceIdRatioBased.TRACE_ID_LIMIT < bound
        assert counts[cid] == (SERVER_SIDE if sampled else 0), cid
    if ratio == 0.0:
        assert not exporter.get_finished_spans()
    if ratio == 1.0:
        assert all(counts[cid] == SERVER_SIDE for cid in ids)
    assert_journal_complete(kept, ids)


@pytest.mark.parametrize("broker", ["memory"])
@pytest.mark.parametrize("mode", ["link", "new"])
async def test_a_consumer_configured_to_resample_starts_its_own_decision(
    make_bus: MakeBus,
    topic: str,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    kept: Kept,
    mode: str,
) -> None:
    ids = await loop(make_bus, topic, provider, ["02"] * 3, mode, resample=True)
    counts = by_click(exporter)
    # The edge follows the browser (nothing); the consumer's new trace is sampled afresh
    # (ratio 1: everything from the consumer on).
    assert all(counts[cid] == CONSUMER_SIDE for cid in ids)
    assert_journal_complete(kept, ids)
