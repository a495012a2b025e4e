"""Which context a consumer continues: native headers first, the envelope as fallback,
untrusted values ignored; tracestate and baggage carried through."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
from opentelemetry import baggage
from opentelemetry.context import Context, attach, detach
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, Tracer, set_span_in_context

from clicktrace.bus import MemoryBus
from clicktrace.context import ClickContext, bound
from clicktrace.context import current as current_click
from clicktrace.envelope import Envelope, decode, encode, new_envelope
from clicktrace.ids import parse_id
from clicktrace.propagation import HEADER_KEYS, inject

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
