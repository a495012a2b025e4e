"""The Bus contract, on every broker: one trace and correlation through producer, consumer
and a nested publish; groups; retries then dead-letter; deadlines; dedupe; trace modes. Then
the consume path against an in-memory Received (no broker): crash loops, attempts that count
on from the broker's counter, failing hooks, and acks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from clicktrace import context as click_context
from clicktrace.bus import Backoff, Bus
from clicktrace.bus._base import deliver
from clicktrace.bus._types import DEAD_LETTER_REASON, Received, Subscription
from clicktrace.claims import MemoryClaims
from clicktrace.envelope import Envelope, encode, new_envelope

MakeBus = Callable[..., Bus]

FAST = Backoff(initial=0.001, maximum=0.005)
NO_WAIT = Backoff(initial=0.0, maximum=0.0)
CLICK = click_context.ClickContext(correlation_id="01JABCDEFGHJKMNPQRSTVWXYZ0")
WAIT = 20  # a guard against hangs, not a timing assertion


async def test_round_trip_keeps_one_trace_and_correlation(
    make_bus: MakeBus,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    topic: str,
    broker: str,
) -> None:
    bus = make_bus()
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
    async with bus:
        with provider.get_tracer("test").start_as_current_span("click") as root:
            with click_context.bound(CLICK):
                envelope = new_envelope("Renamed", {"n": 1})
            await bus.publish(topic, envelope)
        await asyncio.wait_for(done.wait(), WAIT)

    first_ctx, second_ctx = seen
    assert first_ctx is not None and second_ctx is not None
    assert first_ctx.correlation_id == second_ctx.correlation_id == CLICK.correlation_id
    assert first_ctx.causation_id == envelope.metadata.message_id
    assert second_ctx.causation_id not in (None, envelope.metadata.message_id)
    spans = exporter.get_finished_spans()
    assert {s.context.trace_id for s in spans} == {root.get_span_context().trace_id}
    by_name = {s.name: s for s in spans}
    assert sorted((s.name, s.kind) for s in spans if s.name != "click") == sorted(
        [
            (f"send {topic}", SpanKind.PRODUCER),
            (f"process {topic}", SpanKind.CONSUMER),
            (f"send {topic}.next", SpanKind.PRODUCER),
            (f"process {topic}.next", SpanKind.CONSUMER),
        ]
    )
    send, process = by_name[f"send {topic}"], by_name[f"process {topic}"]
    nested = by_name[f"send {topic}.next"]
    assert send.parent is not None and send.parent.span_id == root.get_span_context().span_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert nested.parent is not None and nested.parent.span_id == process.context.span_id
    assert process.attributes is not None
    assert process.attributes["messaging.system"] == broker
    assert process.attributes["messaging.message.conversation_id"] == CLICK.correlation_id
    assert process.attributes["messaging.message.id"] == envelope.metadata.message_id
    assert process.attributes["messaging.consumer.group.name"] == "g"


async def test_groups_each_get_every_message_in_order(make_bus: MakeBus, topic: str) -> None:
    bus = make_bus()
    got: dict[str, list[int]] = {"a": [], "b": []}
    done = asyncio.Event()

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(envelope: Envelope) -> None:
            got[name].append(envelope.payload)
            if all(len(v) == 5 for v in got.values()):
                done.set()

        return handle

    bus.subscribe(topic, handler("a"), group="a")
    bus.subscribe(topic, handler("b"), group="b")
    async with bus:
        for i in range(5):
            await bus.publish(topic, new_envelope("T", i))
        await asyncio.wait_for(done.wait(), WAIT)
    assert got == {"a": list(range(5)), "b": list(range(5))}


async def test_a_message_for_one_group_is_acked_unhandled_by_the_others(
    make_bus: MakeBus, topic: str
) -> None:
    bus = make_bus()
    got: dict[str, list[int]] = {"a": [], "b": []}
    done = asyncio.Event()

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(envelope: Envelope) -> None:
            got[name].append(envelope.payload)
            if got["a"] == [1, 2] and got["b"] == [2]:
                done.set()

        return handle

    bus.subscribe(topic, handler("a"), group="a")
    bus.subscribe(topic, handler("b"), group="b")
    async with bus:
        await bus.publish(topic, new_envelope("T", 1), group="a")  # a dead letter sent again
        await bus.publish(topic, new_envelope("T", 2))
        await asyncio.wait_for(done.wait(), WAIT)
    assert got == {"a": [1, 2], "b": [2]}  # b acked 1 unhandled, and goes on


async def test_failing_handler_is_retried_then_dead_lettered_with_reason(
    make_bus: MakeBus, exporter: InMemorySpanExporter, topic: str
) -> None:
    bus = make_bus()
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
        with click_context.bound(CLICK):
            envelope = new_envelope("T", {"k": "v"})
        await bus.publish(topic, envelope)
        dead, reason, corr = await asyncio.wait_for(hooked.get(), WAIT)
        letters = await bus.dead_letters(topic, "p")

    assert attempts == [CLICK.correlation_id] * 3
    assert dead.metadata.message_id == envelope.metadata.message_id
    assert reason == "ValueError: name_taken"
    assert corr == CLICK.correlation_id  # the hook runs in the message's context
    assert [d.reason for d in letters] == [reason]
    assert letters[0].envelope is not None
    assert letters[0].envelope.metadata.message_id == envelope.metadata.message_id
    assert letters[0].envelope.payload == {"k": "v"}
    process = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert all(s.status.status_code == StatusCode.ERROR for s in process)
    numbers = [s.attributes["messaging.clicktrace.attempt"] for s in process if s.attributes]
    assert numbers == [1, 2, 3]


async def test_recovering_handler_is_acked_not_dead_lettered(make_bus: MakeBus, topic: str) -> None:
    bus = make_bus()
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
        await asyncio.wait_for(done.wait(), WAIT)
        assert await bus.dead_letters(topic, "p") == []
    assert calls == 3


async def test_passed_deadline_is_rejected_not_applied(make_bus: MakeBus, topic: str) -> None:
    bus = make_bus()
    applied: list[int] = []
    rejected: asyncio.Queue[str] = asyncio.Queue()
    later = asyncio.Event()

    async def handler(envelope: Envelope) -> None:
        applied.append(envelope.payload)
        later.set()

    async def on_dead(envelope: Envelope, reason: str) -> None:
        await rejected.put(reason)

    bus.subscribe(topic, handler, group="p", on_dead_letter=on_dead)
    now = int(time.time() * 1000)
    async with bus:
        for payload, deadline in ((1, now - 1000), (2, now + 60_000)):
            with click_context.bound(
                click_context.ClickContext(
                    correlation_id=CLICK.correlation_id, deadline_ms=deadline
                )
            ):
                await bus.publish(topic, new_envelope("T", payload))
        assert await asyncio.wait_for(rejected.get(), WAIT) == "deadline_exceeded"
        await asyncio.wait_for(later.wait(), WAIT)
    assert applied == [2]


async def test_dedupe_skips_a_message_already_processed(make_bus: MakeBus, topic: str) -> None:
    bus = make_bus()
    got: list[str] = []
    last = asyncio.Event()

    async def handler(envelope: Envelope) -> None:
        got.append(envelope.metadata.message_id)
        if envelope.payload == "last":
            last.set()

    bus.subscribe(topic, handler, group="p", dedupe=MemoryClaims())
    envelope = new_envelope("T", "first")
    async with bus:
        for _ in range(3):
            await bus.publish(topic, envelope)  # a relay re-publishing after a crash
        final = new_envelope("T", "last")
        await bus.publish(topic, final)
        await asyncio.wait_for(last.wait(), WAIT)
    assert got == [envelope.metadata.message_id, final.metadata.message_id]


@pytest.mark.parametrize(("mode", "header"), [("link", None), ("new", None), ("child", "link")])
async def test_trace_modes(
    make_bus: MakeBus,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    topic: str,
    mode: str,
    header: str | None,
) -> None:
    bus = make_bus()
    done = asyncio.Event()

    async def handler(envelope: Envelope) -> None:
        done.set()

    bus.subscribe(topic, handler, group="p", trace_mode=mode)  # type: ignore[arg-type,unused-ignore]
    async with bus:
        with provider.get_tracer("t").start_as_current_span("click"):
            await bus.publish(topic, new_envelope("T", {}), trace_mode=header)  # type: ignore[arg-type]
        await asyncio.wait_for(done.wait(), WAIT)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    send, process = spans[f"send {topic}"], spans[f"process {topic}"]
    assert process.parent is None
    assert process.context.trace_id != send.context.trace_id
    linked = [link.context.span_id for link in process.links]
    assert linked == ([send.context.span_id] if (header or mode) == "link" else [])


async def test_consumers_in_one_group_share_the_work_once(
    make_bus: MakeBus, topic: str, broker: str
) -> None:
    first = make_bus()
    second = first if broker == "memory" else make_bus()  # memory: one process, one bus
    got: list[int] = []
    done = asyncio.Event()

    async def handler(envelope: Envelope) -> None:
        got.append(envelope.payload)
        await asyncio.sleep(0.001)  # give the other consumer a chance
        if len(got) >= 20:
            done.set()

    first.subscribe(topic, handler, group="g")
    second.subscribe(topic, handler, group="g")
    await first.start()
    await second.start()
    for i in range(20):
        await first.publish(topic, new_envelope("T", i))
    await asyncio.wait_for(done.wait(), WAIT)
    await first.close()
    await second.close()
    assert sorted(got) == list(range(20))


# -- the consume path, without a broker -------------------------------------------------


class FakeDelivery(Received):
    __slots__ = ("acks", "touches")

    def __init__(self, body: bytes, headers: Mapping[str, str], delivery_count: int) -> None:
        super().__init__(body, headers, delivery_count)
        self.acks = 0
        self.touches = 0

    async def ack(self) -> None:
        self.acks += 1

    async def touch(self) -> None:
        self.touches += 1


class Recorder:
    def __init__(self) -> None:
        self.dead: list[tuple[bytes, dict[str, str]]] = []
        self.calls = 0
        self.hooked: list[str] = []

    async def send_dead_letter(
        self, sub: Subscription, body: bytes, headers: dict[str, str]
    ) -> None:
        self.dead.append((body, headers))

    async def failing(self, envelope: Envelope) -> None:
        self.calls += 1
        raise RuntimeError(f"boom {self.calls}")

    async def hook(self, envelope: Envelope, reason: str) -> None:
        self.hooked.append(reason)
        raise ValueError("the notifier is down too")


async def test_a_message_redelivered_past_max_attempts_is_dead_lettered_unhandled(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    rec = Recorder()
    sub = Subscription("t", "g", rec.failing, max_attempts=3, on_dead_letter=rec.hook)
    delivery = FakeDelivery(encode(new_envelope("T", {})), {"x": "1"}, delivery_count=4)
    await deliver(provider.get_tracer("t"), "memory", sub, delivery, rec.send_dead_letter)
    assert rec.calls == 0
    assert [h[DEAD_LETTER_REASON] for _, h in rec.dead] == ["delivered 4 times without completing"]
    assert rec.dead[0][1]["x"] == "1"  # the original headers travel along
    assert delivery.acks == 1  # a failing hook does not keep the message looping
    assert rec.hooked == ["delivered 4 times without completing"]
    (span,) = exporter.get_finished_spans()  # the give-up is traced like any attempt
    assert span.attributes is not None
    assert span.attributes["messaging.clicktrace.dead_letter_reason"] == rec.hooked[0]


async def test_attempts_count_on_from_the_brokers_counter(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    rec = Recorder()
    sub = Subscription("t", "g", rec.failing, max_attempts=4, backoff=NO_WAIT)
    delivery = FakeDelivery(encode(new_envelope("T", {})), {}, delivery_count=3)
    await deliver(provider.get_tracer("t"), "memory", sub, delivery, rec.send_dead_letter)
    assert rec.calls == 2  # attempts 3 and 4
    assert delivery.touches == 1  # the lease is extended before the retry
    assert delivery.acks == 1
    assert [h[DEAD_LETTER_REASON] for _, h in rec.dead] == ["RuntimeError: boom 2"]
    attempts = [
        s.attributes and s.attributes["messaging.clicktrace.attempt"]
        for s in exporter.get_finished_spans()
    ]
    assert attempts == [3, 4]


async def test_an_undecodable_body_is_dead_lettered_and_acked(provider: TracerProvider) -> None:
    rec = Recorder()
    sub = Subscription("t", "g", rec.failing)
    delivery = FakeDelivery(b'{"metadata": 1}', {}, delivery_count=1)
    await deliver(provider.get_tracer("t"), "memory", sub, delivery, rec.send_dead_letter)
    assert rec.calls == 0 and delivery.acks == 1
    assert rec.dead[0][0] == b'{"metadata": 1}'
    assert rec.dead[0][1][DEAD_LETTER_REASON].startswith("undecodable: ")


async def test_a_default_dead_letter_hook_goes_to_every_subscription_without_one(
    topic: str,
) -> None:
    from clicktrace.bus import MemoryBus

    bus = MemoryBus()
    told: list[str] = []
    own: list[str] = []
    all_told = asyncio.Event()

    async def failing(envelope: Envelope) -> None:
        raise RuntimeError("boom")

    async def default(envelope: Envelope, reason: str) -> None:
        told.append(envelope.metadata.type)
        if len(told) == 2 and own:
            all_told.set()

    async def their_own(envelope: Envelope, reason: str) -> None:
        own.append(envelope.metadata.type)
        if len(told) == 2:
            all_told.set()

    before = bus.subscribe(topic, failing, group="before", max_attempts=1)
    bus.subscribe(topic, failing, group="kept", max_attempts=1, on_dead_letter=their_own)
    bus.default_dead_letter(default)
    bus.subscribe(topic, failing, group="after", max_attempts=1)
    assert before.on_dead_letter is None  # what subscribe returned is a frozen value
    with pytest.raises(TypeError):
        bus.default_dead_letter(lambda envelope, reason: None)  # type: ignore[arg-type,return-value]
    async with bus:
        with pytest.raises(RuntimeError, match="before start"):
            bus.default_dead_letter(None)
        await bus.publish(topic, new_envelope("Renamed", {"n": 1}))
        await asyncio.wait_for(all_told.wait(), WAIT)
    assert told == ["Renamed", "Renamed"] and own == ["Renamed"]
