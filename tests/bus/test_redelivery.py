"""A consumer process SIGKILLed in the middle of a handler: the broker delivers the message
again to another consumer of the group, and the attempts count on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from clicktrace import context as click_context
from clicktrace.bus import Bus
from clicktrace.envelope import Envelope, new_envelope

from .conftest import URLS, expect_line, kill, spawn

MakeBus = Callable[..., Bus]
CLICK = click_context.ClickContext(correlation_id="01JABCDEFGHJKMNPQRSTVWXYZ0")


@pytest.mark.parametrize("broker", ["redis", "rabbitmq", "nats"])
async def test_killed_consumer_message_is_redelivered(
    broker: str, make_bus: MakeBus, exporter: InMemorySpanExporter, topic: str
) -> None:
    publisher, consumer = make_bus(), make_bus()
    got: asyncio.Queue[tuple[Envelope, str | None]] = asyncio.Queue()

    async def handler(envelope: Envelope) -> None:
        ctx = click_context.current()
        await got.put((envelope, ctx.correlation_id if ctx else None))

    consumer.subscribe(topic, handler, group="g")
    await publisher.start()
    worker = await spawn("hang", URLS[broker], topic, "g")  # declares the group, consumes
    try:
        with click_context.bound(CLICK):
            envelope = new_envelope("T", {"n": 1})
        await publisher.publish(topic, envelope)
        started = await expect_line(worker, "started")
    finally:
        kill(worker)
        await worker.wait()
    assert started.split()[1:] == [envelope.metadata.message_id, CLICK.correlation_id]
    await consumer.start()
    redelivered, correlation = await asyncio.wait_for(got.get(), 30)
    assert redelivered.metadata.message_id == envelope.metadata.message_id
    assert correlation == CLICK.correlation_id
    await consumer.close()  # the span ends after the handler returns
    (process,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert process.attributes is not None
    assert process.attributes["messaging.clicktrace.attempt"] == 2
