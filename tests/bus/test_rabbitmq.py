"""RabbitMQ interop with stock OpenTelemetry instrumentation (opentelemetry-instrumentation-
aio-pika), both directions: the AMQP headers carry the trace, so plain aio-pika services
join it, and clicktrace consumers continue theirs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from clicktrace import context as click_context
from clicktrace.bus import Bus, BusNotRunning
from clicktrace.envelope import Envelope, encode, new_envelope

from .conftest import URLS

MakeBus = Callable[..., Bus]
CLICK = click_context.ClickContext(correlation_id="01JABCDEFGHJKMNPQRSTVWXYZ0")


@pytest.fixture
def broker() -> str:
    return "rabbitmq"


@pytest.fixture
async def instrumented(provider: TracerProvider) -> AsyncIterator[None]:
    instrumentor = AioPikaInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield
    instrumentor.uninstrument()


@pytest.fixture
async def channel() -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(URLS["rabbitmq"])
    async with connection:
        yield await connection.channel()


async def test_a_plain_instrumented_consumer_continues_the_clicktrace_trace(
    instrumented: None,
    make_bus: MakeBus,
    channel: aio_pika.abc.AbstractChannel,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    topic: str,
) -> None:
    bus = make_bus()
    await bus.start()  # declares the exchange
    queue = await channel.declare_queue(f"{topic}:plain", exclusive=True)
    await queue.bind("clicktrace", routing_key=topic)
    got: asyncio.Queue[tuple[int, dict[str, Any], str | None]] = asyncio.Queue()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            trace_id = trace.get_current_span().get_span_context().trace_id
            await got.put((trace_id, dict(message.headers), message.message_id))

    await queue.consume(on_message)
    with provider.get_tracer("t").start_as_current_span("click") as root:
        with click_context.bound(CLICK):
            envelope = new_envelope("T", {})
        await bus.publish(topic, envelope)
    trace_id, headers, message_id = await asyncio.wait_for(got.get(), 20)

    assert trace_id == root.get_span_context().trace_id
    assert headers["x-correlation-id"] == CLICK.correlation_id
    assert str(headers["traceparent"]).split("-")[1] == f"{trace_id:032x}"
    assert message_id == envelope.metadata.message_id
    stock = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert stock and all(s.context.trace_id == trace_id for s in stock)


async def test_clicktrace_continues_a_plain_instrumented_producer_trace(
    instrumented: None,
    make_bus: MakeBus,
    channel: aio_pika.abc.AbstractChannel,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    topic: str,
) -> None:
    bus = make_bus()
    got: asyncio.Queue[str | None] = asyncio.Queue()

    async def handler(envelope: Envelope) -> None:
        ctx = click_context.current()
        await got.put(ctx.correlation_id if ctx else None)

    bus.subscribe(topic, handler, group="g")
    await bus.start()
    exchange = await channel.get_exchange("clicktrace")
    with click_context.bound(CLICK):
        body = encode(new_envelope("T", {}))  # made outside any span: no traceparent inside
    with provider.get_tracer("legacy").start_as_current_span("legacy request") as legacy:
        await exchange.publish(aio_pika.Message(body), routing_key=topic)
    assert await asyncio.wait_for(got.get(), 20) == CLICK.correlation_id
    await bus.close()

    spans = exporter.get_finished_spans()
    stock_send = [s for s in spans if s.kind == SpanKind.PRODUCER]
    process = [s for s in spans if s.name == f"process {topic}"]
    assert len(stock_send) == 1 and len(process) == 1
    assert process[0].context.trace_id == legacy.get_span_context().trace_id
    assert process[0].parent is not None
    assert process[0].parent.span_id == stock_send[0].context.span_id


async def test_a_topic_nobody_listens_to_raises_instead_of_dropping(
    make_bus: MakeBus, topic: str
) -> None:
    bus = make_bus()
    await bus.start()
    with pytest.raises(aio_pika.exceptions.DeliveryError):
        await bus.publish(f"{topic}.unbound", new_envelope("T", {}))


async def test_a_failed_start_leaves_nothing_connected(
    make_bus: MakeBus, channel: aio_pika.abc.AbstractChannel, topic: str
) -> None:
    # A queue already declared with other arguments: declaring the group's queue fails.
    await channel.declare_queue(f"{topic}:g", durable=True)
    bus = make_bus()

    async def handler(envelope: Envelope) -> None:
        pass

    bus.subscribe(topic, handler, group="g")
    with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
        await bus.start()
    with pytest.raises(BusNotRunning):
        await bus.publish(topic, new_envelope("T", {}))
