from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from clicktrace.ids import new_id
from clicktrace.notify.frames import Frame
from clicktrace.notify.producer import Producer
from clicktrace.notify.replay import MemoryReplayBuffer
from clicktrace.propagation import parse_traceparent


class Published:
    def __init__(self) -> None:
        self.frames: list[tuple[str, Frame]] = []

    async def __call__(self, client_id: str, frame: Frame) -> None:
        self.frames.append((client_id, frame))


async def test_notify_opens_a_producer_span_whose_context_travels_in_the_frame(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    published = Published()
    producer = Producer(MemoryReplayBuffer(), published, tracer_provider=provider)
    cid, corr = new_id(), new_id()
    with provider.get_tracer("test").start_as_current_span("projection") as parent:
        seq = await producer.notify(
            cid.lower(),
            correlation_id=corr,
            status="confirmed",
            type="ProductRenamed",
            data={"id": 1},
        )
    assert seq == 1
    ((to, frame),) = published.frames
    assert to == cid
    span = next(s for s in exporter.get_finished_spans() if s.kind == SpanKind.PRODUCER)
    assert span.name == "send clicktrace"
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    tp = parse_traceparent(frame["traceparent"])
    assert tp is not None
    assert (tp.trace_id, tp.span_id) == (span.context.trace_id, span.context.span_id)
    assert span.attributes is not None
    assert span.attributes["clicktrace.correlation_id"] == corr
    assert span.attributes["clicktrace.seq"] == 1
    assert span.attributes["messaging.message.id"] == f"{cid}:1"
    assert span.attributes["clicktrace.type"] == "ProductRenamed"


async def test_without_a_parent_a_new_trace_starts(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    published = Published()
    producer = Producer(MemoryReplayBuffer(), published, tracer_provider=provider)
    await producer.notify(new_id(), correlation_id=new_id(), status="progress")
    (span,) = exporter.get_finished_spans()
    assert span.parent is None
    assert published.frames[0][1]["traceparent"].split("-")[1] == f"{span.context.trace_id:032x}"


async def test_mistakes_are_loud_and_consume_no_seq() -> None:
    buffer = MemoryReplayBuffer()
    producer = Producer(buffer, Published())
    cid = new_id()
    with pytest.raises(ValueError):
        await producer.notify("not-a-ulid", correlation_id=new_id(), status="confirmed")
    with pytest.raises(TypeError):
        await producer.notify(cid, correlation_id=new_id(), status="confirmed", data={object()})
    with pytest.raises(ValueError):
        await producer.notify(cid, correlation_id=new_id(), status="done")
    assert await buffer.current(cid) == 0


async def test_a_failed_publish_marks_the_span_and_raises(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async def down(client_id: str, frame: Frame) -> None:
        raise ConnectionError("bus down")

    producer = Producer(MemoryReplayBuffer(), down, tracer_provider=provider)
    with pytest.raises(ConnectionError):
        await producer.notify(new_id(), correlation_id=new_id(), status="progress")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.events[0].name == "exception"
