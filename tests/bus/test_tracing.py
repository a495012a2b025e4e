"""Which context a consumer continues: native headers first, the envelope as fallback,
untrusted values ignored; tracestate and baggage carried through."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
import pytest
from opentelemetry import baggage
from opentelemetry.context import Context, attach, detach
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Tracer,
    get_current_span,
    set_span_in_context,
)

from clicktrace.bus import MemoryBus
from clicktrace.bus._tracing import consumer_context
from clicktrace.bus._types import TraceMode
from clicktrace.context import ClickContext, bound
from clicktrace.context import current as current_click
from clicktrace.envelope import Envelope, Metadata, decode, encode, new_envelope
from clicktrace.ids import parse_id
from clicktrace.propagation import HEADER_KEYS, inject
from clicktrace.sampling._decision import decided

TRACE = "0af7651916cd43dd8448eb211c80319c"
ENVELOPE_TP = f"00-{TRACE}-b7ad6b7169203331-01"
HEADER_TP = "00-11111111111111111111111111111111-2222222222222222-01"
CORR = "01JD8X3Q7E8W5V4T2N9R6M0K1A"
CAUSE = "01JD8X3Q7E8W5V4T2N9R6M0K1B"
CLIENT = "01JD8X3Q7E8W5V4T2N9R6M0K1C"
OTHER = "01JD8X3Q7E8W5V4T2N9R6M0K1D"
DEADLINE = 4_000_000_000_000  # 2096: never passed while the test runs


def tracer_of(provider: TracerProvider) -> Tracer:
    return provider.get_tracer("test")


def extract_ctx(envelope: Envelope) -> Context:
    return envelope.metadata.extract().otel_context(Context()) or Context()


@contextmanager
def baggage_of(entries: dict[str, str]) -> Iterator[None]:
    ctx = None
    for name, value in entries.items():
        ctx = baggage.set_baggage(name, value, ctx)
    token = attach(ctx) if ctx is not None else None
    try:
        yield
    finally:
        if token is not None:
            detach(token)


async def _consume(
    provider: TracerProvider, envelope: Envelope, headers: dict[str, str]
) -> dict[str, object]:
    bus = MemoryBus(tracer_provider=provider)
    seen: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    async def handler(envelope: Envelope) -> None:
        await seen.put(dict(baggage.get_all()))

    bus.subscribe("t", handler, group="g")
    async with bus:
        await bus._send("t", encode(envelope), headers, envelope.metadata.message_id)
        return await asyncio.wait_for(seen.get(), 5)


def _with(envelope: Envelope, **fields: str) -> Envelope:
    return msgspec.structs.replace(
        envelope, metadata=msgspec.structs.replace(envelope.metadata, **fields)
    )


async def test_native_header_wins_over_the_envelope(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    envelope = _with(new_envelope("T", {}), traceparent=ENVELOPE_TP)
    await _consume(provider, envelope, {"traceparent": HEADER_TP})
    (span,) = exporter.get_finished_spans()
    assert span.parent is not None
    assert f"{span.context.trace_id:032x}" == "1" * 32
    assert f"{span.parent.span_id:016x}" == "2" * 16


async def test_a_malformed_header_falls_back_to_the_envelope_and_keeps_its_state(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    envelope = _with(
        new_envelope("T", {}),
        traceparent=ENVELOPE_TP,
        tracestate="vendor=abc",
        baggage="tenant=acme,bad member",
    )
    bag = await _consume(provider, envelope, {"traceparent": "00-zzz-bad-01"})
    (span,) = exporter.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == TRACE
    assert span.context.trace_state.to_header() == "vendor=abc"
    assert bag == {"tenant": "acme"}


async def test_nothing_valid_anywhere_starts_a_new_trace(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    envelope = _with(new_envelope("T", {}), traceparent="ff-" + "0" * 52)
    await _consume(provider, envelope, {"traceparent": "garbage"})
    (span,) = exporter.get_finished_spans()
    assert span.parent is None and span.context.is_valid


class _Capturing(MemoryBus):
    """The memory bus, keeping what each send puts on the wire."""

    def __init__(self, provider: TracerProvider) -> None:
        super().__init__(tracer_provider=provider)
        self.sent: list[tuple[Envelope, dict[str, str]]] = []

    async def _send(
        self, topic: str, body: bytes, headers: dict[str, str], message_id: str
    ) -> None:
        self.sent.append((decode(body), dict(headers)))
        await super()._send(topic, body, headers, message_id)


async def test_native_headers_are_what_inject_writes_for_the_producer_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    # Made inside one click, published by a relay while another click is current: the wire
    # carries the envelope's ids and context, never the publisher's.
    made = ClickContext(CORR, CAUSE, CLIENT, DEADLINE)
    with bound(made), tracer_of(provider).start_as_current_span("request"):
        envelope = new_envelope("T", {}, click=made)
    envelope = _with(envelope, tracestate="vendor=abc", baggage="tenant=acme")
    bus = _Capturing(provider)
    async with bus:
        with bound(ClickContext(OTHER)), baggage_of({"tenant": "other"}):
            await bus.publish("t", envelope)
    ((sent, headers),) = bus.sent
    (produce,) = [s for s in exporter.get_finished_spans() if s.name == "send t"]
    expected: dict[str, str] = {}
    inject(
        expected,
        keys=HEADER_KEYS,
        click=ClickContext(CORR, CAUSE, None, DEADLINE),
        otel=set_span_in_context(NonRecordingSpan(produce.context), extract_ctx(envelope)),
    )
    wire = {k: v for k, v in headers.items() if k in expected or k.startswith("tr")}
    assert wire == expected
    assert headers["x-correlation-id"] == CORR and headers["baggage"] == "tenant=acme"
    assert headers["x-clicktrace-deadline"] == str(DEADLINE)
    assert sent.metadata.traceparent == headers["traceparent"]
    assert sent.metadata.tracestate == "vendor=abc"
    assert produce.parent is not None
    assert produce.context.trace_id == envelope.metadata.extract().traceparent.trace_id  # type: ignore[union-attr]


async def test_the_handler_gets_the_envelope_ids_caused_by_the_message(
    provider: TracerProvider,
) -> None:
    seen: asyncio.Queue[ClickContext | None] = asyncio.Queue()

    async def handler(envelope: Envelope) -> None:
        await seen.put(current_click())

    bus = MemoryBus(tracer_provider=provider)
    bus.subscribe("t", handler, group="g")
    made = ClickContext(CORR, CAUSE, CLIENT, DEADLINE)
    envelope = new_envelope("T", {}, click=made)
    bad = _with(new_envelope("T", {}), correlation_id="not-a-ulid")
    async with bus:
        await bus.publish("t", envelope)
        await bus.publish("t", bad)
        first = await asyncio.wait_for(seen.get(), 5)
        second = await asyncio.wait_for(seen.get(), 5)
    assert first == ClickContext(CORR, envelope.metadata.message_id, CLIENT, DEADLINE)
    assert second is not None and second.causation_id == bad.metadata.message_id
    assert parse_id(second.correlation_id) == second.correlation_id != "not-a-ulid"


_META = msgspec.json.decode(
    b'{"message_id":"01JD8X3Q7E8W5V4T2N9R6M0K1E","correlation_id":"'
    + CORR.encode()
    + b'","type":"T","occurred_at":"2026-01-01T00:00:00Z"}',
    type=Metadata,
)


@pytest.mark.parametrize("mode", ["child", "link", "new"])
@pytest.mark.parametrize(
    ("meta", "headers"),
    [
        ({"traceparent": ENVELOPE_TP}, {"traceparent": ENVELOPE_TP}),  # as the producer writes
        (
            {"traceparent": ENVELOPE_TP, "tracestate": "congo=t61rcWkgMzE"},
            {"traceparent": ENVELOPE_TP, "tracestate": "congo=t61rcWkgMzE"},
        ),
        ({"traceparent": ENVELOPE_TP, "tracestate": "a=1"}, {"traceparent": ENVELOPE_TP}),
        ({"traceparent": ENVELOPE_TP}, {"traceparent": HEADER_TP}),
        ({"traceparent": ENVELOPE_TP}, {"traceparent": ENVELOPE_TP, "baggage": "k=v"}),
        ({"traceparent": ENVELOPE_TP, "baggage": "k=v"}, {"traceparent": ENVELOPE_TP}),
        ({"traceparent": ENVELOPE_TP[:-2] + "00"}, {"traceparent": ENVELOPE_TP[:-2] + "00"}),
        ({"traceparent": "junk"}, {"traceparent": "junk"}),
        ({}, {"traceparent": HEADER_TP}),
        ({"traceparent": ENVELOPE_TP}, {}),
        ({}, {}),
    ],
)
def test_the_consumer_context_read_from_the_envelope_is_what_the_headers_give(
    meta: dict[str, str], headers: dict[str, str], mode: TraceMode
) -> None:
    # The shortcut (headers that say what the envelope says) against the plain parse.
    metadata = msgspec.structs.replace(_META, **meta)
    carried = metadata.extract()
    for resample in (False, True):
        fast = consumer_context(carried, headers, mode, resample, metadata)
        plain = consumer_context(carried, headers, mode, resample)
        assert _seen(fast) == _seen(plain)


def _seen(got: tuple[Context, list[Link]]) -> tuple[object, ...]:
    ctx, links = got
    span = get_current_span(ctx).get_span_context()
    return (
        (span.trace_id, span.span_id, span.trace_flags, span.trace_state.to_header()),
        dict(baggage.get_all(ctx)),
        decided(ctx),
        [(link.context.trace_id, link.context.span_id, link.context.trace_flags) for link in links],
    )
