"""The loop the SIGKILL test crashes, as a real process: commands answered 202 with the event
and its outbox row in one SQLite transaction, the relay, a projection applying each message
once (SQL idempotency claim in its own transaction), and the notifier telling the tab.

``python crash_app.py BUS_URL TOPIC DATA_DIR PORT SECRET [TRANSPORT]`` (``websocket`` or
``socketio``). ``applied`` gets one row per application (never unique), so a message applied
twice shows up as two rows. While ``DATA_DIR/hold`` exists the projection waits before claiming.
With ``CRASH_CONFIRM_GRACE`` set (seconds) the relay confirms delivery by the projection's
claims and publishes again what no claim covers after that grace (the broker-loss tests).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

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
from clicktrace.claims import SqliteClaims
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.notify import Notifier, SocketIOTransport, TokenSigner, WebSocketTransport
from clicktrace.outbox import ClaimsConfirmation, OutboxRelay, SqliteOutbox

CONSUMER = "crash-projection"
HOLD = "hold"  # while this file exists in DATA_DIR the projection applies nothing: the test
# makes its backlog on purpose instead of hoping the projection falls behind
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (message_id TEXT PRIMARY KEY, correlation_id TEXT,
                                   client_id TEXT, n INTEGER);
CREATE TABLE IF NOT EXISTS applied (message_id TEXT NOT NULL, correlation_id TEXT);
"""


def create_app(
    bus_url: str,
    topic: str,
    data_dir: Path,
    secret: bytes,
    transport: Literal["socketio", "websocket"] = "websocket",
) -> ASGIApp:
    path, hold = data_dir / "crash.sqlite3", data_dir / HOLD
    signer = TokenSigner(secret=secret)
    notifier = Notifier(
        signer, SocketIOTransport() if transport == "socketio" else WebSocketTransport()
    )
    bus = create_bus(bus_url)
    outbox, processed = SqliteOutbox(), SqliteClaims()
    grace = os.environ.get("CRASH_CONFIRM_GRACE")
    confirm = (
        None
        if grace is None
        else ClaimsConfirmation(
            processed, groups=[CONSUMER], grace_seconds=float(grace), max_republish=20
        )
    )
    relay = OutboxRelay(
        outbox,
        connect=lambda: aiosqlite.connect(path, timeout=10),
        bus=bus,
        poll_interval=0.5,
        confirm=confirm,
    )

    @asynccontextmanager
    async def transaction() -> AsyncIterator[aiosqlite.Connection]:
        async with aiosqlite.connect(path, isolation_level=None, timeout=10) as conn:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    async def project(envelope: Envelope) -> None:
        meta = envelope.metadata
        while hold.exists():  # held by the test: what arrives now is the backlog at the kill
            await asyncio.sleep(0.01)
        async with transaction() as conn:
            if not await processed.claim(conn, CONSUMER, meta.message_id):
                return  # applied before the crash: a redelivery or a re-published row
            await conn.execute(
                "INSERT INTO applied VALUES (?, ?)", (meta.message_id, meta.correlation_id)
            )
        if meta.client_id:
            await notifier.notify(
                meta.client_id,
                correlation_id=meta.correlation_id,
                status="confirmed",
                type="Counted",
            )

    bus.subscribe(topic, project, group=CONSUMER)

    async def command(request: Request) -> Response:
        body = await request.json()
        click = click_context.current()
        envelope = new_envelope("Counted", {"n": int(body["n"])}, click=click)
        meta = envelope.metadata
        async with transaction() as conn:
            await conn.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?)",
                (meta.message_id, meta.correlation_id, meta.client_id, int(body["n"])),
            )
            await outbox.add(conn, topic, envelope)
        relay.wake()
        return JSONResponse(
            {"correlation_id": meta.correlation_id, "status": "accepted"}, status_code=202
        )

    async def ready(request: Request) -> Response:
        return PlainTextResponse("ok")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with aiosqlite.connect(path) as conn:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.executescript(SCHEMA)
            await outbox.create_tables(conn)
            await processed.create_tables(conn)
            await conn.commit()
        await bus.start()
        await relay.start()  # publishes what the killed process committed but never sent
        try:
            yield
        finally:
            await relay.close()
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
    bus_url, topic, data_dir, port, secret = sys.argv[1:6]
    transport: Literal["socketio", "websocket"] = (
        "socketio" if sys.argv[6:] == ["socketio"] else "websocket"
    )
    app = create_app(bus_url, topic, Path(data_dir), secret.encode(), transport)
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")


if __name__ == "__main__":
    main()
