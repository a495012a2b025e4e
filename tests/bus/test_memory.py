"""The in-memory bus end to end: the Bus contract without a broker."""

from __future__ import annotations

import asyncio
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from clicktrace import context as click_context
from clicktrace.bus import Backoff, BusNotRunning, MemoryBus, create_bus
from clicktrace.envelope import Envelope, new_envelope

FAST = Backoff(initial=0.001, maximum=0.005)


async def test_round_trip_keeps_one_trace_and_correlation(
    provider: TracerProvider, exporter: InMemorySpanExporter, topic: str
) -> None:
    bus = create_bus("memory://", tracer_provider=provider)
    seen: list[click_context.ClickContext | None] = []
    done = asyncio.Event()

    async def first(envelope: Envelope) -> None:
        seen.append(click_context.current())
        await bus.publish(f"{topic}.next", new_envelope("Next", {"n": 2}))

    async def second(envelope: Envelope) -> None:
        seen.append(click_context.current())
        done.set()

    bus.subscribe(topic, first, group="g")
    bus.subscribe(f"{topic}.next", second, group="g")
    tracer = provider.get_tracer("test")
    async with bus:
        with tracer.start_as_current_span("click") as root:
            click = click_context.ClickContext(correlation_id="01JABCDEFGHJKMNPQRSTVWXYZ0")
            with click_context.bound(click):
                envelope = new_envelope("Renamed", {"n": 1})
            await bus.publish(topic, envelope)
        await asyncio.wait_for(done.wait(), 5)

    assert [c.correlation_id for c in seen if c] == [click.correlation_id] * 2
    first_ctx, second_ctx = seen
    assert first_ctx is not None and second_ctx is not None
    assert first_ctx.causation_id == envelope.metadata.message_id
    assert second_ctx.causation_id not in (None, envelope.metadata.message_id)
    spans = exporter.get_finished_spans()
    trace_id = root.get_span_context().trace_id
    assert {s.context.trace_id for s in spans} == {trace_id}
    kinds = sorted((s.name, s.kind) for s in spans if s.name != "click")
    assert kinds == sorted([
        (f"send {topic}", SpanKind.PRODUCER), (f"process {topic}", SpanKind.CONSUMER),
        (f"send {topic}.next", SpanKind.PRODUCER), (f"process {topic}.next", SpanKind.CONSUMER),
    ])
    by_name = {s.name: s for s in spans}
    send, process = by_name[f"send {topic}"], by_name[f"process {topic}"]
    assert send.parent is not None and send.parent.span_id == root.get_span_context().span_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    nested = by_name[f"send {topic}.next"]
    assert nested.parent is not None and nested.parent.span_id == process.context.span_id
    assert process.attributes is not None
    assert process.attributes["messaging.message.conversation_id"] == click.correlation_id
    assert process.attributes["messaging.message.id"] == envelope.metadata.message_id
    assert process.attributes["messaging.consumer.group.name"] == "g"


async def test_groups_each_get_every_message(topic: str) -> None:
    bus = MemoryBus()
    got: dict[str, list[int]] = {"a": [], "b": []}
    done = asyncio.Event()

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(envelope: Envelope) -> None:
            got[name].append(envelope.payload)
            if all(len(v) == 3 for v in got.values()):
                done.set()
        return handle

    bus.subscribe(topic, handler("a"), group="a")
    bus.subscribe(topic, handler("b"), group="b")
    async with bus:
        for i in range(3):
            await bus.publish(topic, new_envelope("T", i))
        await asyncio.wait_for(done.wait(), 5)
    assert got == {"a": [0, 1, 2], "b": [0, 1, 2]}


async def test_failing_handler_is_retried_then_dead_lettered_with_reason(
    provider: TracerProvider, exporter: InMemorySpanExporter, topic: str
) -> None:
    bus = MemoryBus(tracer_provider=provider)
    attempts: list[str | None] = []
    hooked: asyncio.Queue[tuple[Envelope, str, str | None]] = asyncio.Queue()

    async def handler(envelope: Envelope) -> None:
        ctx = click_context.current()
        attempts.append(ctx.correlation_id if ctx else None)
        raise ValueError("name_taken")

    async def on_dead(envelope: Envelope, reason: str) -> None:
        ctx = click_context.current()
        await hooked.put((envelope, reason, ctx.correlation_id if ctx else None))

    bus.subscribe(topic, handler, group="p", max_attempts=3, on_dead_letter=on_dead, backoff=FAST)
    async with bus:
        envelope = new_envelope("T", {})
        await bus.publish(topic, envelope)
        dead, reason, corr = await asyncio.wait_for(hooked.get(), 5)
        letters = await bus.dead_letters(topic, "p")

    assert attempts == [envelope.metadata.correlation_id] * 3
    assert dead.metadata.message_id == envelope.metadata.message_id
    assert reason == "ValueError: name_taken"
    assert corr == envelope.metadata.correlation_id  # the hook runs in the message's context
    assert [d.reason for d in letters] == [reason]
    assert letters[0].envelope is not None
    assert letters[0].envelope.metadata.message_id == envelope.metadata.message_id
    process = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert len(process) == 3
    assert all(s.status.status_code == StatusCode.ERROR for s in process)
    numbers = [s.attributes["messaging.clicktrace.attempt"] for s in process if s.attributes]
    assert numbers == [1, 2, 3]


