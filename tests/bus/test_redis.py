"""Redis Streams specifics: native headers as stream fields, the dead-letter stream, and a
group that starts after messages were published still gets them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from clicktrace import context as click_context
from clicktrace.bus import Backoff, Bus
from clicktrace.envelope import Envelope, new_envelope

from .conftest import URLS

MakeBus = Callable[..., Bus]
CLICK = click_context.ClickContext(correlation_id="01JABCDEFGHJKMNPQRSTVWXYZ0")


@pytest.fixture
def broker() -> str:
    return "redis"


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(URLS["redis"], decode_responses=True)
    yield client
    await client.aclose()


async def test_headers_are_stream_fields_and_late_groups_get_earlier_messages(
    make_bus: MakeBus, client: Any, topic: str
) -> None:
    publisher = make_bus()
    await publisher.start()
    with click_context.bound(CLICK):
        envelope = new_envelope("T", {"n": 1})
    await publisher.publish(topic, envelope)
    ((_, fields),) = await client.xrange(topic)
    assert fields["x-correlation-id"] == CLICK.correlation_id
    assert fields["traceparent"].startswith("00-")
    assert "body" in fields

    consumer = make_bus()
    got: asyncio.Queue[Envelope] = asyncio.Queue()

    async def handler(envelope: Envelope) -> None:
        await got.put(envelope)

    consumer.subscribe(topic, handler, group="g")
    await consumer.start()
    received = await asyncio.wait_for(got.get(), 20)
    assert received.metadata.message_id == envelope.metadata.message_id


async def test_dead_letters_go_to_their_own_stream_with_the_reason(
    make_bus: MakeBus, client: Any, topic: str
) -> None:
    bus = make_bus()
    hooked = asyncio.Event()

    async def handler(envelope: Envelope) -> None:
        raise LookupError("no such product")

    async def on_dead(envelope: Envelope, reason: str) -> None:
        hooked.set()

    bus.subscribe(
        topic,
        handler,
        group="g",
        max_attempts=2,
        on_dead_letter=on_dead,
        backoff=Backoff(initial=0.001, maximum=0.001),
    )
    await bus.start()
    await bus.publish(topic, new_envelope("T", {}))
    await asyncio.wait_for(hooked.wait(), 20)
    ((_, fields),) = await client.xrange(f"{topic}:dlq:g")
    assert fields["x-clicktrace-dead-letter-reason"] == "LookupError: no such product"
    await bus.close()  # lets the message in hand finish: acked after the hook
    assert await client.xpending(topic, "g") == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_consumers_of_dead_processes_are_forgotten_once_they_hold_nothing(
    make_bus: MakeBus, client: Any, topic: str
) -> None:
    await client.xgroup_create(topic, "g", id="0", mkstream=True)
    await client.xgroup_createconsumer(topic, "g", "died-long-ago")
    await asyncio.sleep(0.3)  # idle beyond 10 claim periods of 10 ms
    bus = make_bus(claim_idle_ms=10)

    async def handler(envelope: Envelope) -> None:
        pass

    bus.subscribe(topic, handler, group="g")
    await bus.start()
    for _ in range(100):
        names = {c["name"] for c in await client.xinfo_consumers(topic, "g")}
        if "died-long-ago" not in names:
            break
        await asyncio.sleep(0.05)
    assert "died-long-ago" not in names


async def test_entries_of_a_consumer_whose_heartbeat_stopped_are_taken_over_at_once(
    make_bus: MakeBus, client: Any, topic: str
) -> None:
    # A predecessor that read two entries and died: no heartbeat key, silent for longer
    # than alive_ms. Its entries come back long before claim_idle_ms (an hour here).
    publisher = make_bus()
    await publisher.start()
    sent = [new_envelope("T", {"n": n}) for n in range(2)]
    await client.xgroup_create(topic, "g", id="0", mkstream=True)
    for envelope in sent:
        await publisher.publish(topic, envelope)
    await client.xreadgroup("g", "died-just-now", {topic: ">"}, count=10)
    # A live one (heartbeat present) holding an entry keeps it.
    await publisher.publish(topic, kept := new_envelope("T", {"n": "kept"}))
    await client.xreadgroup("g", "alive", {topic: ">"}, count=10)
    await client.set("clicktrace:alive:alive", "1", px=60_000)
    await asyncio.sleep(0.4)
    got: asyncio.Queue[Envelope] = asyncio.Queue()

    async def handler(envelope: Envelope) -> None:
        await got.put(envelope)

    bus = make_bus(claim_idle_ms=3_600_000, alive_ms=300)
    bus.subscribe(topic, handler, group="g")
    try:
        await bus.start()
        taken = [await asyncio.wait_for(got.get(), 20) for _ in sent]
        assert [e.metadata.message_id for e in taken] == [e.metadata.message_id for e in sent]
        pending = await client.xpending(topic, "g")
        owners = {c["name"]: c["pending"] for c in pending["consumers"]}
        assert owners == {"alive": 1}
        assert kept.metadata.message_id not in {e.metadata.message_id for e in taken}
        assert await client.exists(f"clicktrace:alive:{bus.consumer_name}")  # type: ignore[attr-defined]
    finally:
        await client.delete("clicktrace:alive:alive")
    await bus.close()
    assert not await client.exists(f"clicktrace:alive:{bus.consumer_name}")  # type: ignore[attr-defined]
