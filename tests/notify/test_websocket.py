"""The WebSocket transport against a real uvicorn server with real ``websockets`` clients."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from clicktrace.ids import new_id
from clicktrace.notify import (
    Limits,
    MemoryReplayBuffer,
    Notifier,
    Replay,
    TokenSigner,
    WebSocketTransport,
)
from clicktrace.notify._frames import Notification, Progress

SECRET = "clicktrace-test-secret-0123456789"
Serve = Callable[[ASGIApp], Awaitable[str]]
WAIT = 10.0


async def start(serve: Serve, **kwargs: Any) -> tuple[Notifier, str]:
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport(), **kwargs)
    url = await serve(notifier.asgi(Starlette(routes=notifier.routes)))
    return notifier, url


async def session(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        response = await http.post(url + "/clicktrace/session", headers=headers)
    body: dict[str, Any] = response.json()
    return body


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://") + "/clicktrace/ws"


async def recv(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return frame


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), WAIT)
    rcvd = info.value.rcvd
    assert rcvd is not None
    return rcvd.code, rcvd.reason


async def test_a_tab_receives_its_notifications_in_the_v1_payload(serve: Serve) -> None:
    notifier, url = await start(serve)
    s = await session(url)
    corr = new_id()
    async with connect(ws_url(url)) as ws:
        await ws.send(json.dumps({"token": s["token"], "last_seq": 0}))
        await notifier.notify(
            s["client_id"],
            correlation_id=corr,
            status="rejected",
            type="ProductRenamed",
            error={"code": "name_taken", "message": "taken"},
        )
        epoch = await notifier.hub.buffer.epoch(s["client_id"])
        assert await recv(ws) == {
            "seq": 1,
            "epoch": epoch,
            "correlation_id": corr,
            "status": "rejected",
            "type": "ProductRenamed",
            "error": {"code": "name_taken", "message": "taken"},
        }


@pytest.mark.parametrize(
    ("hello", "code", "reason"),
    [
        (b"\x00binary", 1003, "expected_text"),
        ("x" * 5000, 1009, "frame_too_large"),
        ('{"token": "' + "é" * 1500 + '"}', 1009, "frame_too_large"),  # 2 bytes each
        ("{not json", 1008, "invalid_hello"),
        ('{"token": 5}', 1008, "invalid_hello"),
        ('{"token": "v1.a.b"}', 1008, "invalid_token"),
    ],
)
async def test_bad_hello_closes_with_a_reason(
    serve: Serve, hello: str | bytes, code: int, reason: str
) -> None:
    _, url = await start(serve)
    async with connect(ws_url(url)) as ws:
        await ws.send(hello)
        assert await closed_with(ws) == (code, reason)


async def test_no_hello_in_time_closes(serve: Serve) -> None:
    _, url = await start(serve, limits=Limits(hello_timeout_seconds=0.1))
    async with connect(ws_url(url)) as ws:
        assert await closed_with(ws) == (1008, "hello_timeout")


async def test_frames_after_the_hello_close_the_connection(serve: Serve) -> None:
    notifier, url = await start(serve)
    s = await session(url)
    async with connect(ws_url(url)) as ws:
        await ws.send(json.dumps({"token": s["token"]}))
        await ws.send(json.dumps({"join": new_id()}))
        assert await closed_with(ws) == (1008, "unexpected_frame")
    assert len(notifier.hub) == 0


async def test_an_adversary_who_knows_the_ids_gets_nothing(serve: Serve) -> None:
    notifier, url = await start(serve)
    victim_s = await session(url)
    victim_id, corr = victim_s["client_id"], new_id()
    forged = TokenSigner("another-secret-0123456789abcdef").issue(victim_id).token
    async with connect(ws_url(url)) as victim:
        await victim.send(json.dumps({"token": victim_s["token"]}))
        for hello in (
            {"token": victim_id},
            {"token": forged},
            {"client_id": victim_id},
            {"token": corr, "client_id": victim_id},
        ):
            async with connect(ws_url(url)) as intruder:
                await intruder.send(json.dumps(hello))
                assert (await closed_with(intruder))[0] == 1008
        spy_s = await session(url)
        async with connect(ws_url(url)) as spy:
            await spy.send(json.dumps({"token": spy_s["token"]}))
            await notifier.notify(
                victim_id, correlation_id=corr, status="progress", data={"secret": 1}
            )
            await notifier.notify(spy_s["client_id"], correlation_id=new_id(), status="progress")
            first = await recv(spy)  # ordered: had the victim's frame come, it came first
            assert first["seq"] == 1 and "data" not in first
        assert (await recv(victim))["data"] == {"secret": 1}


async def test_disconnect_mid_flight_then_resume_delivers_each_once(serve: Serve) -> None:
    notifier, url = await start(serve)
    s = await session(url)
    total, seen = 60, list[int]()

    async def produce() -> None:
        for _ in range(total):
            await notifier.notify(s["client_id"], correlation_id=new_id(), status="progress")
            await asyncio.sleep(0)

    # max_queue=None: a client that stops reading with a full queue would not see the
    # server's close reply until its close_timeout.
    async with connect(ws_url(url), max_queue=None) as ws:
        await ws.send(json.dumps({"token": s["token"], "last_seq": 0}))
        producer = asyncio.create_task(produce())
        while len(seen) < 10:
            seen.append((await recv(ws))["seq"])
    async with connect(ws_url(url)) as ws:
        await ws.send(json.dumps({"token": s["token"], "last_seq": seen[-1]}))
        while seen[-1] < total:
            seen.append((await recv(ws))["seq"])
        await producer
        await notifier.notify(s["client_id"], correlation_id=new_id(), status="confirmed")
        assert (await recv(ws))["seq"] == total + 1  # nothing repeated before it
    assert seen == list(range(1, total + 1))


async def test_a_gap_the_buffer_cannot_cover_asks_for_resync(serve: Serve) -> None:
    notifier, url = await start(serve, replay=Replay(max_frames=3))
    s = await session(url)
    for _ in range(7):
        await notifier.notify(s["client_id"], correlation_id=new_id(), status="progress")
    async with connect(ws_url(url)) as ws:
        await ws.send(json.dumps({"token": s["token"], "last_seq": 1}))
        epoch = await notifier.hub.buffer.epoch(s["client_id"])
        assert await recv(ws) == {"status": "resync", "seq": 7, "epoch": epoch}


def header_user(conn: HTTPConnection) -> str | None:
    return conn.headers.get("x-user")


async def test_a_token_bound_to_a_user_needs_that_user(serve: Serve) -> None:
    notifier, url = await start(serve, user_of=header_user)
    s = await session(url, headers={"x-user": "alice"})
    async with connect(ws_url(url), additional_headers={"x-user": "bob"}) as ws:
        await ws.send(json.dumps({"token": s["token"]}))
        assert await closed_with(ws) == (1008, "invalid_token")
    async with connect(ws_url(url), additional_headers={"x-user": "alice"}) as ws:
        await ws.send(json.dumps({"token": s["token"]}))
        await notifier.notify(s["client_id"], correlation_id=new_id(), status="progress")
        assert (await recv(ws))["seq"] == 1


async def test_a_client_that_does_not_read_is_closed(serve: Serve) -> None:
    notifier, url = await start(serve, replay=Replay(max_frames=2048))
    s = await session(url)
    async with connect(ws_url(url), max_queue=1) as ws:
        await ws.send(json.dumps({"token": s["token"]}))
        big = {"blob": "x" * 60_000}
        for _ in range(1200):  # more than the socket buffers plus the per-socket queue
            await notifier.notify(
                s["client_id"], correlation_id=new_id(), status="progress", data=big
            )
        code, reason = None, None
        try:
            while True:
                await asyncio.wait_for(ws.recv(), WAIT)
        except ConnectionClosed as exc:
            assert exc.rcvd is not None
            code, reason = exc.rcvd.code, exc.rcvd.reason
        assert (code, reason) == (1008, "too_slow")


async def test_a_client_cannot_pin_unbounded_sockets(serve: Serve) -> None:
    notifier, url = await start(serve, limits=Limits(max_connections_per_client=1))
    s = await session(url)
    async with connect(ws_url(url)) as first:
        await first.send(json.dumps({"token": s["token"]}))
        await notifier.notify(s["client_id"], correlation_id=new_id(), status="progress")
        await recv(first)  # the first socket is attached
        async with connect(ws_url(url)) as second:
            await second.send(json.dumps({"token": s["token"]}))
            assert await closed_with(second) == (1008, "too_many_connections")


class BrokenBuffer(MemoryReplayBuffer):
    async def since(
        self, client_id: str, last_seq: int, epoch: str | None = None
    ) -> list[Notification] | None:
        raise ConnectionError("buffer unreachable")


async def test_a_replay_that_fails_closes_the_socket(serve: Serve) -> None:
    _, url = await start(serve, replay=Replay(buffer=BrokenBuffer()))
    s = await session(url)
    async with connect(ws_url(url)) as ws:
        await ws.send(json.dumps({"token": s["token"]}))
        assert await closed_with(ws) == (1011, "unavailable")


async def test_an_expired_token_is_refused(serve: Serve) -> None:
    _, url = await start(serve)
    two_days_ago = TokenSigner(SECRET, ttl_seconds=86400, clock=lambda: time.time() - 172800)
    async with connect(ws_url(url)) as ws:
        await ws.send(json.dumps({"token": two_days_ago.issue().token}))
        assert await closed_with(ws) == (1008, "invalid_token")


def failing_user(conn: HTTPConnection) -> str | None:
    if conn.headers.get("x-user") == "boom":
        raise RuntimeError("the session store is down")
    return conn.headers.get("x-user")


async def test_a_failing_user_hook_closes_the_socket(serve: Serve) -> None:
    _, url = await start(serve, user_of=failing_user)
    s = await session(url, headers={"x-user": "alice"})
    async with connect(ws_url(url), additional_headers={"x-user": "boom"}) as ws:
        await ws.send(json.dumps({"token": s["token"]}))
        assert await closed_with(ws) == (1011, "unavailable")


async def test_after_a_restart_a_tab_presenting_its_old_epoch_gets_a_resync(
    serve: Serve,
) -> None:
    # The tab saw seq 1-2 from the previous process (its epoch); this process has numbered
    # three new outcomes 1-3. Without epochs the tab would get seq 3 alone; with them it gets a
    # resync and all three.
    previous = MemoryReplayBuffer()
    old_epoch = (await previous.append(new_id(), Progress(correlation_id=new_id()))).epoch
    notifier, url = await start(serve)
    s = await session(url)
    for _ in range(3):
        await notifier.notify(s["client_id"], correlation_id=new_id(), status="confirmed")
    epoch = await notifier.hub.buffer.epoch(s["client_id"])
    async with connect(ws_url(url)) as ws:
        await ws.send(json.dumps({"token": s["token"], "last_seq": 2, "epoch": old_epoch}))
        assert await recv(ws) == {"status": "resync", "seq": 0, "epoch": epoch}
        assert [(await recv(ws))["seq"] for _ in range(3)] == [1, 2, 3]
        await notifier.notify(s["client_id"], correlation_id=new_id(), status="confirmed")
        after = await recv(ws)
        assert (after["seq"], after["epoch"]) == (4, epoch)


async def test_sockets_awaiting_their_hello_are_capped_per_peer(serve: Serve) -> None:
    notifier, url = await start(serve, limits=Limits(max_pending_per_peer=2))
    async with connect(ws_url(url)) as first, connect(ws_url(url)):
        async with connect(ws_url(url)) as third:
            assert await closed_with(third) == (1008, "too_many_pending")
        s = await session(url)
        await first.send(json.dumps({"token": s["token"]}))  # authenticated: frees a place
        await notifier.notify(s["client_id"], correlation_id=new_id(), status="confirmed")
        assert (await recv(first))["seq"] == 1
        async with connect(ws_url(url)) as fourth:
            await fourth.send(json.dumps({"token": s["token"]}))
            assert (await recv(fourth))["seq"] == 1


async def test_one_address_cannot_pin_unbounded_authenticated_sockets(serve: Serve) -> None:
    """Issue 19: a client id per session and 16 sockets per client id let one address hold
    1,424 authenticated sockets in a minute. Each socket here has a client id of its own."""
    notifier, url = await start(serve, limits=Limits(max_connections_per_peer=3))
    sessions = [await session(url) for _ in range(5)]
    opened: list[ClientConnection] = []
    try:
        for s in sessions[:3]:
            ws = await connect(ws_url(url))
            opened.append(ws)
            await ws.send(json.dumps({"token": s["token"]}))
            await notifier.notify(s["client_id"], correlation_id=new_id(), status="progress")
            await recv(ws)  # attached
        async with connect(ws_url(url)) as fourth:
            await fourth.send(json.dumps({"token": sessions[3]["token"]}))
            assert await closed_with(fourth) == (1008, "too_many_connections")
        # One closes: its place is free again.
        await opened.pop().close()
        deadline = time.monotonic() + WAIT
        while True:
            async with connect(ws_url(url)) as fifth:
                await fifth.send(json.dumps({"token": sessions[4]["token"]}))
                await notifier.notify(
                    sessions[4]["client_id"], correlation_id=new_id(), status="progress"
                )
                try:
                    await recv(fifth)  # attached: a frame (live or replayed) arrives
                    break
                except ConnectionClosed:  # the server had not seen the close yet
                    assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        for ws in opened:
            await ws.close()


def test_the_per_peer_cap_must_be_a_positive_int() -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_connections_per_peer"):
            Limits(max_connections_per_peer=bad)  # type: ignore[arg-type]