async def test_recovering_handler_is_not_dead_lettered(topic: str) -> None:
    bus = MemoryBus()
    calls = 0
    done = asyncio.Event()

    async def flaky(envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError("transient")
        done.set()

    bus.subscribe(topic, flaky, group="p", max_attempts=5, backoff=FAST)
    async with bus:
        await bus.publish(topic, new_envelope("T", {}))
        await asyncio.wait_for(done.wait(), 5)
        assert await bus.dead_letters(topic, "p") == []
    assert calls == 3


async def test_passed_deadline_is_rejected_not_applied(topic: str) -> None:
    bus = MemoryBus()
    applied: list[int] = []
    rejected: asyncio.Queue[str] = asyncio.Queue()

    async def handler(envelope: Envelope) -> None:
        applied.append(envelope.payload)

    async def on_dead(envelope: Envelope, reason: str) -> None:
        await rejected.put(reason)

    bus.subscribe(topic, handler, group="p", on_dead_letter=on_dead)
    now = int(time.time() * 1000)
    async with bus:
        for payload, deadline in ((1, now - 1000), (2, now + 60_000)):
            with click_context.bound(click_context.ClickContext(
                correlation_id="01JABCDEFGHJKMNPQRSTVWXYZ0", deadline_ms=deadline
            )):
                await bus.publish(topic, new_envelope("T", payload))
        assert await asyncio.wait_for(rejected.get(), 5) == "deadline_exceeded"
        while not applied:
            await asyncio.sleep(0.01)
    assert applied == [2]


async def test_dedupe_skips_a_message_already_processed(topic: str) -> None:
    from clicktrace.bus.idempotency import MemoryDedupe

    bus = MemoryBus()
    got: list[str] = []
    dedupe = MemoryDedupe()
    bus.subscribe(topic, lambda e: _append(got, e), group="p", dedupe=dedupe)
    envelope = new_envelope("T", {})
    async with bus:
        for _ in range(3):
            await bus.publish(topic, envelope)  # a relay re-publishing after a crash
        await bus.publish(topic, new_envelope("T", "last"))
        while len(got) < 2:
            await asyncio.sleep(0.01)
    assert got == [envelope.metadata.message_id, got[1]] and got[1] != got[0]


async def _append(got: list[str], envelope: Envelope) -> None:
    got.append(envelope.metadata.message_id)


@pytest.mark.parametrize("mode, header", [("link", None), ("new", None), ("child", "link")])
async def test_trace_modes(
    provider: TracerProvider, exporter: InMemorySpanExporter, topic: str,
    mode: str, header: str | None,
) -> None:
    bus = MemoryBus(tracer_provider=provider)
    done = asyncio.Event()

    async def handler(envelope: Envelope) -> None:
        done.set()

    bus.subscribe(topic, handler, group="p", trace_mode=mode)  # type: ignore[arg-type]
    async with bus:
        with provider.get_tracer("t").start_as_current_span("click"):
            await bus.publish(topic, new_envelope("T", {}), trace_mode=header)  # type: ignore[arg-type]
        await asyncio.wait_for(done.wait(), 5)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    send, process = spans[f"send {topic}"], spans[f"process {topic}"]
    effective = header or mode
    assert process.parent is None
    assert process.context.trace_id != send.context.trace_id
    linked = [link.context.span_id for link in process.links]
    assert linked == ([send.context.span_id] if effective == "link" else [])


async def test_misuse_raises_clear_errors(topic: str) -> None:
    bus = MemoryBus()

    async def handler(envelope: Envelope) -> None:
        pass

    with pytest.raises(BusNotRunning):
        await bus.publish(topic, new_envelope("T", {}))
    with pytest.raises(ValueError):
        bus.subscribe("bad topic", handler, group="g")
    with pytest.raises(ValueError):
        bus.subscribe(topic, handler, group="g", max_attempts=0)
    with pytest.raises(ValueError):
        create_bus("kafka://localhost")
    async with bus:
        with pytest.raises(TypeError):
            await bus.publish(topic, {"not": "an envelope"})  # type: ignore[arg-type]
        with pytest.raises(RuntimeError):
            bus.subscribe(topic, handler, group="late")
