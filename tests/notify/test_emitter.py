"""Many nodes: two server processes and a separate worker joined through Redis.

A tab connected to node A receives the outcome of a command handled on node B and projected
by the worker (with :class:`RedisEmitter`), in the command's trace; it resumes on node B.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from starlette.applications import Starlette
from starlette.types import ASGIApp
from websockets.asyncio.client import connect

from clicktrace.ids import new_id
from clicktrace.notify import Notifier, TokenSigner, transports
from clicktrace.notify.emitter import RedisEmitter
from clicktrace.notify.replay_redis import RedisReplayBuffer
from clicktrace.propagation import parse_traceparent
from clicktrace.testing import free_port

NODE = Path(__file__).with_name("cluster_node.py")
REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
SECRET = "clicktrace-test-secret-0123456789"
WAIT = 10.0
Serve = Callable[[ASGIApp], Awaitable[str]]


class Cluster:
    def __init__(self, transport: str, channel: str) -> None:
        self.transport, self.channel = transport, channel
        self.ports = [free_port(), free_port()]
        self.procs: list[subprocess.Popen[str]] = []

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(NODE), *args],
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    async def start(self) -> None:
        for port in self.ports:
            self.spawn("node", self.transport, self.channel, str(port))
        worker = self.spawn("worker", self.transport, self.channel)
        line = await asyncio.wait_for(asyncio.to_thread(worker.stdout.readline), 30)  # type: ignore[union-attr]
        assert line.strip() == "ready", worker.stderr.read() if worker.stderr else line
        async with httpx.AsyncClient() as http:
            for url in self.urls:
                for _ in range(300):
                    try:
                        await http.post(url + "/clicktrace/session")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.communicate(timeout=10)


@pytest.fixture(params=["socketio", "websocket"])
async def cluster(request: pytest.FixtureRequest, channel: str) -> AsyncIterator[Cluster]:
    made = Cluster(request.param, channel)
    try:
        await made.start()
        yield made
    finally:
        made.stop()


class Tab:
    """One browser tab on either transport."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._sio: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._ws: Any = None

    async def connect(self, url: str, token: str, last_seq: int = 0) -> None:
        hello = {"token": token, "last_seq": last_seq}
        if self.transport == "socketio":
            self._sio = socketio.AsyncClient(reconnection=False)
            self._sio.on("clicktrace", self.frames.put)
            await self._sio.connect(url, auth=hello, transports=["websocket"], wait_timeout=10)
            return
        self._ws = await connect(url.replace("http", "ws") + "/clicktrace/ws", max_queue=None)
        await self._ws.send(json.dumps(hello))
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self._ws:
            await self.frames.put(json.loads(text))

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.frames.get(), WAIT)

    async def close(self) -> None:
        if self._sio is not None:
            await self._sio.disconnect()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


@pytest.fixture
async def tab_factory() -> AsyncIterator[list[Tab]]:
    made: list[Tab] = []
    yield made
    for tab in made:
        await tab.close()


async def command(url: str, token: str, name: str, traceparent: str) -> str:
    corr = new_id()
    async with httpx.AsyncClient() as http:
        response = await http.post(
            url + "/cmd",
            json={"name": name},
            headers={
                "x-clicktrace-client": token,
                "x-correlation-id": corr,
                "traceparent": traceparent,
            },
        )
    assert response.status_code == 202, response.text
    return corr


