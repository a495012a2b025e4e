"""A process of the multi-node test: a socket/API node or a projection worker.

``node``: Starlette app with a :class:`Notifier` joined through Redis, plus ``POST /cmd`` that
verifies the client token, wraps the command in an envelope (trace context and ids included)
and pushes it on a Redis list standing in for the bus. ``worker``: pops envelopes, continues
their trace and notifies the client through a write-only :class:`RedisEmitter`.

Run: ``python cluster_node.py node|worker TRANSPORT CHANNEL [PORT]``.
"""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as redis_asyncio
import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from clicktrace import context as click_context
from clicktrace.envelope import decode, encode, new_envelope
from clicktrace.notify import (
    Notifier,
    RedisEmitter,
    Replay,
    SocketIOTransport,
    TokenSigner,
    WebSocketTransport,
)
from clicktrace.propagation import HEADER_KEYS, extract

REDIS_URL = "redis://127.0.0.1:6379/0"
SECRET = "clicktrace-test-secret-0123456789"


def transport_named(name: str, channel: str) -> SocketIOTransport | WebSocketTransport:
    if name == "socketio":
        return SocketIOTransport(redis_url=REDIS_URL, channel=channel)
    return WebSocketTransport(redis_url=REDIS_URL, channel=channel)


def node(transport: str, channel: str, port: int) -> None:
    signer = TokenSigner(SECRET)
    notifier = Notifier(
        signer,
        transport_named(transport, channel),
        replay=Replay(redis_url=REDIS_URL, prefix=channel),
    )
    bus = redis_asyncio.Redis.from_url(REDIS_URL)

    async def command(request: Request) -> JSONResponse:
        client_id = signer.verify(request.headers.get("x-clicktrace-client"))
        incoming = extract(dict(request.headers), keys=HEADER_KEYS)
        corr = incoming.correlation_id
        if client_id is None or corr is None:
            return JSONResponse({"error": {"code": "unauthorised", "message": ""}}, 401)
        body = await request.json()
        click = click_context.ClickContext(correlation_id=corr, client_id=client_id)
        with click_context.bound(click, incoming.otel_context()):
            envelope = new_envelope("ProductRenamed", body)
        await bus.lpush(channel + ":bus", encode(envelope))
        return JSONResponse({"correlation_id": corr, "status": "accepted"}, 202)

    app = notifier.asgi(
        Starlette(routes=[*notifier.routes, Route("/cmd", command, methods=["POST"])])
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws="websockets-sansio",
    )


async def worker(transport: str, channel: str) -> None:
    emitter = RedisEmitter(
        transport_named(transport, channel),
        Replay(redis_url=REDIS_URL, prefix=channel),
        tracer_provider=TracerProvider(),
    )
    bus = redis_asyncio.Redis.from_url(REDIS_URL)
    print("ready", flush=True)
    while True:
        popped = await bus.brpop([channel + ":bus"])
        if popped is None:
            continue
        envelope = decode(popped[1])
        meta = envelope.metadata
        if meta.client_id is None:
            continue
        with click_context.bound(None, meta.extract().otel_context()):
            await emitter.notify(
                meta.client_id,
                correlation_id=meta.correlation_id,
                status="confirmed",
                type=meta.type,
                data=envelope.payload,
            )


if __name__ == "__main__":
    role, transport_name, channel_name = sys.argv[1:4]
    if role == "node":
        node(transport_name, channel_name, int(sys.argv[4]))
    else:
        asyncio.run(worker(transport_name, channel_name))
