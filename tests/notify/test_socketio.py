"""Socket.IO against a real uvicorn server with real python-socketio clients; the gated
python-socketio managers; hostile Engine.IO / Socket.IO input from raw HTTP, raw WebSocket and
python-socketio clients (answered, closed, one short warning line at most); and SIGTERM
stopping a real uvicorn process with real python-socketio clients connected, some of them
mid-poll, one hostile (an oversized POST and a session that never authenticates)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from engineio.payload import Payload
from hypothesis import given, settings
from hypothesis import strategies as st
from socketio.async_pubsub_manager import AsyncPubSubManager
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from clicktrace.ids import new_id, parse_id
from clicktrace.notify import (
    Limits,
    MemoryReplayBuffer,
    Notifier,
    Replay,
    SocketIOTransport,
    TokenSigner,
)
from clicktrace.notify._frames import Notification, Progress
from clicktrace.notify._socketio import POLLING_TYPES, _Gate, gated_manager, packet_ok, payload_ok
from clicktrace.testing import free_port

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
    notifier = Notifier(TokenSigner(SECRET), SocketIOTransport(), **kwargs)
    url = await serve(notifier.asgi(Starlette(routes=notifier.routes)))
    return notifier, url


APP = "https://app.example"


async def test_cors_allowed_origins_reach_python_socketio(serve: Serve) -> None:
    notifier = Notifier(TokenSigner(SECRET), SocketIOTransport(cors_allowed_origins=[APP]))
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
    notifier, url = await start(serve, replay=Replay(max_frames=4))
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
    _, url = await start(serve, limits=Limits(max_connections_per_client=1))
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
    ) -> list[Notification] | None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("buffer unreachable")
        return await super().since(client_id, last_seq, epoch)


async def test_a_replay_that_fails_is_retried_on_the_same_socket(serve: Serve, tabs: Tabs) -> None:
    # socket.io-client does not come back after a server-side disconnect, so the server
    # keeps the socket and retries the replay.
    buffer = FlakyBuffer()
    notifier, url = await start(serve, replay=Replay(buffer=buffer))
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
    notifier, url = await start(serve, replay=Replay(buffer=buffer))
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
    old_epoch = (await previous.append(new_id(), Progress(correlation_id=new_id()))).epoch
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
    _, url = await start(serve, limits=Limits(max_connections_per_peer=3))
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


# The gated managers.

REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.mark.parametrize(
    ("kwargs", "base"),
    [
        ({}, socketio.AsyncManager),
        ({"redis_url": REDIS_URL}, socketio.AsyncRedisManager),
        ({"amqp_url": AMQP_URL}, socketio.AsyncAioPikaManager),
    ],
)
def test_the_gate_sits_where_pub_sub_managers_deliver_locally(
    kwargs: dict[str, str], base: type
) -> None:
    manager = gated_manager(channel="ct-test", **kwargs)
    mro = type(manager).__mro__
    assert isinstance(manager, base) and isinstance(manager, _Gate)
    # Local delivery is super().emit from the pub/sub manager: the gate must come right after
    # it and before python-socketio's AsyncManager, or frames would bypass the hub.
    assert mro.index(_Gate) == mro.index(socketio.AsyncManager) - 1
    if base is not socketio.AsyncManager:
        assert mro.index(base) < mro.index(AsyncPubSubManager) < mro.index(_Gate)


def test_one_fan_out_only() -> None:
    with pytest.raises(ValueError):
        gated_manager(redis_url=REDIS_URL, amqp_url=AMQP_URL)


def test_without_aio_pika_installed_the_hint_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aio_pika", None)
    with pytest.raises(ImportError) as info:
        gated_manager(amqp_url=AMQP_URL)
    assert str(info.value) == "aio_pika is not installed: pip install 'clicktrace[rabbitmq]'"


# Hostile input and the guard.

WAIT = 10.0  # an upper bound for an answer to arrive; never a timing assertion


def eio(url: str, sid: str | None = None, transport: str = "polling") -> str:
    return f"{url}/socket.io/?EIO=4&transport={transport}" + (f"&sid={sid}" if sid else "")


async def handshake(http: httpx.AsyncClient, url: str) -> str:
    response = await http.get(eio(url), timeout=WAIT)
    assert response.status_code == 200 and response.text.startswith("0")
    sid: str = json.loads(response.text[1:])["sid"]
    return sid


async def tab_gets_a_notification(notifier: Notifier, url: str) -> None:
    """A well-behaved python-socketio client is served normally."""
    session = notifier.signer.issue()
    client = socketio.AsyncClient(reconnection=False)
    frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    client.on("clicktrace", frames.put)
    await client.connect(
        url, auth={"token": session.token}, transports=["polling"], wait_timeout=WAIT
    )
    try:
        await notifier.notify(session.client_id, correlation_id=new_id(), status="confirmed")
        assert (await asyncio.wait_for(frames.get(), WAIT))["seq"] == 1
    finally:
        await client.disconnect()


def loud(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("text", ["", "x", "9", "0", "6", "2", "b" + "A" * 5, "4" + "[" * 3000])
def test_packets_a_client_may_not_send_are_refused(text: str) -> None:
    assert not packet_ok(text, POLLING_TYPES)


def test_payloads_are_checked_whole() -> None:
    assert payload_ok(b"") and payload_ok(b"3") and payload_ok(b'40{"token":"t"}\x1e3')
    for body in (b"\xff", b"3\x1e", b"d=3", b"\x1e".join([b"3"] * 17), b"4x\x1ezz"):
        assert not payload_ok(body)


engineio_texts = st.lists(
    st.sampled_from(
        [
            "0",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "9",
            "b",
            "d=",
            "[",
            "{",
            "40",
            "42",
            '{"token":"t"}',
            "\x1e",
            "probe",
            "\u00e9",
            "\ud800",
            "AAAA",
            "-",
            "",
        ]
    ),
    max_size=12,
).map("".join)


@settings(max_examples=500)
@given(engineio_texts | st.text(max_size=40))
def test_what_the_guard_passes_python_engineio_decodes_and_accepts(text: str) -> None:
    body = text.encode("utf-8", "surrogatepass")
    if not payload_ok(body):
        return
    for pkt in Payload(encoded_payload=body.decode("utf-8")).packets:  # never raises
        assert not pkt.binary and pkt.packet_type in POLLING_TYPES


async def test_malformed_frames_cost_one_short_line_not_a_traceback_each(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    notifier, url = await start(serve)
    async with httpx.AsyncClient(timeout=WAIT) as http:
        for body in (b"zz", b"9", b"4" + b"[" * 3000, b"\xff\xfe", b"6", b""):
            sid = await handshake(http, url)
            response = await http.post(eio(url, sid), content=body)
            assert response.status_code in (200, 400)
        ws_url = eio(url, transport="websocket").replace("http://", "ws://")
        for frame in ("x garbage", "", "6", b"\x00binary", "4" + "[" * 3000):
            async with connect(ws_url) as ws:
                await ws.recv()  # OPEN
                await ws.send(frame)
                with pytest.raises(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(ws.recv(), WAIT)
    # A real python-socketio client sending Socket.IO packets its server cannot decode.
    for raw in ('2["x", {', "2{}", "5-[]", "4", "9", "2" + "[" * 3000):
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(
            url,
            auth={"token": notifier.signer.issue().token},
            transports=["websocket"],
            wait_timeout=WAIT,
        )
        await client.eio.send(raw)
        for _ in range(int(WAIT * 20)):
            if not client.connected:
                break
            await asyncio.sleep(0.05)
        assert not client.connected
        await client.disconnect()
    assert loud(caplog.records) == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert 1 <= len(warnings) <= 2  # rate-limited: one line per 10 s
    assert all(len(r.getMessage()) < 200 for r in warnings)
    await tab_gets_a_notification(notifier, url)


async def test_an_oversized_polling_post_is_answered_and_hangs_nothing(serve: Serve) -> None:
    notifier, url = await start(serve)
    async with httpx.AsyncClient(timeout=WAIT) as http:
        sid = await handshake(http, url)
        poll = asyncio.ensure_future(http.get(eio(url, sid)))  # a poll in flight
        await asyncio.sleep(0.2)
        response = await http.post(eio(url, sid), content=b"4" + b"x" * 9000)
        assert response.status_code == 413
        body = response.json()
        assert body["error"]["code"] == "payload_too_large"
        assert body["correlation_id"] == response.headers["x-correlation-id"]
        assert (await poll).status_code == 200  # ended by the session's CLOSE packet
        assert (await http.get(eio(url, sid))).status_code == 400  # the session is gone

        async def chunks() -> Any:  # no content-length: cut off while streaming
            for _ in range(10):
                yield b"4" + b"x" * 1000

        sid = await handshake(http, url)
        assert (await http.post(eio(url, sid), content=chunks())).status_code == 413
    await tab_gets_a_notification(notifier, url)


async def test_a_chunked_post_reaches_engineio_whole(serve: Serve) -> None:
    # python-engineio reads content-length bytes: without one it would read nothing.
    notifier, url = await start(serve)
    token = json.dumps({"token": notifier.signer.issue().token})

    async def chunks() -> Any:
        yield b"40"
        yield token.encode()

    async with httpx.AsyncClient(timeout=WAIT) as http:
        sid = await handshake(http, url)
        assert (await http.post(eio(url, sid), content=chunks())).status_code == 200
        assert (await http.get(eio(url, sid))).text.startswith("40{")  # connected to "/"


async def test_socketio_responses_carry_a_correlation_id(serve: Serve) -> None:
    _, url = await start(serve)
    corr = new_id()
    async with httpx.AsyncClient(timeout=WAIT) as http:
        fresh = await http.get(eio(url))
        echoed = await http.get(eio(url), headers={"x-correlation-id": corr.lower()})
        refused = await http.get(f"{url}/socket.io/?EIO=3&transport=polling")
    assert parse_id(fresh.headers["x-correlation-id"]) == fresh.headers["x-correlation-id"]
    assert echoed.headers["x-correlation-id"] == corr
    assert refused.status_code == 400 and "x-correlation-id" in refused.headers
    ws_url = eio(url, transport="websocket").replace("http://", "ws://")
    async with connect(ws_url) as ws:
        assert ws.response is not None
        assert parse_id(ws.response.headers["x-correlation-id"])


async def test_a_session_that_never_authenticates_is_closed_at_the_deadline(
    serve: Serve,
) -> None:
    _, url = await start(serve, limits=Limits(hello_timeout_seconds=0.3))
    async with httpx.AsyncClient(timeout=WAIT) as http:
        sid = await handshake(http, url)
        poll = await http.get(eio(url, sid))  # answered by the CLOSE packet
        assert poll.status_code == 200 and poll.text.split("\x1e")[0] == "1"
        assert (await http.get(eio(url, sid))).status_code == 400
    ws_url = eio(url, transport="websocket").replace("http://", "ws://")
    async with connect(ws_url) as ws:
        await ws.recv()  # OPEN
        assert await asyncio.wait_for(ws.recv(), WAIT) == "1"  # CLOSE
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), WAIT)


async def test_a_session_that_authenticates_in_time_stays(serve: Serve) -> None:
    notifier, url = await start(serve, limits=Limits(hello_timeout_seconds=0.3))
    session = notifier.signer.issue()
    client = socketio.AsyncClient(reconnection=False)
    frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    client.on("clicktrace", frames.put)
    await client.connect(
        url, auth={"token": session.token}, transports=["websocket"], wait_timeout=WAIT
    )
    await asyncio.sleep(0.6)  # past the deadline
    await notifier.notify(session.client_id, correlation_id=new_id(), status="confirmed")
    assert (await asyncio.wait_for(frames.get(), WAIT))["seq"] == 1
    await client.disconnect()


async def test_unauthenticated_sessions_are_capped_per_peer(serve: Serve) -> None:
    notifier, url = await start(serve, limits=Limits(max_pending_per_peer=3))
    async with httpx.AsyncClient(timeout=WAIT) as http:
        sids = [await handshake(http, url) for _ in range(3)]
        refused = await http.get(eio(url))
        assert refused.status_code == 401
        ws_url = eio(url, transport="websocket").replace("http://", "ws://")
        with pytest.raises(InvalidStatus):  # the WebSocket transport counts the same
            async with connect(ws_url):
                pass
        # Authenticating frees a place.
        token = json.dumps({"token": notifier.signer.issue().token})
        assert (await http.post(eio(url, sids[0]), content=f"40{token}")).status_code == 200
        assert (await http.get(eio(url, sids[0]))).text.startswith("40{")
        sids[0] = await handshake(http, url)
        for sid in sids:  # leaving frees places too
            await http.post(eio(url, sid), content="1")
    # Authenticated sessions do not count: more tabs than the cap connect one after another.
    for _ in range(4):
        await tab_gets_a_notification(notifier, url)


async def test_a_client_that_leaves_the_namespace_loses_the_session(serve: Serve) -> None:
    notifier, url = await start(serve)
    token = json.dumps({"token": notifier.signer.issue().token})
    async with httpx.AsyncClient(timeout=WAIT) as http:
        sid = await handshake(http, url)
        await http.post(eio(url, sid), content=f"40{token}")
        assert (await http.get(eio(url, sid))).text.startswith("40{")
        await http.post(eio(url, sid), content="41")
        answer = await http.get(eio(url, sid))
        assert answer.status_code == 400 or answer.text.split("\x1e")[-1] == "1"


# SIGTERM.

NODE = Path(__file__).with_name("socketio_node.py")


GRACE = 2  # what the node gives uvicorn as timeout_graceful_shutdown


STOPPED_WITHIN = 60.0  # a hang detector, far above GRACE; never a timing assertion


async def wait_until_serving(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(timeout=1) as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError("the node exited")
            try:
                await http.get(url + "/socket.io/?EIO=4&transport=polling")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the node did not start")


async def test_sigterm_stops_the_server_with_clients_mid_poll() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, str(NODE), str(port), str(GRACE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    clients: list[socketio.AsyncClient] = []
    try:
        await wait_until_serving(url, proc)
        signer = TokenSigner(SECRET)
        for transports in (["polling"], ["polling"], ["polling"], ["websocket"]):
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(
                url, auth={"token": signer.issue().token}, transports=transports, wait_timeout=10
            )
            clients.append(client)
        async with httpx.AsyncClient(timeout=10) as http:
            base = url + "/socket.io/?EIO=4&transport=polling"
            opened = await http.get(base)
            sid = json.loads(opened.text[1:])["sid"]  # never authenticates
            hostile = await http.post(base + f"&sid={sid}", content=b"4" + b"x" * 20_000)
            assert hostile.status_code == 413
            idle = json.loads((await http.get(base)).text[1:])["sid"]
            poll = asyncio.ensure_future(http.get(base + f"&sid={idle}"))
            await asyncio.sleep(0.5)  # every polling client now has a poll in flight
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, STOPPED_WITHIN)
            poll.cancel()
        assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has stopped
        _, stderr = proc.communicate()
        assert b"Traceback" not in stderr, stderr.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for client in clients:
            await client.disconnect()
