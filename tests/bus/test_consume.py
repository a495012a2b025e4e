"""The consume path against an in-memory Received (no broker): crash loops, attempts that
count on from the broker's counter, failing hooks, and acks."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clicktrace.bus import Backoff
from clicktrace.bus.consume import deliver
from clicktrace.bus.types import DEAD_LETTER_REASON, Received, Subscription
from clicktrace.envelope import Envelope, encode, new_envelope

FAST = Backoff(initial=0.0, maximum=0.0)


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
    sub = Subscription("t", "g", rec.failing, max_attempts=4, backoff=FAST)
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
