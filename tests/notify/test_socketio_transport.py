"""Socket.IO transport against a real uvicorn server with real python-socketio clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import socketio
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp

from clicktrace.ids import new_id
from clicktrace.notify import (
    MemoryReplayBuffer,
    Notifier,
    TokenSigner,
    TransportFactory,
    TransportName,
    transports,
)

SECRET = "clicktrace-test-secret-0123456789"
Serve = Callable[[ASGIApp], Awaitable[str]]
Tabs = Callable[[], "SioTab"]


class SioTab:
    """A python-socketio client standing in for one browser tab."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.client.on("clicktrace", self.frames.put)

    async def connect(self, url: str, auth: Any) -> None:
        await self.client.connect(url, auth=auth, transports=["websocket"], wait_timeout=10)

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.frames.get(), 10)

    async def close(self) -> None:
        await self.client.disconnect()


@pytest.fixture
async def tabs() -> AsyncIterator[Tabs]:
    made: list[SioTab] = []

    def make() -> SioTab:
        made.append(SioTab())
        return made[-1]

    yield make
    for tab in made:
        await tab.close()


async def start(serve: Serve, **kwargs: Any) -> tuple[Notifier, str]:
    notifier = Notifier(TokenSigner(SECRET), transports.socketio(), **kwargs)
    url = await serve(notifier.asgi(Starlette(routes=notifier.routes)))
    return notifier, url


APP = "https://app.example"


@pytest.mark.parametrize(
    ("transport", "keywords"),
    [
        (transports.socketio(cors_allowed_origins=[APP]), {}),
        ("socketio", {"cors_allowed_origins": [APP]}),
    ],
    ids=["object", "shorthand"],
)
async def test_cors_allowed_origins_reach_python_socketio(
    serve: Serve, transport: TransportFactory | TransportName, keywords: dict[str, Any]
) -> None:
    notifier = Notifier(TokenSigner(SECRET), transport, **keywords)
    url = await serve(notifier.asgi(Starlette(routes=notifier.routes)))
    handshake = url + "/socket.io/?EIO=4&transport=polling"
    try:
        async with httpx.AsyncClient() as http:
            allowed = await http.get(handshake, headers={"Origin": APP})
            other = await http.get(handshake, headers={"Origin": "https://elsewhere.example"})
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == APP
        assert other.status_code == 400
    finally:
        await notifier.aclose()


async def session(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        response = await http.post(url + "/clicktrace/session", headers=headers)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def test_a_tab_receives_its_notifications(serve: Serve, tabs: Tabs) -> None:
    notifier, url = await start(serve)
    s = await session(url)
    tab = tabs()
    await tab.connect(url, {"token": s["token"], "last_seq": 0})
    corr = new_id()
    seq = await notifier.notify(
        s["client_id"],
        correlation_id=corr,
        status="confirmed",
        type="ProductRenamed",
        data={"id": 1, "name": "x"},
    )
    frame = await tab.next()
    assert seq == 1
    epoch = await notifier.hub.buffer.epoch(s["client_id"])
    assert frame == {
        "seq": 1,
        "epoch": epoch,
        "correlation_id": corr,
        "status": "confirmed",
        "type": "ProductRenamed",
        "data": {"id": 1, "name": "x"},
    }


async def test_notifications_before_connect_are_replayed(serve: Serve, tabs: Tabs) -> None:
    notifier, url = await start(serve)
    s = await session(url)
    corr = new_id()
    await notifier.notify(s["client_id"], correlation_id=corr, status="progress")
    tab = tabs()
    await tab.connect(url, {"token": s["token"]})
    await notifier.notify(s["client_id"], correlation_id=corr, status="confirmed")
    assert [(await tab.next())["status"] for _ in range(2)] == ["progress", "confirmed"]


@pytest.mark.parametrize(
    "auth",
    [None, {}, {"token": "v1.bogus.sig"}, {"token": 7}, {"token": "t", "last_seq": -1}, "token"],
)
async def test_without_a_valid_token_no_connection(serve: Serve, auth: Any) -> None:
    _, url = await start(serve)
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, auth=auth, transports=["websocket"], wait_timeout=10)
    await client.disconnect()
    assert errors == [{"message": "invalid_token"}]  # what protocol v1 promises the browser


