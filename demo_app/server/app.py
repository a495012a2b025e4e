"""Assembles the catalogue: API, event store + outbox, bus, projection, notifier, web app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.bus import Bus, create_bus
from clicktrace.bus.idempotency import SqliteIdempotency
from clicktrace.envelope import Envelope
from clicktrace.ingest import browser_traces_route
from clicktrace.notify import Notifier, TokenSigner
from clicktrace.outbox import OutboxRelay, SqliteOutbox

from . import commands
from .catalogue import RENAMED, seed
from .database import Database
from .projection import CONSUMER, Projection
from .settings import Settings


def _web(settings: Settings) -> BaseRoute:
    if (settings.web_dist / "index.html").exists():
        return Mount("/", StaticFiles(directory=settings.web_dist, html=True))

    async def not_built(request: Request) -> Response:
        return PlainTextResponse("The web app is not built: run `make web`.", status_code=503)

    return Route("/", not_built)


def create_app(
    settings: Settings, tracer_provider: TracerProvider | None = None, *, bus: Bus | None = None
) -> ASGIApp:
    """The demo as one ASGI app; ``bus`` defaults to the one ``settings.bus_url`` names."""
    db = Database(settings.database)
    signer = TokenSigner(secret=settings.secret)
    notifier = Notifier(signer, transport=settings.transport, tracer_provider=tracer_provider)
    bus = bus or create_bus(settings.bus_url, tracer_provider=tracer_provider)
    outbox, processed = SqliteOutbox(), SqliteIdempotency()
    relay = OutboxRelay(outbox, connect=db.connect_relay, bus=bus, poll_interval=0.5)
    projection = Projection(db, notifier.notify, processed.claim, tracer_provider)

    async def dead_letter(envelope: Envelope, reason: str) -> None:
        # The projection gave up on this message (or it came after its deadline): the tab
        # must not wait in vain.
        meta = envelope.metadata
        if meta.client_id and meta.type == RENAMED:
            code = reason if reason == "deadline_exceeded" else "processing_failed"
            await notifier.notify(
                meta.client_id, correlation_id=meta.correlation_id, status="rejected",
                type=meta.type, error={"code": code, "message": reason[:200]},
            )

    bus.subscribe(settings.topic, projection.handle, group=CONSUMER, on_dead_letter=dead_letter)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.create()
        async with db.connect() as conn:
            await outbox.create_tables(conn)
            await processed.create_tables(conn)
        async with db.transaction() as conn:
            await seed(conn)
        await bus.start()
        await relay.start()  # also publishes what a previous run committed but never sent
        try:
            yield
        finally:
            await relay.close()
            await bus.close()
            await notifier.aclose()

    app = Starlette(
        routes=[
            *commands.routes(db, outbox, relay, settings.topic),
            *notifier.routes,
            # The browser's spans join the server's: one trace from the click to the outcome.
            browser_traces_route(client_verifier=signer.verify, tracer_provider=tracer_provider),
            _web(settings),
        ],
        middleware=[
            Middleware(ClicktraceMiddleware, tracer_provider=tracer_provider,
                       client_verifier=signer.verify, excluded_paths=settings.excluded_paths),
        ],
        lifespan=lifespan,
    )
    return notifier.asgi(app)
