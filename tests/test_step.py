"""clicktrace.step: a span, events, log lines and a journal entry per step of a handler."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from clicktrace import journal
from clicktrace.bus import Backoff, MemoryBus
from clicktrace.context import ClickContext, bound
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.ids import new_id
from clicktrace.journal import Entry
from clicktrace.journal._record import enabled
from clicktrace.logs import JsonFormatter, add_clicktrace
from clicktrace.step import step


class Kept:
    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def put(self, entry: Entry) -> None:
        self.entries.append(entry)


@pytest.fixture
def kept() -> Any:
    sink = Kept()
    previous = journal.use(sink)
    yield sink
    journal.use(previous)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines() -> Any:
    handler = Lines()
    logger = logging.getLogger("clicktrace.step")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


async def test_a_step_is_an_internal_span_with_its_events_entry_and_log_lines(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    kept: Kept,
    lines: list[dict[str, Any]],
) -> None:
    cid = new_id()
    with bound(ClickContext(cid)):
        async with step("reserve stock", tracer_provider=provider) as span:
            assert span.is_recording()
    (finished,) = exporter.get_finished_spans()
    assert finished.name == "reserve stock" and finished.kind is SpanKind.INTERNAL
    assert finished.attributes == {
        "step.name": "reserve stock",
        "step.attempt": 1,
        "clicktrace.correlation_id": cid,
    }
    assert [e.name for e in finished.events] == ["StepStarted", "StepCompleted"]
    assert finished.status.status_code is StatusCode.UNSET
    (entry,) = kept.entries
    assert (entry.stage, entry.detail, entry.outcome, entry.attempt) == (
        "step",
        "reserve stock",
        "ok",
        1,
    )
    assert entry.duration_ms is not None and entry.duration_ms >= 0
    assert entry.correlation_id == cid
    assert entry.span_id == f"{finished.context.span_id:016x}"  # recorded inside the step
    assert [line["step_transition"] for line in lines] == ["started", "completed"]
    span_id = f"{finished.context.span_id:016x}"
    for line in lines:
        assert line["correlation_id"] == cid and line["span_id"] == span_id
        assert line["step_name"] == "reserve stock"


async def test_a_failing_step_records_the_error_and_lets_it_through(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    kept: Kept,
    lines: list[dict[str, Any]],
) -> None:
    with bound(ClickContext(new_id())), pytest.raises(LookupError, match="no stock"):
        async with step("reserve stock", tracer_provider=provider, attempt=3):
            raise LookupError("no stock")
    (finished,) = exporter.get_finished_spans()
    failed = finished.events[-1]
    assert failed.name == "StepFailed"
    assert failed.attributes == {"error.type": "LookupError", "error.message": "no stock"}
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.attributes is not None and finished.attributes["step.attempt"] == 3
    assert kept.entries[0].outcome == "error" and kept.entries[0].attempt == 3
    assert lines[-1]["level"] == "WARNING" and lines[-1]["error_type"] == "LookupError"


async def test_a_compensation_is_its_own_span_with_a_compensating_event(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    kept: Kept,
) -> None:
    @step("release stock", compensates="reserve stock", tracer_provider=provider)
    async def release(n: int) -> int:
        return n + 1

    with bound(ClickContext(new_id())):
        try:
            async with step("reserve stock", tracer_provider=provider):
                raise RuntimeError("payment refused")
        except RuntimeError:
            assert await release(1) == 2
    reserve, compensation = exporter.get_finished_spans()
    assert compensation.name == "release stock"
    assert compensation.attributes is not None
    assert compensation.attributes["step.compensates"] == "reserve stock"
    assert [e.name for e in compensation.events] == ["Compensating", "StepCompleted"]
    assert compensation.parent is None  # a sibling of the step it undoes, not its child
    assert reserve.status.status_code is StatusCode.ERROR
    assert [e.outcome for e in kept.entries] == ["error", "compensated"]


def test_the_decorator_serves_plain_functions_and_nests_under_the_current_step(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    @step("price", tracer_provider=provider)
    def price(x: int) -> int:
        return x * 2

    with bound(ClickContext(new_id())), step("checkout", tracer_provider=provider):
        assert price(2) == 4 and price(3) == 6
    inner_a, inner_b, outer = exporter.get_finished_spans()
    assert inner_a.parent is not None and inner_a.parent.span_id == outer.context.span_id
    assert inner_b.context.span_id != inner_a.context.span_id


async def test_the_attempt_defaults_to_the_bus_attempt_at_the_message_in_hand(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    # No journal and no MeterProvider: the bus records nothing, and still tells the step.
    assert not enabled()
    bus = MemoryBus()
    other = new_id()

    async def handler(envelope: Envelope) -> None:
        async with step("apply", tracer_provider=provider):
            pass
        with bound(ClickContext(other)), step("apply", tracer_provider=provider):
            pass  # another click than the delivery in hand
        if len(exporter.get_finished_spans()) < 4:
            raise RuntimeError("fail the first attempt")

    bus.subscribe("steps", handler, group="g", backoff=Backoff(initial=0.0, maximum=0.0))
    await bus.start()
    try:
        await bus.publish_durable("steps", new_envelope("Applied", {}))
    finally:
        await bus.close()
    attempts = [(s.attributes or {})["step.attempt"] for s in exporter.get_finished_spans()]
    assert attempts == [1, 1, 2, 1]
    with bound(ClickContext(new_id())), step("apply", tracer_provider=provider):
        pass  # outside a handler
    assert (exporter.get_finished_spans()[-1].attributes or {})["step.attempt"] == 1


def test_a_structlog_logger_gets_the_fields_for_its_own_processor() -> None:
    seen: list[dict[str, Any]] = []

    def keep(logger: Any, method: str, event: Any) -> Any:
        seen.append(dict(event))
        raise structlog.DropEvent

    log = structlog.wrap_logger(
        structlog.PrintLogger(),
        processors=[add_clicktrace, keep],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    cid = new_id()
    with bound(ClickContext(cid)), step("notify", logger=log):
        pass
    assert [e["event"] for e in seen] == ["step started", "step completed"]
    assert all(e["correlation_id"] == cid and e["step_name"] == "notify" for e in seen)


def test_a_step_is_one_use_and_needs_a_name() -> None:
    one = step("once")
    with one, pytest.raises(RuntimeError, match="already running"), one:
        pass
    with pytest.raises(ValueError):
        step("")
    with pytest.raises(ValueError):
        step("x", compensates="")