async def test_an_adversary_who_knows_the_ids_gets_nothing(serve: Serve, tabs: Tabs) -> None:
    notifier, url = await start(serve)
    victim_session = await session(url)
    victim_id = victim_session["client_id"]
    victim = tabs()
    await victim.connect(url, {"token": victim_session["token"]})
    victim_corr = new_id()
    await notifier.notify(victim_id, correlation_id=victim_corr, status="progress")
    assert (await victim.next())["correlation_id"] == victim_corr

    # Everything the adversary can build from the victim's client id and correlation id.
    forged = TokenSigner("another-secret-0123456789abcdef").issue(victim_id).token
    for auth in (
        {"token": victim_id},
        {"token": victim_corr},
        {"token": forged},
        {"client_id": victim_id, "token": victim_id},
        {"token": victim_session["token"][:-4] + "AAAA"},
    ):
        intruder = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await intruder.connect(url, auth=auth, transports=["websocket"], wait_timeout=10)
        await intruder.disconnect()

    # With a session of its own, asking to join the victim's room gets it disconnected.
    own = await session(url)
    adversary = tabs()
    await adversary.connect(url, {"token": own["token"]})
    gone = asyncio.Event()
    adversary.client.on("disconnect", gone.set)
    await adversary.client.emit("join", {"room": victim_id, "correlation_id": victim_corr})
    await asyncio.wait_for(gone.wait(), 10)

    # A fresh adversary session, to prove by ordering that the victim's frame never came.
    spy = tabs()
    spy_session = await session(url)
    await spy.connect(url, {"token": spy_session["token"]})
    await notifier.notify(
        victim_id, correlation_id=victim_corr, status="confirmed", data={"secret": 1}
    )
    await notifier.notify(spy_session["client_id"], correlation_id=new_id(), status="progress")
    first = await spy.next()
    assert first["seq"] == 1 and "data" not in first
    assert (await victim.next())["data"] == {"secret": 1}
    assert adversary.frames.empty() and spy.frames.empty()


async def test_disconnect_mid_flight_then_resume_delivers_each_once(
    serve: Serve, tabs: Tabs
) -> None:
    notifier, url = await start(serve)
    s = await session(url)
    total, seen = 60, list[int]()
    tab = tabs()
    await tab.connect(url, {"token": s["token"], "last_seq": 0})

    async def produce() -> None:
        for _ in range(total):
            await notifier.notify(s["client_id"], correlation_id=new_id(), status="progress")
            await asyncio.sleep(0)

    producer = asyncio.create_task(produce())
    while len(seen) < 10:
        seen.append((await tab.next())["seq"])
    await tab.close()  # notifications keep coming while the tab is away
    while not tab.frames.empty():
        seen.append(tab.frames.get_nowait()["seq"])
    again = tabs()
    await again.connect(url, {"token": s["token"], "last_seq": seen[-1]})
    while seen[-1] < total:
        seen.append((await again.next())["seq"])
    await producer
    assert seen == list(range(1, total + 1))
    assert again.frames.empty()


async def test_a_gap_the_buffer_cannot_cover_asks_for_resync(serve: Serve, tabs: Tabs) -> None:
    notifier, url = await start(serve, replay_max_frames=4)
    s = await session(url)
    for _ in range(10):
        await notifier.notify(s["client_id"], correlation_id=new_id(), status="progress")
    tab = tabs()
    await tab.connect(url, {"token": s["token"], "last_seq": 2})
    epoch = await notifier.hub.buffer.epoch(s["client_id"])
    assert await tab.next() == {"status": "resync", "seq": 10, "epoch": epoch}
    await notifier.notify(s["client_id"], correlation_id=new_id(), status="confirmed")
    assert (await tab.next())["seq"] == 11


