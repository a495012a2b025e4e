"""The process the renotify test kills between a projection's commit and its notification:
a command route publishing to the Redis bus, a SQLite projection that claims each message
and keeps its outcome with the claim, and a notifier on the WebSocket whose replay buffer is
in Redis (so its epoch survives the restart and the tab gets no resync).

``python renotify_app.py BUS_URL TOPIC DATA_DIR PORT SECRET REPLAY_PREFIX``. With
``RENOTIFY_KILL_AT=<n>`` the process SIGKILLs itself once the projection committed command
``n``, before it notifies: the kill point lives here, in the test app, not in the SDK.
``handled`` gets a row per delivery, ``applied`` one per application.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from clicktrace import context as click_context
from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.bus import create_bus
from clicktrace.claims import Outcome, SqliteClaims
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.notify import Notifier, RedisReplayBuffer, Replay, TokenSigner, WebSocketTransport
from clicktrace.projection import send_outcome

CONSUMER = "renotify-projection"
KILL_AT = "RENOTIFY_KILL_AT"
REDIS = "redis://127.0.0.1:6379/0"
SCHEMA = """
CREATE TABLE IF NOT EXISTS handled (correlation_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS applied (correlation_id TEXT NOT NULL);
"""


def create_app(bus_url: str, topic: str, data_dir: Path, secret: bytes, prefix: str) -> ASGIApp:
    path = data_dir / "renotify.sqlite3"
    signer = TokenSigner(secret=secret)
    notifier = Notifier(
        signer,
        WebSocketTransport(),
        replay=Replay(buffer=RedisReplayBuffer(REDIS, prefix=prefix)),
    )
    bus = create_bus(bus_url, block_ms=100)
    processed = SqliteClaims()
    kill_at = int(os.environ.get(KILL_AT, "0"))

    async def project(envelope: Envelope) -> None:
        meta, n = envelope.metadata, int(envelope.payload["n"])
        async with aiosqlite.connect(path, isolation_level=None, timeout=10) as conn:
            await conn.execute("BEGIN IMMEDIATE")
            await conn.execute("INSERT INTO handled VALUES (?)", (meta.correlation_id,))
            outcome: Outcome | None
            if await processed.claim(conn, CONSUMER, meta.message_id):
                await conn.execute("INSERT INTO applied VALUES (?)", (meta.correlation_id,))
                outcome = decided = Outcome.confirmed({"n": n})
                await processed.record_outcome(conn, CONSUMER, meta.message_id, decided)
            else:  # applied before the crash, maybe never told: tell the tab again
                outcome = await processed.recorded_outcome(conn, CONSUMER, meta.message_id)
            await conn.commit()
        if n == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # committed, not yet notified
        await send_outcome(notifier.notify, envelope, outcome)

    bus.subscribe(topic, project, group=CONSUMER)

    async def command(request: Request) -> Response:
        body = await request.json()
        envelope = new_envelope("Counted", {"n": int(body["n"])}, click=click_context.current())
        await bus.publish(topic, envelope)
        return JSONResponse(
            {"correlation_id": envelope.metadata.correlation_id, "status": "accepted"},
            status_code=202,
        )

    async def ready(request: Request) -> Response:
        return PlainTextResponse("ok")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with aiosqlite.connect(path) as conn:
            await conn.executescript(SCHEMA)
            await processed.create_tables(conn)
            await conn.commit()
        await bus.start()
        try:
            yield
        finally:
            await bus.close()
            await notifier.aclose()

    app = Starlette(
        routes=[
            Route("/commands", command, methods=["POST"]),
            Route("/ready", ready),
            *notifier.routes,
        ],
        middleware=[Middleware(ClicktraceMiddleware, client_verifier=signer.verify)],
        lifespan=lifespan,
    )
    return notifier.asgi(app)


def main() -> None:
    bus_url, topic, data_dir, port, secret, prefix = sys.argv[1:7]
    app = create_app(bus_url, topic, Path(data_dir), secret.encode(), prefix)
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")


if __name__ == "__main__":
    main()
