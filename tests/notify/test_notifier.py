"""The Notifier as an app uses it: routes, ASGI wrapping, traced notify, the choice of
transport (shipped or the app's own), configuration; the PRODUCER span that makes every
notification (the server span that knows the outcome records it); and many nodes: two server
processes and a separate worker joined through Redis, where a tab connected to node A receives
the outcome of a command handled on node B and projected by the worker (with
:class:`RedisEmitter`), in the command's trace, and resumes on node B.
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
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from websockets.asyncio.client import connect

from clicktrace.ids import new_id
from clicktrace.notify import (
    Limits,
    MemoryReplayBuffer,
    Notifier,
    RedisEmitter,
    RedisReplayBuffer,
    Replay,
    SocketIOTransport,
    TokenSigner,
    TransportSetup,
    WebSocketTransport,
)
from clicktrace.notify._frames import Frame, Notification, Progress
from clicktrace.notify._notifier import Producer
from clicktrace.notify._websocket import WebSocketEndpoint
from clicktrace.propagation import HEADER_KEYS, extract, parse_traceparent
from clicktrace.testing import free_port

Serve = Callable[[ASGIApp], Awaitable[str]]


SECRET = "clicktrace-test-secret-0123456789"


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


PARENT = "00f067aa0ba902b7"


def app_with_command(notifier: Notifier, provider: TracerProvider) -> Starlette:
    """A command handler that notifies the caller inside the request's trace."""
    tracer = provider.get_tracer("test")

    async def rename(request: Request) -> JSONResponse:
        client_id = notifier.signer.verify(request.headers.get("x-clicktrace-client"))
        incoming = extract(dict(request.headers), keys=HEADER_KEYS)
        assert client_id is not None and incoming.correlation_id is not None
        with tracer.start_as_current_span(
            "POST /rename", context=incoming.otel_context(), kind=SpanKind.SERVER
        ):
            await notifier.notify(
                client_id,
                correlation_id=incoming.correlation_id,
                status="confirmed",
                type="ProductRenamed",
                data={"id": 1},
            )
        return JSONResponse({"status": "accepted"}, status_code=202)

    return Starlette(routes=[*notifier.routes, Route("/rename", rename, methods=["POST"])])


async def post_rename(url: str, token: str, corr: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            url + "/rename",
            headers={
                "x-clicktrace-client": token,
                "x-correlation-id": corr,
                "traceparent": f"00-{TRACE_ID}-{PARENT}-01",
            },
        )
    assert response.status_code == 202