async def test_two_tabs_of_one_client_both_receive(serve: Serve, tabs: Tabs) -> None:
    notifier, url = await start(serve)
    s = await session(url)
    one, two = tabs(), tabs()
    await one.connect(url, {"token": s["token"]})
    await two.connect(url, {"token": s["token"]})
    await notifier.notify(s["client_id"], correlation_id=new_id(), status="progress")
    assert (await one.next())["seq"] == (await two.next())["seq"] == 1


def header_user(conn: HTTPConnection) -> str | None:
    return conn.headers.get("x-user")


async def test_a_token_bound_to_a_user_needs_that_user(serve: Serve, tabs: Tabs) -> None:
    notifier, url = await start(serve, user_of=header_user)
    s = await session(url, headers={"x-user": "alice"})
    stolen = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await stolen.connect(
            url,
            auth={"token": s["token"]},
            headers={"x-user": "bob"},
            transports=["websocket"],
            wait_timeout=10,
        )
    await stolen.disconnect()
    tab = tabs()
    await tab.client.connect(
        url,
        auth={"token": s["token"]},
        headers={"x-user": "alice"},
        transports=["websocket"],
        wait_timeout=10,
    )
    await notifier.notify(s["client_id"], correlation_id=new_id(), status="progress")
    assert (await tab.next())["seq"] == 1


async def test_an_oversized_connect_packet_is_refused(serve: Serve) -> None:
    _, url = await start(serve)
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        # The server drops the connection; the bound only stops the client waiting longer.
        await client.connect(
            url, auth={"token": "x" * 100_000}, transports=["websocket"], wait_timeout=2
        )
    await client.disconnect()


async def test_other_events_still_reach_other_rooms(serve: Serve, tabs: Tabs) -> None:
    # The gate only takes clicktrace frames; the app's own emits are untouched.
    notifier, url = await start(serve)
    s = await session(url)
    tab = tabs()
    got: asyncio.Queue[Any] = asyncio.Queue()
    tab.client.on("custom", got.put)
    await tab.connect(url, {"token": s["token"]})
    await notifier.sio.emit("custom", {"hello": 1}, to=s["client_id"])
    assert await asyncio.wait_for(got.get(), 10) == {"hello": 1}


async def test_a_client_cannot_pin_unbounded_sockets(serve: Serve, tabs: Tabs) -> None:
    _, url = await start(serve, max_connections_per_client=1)
    s = await session(url)
    await tabs().connect(url, {"token": s["token"]})
    second = tabs()
    errors: list[Any] = []
    second.client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await second.connect(url, {"token": s["token"]})
    assert errors == [{"message": "too_many_connections"}]


class FlakyBuffer(MemoryReplayBuffer):
    """Replay fails twice (as if Redis were down), then works."""

    failures = 2

    async def since(
        self, client_id: str, last_seq: int, epoch: str | None = None
    ) -> list[dict[str, Any]] | None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("buffer unreachable")
        return await super().since(client_id, last_seq, epoch)


async def test_a_replay_that_fails_is_retried_on_the_same_socket(serve: Serve, tabs: Tabs) -> None:
    # socket.io-client does not come back after a server-side disconnect, so the server
    # keeps the socket and retries the replay.
    buffer = FlakyBuffer()
    notifier, url = await start(serve, buffer=buffer)
    s = await session(url)
    await notifier.notify(s["client_id"], correlation_id=new_id(), status="progress")
    tab = tabs()
    await tab.connect(url, {"token": s["token"]})
    await notifier.notify(s["client_id"], correlation_id=new_id(), status="confirmed")
    assert [(await tab.next())["seq"] for _ in range(2)] == [1, 2]
    assert buffer.failures == 0 and tab.client.connected


