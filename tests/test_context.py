"""ClickContext binding: tokens reset in finally, and it follows asyncio tasks."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext

from clicktrace.context import ClickContext, bind, bound, current, reset

CORR = "01JD8X3Q7E8W5V4T2N9R6M0K1A"


def test_bind_and_reset() -> None:
    assert current() is None
    token = bind(ClickContext(CORR))
    try:
        assert current() == ClickContext(CORR)
    finally:
        reset(token)
    assert current() is None


def test_bound_restores_both_contexts_even_on_error() -> None:
    span = NonRecordingSpan(SpanContext(1, 2, is_remote=True))
    with pytest.raises(RuntimeError), bound(ClickContext(CORR), trace.set_span_in_context(span)):
        assert current() is not None
        assert trace.get_current_span() is span
        raise RuntimeError
    assert current() is None
    assert trace.get_current_span() is not span


def test_caused_by_keeps_the_rest() -> None:
    ctx = ClickContext(CORR, client_id="c", deadline_ms=9).caused_by("m")
    assert ctx == ClickContext(CORR, "m", "c", 9)


async def test_follows_tasks_without_leaking_back() -> None:
    async def child() -> str | None:
        seen = current()
        bind(ClickContext("other"))  # a task's changes stay in the task's context copy
        return seen.correlation_id if seen else None

    with bound(ClickContext(CORR)):
        assert await asyncio.create_task(child()) == CORR
        assert current() == ClickContext(CORR)


def test_caused_by_keeps_the_other_ids_and_the_context_is_immutable() -> None:
    ctx = ClickContext(CORR, client_id="01JD8X3Q7E8W5V4T2N9R6M0K1C", deadline_ms=5)
    child = ctx.caused_by("01JD8X3Q7E8W5V4T2N9R6M0K1B")
    assert child == ClickContext(CORR, "01JD8X3Q7E8W5V4T2N9R6M0K1B", ctx.client_id, 5)
    assert ctx.causation_id is None
    with pytest.raises(AttributeError):
        ctx.correlation_id = "01JD8X3Q7E8W5V4T2N9R6M0K1D"  # type: ignore[misc]
