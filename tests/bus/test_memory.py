"""What is particular to the in-memory bus, and misuse errors (no broker needed)."""

from __future__ import annotations

import asyncio

import pytest

from clicktrace.bus import BusNotRunning, MemoryBus, create_bus
from clicktrace.envelope import Envelope, new_envelope


async def test_a_topic_without_groups_drops_and_others_still_flow(topic: str) -> None:
    bus = MemoryBus()
    got: asyncio.Queue[object] = asyncio.Queue()

    async def handler(envelope: Envelope) -> None:
        await got.put(envelope.payload)

    bus.subscribe(topic, handler, group="g")
    async with bus:
        await bus.publish(f"{topic}.nobody", new_envelope("T", "lost"))
        await bus.publish(topic, new_envelope("T", "kept"))
        assert await asyncio.wait_for(got.get(), 5) == "kept"
    assert got.empty()


async def test_undecodable_message_is_dead_lettered_without_calling_the_handler(
    topic: str,
) -> None:
    bus = MemoryBus()
    called: list[Envelope] = []

    async def handler(envelope: Envelope) -> None:
        called.append(envelope)

    bus.subscribe(topic, handler, group="g")
    async with bus:
        await bus._send(topic, b"{not json", {}, "x")
        while not await bus.dead_letters(topic, "g"):
            await asyncio.sleep(0.01)
        (letter,) = await bus.dead_letters(topic, "g")
    assert called == []
    assert letter.body == b"{not json" and letter.envelope is None
    assert letter.reason.startswith("undecodable")


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
        bus.subscribe(topic, handler, group="g", trace_mode="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        create_bus("kafka://localhost")
    with pytest.raises(TypeError):
        create_bus(None)  # type: ignore[arg-type]
    async with bus:
        with pytest.raises(TypeError):
            await bus.publish(topic, {"not": "an envelope"})  # type: ignore[arg-type]
        with pytest.raises(RuntimeError):
            bus.subscribe(topic, handler, group="late")
    with pytest.raises(BusNotRunning):
        await bus.publish(topic, new_envelope("T", {}))


async def test_subscriptions_sharing_a_group_compete(topic: str) -> None:
    bus = MemoryBus()
    got: list[tuple[str, int]] = []
    done = asyncio.Event()

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(envelope: Envelope) -> None:
            got.append((name, envelope.payload))
            await asyncio.sleep(0)  # let the other worker take the next one
            if len(got) == 10:
                done.set()

        return handle

    bus.subscribe(topic, handler("one"), group="g")
    bus.subscribe(topic, handler("two"), group="g")
    async with bus:
        for i in range(10):
            await bus.publish(topic, new_envelope("T", i))
        await asyncio.wait_for(done.wait(), 5)
    assert sorted(p for _, p in got) == list(range(10))  # each once
    assert {name for name, _ in got} == {"one", "two"}


async def test_publish_durable_returns_once_every_group_has_handled_it(topic: str) -> None:
    bus = MemoryBus()
    handled: list[str] = []
    release = asyncio.Event()

    async def slow(envelope: Envelope) -> None:
        await release.wait()
        handled.append("slow")

    async def failing(envelope: Envelope) -> None:
        raise RuntimeError("dead-lettered counts as handled")

    bus.subscribe(topic, slow, group="a")
    bus.subscribe(topic, failing, group="b", max_attempts=1)
    async with bus:
        waiting = asyncio.create_task(bus.publish_durable(topic, new_envelope("T", 1)))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        release.set()
        await asyncio.wait_for(waiting, 5)
        assert handled == ["slow"]
        assert len(await bus.dead_letters(topic, "b")) == 1
        # No group: nothing in this process could ever hold it, so nothing to wait for.
        await asyncio.wait_for(bus.publish_durable(f"{topic}.nobody", new_envelope("T", 2)), 5)


async def test_dead_letters_kept_in_memory_are_bounded_to_the_newest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from clicktrace.bus import Backoff
    from clicktrace.bus import _memory as memory

    monkeypatch.setattr(memory, "DEAD_LETTER_LIMIT", 3)
    bus = memory.MemoryBus()
    seen = 0

    async def refuse(envelope: Envelope) -> None:
        nonlocal seen
        seen += 1
        raise ValueError("no")

    bus.subscribe("t", refuse, group="g", max_attempts=1, backoff=Backoff(0, 0))
    async with bus:
        for n in range(10):
            await bus.publish_durable("t", new_envelope("T", {"n": n}))
        letters = await bus.dead_letters("t", "g")
    assert seen == 10
    assert [d.envelope.payload["n"] for d in letters if d.envelope] == [7, 8, 9]
