"""The notify PRODUCER span is the server span that knows the outcome: it records it."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from clicktrace.ids import new_id
from clicktrace.notify.frames import Frame
from clicktrace.notify.producer import Producer
from clicktrace.notify.replay import MemoryReplayBuffer


async def drop(client_id: str, frame: Frame) -> None:
    pass


@pytest.mark.parametrize(
    ("status", "error", "outcome", "code", "state"),
    [
        ("confirmed", None, "confirmed", None, StatusCode.UNSET),
        (
            "rejected",
            {"code": "name_taken", "message": "taken"},
            "rejected",
            "name_taken",
            StatusCode.ERROR,
        ),
        ("progress", None, None, None, StatusCode.UNSET),
    ],
)
async def test_the_outcome_and_the_rejection_code_are_on_the_span(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    status: str,
    error: dict[str, str] | None,
    outcome: str | None,
    code: str | None,
    state: StatusCode,
) -> None:
    producer = Producer(MemoryReplayBuffer(), drop, tracer_provider=provider)
    cid = new_id()
    await producer.notify(new_id(), correlation_id=cid, status=status, error=error)
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["clicktrace.correlation_id"] == cid
    assert attributes.get("clicktrace.outcome") == outcome
    assert attributes.get("error.type") == code
    assert span.status.status_code is state
