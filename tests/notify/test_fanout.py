"""Redis pub/sub fan-out for the WebSocket transport, against the real Redis."""

from __future__ import annotations

import asyncio
import sys

import pytest
import redis.asyncio as redis_asyncio

from clicktrace.ids import new_id
from clicktrace.notify import Notifier, TokenSigner
from clicktrace.notify.delivery import Hub
from clicktrace.notify.fanout import RedisFanout, _decode, connect_redis
from clicktrace.notify.frames import Frame
from clicktrace.notify.replay import MemoryReplayBuffer
from clicktrace.testing import unique_name

REDIS_URL = "redis://127.0.0.1:6379/0"
WAIT = 10.0
SECRET = "clicktrace-test-secret-0123456789"


class Socket:
    def __init__(self) -> None:
        self.frames: asyncio.Queue[Frame] = asyncio.Queue()

    async def send(self, frame: Frame) -> None:
        await self.frames.put(frame)

    async def next(self) -> Frame:
        return await asyncio.wait_for(self.frames.get(), WAIT)


async def test_frames_reach_the_hub_and_garbage_is_dropped(channel: str) -> None:
    buffer = MemoryReplayBuffer()
    hub, sock, cid = Hub(buffer), Socket(), new_id()
    fanout = RedisFanout(REDIS_URL, channel, hub.dispatch, hub.refresh_all)
    raw = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        await fanout.start()
        await fanout.start()  # idempotent
        await hub.attach("s", cid, sock.send, 0).resume()
        for junk in (
            b"not json",
            b"[]",
            b'{"client_id": "x", "frame": {"seq": 1}}',
            b'{"client_id": "%s", "frame": {"seq": "1"}}' % cid.encode(),
        ):
            await raw.publish(channel, junk)
        frame = await buffer.append(cid, {"correlation_id": cid, "status": "progress"})
        await fanout.publish(cid, frame)
        assert await sock.next() == frame  # the listener survived the junk before it
    finally:
        await fanout.aclose()
        await raw.aclose()


async def test_after_losing_redis_the_listener_resubscribes_and_catches_up(channel: str) -> None:
    buffer = MemoryReplayBuffer()
    hub, sock, cid = Hub(buffer), Socket(), new_id()
    name = unique_name("fanout")
    fanout = RedisFanout(f"{REDIS_URL}?client_name={name}", channel, hub.dispatch, hub.refresh_all)
    admin = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        await fanout.start()
        await hub.attach("s", cid, sock.send, 0).resume()
        clients = await admin.client_list()
        ids = [c["id"] for c in clients if c.get("name") == name]
        assert ids, "the fan-out connection should carry its client name"
        for client_id in ids:
            await admin.client_kill_filter(_id=client_id)
        # Published while the listener is down: it never arrives live ...
        await buffer.append(cid, {"correlation_id": cid, "status": "progress"})
        # ... but once subscribed again, every local connection catches up from the buffer.
        assert (await sock.next())["seq"] == 1
    finally:
        await fanout.aclose()
        await admin.aclose()


def test_decode() -> None:
    cid = new_id()
    assert _decode(b'{"client_id": "%s", "frame": {"seq": 2}}' % cid.lower().encode()) == (
        cid,
        {"seq": 2},
    )
    assert _decode(None) is None
    assert _decode(b"x" * (2 << 20)) is None
    assert _decode(b"[" * 100_000) is None


def test_without_redis_installed_the_hint_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ImportError) as info:
        connect_redis(REDIS_URL)
    assert str(info.value) == "redis is not installed: pip install 'clicktrace[redis]'"
    with pytest.raises(ImportError, match=r"clicktrace\[redis\]"):
        Notifier(TokenSigner(SECRET), "websocket", redis_url=REDIS_URL)
    with pytest.raises(ImportError, match=r"clicktrace\[redis\]"):
        Notifier(TokenSigner(SECRET), "socketio", redis_url=REDIS_URL)
