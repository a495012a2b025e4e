"""The Notifier as an app uses it: routes, ASGI wrapping, traced notify, the choice of
transport (shipped, shorthand or the app's own), configuration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import socketio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from websockets.asyncio.client import connect

from clicktrace.ids import new_id
from clicktrace.notify import (
    MemoryReplayBuffer,
    Notifier,
    TokenSigner,
    TransportFactory,
    TransportName,
    TransportSetup,
    transports,
)
from clicktrace.notify.frames import Frame
from clicktrace.notify.websocket_transport import WebSocketTransport
from clicktrace.propagation import HEADER_KEYS, extract, parse_traceparent

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


@pytest.mark.parametrize(
    "transport", [transports.socketio(), "socketio"], ids=["object", "shorthand"]
)
async def test_socketio_notification_carries_the_producer_span(
    serve: Serve,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    transport: TransportFactory | TransportName,
) -> None:
    notifier = Notifier(TokenSigner(SECRET), transport, tracer_provider=provider)
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


@pytest.mark.parametrize(
    "transport", [transports.websocket(), "websocket"], ids=["object", "shorthand"]
)
async def test_websocket_notification_carries_the_producer_span(
    serve: Serve,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    transport: TransportFactory | TransportName,
) -> None:
    notifier = Notifier(TokenSigner(SECRET), transport, tracer_provider=provider)
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
    notifier = Notifier(TokenSigner(SECRET), "websocket", prefix="/ct")
    assert [getattr(r, "path", None) for r in notifier.routes] == ["/ct/session", "/ct/ws"]
    assert [getattr(r, "path", None) for r in Notifier(TokenSigner(SECRET)).routes] == [
        "/clicktrace/session"
    ]


def test_bad_configuration() -> None:
    with pytest.raises(TypeError):
        Notifier("secret")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Notifier(TokenSigner(SECRET), "websocket", amqp_url="amqp://x", redis_url="redis://x")


class Loopback:
    """A transport of the app's own, written against the Protocol alone: frames go straight to
    the hub, its route answers with the channel it was built with, its wrap adds a header."""

    def __init__(self, setup: TransportSetup) -> None:
        self.setup = setup
        self.closed = False
        self.routes: list[BaseRoute] = [Route(setup.prefix + "/loopback", self._info)]

    async def _info(self, request: Request) -> JSONResponse:
        return JSONResponse({"channel": self.setup.channel})

    async def publish(self, client_id: str, frame: Frame) -> None:
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


class LoopbackFactory:
    def __init__(self, *, fans_out: bool = False) -> None:
        self._fans_out = fans_out
        self.asked: list[str | None] = []
        self.built: list[Loopback] = []

    def fans_out(self, redis_url: str | None) -> bool:
        self.asked.append(redis_url)
        return self._fans_out

    def build(self, setup: TransportSetup) -> Loopback:
        self.built.append(Loopback(setup))
        return self.built[-1]


async def test_a_transport_of_the_apps_own_is_built_from_what_the_notifier_owns() -> None:
    signer, factory = TokenSigner(SECRET), LoopbackFactory()

    def user_of(conn: HTTPConnection) -> str | None:
        return None

    def peer_of(scope: Any) -> str:
        return "peer"

    notifier = Notifier(
        signer,
        factory,
        prefix="/ct",
        channel="ch",
        user_of=user_of,
        hello_timeout_seconds=3.0,
        max_pending_per_peer=5,
        peer_of=peer_of,
    )
    (transport,) = factory.built
    assert factory.asked == [None]
    assert transport.setup == TransportSetup(
        hub=notifier.hub,
        signer=signer,
        user_of=user_of,
        redis_url=None,
        channel="ch",
        prefix="/ct",
        hello_timeout=3.0,
        max_pending_per_peer=5,
        peer_of=peer_of,
    )
    assert [getattr(r, "path", None) for r in notifier.routes] == ["/ct/session", "/ct/loopback"]

    session = signer.issue()
    got: asyncio.Queue[Frame] = asyncio.Queue()
    await notifier.hub.attach("tab", session.client_id, got.put, 0).resume()
    seq = await notifier.notify(session.client_id, correlation_id=new_id(), status="confirmed")
    assert (await asyncio.wait_for(got.get(), 10))["seq"] == seq == 1

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
        TokenSigner(SECRET), LoopbackFactory(fans_out=fans_out), buffer=buffer, sweep_seconds=0.02
    )
    got: asyncio.Queue[Frame] = asyncio.Queue()
    try:
        await notifier.hub.attach("tab", cid, got.put, 0).resume()
        await buffer.append(cid, {"correlation_id": cid, "status": "progress"})  # lost on pub/sub
        if fans_out:
            assert (await asyncio.wait_for(got.get(), 10))["seq"] == 1
        else:
            await asyncio.sleep(0.3)  # fifteen sweeps' worth: a sweep would have delivered it
            assert got.empty()
    finally:
        await notifier.aclose()


def test_a_transport_that_fans_out_needs_a_shared_buffer() -> None:
    with pytest.raises(ValueError, match="shared buffer"):
        Notifier(TokenSigner(SECRET), LoopbackFactory(fans_out=True))
    with pytest.raises(ValueError, match="shared buffer"):
        Notifier(TokenSigner(SECRET), transports.socketio(amqp_url="amqp://x"))
    Notifier(TokenSigner(SECRET), LoopbackFactory(fans_out=True), buffer=MemoryReplayBuffer())


def test_the_factory_itself_and_not_its_call_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"TransportFactory.*\(called\)"):
        Notifier(TokenSigner(SECRET), transports.websocket)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["sse", "SocketIO", ""])
def test_an_unknown_name_is_a_value_error_that_lists_the_names(transport: str) -> None:
    with pytest.raises(ValueError, match=r"\['socketio', 'websocket'\]"):
        Notifier(TokenSigner(SECRET), transport)  # type: ignore[arg-type]


def test_what_is_not_a_factory_is_a_type_error() -> None:
    signer = TokenSigner(SECRET)
    built = WebSocketTransport(Notifier(signer, transports.websocket()).hub, signer)
    for wrong in (built, object(), None, 1, Loopback, LoopbackFactory):
        with pytest.raises(TypeError, match="TransportFactory"):
            Notifier(signer, wrong)  # type: ignore[arg-type]


def test_a_factory_that_builds_no_transport_is_a_type_error() -> None:
    class Hollow(LoopbackFactory):
        def build(self, setup: TransportSetup) -> Any:
            return object()

    with pytest.raises(TypeError, match="not a Transport"):
        Notifier(TokenSigner(SECRET), Hollow())


@pytest.mark.parametrize(
    "keywords", [{"cors_allowed_origins": ["https://a.example"]}, {"amqp_url": "amqp://x"}]
)
@pytest.mark.parametrize(
    "transport", [transports.socketio(), transports.websocket(), LoopbackFactory()]
)
def test_socketio_keywords_belong_to_the_object_when_one_is_given(
    transport: TransportFactory, keywords: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"transports\.socketio\("):
        Notifier(TokenSigner(SECRET), transport, **keywords)
