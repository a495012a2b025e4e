"""Assembles the catalogue's HTTP node: API, session, sockets, span ingest, the web app.

Embedded (``make demo``), the node also runs the outbox relay and the projection on its own
bus. Distributed (``make demo-distributed``), each API node serves only HTTP and its tabs'
sockets; the relay and the projection worker are processes of their own (``worker.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

import clicktrace
from clicktrace.bus import Bus
from clicktrace.console import CONSOLE_PATH
from clicktrace.health import outbox_check
from clicktrace.notify import Notifier, TokenSigner
from clicktrace.outbox import OutboxRelay
from clicktrace.prometheus import metrics_route

from . import commands
from .settings import Settings
from .wiring import (
    make_bus,
    make_faults,
    make_journal,
    make_relay,
    make_replay,
    make_store,
    make_transport,
    subscribe_projection,
)


def _web(settings: Settings) -> BaseRoute:
    if (settings.web_dist / "index.html").exists():
        return Mount("/", StaticFiles(directory=settings.web_dist, html=True))

    async def not_built(request: Request) -> Response:
        return PlainTextResponse("The web app is not built: run `make web`.", status_code=503)

    return Route("/", not_built)


def _config(settings: Settings) -> Route:
    """What the page needs to know about this deployment."""
    body = {
        "process": settings.process,
        "faults": settings.faults,
        "trace_url": settings.trace_url,
        # the operator console, served when an operator token is set
        "console": CONSOLE_PATH if settings.operator_token else None,
    }

    async def config(request: Request) -> Response:
        return JSONResponse(body)

    return Route("/api/config", config, methods=["GET"])


def create_app(
    settings: Settings,
    tracer_provider: TracerProvider | None = None,
    *,
    bus: Bus | None = None,
    embedded: bool = True,
) -> ASGIApp:
    """The demo node as one ASGI app on ``bus`` (default: the one ``settings.bus_url``
    names); ``embedded`` runs the relay and projection inside it, else the bus is only
    checked."""
    store = make_store(settings)
    faults = make_faults(settings)
    signer = TokenSigner(secret=settings.secret)
    notifier = Notifier(
        signer,
        make_transport(settings),
        replay=make_replay(settings),
        tracer_provider=tracer_provider,
    )
    relay: OutboxRelay | None = None
    # Distributed, a node publishes nothing (its relay does) but still connects to the bus,
    # so that its /clicktrace/health says when the broker the loop runs through is gone.
    bus = bus or make_bus(settings, faults, tracer_provider)
    if embedded:
        relay = make_relay(store, bus, 0.5)
        subscribe_projection(
            bus, settings, store, notifier.notify, faults, tracer_provider, notifier.publish
        )
    journal = make_journal(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # clicktrace.install starts the bus and the relay after this, and closes them first.
        await store.start()
        try:
            yield
        finally:
            await faults.aclose()
            await store.aclose()

    app = Starlette(
        routes=[
            *commands.routes(
                store,
                relay.wake if relay else _polled,
                settings.topic,
                faults if settings.faults else None,
                settings.operator_token,
            ),
            _config(settings),
            metrics_route(),  # Prometheus scrape of the SDK's metrics (docs/observe.md)
            _web(settings),
        ],
        lifespan=lifespan,
    )
    # Middleware, session + socket + browser-span routes, error shapes, bus/relay lifespan;
    # the journal (the waterfall reads where a click went) and /clicktrace/health.
    return clicktrace.install(
        app,
        notifier=notifier,
        bus=bus,
        relay=relay,
        tracer_provider=tracer_provider,
        excluded_paths=settings.excluded_paths,
        journal=journal,
        operator_token=settings.operator_token,
        console=settings.operator_token is not None,  # the operator console, behind the token
        console_trace_url=settings.trace_url,
        # distributed: the relay is another process; its lag still shows
        checks=[] if relay else [outbox_check(store.outbox, store.connect_relay)],
    )


def _polled() -> None:
    """Distributed: the relay is another process, which polls the outbox."""
