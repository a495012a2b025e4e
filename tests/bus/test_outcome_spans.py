"""The consumer span that dead-letters a message says so: the outcome, ERROR, a short code."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from clicktrace.bus import Backoff
from clicktrace.bus._base import deliver
from clicktrace.bus._types import Received, Subscription
from clicktrace.context import ClickContext
from clicktrace.envelope import Envelope, encode, new_envelope
from clicktrace.ids import new_id


class Once(Received):
    __slots__ = ()

    def __init__(self, body: bytes, headers: Mapping[str, str], count: int = 1) -> None:
        super().__init__(body, headers, count)

    async def ack(self) -> None:
        pass


async def nowhere(sub: Subscription, body: bytes, headers: dict[str, str]) -> None:
    pass


async def failing(envelope: Envelope) -> None:
    raise KeyError("product 7")


async def fine(envelope: Envelope) -> None:
    pass


@pytest.mark.parametrize(
    ("handler", "count", "deadline", "code"),
    [
        (failing, 1, None, "KeyError"),
        (fine, 9, None, "delivery_limit"),
        (fine, 1, 1, "deadline_exceeded"),
    ],
)
async def test_the_span_that_gives_up_records_the_outcome_and_code(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    handler: object,
    count: int,
    deadline: int | None,
    code: str,
) -> None:
    cid = new_id()
    envelope = new_envelope("T", {}, click=ClickContext(cid, deadline_ms=deadline))
    sub = Subscription(
        "t",
        "g",
        handler,  # type: ignore[arg-type]
        max_attempts=1,
        backoff=Backoff(initial=0.0, maximum=0.0),
    )
    await deliver(
        provider.get_tracer("t"), "memory", sub, Once(encode(envelope), {}, count), nowhere
    )
    (span,) = exporter.get_finished_spans()
    assert span.kind is SpanKind.CONSUMER and span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["clicktrace.correlation_id"] == cid
    assert span.attributes["clicktrace.outcome"] == "dead_lettered"
    assert span.attributes["error.type"] == code


async def test_an_acked_message_decides_nothing(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    sub = Subscription("t", "g", fine)
    await deliver(
        provider.get_tracer("t"), "memory", sub, Once(encode(new_envelope("T", {})), {}), nowhere
    )
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None and "clicktrace.outcome" not in span.attributes
    assert span.status.status_code is StatusCode.UNSET
