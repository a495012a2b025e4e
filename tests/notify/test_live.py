"""Live updates end to end on real sockets: a tab watches a topic, ``Notifier.publish`` reaches
every watcher (on both transports, across nodes over Redis, from a worker), a tab that comes
back is replayed what it missed in the topic's own seq and epoch, and a refused watch is
answered on the open socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import httpx
import pytest
import socketio
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp
from websockets.asyncio.client import ClientConnection, connect

from clicktrace.ids import new_id
from clicktrace.notify import (
    Limits,
    MemoryReplayBuffer,
    Notifier,
    RedisEmitter,
    Replay,
    SocketIOTransport,
    TokenSigner,
    Transport,
    WebSocketTransport,
)
from clicktrace.notify._frames import Update, parse_watch, topic_key

from .conftest import REDIS_URL, SECRET, WAIT, Serve

Watch = dict[str, Any]


class Tab(Protocol):
    async def connect(
        self, url: str, token: str, headers: dict[str, str] | None = None
    ) -> None: ...
    async def send(self, frame: Watch) -> None: ...
    async def next(self) -> dict[str, Any]: ...
    async def close(self) -> None: ...


class WsTab:
    def __init__(self) -> None:
        self.ws: ClientConnection | None = None

    async def connect(self, url: str, token: str, headers: dict[str, str] | None = None) -> None:
        self.ws = await connect(
            url.replace("http://", "ws://") + "/clicktrace/ws", additional_headers=headers
        )
        await self.ws.send(json.dumps({"token": token, "last_seq": 0}))

    async def send(self, frame: Watch) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(frame))

    async def next(self) -> dict[str, Any]:
        assert self.ws is not None
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), WAIT))
        return frame

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


class SioTab:
    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.client.on("clicktrace", self.frames.put)

    async def connect(self, url: str, token: str, headers: dict[str, str] | None = None) -> None:
        auth = {"token": token, "last_seq": 0}
        await self.client.connect(
            url, auth=auth, headers=headers or {}, transports=["websocket"], wait_timeout=10
        )

    async def send(self, frame: Watch) -> None:
        await self.client.emit("clicktrace", frame)

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.frames.get(), WAIT)

    async def close(self) -> None:
        await self.client.disconnect()


TRANSPORTS: dict[str, tuple[Callable[..., Transport], Callable[[], Tab]]] = {
    "websocket": (WebSocketTransport, WsTab),
    "socketio": (SocketIOTransport, SioTab),
}


@pytest.fixture(params=sorted(TRANSPORTS))
def kind(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def tabs(kind: str) -> AsyncIterator[Callable[[], Tab]]:
    made: list[Tab] = []

    def make() -> Tab:
        made.append(TRANSPORTS[kind][1]())
        return made[-1]

    yield make
    for tab in made:
        await tab.close()


async def node(
    serve: Callable[[ASGIApp], Awaitable[str]], kind: str, **kwargs: Any
) -> tuple[Notifier, str]:
    transport_kwargs = kwargs.pop("transport", {})
    notifier = Notifier(TokenSigner(SECRET), TRANSPORTS[kind][0](**transport_kwargs), **kwargs)
    url = await serve(notifier.asgi(Starlette(routes=notifier.routes)))
    return notifier, url


async def token(url: str) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.post(url + "/clicktrace/session")
    response.raise_for_status()
    value: str = response.json()["token"]
    return value


async def watching(tab: Tab, notifier: Notifier, topic: str, **position: Any) -> None:
    """Watch ``topic`` and wait until this node counts the watch (no sleeps)."""
    before = notifier.hub.watchers(topic)
    await tab.send({"watch": topic, **position})
    for _ in range(int(WAIT / 0.01)):
        if notifier.hub.watchers(topic) > before:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the watch of {topic!r} never arrived")


async def test_every_tab_watching_a_topic_gets_the_update_and_no_other_does(
    serve: Serve, kind: str, tabs: Callable[[], Tab]
) -> None:
    notifier, url = await node(serve, kind)
    a, b, c = tabs(), tabs(), tabs()
    for tab in (a, b, c):
        await tab.connect(url, await token(url))
    await watching(a, notifier, "seats")
    await watching(b, notifier, "seats")
    await watching(c, notifier, "orders")
    corr = new_id()

    seq = await notifier.publish("seats", {"seat": 5, "held": True}, version=3, correlation_id=corr)

    epoch = await notifier.hub.buffer.epoch(topic_key("seats"))
    for tab in (a, b):
        frame = await tab.next()
        frame.pop("traceparent", None)  # with a tracer provider set, the span's context
        assert frame == {
            "status": "update",
            "topic": "seats",
            "seq": seq,
            "epoch": epoch,
            "correlation_id": corr,
            "data": {"seat": 5, "held": True},
            "version": 3,
        }
    await notifier.publish("orders", {"n": 1})
    assert (await c.next())["topic"] == "orders"  # the first frame c gets: no seats update
    await notifier.aclose()


async def test_a_tab_that_comes_back_is_replayed_what_it_missed_once(
    serve: Serve, kind: str, tabs: Callable[[], Tab]
) -> None:
    notifier, url = await node(serve, kind)
    for n in (1, 2, 3):
        await notifier.publish("seats", {"n": n}, version=n)
    first = tabs()
    await first.connect(url, await token(url))
    await watching(first, notifier, "seats")
    got = [await first.next() for _ in range(3)]
    assert [f["data"]["n"] for f in got] == [1, 2, 3]
    epoch = got[-1]["epoch"]
    await first.close()

    await notifier.publish("seats", {"n": 4}, version=4)
    again = tabs()
    await again.connect(url, await token(url))
    await watching(again, notifier, "seats", seq=2, epoch=epoch)
    assert [(await again.next())["data"]["n"] for _ in range(2)] == [3, 4]
    await notifier.publish("seats", {"n": 5})
    assert (await again.next())["data"] == {"n": 5}  # live after the replay, nothing twice
    await notifier.aclose()


async def test_a_gap_the_topic_buffer_cannot_cover_asks_for_a_topic_resync(
    serve: Serve, kind: str, tabs: Callable[[], Tab]
) -> None:
    notifier, url = await node(serve, kind, replay=Replay(max_frames=2))
    for n in range(5):
        await notifier.publish("seats", {"n": n})
    epoch = await notifier.hub.buffer.epoch(topic_key("seats"))
    tab = tabs()
    await tab.connect(url, await token(url))
    await watching(tab, notifier, "seats", seq=1, epoch=epoch)
    assert await tab.next() == {"status": "resync", "seq": 5, "epoch": epoch, "topic": "seats"}
    await notifier.aclose()


async def test_a_watch_of_a_topic_nobody_published_makes_no_numbering(
    serve: Serve, kind: str, tabs: Callable[[], Tab]
) -> None:
    buffer = MemoryReplayBuffer()
    notifier, url = await node(serve, kind, replay=Replay(buffer=buffer))
    tab = tabs()
    await tab.connect(url, await token(url))
    await watching(tab, notifier, "made-up", seq=7, epoch=new_id())
    assert await tab.next() == {"status": "resync", "seq": 0, "topic": "made-up"}
    assert await buffer.current(topic_key("made-up")) == 0
    assert topic_key("made-up") not in buffer._clients  # no state was made for the name
    await notifier.aclose()


def only_public(client_id: str, topic: str, user: str | None) -> bool:
    if topic == "broken":
        raise RuntimeError("the app's hook failed")
    return topic.startswith("public.") or topic == f"user.{user}"


async def test_a_refused_watch_is_answered_and_the_socket_stays_open(
    serve: Serve, kind: str, tabs: Callable[[], Tab], caplog: pytest.LogCaptureFixture
) -> None:
    notifier, url = await node(
        serve, kind, may_watch=only_public, limits=Limits(max_topics_per_socket=2)
    )
    tab = tabs()
    await tab.connect(url, await token(url))
    refusals = {
        "private.salaries": "forbidden_topic",
        "has space": "invalid_topic",
        "broken": "unavailable",
    }
    for topic, code in refusals.items():
        await tab.send({"watch": topic})
        frame = await tab.next()
        assert frame["status"] == "refused" and frame["topic"] == topic
        assert frame["error"]["code"] == code and frame["error"]["message"]
    await watching(tab, notifier, "public.a")
    await watching(tab, notifier, "public.b")
    await tab.send({"watch": "public.c"})
    assert (await tab.next())["error"]["code"] == "too_many_topics"
    await tab.send({"unwatch": "public.a"})
    await watching(tab, notifier, "public.c")
    await notifier.publish("public.c", {"ok": True})
    assert (await tab.next())["data"] == {"ok": True}
    assert notifier.hub.watchers("public.a") == 0
    # The app's failing hook is the app's to see; nothing the client sent is logged as an error.
    assert [r.message for r in caplog.records if r.exc_info] == [
        "clicktrace: may_watch failed; refusing the watch"
    ]
    await notifier.aclose()


async def test_a_closed_socket_leaves_no_watch_behind(
    serve: Serve, kind: str, tabs: Callable[[], Tab]
) -> None:
    notifier, url = await node(serve, kind)
    tab = tabs()
    await tab.connect(url, await token(url))
    await watching(tab, notifier, "seats")
    await tab.close()
    for _ in range(int(WAIT / 0.01)):
        if notifier.hub.watchers("seats") == 0:
            break
        await asyncio.sleep(0.01)
    assert notifier.hub.watchers("seats") == 0
    await notifier.aclose()


async def test_updates_cross_nodes_over_redis_and_come_from_a_worker(
    serve: Serve, kind: str, tabs: Callable[[], Tab], channel: str
) -> None:
    shared = {
        "transport": {"redis_url": REDIS_URL, "channel": channel},
        "replay": Replay(redis_url=REDIS_URL, prefix=channel),
    }
    a, url_a = await node(serve, kind, **dict(shared))
    b, url_b = await node(serve, kind, **dict(shared))
    on_a, on_b = tabs(), tabs()
    await on_a.connect(url_a, await token(url_a))
    await on_b.connect(url_b, await token(url_b))
    await watching(on_a, a, "seats")
    await watching(on_b, b, "seats")

    await a.publish("seats", {"from": "node a"}, version=1)
    assert (await on_b.next())["data"] == {"from": "node a"}
    assert (await on_a.next())["data"] == {"from": "node a"}

    emitter = RedisEmitter(
        TRANSPORTS[kind][0](redis_url=REDIS_URL, channel=channel),  # type: ignore[arg-type]
        Replay(redis_url=REDIS_URL, prefix=channel),
    )
    seq = await emitter.publish("seats", {"from": "worker"}, version=2)
    for tab in (on_a, on_b):
        frame = await tab.next()
        assert (frame["data"], frame["seq"]) == ({"from": "worker"}, seq)
    await emitter.aclose()
    await a.aclose()
    await b.aclose()


async def test_publish_refuses_what_no_tab_could_read() -> None:
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport())
    with pytest.raises(ValueError, match="topic"):
        await notifier.publish("has space", {})
    with pytest.raises(ValueError, match="version"):
        await notifier.publish("seats", {}, version=-1)
    with pytest.raises(ValueError, match="key"):
        await notifier.publish("seats", {}, key="")
    with pytest.raises(TypeError, match="JSON"):
        await notifier.publish("seats", {"x": object()})
    assert await notifier.hub.buffer.current(topic_key("seats")) == 0  # no seq consumed
    await notifier.aclose()


def test_watch_frames_parse_or_are_nothing() -> None:
    assert parse_watch({"watch": "seats"}) is not None
    assert parse_watch({"watch": "seats", "seq": 3, "epoch": "E"}) is not None
    assert parse_watch({"unwatch": "seats"}) is not None
    bad: object
    for bad in ({"watch": 5}, {"watch": "s", "seq": -1}, {"watch": "s", "seq": True}, [], None):
        assert parse_watch(bad) is None
    assert Update(topic="t", correlation_id=new_id()).status == "update"


def header_user(conn: HTTPConnection) -> str | None:
    return conn.headers.get("x-user")


async def test_the_hook_decides_by_the_user_the_token_is_bound_to(
    serve: Serve, kind: str, tabs: Callable[[], Tab]
) -> None:
    notifier, url = await node(serve, kind, may_watch=only_public, user_of=header_user)
    async with httpx.AsyncClient() as http:
        answer = await http.post(url + "/clicktrace/session", headers={"x-user": "ann"})
    tab = tabs()
    await tab.connect(url, answer.json()["token"], headers={"x-user": "ann"})
    await watching(tab, notifier, "user.ann")
    await tab.send({"watch": "user.bob"})
    assert (await tab.next())["error"]["code"] == "forbidden_topic"
    await notifier.aclose()


async def slow_yes(client_id: str, topic: str, user: str | None) -> bool:
    await asyncio.sleep(0.05)  # the app's hook takes a while (a database): order must hold
    return True


async def test_an_unwatch_never_overtakes_the_watch_sent_before_it(
    serve: Serve, kind: str, tabs: Callable[[], Tab]
) -> None:
    notifier, url = await node(serve, kind, may_watch=slow_yes)
    tab = tabs()
    await tab.connect(url, await token(url))
    await tab.send({"watch": "seats"})
    await tab.send({"unwatch": "seats"})
    await watching(tab, notifier, "marker")  # sent last: once it counts, the others ran
    assert notifier.hub.watchers("seats") == 0
    await notifier.aclose()
