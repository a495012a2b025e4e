from __future__ import annotations

import asyncio

import pytest

from clicktrace.ids import new_id
from clicktrace.notify.delivery import Hub, TooManyConnections
from clicktrace.notify.frames import Frame
from clicktrace.notify.replay import MemoryReplayBuffer
from clicktrace.notify.socket_delivery import MAX_HELD_FRAMES
from clicktrace.testing import unique_name


class Socket:
    def __init__(self) -> None:
        self.sent: list[Frame] = []

    async def send(self, frame: Frame) -> None:
        self.sent.append(frame)

    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.sent]


async def fill(buffer: MemoryReplayBuffer, cid: str, n: int) -> list[Frame]:
    return [
        await buffer.append(cid, {"correlation_id": cid, "status": "progress"}) for _ in range(n)
    ]


async def test_resume_replays_then_goes_live_without_repeats() -> None:
    buffer = MemoryReplayBuffer()
    hub, sock, cid = Hub(buffer), Socket(), new_id()
    frames = await fill(buffer, cid, 3)
    delivery = hub.attach("s1", cid, sock.send, last_seq=1)
    # Live frames offered before resume are held, even ones the replay also covers.
    await hub.dispatch(cid, frames[2])
    live = await buffer.append(cid, {"correlation_id": cid, "status": "confirmed"})
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
    assert sock.sent == [{"status": "resync", "seq": 5, "epoch": await buffer.epoch(cid)}]
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
        sent.append(frame["seq"])

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
        assert [first["seq"], second["seq"]] == [1, 2]
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
    await hub.attach("s1", cid, sock.send, last_seq=2, epoch=seen[-1]["epoch"]).resume()
    epoch = await after.epoch(cid)
    assert sock.sent == [{"status": "resync", "seq": 0, "epoch": epoch}, *numbered]
    live = await after.append(cid, {"correlation_id": cid, "status": "confirmed"})
    await hub.dispatch(cid, live)
    assert sock.seqs() == [0, 1, 2, 3, 4]


async def test_live_frames_of_a_new_epoch_are_delivered_not_taken_for_repeats() -> None:
    from clicktrace.notify.replay_redis import RedisReplayBuffer

    buffer = RedisReplayBuffer("redis://127.0.0.1:6379/0", prefix=unique_name("replay"))
    hub, sock, cid = Hub(buffer), Socket(), new_id()
    try:
        await hub.attach("s1", cid, sock.send, last_seq=0).resume()
        for _ in range(3):
            await hub.dispatch(
                cid, await buffer.append(cid, {"correlation_id": cid, "status": "progress"})
            )
        await buffer._redis.delete(*buffer._keys(cid))  # Redis flushed (or evicted) it
        fresh = await buffer.append(cid, {"correlation_id": cid, "status": "confirmed"})
        await hub.dispatch(cid, fresh)
        assert sock.seqs() == [1, 2, 3, 1]
        assert sock.sent[-1] == fresh and fresh["epoch"] != sock.sent[0]["epoch"]
    finally:
        await buffer.aclose()