def assert_continues_the_trace(frame: dict[str, object], exporter: InMemorySpanExporter) -> None:
    producer = next(s for s in exporter.get_finished_spans() if s.kind == SpanKind.PRODUCER)
    server = next(s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert producer.parent is not None and producer.parent.span_id == server.context.span_id
    assert f"{server.context.trace_id:032x}" == TRACE_ID
    tp = parse_traceparent(frame["traceparent"])  # type: ignore[arg-type]
    assert tp is not None
    assert (tp.trace_id, tp.span_id) == (producer.context.trace_id, producer.context.span_id)


async def test_socketio_notification_carries_the_producer_span(
    serve: Serve, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    notifier = Notifier(TokenSigner(SECRET), SocketIOTransport(), tracer_provider=provider)
    url = await serve(notifier.asgi(app_with_command(notifier, provider)))
    session = notifier.signer.issue()
    frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    tab = socketio.AsyncClient(reconnection=False)
    tab.on("clicktrace", frames.put)
    await tab.connect(
        url, auth={"token": session.token, "last_seq": 0}, transports=["websocket"], wait_timeout=10
    )
    corr = new_id()
    try:
        await post_rename(url, session.token, corr)
        frame = await asyncio.wait_for(frames.get(), 10)
    finally:
        await tab.disconnect()
    assert frame["correlation_id"] == corr and frame["seq"] == 1
    assert_continues_the_trace(frame, exporter)


async def test_websocket_notification_carries_the_producer_span(
    serve: Serve, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport(), tracer_provider=provider)
    assert notifier.sio is None
    url = await serve(notifier.asgi(app_with_command(notifier, provider)))
    session = notifier.signer.issue()
    corr = new_id()
    async with connect(url.replace("http", "ws") + "/clicktrace/ws") as ws:
        await ws.send(json.dumps({"token": session.token, "last_seq": 0}))
        await post_rename(url, session.token, corr)
        frame = json.loads(await ws.recv())
    assert frame["correlation_id"] == corr
    assert_continues_the_trace(frame, exporter)


def test_routes_follow_the_prefix() -> None:
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport(), prefix="/ct")
    assert [getattr(r, "path", None) for r in notifier.routes] == ["/ct/session", "/ct/ws"]
    assert [getattr(r, "path", None) for r in Notifier(TokenSigner(SECRET)).routes] == [
        "/clicktrace/session"
    ]


def test_bad_configuration() -> None:
    with pytest.raises(TypeError):
        Notifier("secret")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SocketIOTransport(amqp_url="amqp://x", redis_url="redis://x")
    with pytest.raises(TypeError, match="Replay"):
        Notifier(TokenSigner(SECRET), replay={"max_frames": 4})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Limits"):
        Notifier(TokenSigner(SECRET), limits={"max_pending_per_peer": 4})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_pending_per_peer"):
        Limits(max_pending_per_peer=0)


class Loopback:
    """An endpoint of the app's own, written against the Protocol alone: frames go straight to
    the hub, its route answers with its transport's channel, its wrap adds a header."""

    def __init__(self, setup: TransportSetup, channel: str) -> None:
        self.setup = setup
        self.channel = channel
        self.closed = False
        self.routes: list[BaseRoute] = [Route(setup.prefix + "/loopback", self._info)]

    async def _info(self, request: Request) -> JSONResponse:
        return JSONResponse({"channel": self.channel})

    async def publish(self, client_id: str, frame: Notification) -> None:
        await self.setup.hub.dispatch(client_id, frame)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            async def marked(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message["headers"], (b"x-loopback", b"1")]
                await send(message)

            await app(scope, receive, marked)

        return wrapped

    async def aclose(self) -> None:
        self.closed = True


class LoopbackTransport:
    def __init__(self, *, fans_out: bool = False, channel: str = "clicktrace") -> None:
        self._fans_out = fans_out
        self.channel = channel
        self.asked = 0
        self.built: list[Loopback] = []

    def fans_out(self) -> bool:
        self.asked += 1
        return self._fans_out

    def build(self, setup: TransportSetup) -> Loopback:
        self.built.append(Loopback(setup, self.channel))
        return self.built[-1]


async def test_a_transport_of_the_apps_own_is_built_from_what_the_notifier_owns() -> None:
    signer, factory = TokenSigner(SECRET), LoopbackTransport(channel="ch")

    def user_of(conn: HTTPConnection) -> str | None:
        return None

    def peer_of(scope: Any) -> str:
        return "peer"

    limits = Limits(hello_timeout_seconds=3.0, max_pending_per_peer=5, peer_of=peer_of)
    notifier = Notifier(signer, factory, prefix="/ct", user_of=user_of, limits=limits)
    (transport,) = factory.built
    assert factory.asked == 1
    assert transport.setup == TransportSetup(
        hub=notifier.hub, signer=signer, user_of=user_of, prefix="/ct", limits=limits
    )
    assert [getattr(r, "path", None) for r in notifier.routes] == ["/ct/session", "/ct/loopback"]

    session = signer.issue()
    got: asyncio.Queue[Frame] = asyncio.Queue()
    await notifier.hub.attach("tab", session.client_id, got.put, 0).resume()
    seq = await notifier.notify(session.client_id, correlation_id=new_id(), status="confirmed")
    assert (await asyncio.wait_for(got.get(), 10)).seq == seq == 1

    app = notifier.asgi(Starlette(routes=notifier.routes))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/ct/loopback")
    assert response.json() == {"channel": "ch"} and response.headers["x-loopback"] == "1"
    await notifier.aclose()
    assert transport.closed


@pytest.mark.parametrize("fans_out", [True, False])
async def test_the_sweep_runs_only_when_the_transport_fans_out(fans_out: bool) -> None:
    buffer, cid = MemoryReplayBuffer(), new_id()
    notifier = Notifier(
        TokenSigner(SECRET),
        LoopbackTransport(fans_out=fans_out),
        replay=Replay(buffer=buffer, sweep_seconds=0.02),
    )
    got: asyncio.Queue[Frame] = asyncio.Queue()
    try:
        await notifier.hub.attach("tab", cid, got.put, 0).resume()
        await buffer.append(cid, Progress(correlation_id=cid))  # lost on pub/sub
        if fans_out:
            assert (await asyncio.wait_for(got.get(), 10)).seq == 1
        else:
            await asyncio.sleep(0.3)  # fifteen sweeps' worth: a sweep would have delivered it
            assert got.empty()
    finally:
        await notifier.aclose()


def test_a_transport_that_fans_out_needs_a_shared_buffer() -> None:
    with pytest.raises(ValueError, match="shared buffer"):
        Notifier(TokenSigner(SECRET), LoopbackTransport(fans_out=True))
    with pytest.raises(ValueError, match="shared buffer"):
        Notifier(TokenSigner(SECRET), SocketIOTransport(amqp_url="amqp://x"))
    shared = Replay(buffer=MemoryReplayBuffer())
    Notifier(TokenSigner(SECRET), LoopbackTransport(fans_out=True), replay=shared)


def test_the_class_itself_and_not_an_instance_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"Transport such as .*WebSocketTransport\(\)"):
        Notifier(TokenSigner(SECRET), WebSocketTransport)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["socketio", "websocket", "sse", ""])