def failing_user(conn: HTTPConnection) -> str | None:
    if conn.headers.get("x-user") == "boom":
        raise RuntimeError("the session store is down")
    return conn.headers.get("x-user")


async def test_a_failing_user_hook_refuses_the_socket(serve: Serve) -> None:
    _, url = await start(serve, user_of=failing_user)
    s = await session(url, headers={"x-user": "alice"})
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            url,
            auth={"token": s["token"]},
            headers={"x-user": "boom"},
            transports=["websocket"],
            wait_timeout=10,
        )
    await client.disconnect()
    assert errors == [{"message": "unavailable"}]


async def test_an_expired_token_is_refused(serve: Serve) -> None:
    _, url = await start(serve)
    two_days_ago = TokenSigner(SECRET, ttl_seconds=86400, clock=lambda: time.time() - 172800)
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            url,
            auth={"token": two_days_ago.issue().token},
            transports=["websocket"],
            wait_timeout=10,
        )
    await client.disconnect()
    assert errors == [{"message": "invalid_token"}]


async def test_aclose_stops_pending_replay_retries(serve: Serve, tabs: Tabs) -> None:
    buffer = FlakyBuffer()
    buffer.failures = 10**6  # never recovers
    notifier, url = await start(serve, buffer=buffer)
    s = await session(url)
    tab = tabs()
    await tab.connect(url, {"token": s["token"]})
    retries = notifier.sio.manager._retries
    for _ in range(1000):  # the first replay runs just after the client sees CONNECT
        if retries:
            break
        await asyncio.sleep(0.01)
    assert len(retries) == 1
    await notifier.aclose()
    assert not retries


async def test_after_a_restart_a_tab_presenting_its_old_epoch_gets_a_resync(
    serve: Serve, tabs: Tabs
) -> None:
    # The tab saw seq 1-2 from the previous process (its epoch); this process has numbered
    # three new outcomes 1-3. Without epochs the tab would get seq 3 alone; with them it gets a
    # resync and all three.
    previous = MemoryReplayBuffer()
    old_epoch = (await previous.append(new_id(), {"status": "progress"}))["epoch"]
    notifier, url = await start(serve)
    s = await session(url)
    for _ in range(3):
        await notifier.notify(s["client_id"], correlation_id=new_id(), status="confirmed")
    epoch = await notifier.hub.buffer.epoch(s["client_id"])
    tab = tabs()
    await tab.connect(url, {"token": s["token"], "last_seq": 2, "epoch": old_epoch})
    # A resync to the new numbering's start, then everything it holds: none of the three
    # outcomes numbered before the hello is skipped.
    assert await tab.next() == {"status": "resync", "seq": 0, "epoch": epoch}
    assert [(await tab.next())["seq"] for _ in range(3)] == [1, 2, 3]
    await notifier.notify(s["client_id"], correlation_id=new_id(), status="confirmed")
    after = await tab.next()
    assert (after["seq"], after["epoch"]) == (4, epoch)


async def test_one_address_cannot_pin_unbounded_authenticated_sockets(
    serve: Serve, tabs: Tabs
) -> None:
    """Issue 19: a client id per session and 16 sockets per client id let one address hold
    1,424 authenticated sockets in a minute. Each socket here has a client id of its own."""
    _, url = await start(serve, max_connections_per_peer=3)
    sessions = [await session(url) for _ in range(5)]
    connected = []
    for s in sessions[:3]:
        tab = tabs()
        await tab.connect(url, {"token": s["token"]})
        connected.append(tab)
    fourth = tabs()
    errors: list[Any] = []
    fourth.client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await fourth.connect(url, {"token": sessions[3]["token"]})
    assert errors == [{"message": "too_many_connections"}]
    # One leaves: its place is free again (once the server has seen it go).
    await connected.pop().close()
    deadline = time.monotonic() + 10
    while True:
        fifth = tabs()
        try:
            await fifth.connect(url, {"token": sessions[4]["token"]})
            break
        except socketio.exceptions.ConnectionError:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
