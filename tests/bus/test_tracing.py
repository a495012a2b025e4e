"""Which context a consumer continues: native headers first, the envelope as fallback,
untrusted values ignored; tracestate and baggage carried through."""

from __future__ import annotations

import asyncio

import msgspec
from opentelemetry import baggage
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clicktrace.bus import MemoryBus
from clicktrace.envelope import Envelope, encode, new_envelope

TRACE = "0af7651916cd43dd8448eb211c80319c"
ENVELOPE_TP = f"00-{TRACE}-b7ad6b7169203331-01"
HEADER_TP = "00-11111111111111111111111111111111-2222222222222222-01"


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