def test_a_name_is_not_a_transport(transport: str) -> None:
    with pytest.raises(TypeError, match="Transport such as"):
        Notifier(TokenSigner(SECRET), transport)  # type: ignore[arg-type]


def test_what_is_not_a_factory_is_a_type_error() -> None:
    signer = TokenSigner(SECRET)
    built = WebSocketEndpoint(Notifier(signer, WebSocketTransport()).hub, signer)
    for wrong in (built, object(), 1, Loopback, LoopbackTransport):
        with pytest.raises(TypeError, match="Transport"):
            Notifier(signer, wrong)  # type: ignore[arg-type]


def test_a_factory_that_builds_no_transport_is_a_type_error() -> None:
    class Hollow(LoopbackTransport):
        def build(self, setup: TransportSetup) -> Any:
            return object()

    with pytest.raises(TypeError, match="not an Endpoint"):
        Notifier(TokenSigner(SECRET), Hollow())


@pytest.mark.parametrize(
    "keywords",
    [
        {"cors_allowed_origins": ["https://a.example"]},
        {"amqp_url": "amqp://x"},
        {"redis_url": "redis://x"},
        {"max_connections_per_client": 2},
    ],
)
def test_transport_and_limit_keywords_belong_to_their_objects(keywords: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="unexpected keyword"):
        Notifier(TokenSigner(SECRET), SocketIOTransport(), **keywords)


class Published:
    def __init__(self) -> None:
        self.frames: list[tuple[str, Notification]] = []

    async def __call__(self, client_id: str, frame: Notification) -> None:
        self.frames.append((client_id, frame))