async def test_a_tab_on_node_a_gets_the_outcome_of_a_command_on_node_b(
    cluster: Cluster, tab_factory: list[Tab]
) -> None:
    node_a, node_b = cluster.urls
    async with httpx.AsyncClient() as http:
        s = (await http.post(node_a + "/clicktrace/session")).json()
        spy_s = (await http.post(node_b + "/clicktrace/session")).json()
    tab, spy = Tab(cluster.transport), Tab(cluster.transport)
    tab_factory.extend([tab, spy])
    await tab.connect(node_a, s["token"])
    await spy.connect(node_b, spy_s["token"])

    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    corr = await command(node_b, s["token"], "first", f"00-{trace_id}-{parent}-01")
    frame = await tab.next()
    assert {k: frame[k] for k in ("seq", "correlation_id", "status", "type", "data")} == {
        "seq": 1,
        "correlation_id": corr,
        "status": "confirmed",
        "type": "ProductRenamed",
        "data": {"name": "first"},
    }
    tp = parse_traceparent(frame["traceparent"])
    assert tp is not None and f"{tp.trace_id:032x}" == trace_id  # the same trace, ...
    assert f"{tp.span_id:016x}" != parent  # ... continued by the worker's PRODUCER span

    # The other client, connected to node B, saw none of it (ordered: its own comes first).
    await command(node_a, spy_s["token"], "mine", f"00-{trace_id}-{parent}-01")
    assert (await spy.next())["data"] == {"name": "mine"}

    # The tab goes away, commands keep landing; it comes back on node B and resumes.
    await tab.close()
    later = [
        await command(node_b, s["token"], f"n{i}", f"00-{trace_id}-{parent}-01") for i in range(3)
    ]
    again = Tab(cluster.transport)
    tab_factory.append(again)
    await again.connect(node_b, s["token"], last_seq=1)
    got = [await again.next() for _ in later]
    assert [f["seq"] for f in got] == [2, 3, 4]
    assert [f["correlation_id"] for f in got] == later

    # Mid-flight: commands land on both nodes while the tab hops from node B back to node A.
    header = f"00-{trace_id}-{parent}-01"
    burst = asyncio.gather(
        *(
            command(urls, s["token"], f"b{i}", header)
            for i, urls in enumerate([node_a, node_b] * 10)
        )
    )
    seen = [4]
    while len(seen) < 6:
        seen.append((await again.next())["seq"])
    await again.close()
    while not again.frames.empty():
        seen.append(again.frames.get_nowait()["seq"])
    third = Tab(cluster.transport)
    tab_factory.append(third)
    await third.connect(node_a, s["token"], last_seq=seen[-1])
    await burst
    while seen[-1] < 24:
        seen.append((await third.next())["seq"])
    assert seen == list(range(4, 25))  # every one of the 20, once, in order
    assert third.frames.empty() and spy.frames.empty()


@pytest.mark.parametrize(
    ("amqp", "replay"),
    [
        ({"transport": transports.socketio(amqp_url=AMQP_URL)}, "buffer"),
        ({"amqp_url": AMQP_URL}, "buffer"),
        # Fan-out over AMQP, the replay buffer in Redis, as the Notifier's error advises.
        ({"amqp_url": AMQP_URL}, "redis_url"),
    ],
    ids=["object", "keyword", "keyword-redis-replay"],
)
async def test_socketio_over_rabbitmq(
    serve: Serve, tab_factory: list[Tab], channel: str, amqp: dict[str, Any], replay: str
) -> None:
    def replay_options() -> dict[str, Any]:
        if replay == "redis_url":
            return {"redis_url": REDIS_URL}
        return {"buffer": RedisReplayBuffer(REDIS_URL, prefix=channel)}

    nodes = [
        Notifier(TokenSigner(SECRET), channel=channel, **replay_options(), **amqp) for _ in range(2)
    ]
    urls = [await serve(n.asgi(Starlette(routes=n.routes))) for n in nodes]
    emitter = RedisEmitter(REDIS_URL, amqp_url=AMQP_URL, channel=channel)
    try:
        s = nodes[0].signer.issue()
        tab = Tab("socketio")
        tab_factory.append(tab)
        await tab.connect(urls[0], s.token)
        # python-socketio binds node A's AMQP queue in the background after the first
        # connection: frames published before that never arrive live, and the first one that
        # does makes the tab catch up on them from the buffer.
        sent = 0
        while sent < 100 and tab.frames.empty():
            sent = await nodes[1].notify(s.client_id, correlation_id=new_id(), status="progress")
            await asyncio.sleep(0.05)
        last = await emitter.notify(s.client_id, correlation_id=new_id(), status="confirmed")
        got = [(await tab.next())["seq"] for _ in range(last)]
        assert got == list(range(1, last + 1)) and sent < 100
        assert tab.frames.empty()
    finally:
        await emitter.aclose()
        for n in nodes:
            await n.aclose()


def test_amqp_needs_a_shared_buffer() -> None:
    with pytest.raises(ValueError, match="shared buffer"):
        Notifier(TokenSigner(SECRET), amqp_url=AMQP_URL)
    with pytest.raises(ValueError, match="shared buffer"):
        Notifier(TokenSigner(SECRET), transports.socketio(amqp_url=AMQP_URL))
