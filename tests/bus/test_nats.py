"""NATS JetStream specifics: native headers as NATS headers with Nats-Msg-Id, max-deliver,
and JetStream's duplicate window dropping a re-published message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.errors import NotJSMessageError
from nats.js.api import ConsumerConfig

from clicktrace import context as click_context
from clicktrace.bus import Bus
from clicktrace.bus._nats import delivered, durable_name, stream_name
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


@pytest.mark.parametrize(
    "reply",
    [
        "$JS.ACK.CT_orders.g.3.17.12.1733580000000000000.4",
        "$JS.ACK.hub.ACCHASH.CT_orders.g.3.17.12.1733580000000000000.4.x7",
        "$JS.ACK.hub.ACCHASH.CT_orders.g.1.17.12.1733580000000000000.4",  # no random token
        "$JS.ACK.CT_orders.g.0.17.12.1733580000000000000.4",  # 0: counted as the first
    ],
)
def test_the_delivery_count_is_what_the_metadata_says(reply: str) -> None:
    msg = Msg(None, reply=reply)  # type: ignore[arg-type]
    assert delivered(msg) == (msg.metadata.num_delivered or 1)


@pytest.mark.parametrize("reply", ["", "_INBOX.abc", "$JS.ACK.CT_orders.g.x.17.12.1.4"])
def test_a_reply_subject_it_cannot_read_is_left_to_the_metadata(reply: str) -> None:
    with pytest.raises((NotJSMessageError, ValueError)):
        delivered(Msg(None, reply=reply))  # type: ignore[arg-type]


async def test_the_delivery_count_of_a_real_redelivery(
    make_bus: MakeBus, js: Any, topic: str
) -> None:
    bus = make_bus()  # makes the stream
    bus.subscribe(topic, _ignore, group="g")
    await bus.start()
    await bus.close()
    await js.publish(topic, b"{}")
    psub = await js.pull_subscribe(
        topic, stream=stream_name(topic), config=ConsumerConfig(ack_wait=30)
    )
    counts = []
    for _ in range(2):
        (msg,) = await psub.fetch(1, timeout=10)
        counts.append((delivered(msg), msg.metadata.num_delivered))
        await msg.nak()
    await psub.unsubscribe()
    assert counts == [(1, 1), (2, 2)]


async def _ignore(envelope: Envelope) -> None:
    return None