async def test_notify_opens_a_producer_span_whose_context_travels_in_the_frame(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    published = Published()
    producer = Producer(MemoryReplayBuffer(), published, tracer_provider=provider)
    cid, corr = new_id(), new_id()
    with provider.get_tracer("test").start_as_current_span("projection") as parent:
        seq = await producer.notify(
            cid.lower(),
            correlation_id=corr,
            status="confirmed",
            type="ProductRenamed",
            data={"id": 1},
        )
    assert seq == 1
    ((to, frame),) = published.frames
    assert to == cid
    span = next(s for s in exporter.get_finished_spans() if s.kind == SpanKind.PRODUCER)
    assert span.name == "send clicktrace"
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert frame.traceparent is not None
    tp = parse_traceparent(frame.traceparent)
    assert tp is not None
    assert (tp.trace_id, tp.span_id) == (span.context.trace_id, span.context.span_id)
    assert span.attributes is not None
    assert span.attributes["clicktrace.correlation_id"] == corr
    assert span.attributes["clicktrace.seq"] == 1
    assert span.attributes["messaging.message.id"] == f"{cid}:1"
    assert span.attributes["clicktrace.type"] == "ProductRenamed"


async def test_without_a_parent_a_new_trace_starts(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    published = Published()
    producer = Producer(MemoryReplayBuffer(), published, tracer_provider=provider)
    await producer.notify(new_id(), correlation_id=new_id(), status="progress")
    (span,) = exporter.get_finished_spans()
    assert span.parent is None
    traceparent = published.frames[0][1].traceparent
    assert traceparent is not None and traceparent.split("-")[1] == f"{span.context.trace_id:032x}"


async def test_mistakes_are_loud_and_consume_no_seq() -> None:
    buffer = MemoryReplayBuffer()
    producer = Producer(buffer, Published())
    cid = new_id()
    with pytest.raises(ValueError):
        await producer.notify("not-a-ulid", correlation_id=new_id(), status="confirmed")
    with pytest.raises(TypeError):
        await producer.notify(cid, correlation_id=new_id(), status="confirmed", data={object()})
    with pytest.raises(ValueError):
        await producer.notify(cid, correlation_id=new_id(), status="done")
    assert await buffer.current(cid) == 0


async def test_a_failed_publish_marks_the_span_and_raises(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async def down(client_id: str, frame: Notification) -> None:
        raise ConnectionError("bus down")

    producer = Producer(MemoryReplayBuffer(), down, tracer_provider=provider)
    with pytest.raises(ConnectionError):
        await producer.notify(new_id(), correlation_id=new_id(), status="progress")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.events[0].name == "exception"


async def drop(client_id: str, frame: Notification) -> None:
    pass


@pytest.mark.parametrize(
    ("status", "error", "outcome", "code", "state"),
    [
        ("confirmed", None, "confirmed", None, StatusCode.UNSET),
        (
            "rejected",
            {"code": "name_taken", "message": "taken"},
            "rejected",
            "name_taken",
            StatusCode.ERROR,
        ),
        ("progress", None, None, None, StatusCode.UNSET),
    ],
)
async def test_the_outcome_and_the_rejection_code_are_on_the_span(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    status: str,
    error: dict[str, str] | None,
    outcome: str | None,
    code: str | None,
    state: StatusCode,
) -> None:
    producer = Producer(MemoryReplayBuffer(), drop, tracer_provider=provider)
    cid = new_id()
    await producer.notify(new_id(), correlation_id=cid, status=status, error=error)
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["clicktrace.correlation_id"] == cid
    assert attributes.get("clicktrace.outcome") == outcome
    assert attributes.get("error.type") == code
    assert span.status.status_code is state


NODE = Path(__file__).with_name("cluster_node.py")
REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


WAIT = 10.0


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
    "replay",
    [
        "buffer",
        # Fan-out over AMQP, the replay buffer in Redis, as the Notifier's error advises.
        "redis_url",
    ],
)
async def test_socketio_over_rabbitmq(
    serve: Serve, tab_factory: list[Tab], channel: str, replay: str
) -> None:
    def replay_options() -> Replay:
        if replay == "redis_url":
            return Replay(redis_url=REDIS_URL, prefix=channel)
        return Replay(buffer=RedisReplayBuffer(REDIS_URL, prefix=channel))

    transport = SocketIOTransport(amqp_url=AMQP_URL, channel=channel)
    nodes = [Notifier(TokenSigner(SECRET), transport, replay=replay_options()) for _ in range(2)]
    urls = [await serve(n.asgi(Starlette(routes=n.routes))) for n in nodes]
    emitter = RedisEmitter(transport, Replay(redis_url=REDIS_URL, prefix=channel))
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
        Notifier(TokenSigner(SECRET), SocketIOTransport(amqp_url=AMQP_URL))
    with pytest.raises(ValueError, match=r"Replay\(redis_url"):
        RedisEmitter(SocketIOTransport(amqp_url=AMQP_URL), Replay())
