"""NATS JetStream specifics: native headers as NATS headers with Nats-Msg-Id, max-deliver,
and JetStream's duplicate window dropping a re-published message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import nats
import pytest

from clicktrace import context as click_context
from clicktrace.bus import Bus
from clicktrace.bus._nats import durable_name, stream_name
from clicktrace.envelope import Envelope, new_envelope

from .conftest import URLS

MakeBus = Callable[..., Bus]
CLICK = click_context.ClickContext(correlation_id="01JABCDEFGHJKMNPQRSTVWXYZ0")


@pytest.fixture
def broker() -> str:
    return "nats"


@pytest.fixture
async def js() -> AsyncIterator[Any]:
    nc = await nats.connect(URLS["nats"])
    yield nc.jetstream()
    await nc.close()


async def test_headers_and_broker_side_dedupe(make_bus: MakeBus, js: Any, topic: str) -> None:
    bus = make_bus()
    got: asyncio.Queue[Envelope] = asyncio.Queue()

    async def handler(envelope: Envelope) -> None:
        await got.put(envelope)

    bus.subscribe(topic, handler, group="g", max_attempts=4)
    await bus.start()
    # JetStream stops redelivering after max_deliver; the bus gives up on the last one.
    consumer = await js.consumer_info(stream_name(topic), durable_name("g"))
    assert consumer.config.max_deliver == 5
    with click_context.bound(CLICK):
        envelope = new_envelope("T", {"n": 1})
    for _ in range(3):  # a relay re-publishing after a crash
        await bus.publish(topic, envelope)
    await bus.publish(topic, new_envelope("T", "last"))
    first = await asyncio.wait_for(got.get(), 20)
    last = await asyncio.wait_for(got.get(), 20)
    assert (first.metadata.message_id, last.payload) == (envelope.metadata.message_id, "last")

    info = await js.stream_info(stream_name(topic))
    assert info.state.messages == 2  # the duplicates never entered the stream
    raw = await js.get_msg(stream_name(topic), 1)
    assert raw.headers["Nats-Msg-Id"] == envelope.metadata.message_id
    assert raw.headers["x-correlation-id"] == CLICK.correlation_id
    assert raw.headers["traceparent"].startswith("00-")


async def test_a_handler_slower_than_ack_wait_is_not_redelivered_behind_its_back(
    make_bus: MakeBus, topic: str
) -> None:
    # ack_wait is short so a dead consumer's messages come back promptly; a live one keeps
    # every message of its batch in progress, however long the handler takes.
    handled: list[object] = []
    done = asyncio.Event()

    async def handler(envelope: Envelope) -> None:
        if not handled:
            await asyncio.sleep(2.0)  # over three ack_waits
        handled.append(envelope.payload)
        if len(handled) >= 2:
            done.set()

    # The second consumer of the group fetches all along: it would get any redelivery.
    first, second = make_bus(ack_wait=0.6), make_bus(ack_wait=0.6)
    first.subscribe(topic, handler, group="g")
    await first.start()
    await first.publish(topic, new_envelope("T", 1))
    await first.publish(topic, new_envelope("T", 2))
    await asyncio.sleep(0.3)  # let the first take both in one batch
    second.subscribe(topic, handler, group="g")
    await second.start()
    await asyncio.wait_for(done.wait(), 20)
    await asyncio.sleep(1.5)  # room for a redelivery to show up
    assert handled == [1, 2]
