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
from clicktrace.bus.nats import durable_name, stream_name
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
