"""The hub: exactly-once, in-order delivery per socket (replay, live, gaps, epochs, caps,
the sweep), the unauthenticated-socket cap and deadline, and the Redis fan-out between nodes
against the real Redis."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Hashable

import pytest
import redis.asyncio as redis_asyncio

from clicktrace.ids import new_id
from clicktrace.notify import Notifier, Replay, SocketIOTransport, TokenSigner, WebSocketTransport
from clicktrace.notify._frames import (
    Confirmed,
    Frame,
    Notification,
    Progress,
    Resync,
    Update,
    topic_key,
)
from clicktrace.notify._hub import (
    MAX_HELD_FRAMES,
    Hub,
    PeerCap,
    RedisFanout,
    TooManyConnections,
    _decode,
)
from clicktrace.notify._replay import MemoryReplayBuffer, connect_redis
from clicktrace.testing import unique_name


class Socket:
    def __init__(self) -> None:
        self.sent: list[Frame] = []

    async def send(self, frame: Frame) -> None:
        self.sent.append(frame)

    def seqs(self) -> list[int]:
        return [f.seq for f in self.sent if f.seq is not None]


async def fill(buffer: MemoryReplayBuffer, cid: str, n: int) -> list[Notification]:
    return [await buffer.append(cid, Progress(correlation_id=cid)) for _ in range(n)]


async def test_resume_replays_then_goes_live_without_repeats() -> None:
    buffer = MemoryReplayBuffer()
    hub, sock, cid = Hub(buffer), Socket(), new_id()
    frames = await fill(buffer, cid, 3)
    delivery = hub.attach("s1", cid, sock.send, last_seq=1)
    # Live frames offered before resume are held, even ones the replay also covers.
    await hub.dispatch(cid, frames[2])
    live = await buffer.append(cid, Confirmed(correlation_id=cid))
    await hub.dispatch(cid, live)
    assert sock.sent == []
    await delivery.resume()
    assert sock.seqs() == [2, 3, 4]
    await hub.dispatch(cid, live)  # a duplicate (e.g. from a second fan-out path)
    assert sock.seqs() == [2, 3, 4]


async def test_gap_is_filled_from_the_buffer() -> None:
    buffer = MemoryReplayBuffer()
    hub, sock, cid = Hub(buffer), Socket(), new_id()
    await hub.attach("s1", cid, sock.send, last_seq=0).resume()
    frames = await fill(buffer, cid, 3)
    await hub.dispatch(cid, frames[2])  # 1 and 2 were published late, out of order
    assert sock.seqs() == [1, 2, 3]
    await hub.dispatch(cid, frames[0])
    await hub.dispatch(cid, frames[1])
    assert sock.seqs() == [1, 2, 3]


async def test_uncoverable_gap_sends_resync() -> None:
    buffer = MemoryReplayBuffer(max_frames=2)
    hub, sock, cid = Hub(buffer), Socket(), new_id()
    await fill(buffer, cid, 5)
    await hub.attach("s1", cid, sock.send, last_seq=1).resume()
    assert sock.sent == [Resync(seq=5, epoch=await buffer.epoch(cid))]
    frames = await fill(buffer, cid, 1)
    await hub.dispatch(cid, frames[0])
    assert sock.seqs() == [5, 6]


async def test_only_the_clients_own_connections_receive() -> None:
    buffer = MemoryReplayBuffer()
    hub = Hub(buffer)
    mine, other, cid = Socket(), Socket(), new_id()
    await hub.attach("a", cid, mine.send, 0).resume()
    await hub.attach("b", new_id(), other.send, 0).resume()
    await hub.dispatch(cid, (await fill(buffer, cid, 1))[0])
    assert mine.seqs() == [1] and other.sent == []
    assert hub.connections(cid) == 1 and len(hub) == 2
    hub.detach("a")
    hub.detach("a")
    assert hub.connections(cid) == 0 and hub.get("a") is None


async def test_a_broken_socket_does_not_starve_the_others(caplog: pytest.LogCaptureFixture) -> None:
    buffer = MemoryReplayBuffer()
    hub, good, cid = Hub(buffer), Socket(), new_id()

    async def broken(frame: Frame) -> None:
        raise ConnectionError("gone")

    await hub.attach("bad", cid, broken, 0).resume()
    await hub.attach("good", cid, good.send, 0).resume()
    await hub.dispatch(cid, (await fill(buffer, cid, 1))[0])
    assert good.seqs() == [1]
    assert "delivery to a socket failed" in caplog.text


async def test_refresh_all_catches_up_after_lost_live_frames() -> None:
    buffer = MemoryReplayBuffer()
    hub, sock, cid = Hub(buffer), Socket(), new_id()
    await hub.attach("s", cid, sock.send, 0).resume()
    await fill(buffer, cid, 2)  # published while the fan-out was down: never dispatched
    await hub.refresh_all()
    assert sock.seqs() == [1, 2]


async def test_concurrent_offers_keep_order() -> None:
    buffer = MemoryReplayBuffer()
    hub, cid = Hub(buffer), new_id()
    sent: list[int] = []

    async def slow(frame: Frame) -> None:
        await asyncio.sleep(0)
        sent.append(frame.seq or 0)

    await hub.attach("s", cid, slow, 0).resume()
    frames = await fill(buffer, cid, 20)
    await asyncio.gather(*(hub.dispatch(cid, f) for f in frames))
    assert sent == list(range(1, 21))


async def test_the_sweep_delivers_frames_that_pub_sub_lost() -> None:
    buffer = MemoryReplayBuffer()
    hub, cid = Hub(buffer, sweep_seconds=0.02), new_id()
    got: asyncio.Queue[Frame] = asyncio.Queue()
    try:
        await hub.attach("s", cid, got.put, 0).resume()
        await fill(buffer, cid, 2)  # never dispatched: lost on the way
        first = await asyncio.wait_for(got.get(), 10)
        second = await asyncio.wait_for(got.get(), 10)
        assert [first.seq, second.seq] == [1, 2]
    finally:
        await hub.aclose()
    await hub.aclose()  # idempotent


def test_sweep_seconds_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Hub(MemoryReplayBuffer(), sweep_seconds=0)


async def test_a_client_has_a_connection_cap() -> None:
    hub, sock, cid = Hub(MemoryReplayBuffer(), max_per_client=2), Socket(), new_id()
    hub.attach("a", cid, sock.send, 0)
    hub.attach("b", cid, sock.send, 0)
    hub.attach("b", cid, sock.send, 0)  # the same connection again is not another one
    with pytest.raises(TooManyConnections):
        hub.attach("c", cid, sock.send, 0)
    hub.attach("c", new_id(), sock.send, 0)  # other clients are not affected
    hub.detach("a")
    hub.attach("c2", cid, sock.send, 0)
    with pytest.raises(ValueError):
        Hub(MemoryReplayBuffer(), max_per_client=0)


async def test_frames_held_during_a_slow_replay_are_bounded() -> None:
    buffer = MemoryReplayBuffer(max_frames=4 * MAX_HELD_FRAMES)
    hub, sock, cid = Hub(buffer), Socket(), new_id()
    delivery = hub.attach("s", cid, sock.send, 0)
    for frame in await fill(buffer, cid, MAX_HELD_FRAMES + 50):
        await hub.dispatch(cid, frame)
    assert len(delivery._held or ()) == MAX_HELD_FRAMES
    await delivery.resume()
    assert sock.seqs() == list(range(1, MAX_HELD_FRAMES + 51))


async def test_a_client_presenting_an_old_epoch_gets_a_resync_then_the_new_numbering() -> None:
    before, after = MemoryReplayBuffer(), MemoryReplayBuffer()  # one process, then the next
    cid = new_id()
    seen = await fill(before, cid, 2)
    # Outcomes the restarted process numbered before it read this client's hello (commands
    # accepted while the socket was connecting): the resync must not skip them.
    numbered = await fill(after, cid, 3)
    hub, sock = Hub(after), Socket()
    await hub.attach("s1", cid, sock.send, last_seq=2, epoch=seen[-1].epoch).resume()
    epoch = await after.epoch(cid)
    assert sock.sent == [Resync(seq=0, epoch=epoch), *numbered]
    live = await after.append(cid, Confirmed(correlation_id=cid))
    await hub.dispatch(cid, live)
    assert sock.seqs() == [0, 1, 2, 3, 4]


async def test_live_frames_of_a_new_epoch_are_delivered_not_taken_for_repeats() -> None:
    from clicktrace.notify._replay import RedisReplayBuffer

    buffer = RedisReplayBuffer("redis://127.0.0.1:6379/0", prefix=unique_name("replay"))
    hub, sock, cid = Hub(buffer), Socket(), new_id()
    try:
        await hub.attach("s1", cid, sock.send, last_seq=0).resume()
        for _ in range(3):
            await hub.dispatch(cid, await buffer.append(cid, Progress(correlation_id=cid)))
        await buffer._redis.delete(*buffer._keys(cid))  # Redis flushed (or evicted) it
        fresh = await buffer.append(cid, Confirmed(correlation_id=cid))
        await hub.dispatch(cid, fresh)
        assert sock.seqs() == [1, 2, 3, 1]
        assert sock.sent[-1] == fresh and fresh.epoch != sock.sent[0].epoch
    finally:
        await buffer.aclose()


# The cap per peer address (sockets awaiting their token, or authenticated).


async def test_the_cap_is_per_peer_and_releasing_frees_a_place() -> None:
    pending = PeerCap(2)
    assert pending.admit("a1", "10.0.0.1") and pending.admit("a2", "10.0.0.1")
    assert not pending.admit("a3", "10.0.0.1")
    assert pending.admit("b1", "10.0.0.2")
    assert pending.admit("a1", "10.0.0.1")  # already counted: not twice
    pending.release("a1")
    pending.release("a1")  # idempotent
    assert pending.count("10.0.0.1") == 1 and "a1" not in pending
    assert pending.admit("a3", "10.0.0.1")


async def test_a_key_that_is_not_released_in_time_expires_once() -> None:
    expired: list[Hashable] = []
    done = asyncio.Event()

    async def on_expire(key: Hashable) -> None:
        expired.append(key)
        done.set()

    pending = PeerCap(4, timeout=0.01, on_expire=on_expire)
    pending.admit("slow", "p")
    pending.admit("quick", "p")
    pending.release("quick")
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.sleep(0.05)
    assert expired == ["slow"] and pending.count("p") == 0
    await pending.aclose()


@pytest.mark.parametrize(
    "kwargs", [{"max_per_peer": 0}, {"max_per_peer": True}, {"max_per_peer": 1, "timeout": 0}]
)
def test_nonsense_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PeerCap(**kwargs)  # type: ignore[arg-type]


# Fan-out between nodes.

REDIS_URL = "redis://127.0.0.1:6379/0"


WAIT = 10.0


SECRET = "clicktrace-test-secret-0123456789"


class QueueSocket:
    def __init__(self) -> None:
        self.frames: asyncio.Queue[Frame] = asyncio.Queue()

    async def send(self, frame: Frame) -> None:
        await self.frames.put(frame)

    async def next(self) -> Frame:
        return await asyncio.wait_for(self.frames.get(), WAIT)


async def test_frames_reach_the_hub_and_garbage_is_dropped(channel: str) -> None:
    buffer = MemoryReplayBuffer()
    hub, sock, cid = Hub(buffer), QueueSocket(), new_id()
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
        frame = await buffer.append(cid, Progress(correlation_id=cid))
        await fanout.publish(cid, frame)
        assert await sock.next() == frame  # the listener survived the junk before it
    finally:
        await fanout.aclose()
        await raw.aclose()


async def test_after_losing_redis_the_listener_resubscribes_and_catches_up(channel: str) -> None:
    buffer = MemoryReplayBuffer()
    hub, sock, cid = Hub(buffer), QueueSocket(), new_id()
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
        await buffer.append(cid, Progress(correlation_id=cid))
        # ... but once subscribed again, every local connection catches up from the buffer.
        assert (await sock.next()).seq == 1
    finally:
        await fanout.aclose()
        await admin.aclose()


def test_decode() -> None:
    cid, corr = new_id(), new_id()
    message = (
        b'{"client_id": "%s", "frame": {"status": "progress", "correlation_id": "%s", "seq": 2}}'
    )
    assert _decode(message % (cid.lower().encode(), corr.encode())) == (
        cid,
        Progress(correlation_id=corr, seq=2),
    )
    unnumbered = b'{"client_id": "%s", "frame": {"status": "progress", "correlation_id": "%s"}}'
    assert _decode(unnumbered % (cid.encode(), corr.encode())) is None
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
        Notifier(
            TokenSigner(SECRET),
            WebSocketTransport(redis_url=REDIS_URL),
            replay=Replay(redis_url=REDIS_URL),
        )
    with pytest.raises(ImportError, match=r"clicktrace\[redis\]"):
        Notifier(
            TokenSigner(SECRET),
            SocketIOTransport(redis_url=REDIS_URL),
            replay=Replay(redis_url=REDIS_URL),
        )


# Topics: each watch is a delivery of its own over the topic's numbering.


async def test_an_update_reaches_the_watchers_of_its_topic_and_no_one_else() -> None:
    buffer = MemoryReplayBuffer()
    hub, cid = Hub(buffer), new_id()
    watcher, bystander = Socket(), Socket()
    await hub.attach("w", cid, watcher.send, 0).resume()
    await hub.attach("b", cid, bystander.send, 0).resume()
    await hub.watch("w", "seats", 0, None)
    update = await buffer.append(topic_key("seats"), Update(topic="seats", correlation_id=cid))
    await hub.route("", update)
    await hub.route("", update)  # twice (two fan-out paths): sent once
    assert watcher.sent == [update] and bystander.sent == []
    hub.unwatch("w", "seats")
    hub.unwatch("w", "seats")  # idempotent
    await hub.route("", await buffer.append(topic_key("seats"), update))
    assert watcher.sent == [update] and hub.watchers("seats") == 0


async def test_a_socket_that_leaves_takes_its_watches_and_the_hook_sees_its_user() -> None:
    asked: list[tuple[str, str, str | None]] = []

    async def may_watch(client_id: str, topic: str, user: str | None) -> bool:
        asked.append((client_id, topic, user))
        return True

    hub, sock, cid = Hub(MemoryReplayBuffer(), may_watch=may_watch), Socket(), new_id()
    await hub.attach("s", cid, sock.send, 0, user="ann").resume()
    await hub.watch("s", "a", 0, None)
    await hub.watch("s", "b", 0, None)
    assert asked == [(cid, "a", "ann"), (cid, "b", "ann")]
    hub.detach("s")
    assert (hub.watchers("a"), hub.watchers("b"), len(hub)) == (0, 0, 0)
    await hub.watch("s", "c", 0, None)  # a socket no longer attached: nothing
    assert hub.watchers("c") == 0 and len(asked) == 2
