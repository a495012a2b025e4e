"""One call that wires clicktrace into a Starlette or FastAPI app.

.. code-block:: python

    api = FastAPI()                      # or Starlette(routes=[...])
    ...your routes...
    app = clicktrace.install(api, notifier=notifier, bus=bus, relay=relay)

It adds what the Pinia plugin talks to and what closes the loop: the middleware (SERVER span,
correlation id, the tab's verified client id), the session route and the socket transport of
``notifier``, the browser-span route (the plugin's default ``tracesUrl``), the exception
handlers that give Starlette's and FastAPI's own refusals the protocol's error shape, and a
lifespan that starts the bus and the relay after the app's own start-up (so the outbox tables
exist), closes them before the app's own shutdown, and closes the notifier last. It returns
the ASGI app to serve: ``app`` behind the socket transport. With a ``journal`` it also serves
``GET /clicktrace/journal/{correlation_id}`` and records into it while the app runs; and
``GET /clicktrace/health`` checks what it was given (bus, outbox, journal, replay store).

Defaults that fit an app as it comes: clicktrace's own routes (session, socket, span uploads,
journal, health) and the app's static mounts open no trace, so a trace is a click's, not a
page load's or a poll's; every bus subscription without a dead-letter hook tells the tab
when its command was given up on; and a WebSocket transport on a uvicorn that cannot speak
WebSocket fails at start-up with the line that fixes it, instead of answering ``404`` to
every tab's socket.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import TracerProvider
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from clicktrace._optional import require
from clicktrace.asgi.middleware import ClicktraceMiddleware
from clicktrace.bus import Bus
from clicktrace.journal import use as use_journal
from clicktrace.notify import Notifier
from clicktrace.projection import reject_on_dead_letter
from clicktrace.web._errors import exception_handlers

if TYPE_CHECKING:  # the journal, health and outbox modules load only when they are used
    from clicktrace.health import Check
    from clicktrace.journal import Journal
    from clicktrace.outbox import OutboxRelay

__all__ = ["install"]

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]
WEBSOCKET_HINT = (
    "clicktrace's WebSocket transport needs a server that speaks WebSocket, and this uvicorn "
    "has no WebSocket library: every tab's /clicktrace/ws would get 404 and never hear an "
    "outcome. Install one: pip install 'clicktrace[websocket]' (or 'uvicorn[standard]')"
)
# The WebSocket libraries uvicorn can serve with (its --ws auto tries them in this order).
_WEBSOCKET_LIBRARIES = ("websockets", "wsproto")


def install(
    app: Starlette,
    *,
    notifier: Notifier,
    bus: Bus | None = None,
    relay: OutboxRelay | None = None,
    tracer_provider: TracerProvider | None = None,
    browser_spans: bool = True,
    error_handlers: bool = True,
    excluded_paths: str | Iterable[str] = (),
    routes: Iterable[BaseRoute] = (),
    journal: Journal | None = None,
    health: bool = True,
    checks: Iterable[Check] = (),
    operator_token: str | None = None,
    trace_own_routes: bool = False,
    browser_service_name: str | None = None,
    reject_dead_letters: bool = True,
    console: bool = False,
    console_trace_url: str | None = None,
) -> ASGIApp:
    """Wire clicktrace into ``app`` (a ``Starlette`` or ``FastAPI``) and return the ASGI app
    to serve.

    ``bus`` and ``relay`` are started and closed with the app when given (a node whose relay
    and projection run elsewhere passes neither); ``notifier`` is always closed. Tokens are
    verified with ``notifier.signer``. ``browser_spans=False`` leaves out the browser-span
    route (it needs the ``sdk`` extra); ``error_handlers=False`` keeps the app's own
    handlers for ``HTTPException`` and FastAPI's validation error (a handler the app already
    set is kept either way). ``routes`` are added in front of the app's own, beside
    clicktrace's. ``journal`` (see :func:`clicktrace.journal.create_journal`) is made the
    process journal for the app's lifetime, served to the tab that owns a correlation id (or
    the operator token), and closed at shutdown. ``health=False`` leaves out the health route;
    ``checks`` are added to the ones built from ``bus``, ``relay``, ``journal`` and the
    notifier's replay store; anonymous callers get the status alone, the entries need
    ``operator_token`` (default ``$CLICKTRACE_OPERATOR_TOKEN``, which also opens every id of
    the journal route).

    Tracing: clicktrace's own routes and the app's static mounts (``StaticFiles`` under
    ``Mount``; one at ``/`` by the names at the top of its directory) run untraced, under
    an unsampled context; ``excluded_paths`` (regular expressions, see
    :class:`~clicktrace.asgi.ClicktraceMiddleware`) adds to them, ``trace_own_routes=True``
    traces them all again. The browser's spans keep the ``service.name`` the plugin gave
    them (its ``serviceName``, ``browser`` by default) unless ``browser_service_name`` sets
    one for every tab. With a ``bus``, every subscription that has no ``on_dead_letter``
    gets :func:`~clicktrace.projection.reject_on_dead_letter` of ``notifier``
    (``reject_dead_letters=False``: none). ``console=True`` serves the operator console under
    ``/clicktrace/console`` (:func:`clicktrace.console.console_routes`: it needs ``journal``
    and the operator token, and sends dead letters again on ``bus``);
    ``console_trace_url`` (default ``$CLICKTRACE_TRACE_URL``) links a click's trace in a
    trace UI, ``{trace_id}`` standing for its id. Call it before the app serves its first
    request.
    """
    if not isinstance(app, Starlette):
        raise TypeError("install() takes a Starlette or FastAPI application")
    if not isinstance(notifier, Notifier):
        raise TypeError("notifier must be a clicktrace Notifier")
    if app.middleware_stack is not None:
        raise RuntimeError("install() must run before the app has started")
    verify = notifier.signer.verify
    own: list[BaseRoute] = []  # clicktrace's routes beside the notifier's
    if browser_spans:
        own.append(_browser_spans(verify, tracer_provider, browser_service_name))
    if journal is not None:
        from clicktrace.journal import journal_route

        own.append(journal_route(journal, client_verifier=verify, operator_token=operator_token))
    probe = _health(notifier, bus, relay, journal, checks, operator_token) if health else None
    if probe is not None:
        own.append(probe)
    if console:
        own += _console(journal, operator_token, bus, console_trace_url, probe)
    if not trace_own_routes:
        ours = [*notifier.routes, *own]
        excluded_paths = [*_patterns(excluded_paths), *untraced_paths(ours, app.routes)]
    if bus is not None and reject_dead_letters:
        bus.default_dead_letter(reject_on_dead_letter(notifier.notify))
    # In front: an app's catch-all (a static Mount at "/") must not shadow /clicktrace/*.
    app.router.routes[0:0] = [*notifier.routes, *routes, *own]
    # Innermost of the app's middleware, so the app's own CORS middleware also covers the
    # refusals the clicktrace middleware answers itself.
    app.user_middleware.append(
        Middleware(
            ClicktraceMiddleware,
            tracer_provider=tracer_provider,
            client_verifier=verify,
            excluded_paths=excluded_paths,
        )
    )
    if error_handlers:
        defaults = _framework_defaults()
        for key, handler in exception_handlers().items():
            current = app.exception_handlers.get(key)
            if current is None or current in defaults:
                app.exception_handlers[key] = handler
    app.router.lifespan_context = _lifespan(
        app.router.lifespan_context, notifier, bus, relay, journal
    )
    if any(isinstance(route, WebSocketRoute) for route in notifier.routes):
        app.router.lifespan_context = _websocket_served(app.router.lifespan_context)
    served = notifier.asgi(app)
    if probe is None:
        return served
    from clicktrace.health._report import in_front

    # Probes are answered before the socket transport, the middleware and the router: no
    # span, no routing, the last report's bytes (load balancers and monitors poll often).
    return in_front(served, probe)


def _health(
    notifier: Notifier,
    bus: Bus | None,
    relay: OutboxRelay | None,
    journal: Journal | None,
    extra: Iterable[Check],
    operator_token: str | None,
) -> Route:
    from clicktrace.health import (
        bus_check,
        correlations_check,
        health_route,
        journal_check,
        outbox_check,
        replay_check,
    )

    found: list[Check] = [bus_check(bus)] if bus is not None else []
    if relay is not None:
        found.append(outbox_check(relay.outbox, relay.connect))
    if journal is not None:
        found += [correlations_check(journal), journal_check(journal)]
    checks = [*found, replay_check(notifier.hub.buffer), *extra]
    return health_route(checks, operator_token=operator_token)


def _console(
    journal: Journal | None,
    operator_token: str | None,
    bus: Bus | None,
    trace_url: str | None,
    probe: Route | None,
) -> list[BaseRoute]:
    if journal is None:
        raise ValueError("console=True needs a journal: install(..., journal=create_journal(...))")
    from clicktrace.console import console_routes

    report = None
    if probe is not None:
        from clicktrace.health._report import report_of

        report = report_of(probe).latest
    # console_routes raises the ValueError that names the missing operator token.
    return console_routes(
        journal, operator_token=operator_token, bus=bus, trace_url=trace_url, health=report
    )


def _framework_defaults() -> set[Any]:
    """FastAPI's own handlers, which it registers in every app (Starlette registers none):
    those are replaced, a handler the app set itself is kept."""
    try:
        from fastapi import exception_handlers as fastapi_handlers
    except ImportError:
        return set()
    return {
        fastapi_handlers.http_exception_handler,
        fastapi_handlers.request_validation_exception_handler,
        fastapi_handlers.websocket_request_validation_exception_handler,
    }


def _patterns(paths: str | Iterable[str]) -> list[str]:
    return paths.split(",") if isinstance(paths, str) else list(paths)


def untraced_paths(own: Iterable[BaseRoute], app_routes: Iterable[BaseRoute]) -> list[str]:
    """The excluded-path patterns ``install()`` adds by default: one per route of ``own``
    (clicktrace's) and per static mount of ``app_routes``, anchored at the path's start.

    A route with parameters is excluded by its literal prefix (``/clicktrace/journal/``). A
    ``StaticFiles`` mount at ``/`` answers whatever no other route takes, which no pattern
    can say; it is excluded by what it serves: ``/``, and each name at the top of its
    directories when ``install()`` runs (``/assets/``, ``/favicon.ico``), so an app route
    named like one of those (``/assets/...``) would go untraced too.
    """
    found: list[str] = []
    for route in own:
        if isinstance(route, Route | WebSocketRoute):
            literal, brace, _ = route.path.partition("{")
            found.append(f"^{re.escape(literal)}" + ("" if brace else "$"))
    for route in app_routes:
        if isinstance(route, Mount) and isinstance(route.app, StaticFiles):
            found += _static(route.path, route.app)
    return found


def _static(path: str, files: StaticFiles) -> list[str]:
    if path:  # Mount strips the trailing slash: "/static"
        return [f"^{re.escape(path)}(/|$)"]
    found = ["^/$"] if files.html else []
    for directory in files.all_directories:
        top = Path(directory)
        if not top.is_dir():
            continue  # StaticFiles(check_dir=False): not built yet
        for entry in sorted(top.iterdir()):
            name = re.escape(entry.name)
            found.append(f"^/{name}/" if entry.is_dir() else f"^/{name}$")
    return found


def _websocket_library() -> bool:
    """Whether uvicorn finds a WebSocket library to serve with (its ``--ws auto``)."""
    for name in _WEBSOCKET_LIBRARIES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        return True
    return False


def _websocket_served(own: Lifespan) -> Lifespan:
    """Start-up fails with :data:`WEBSOCKET_HINT` when the app is served by uvicorn (the
    one ASGI server that starts without any WebSocket library) and none is installed.
    Other servers (Hypercorn, Daphne, Granian) bring their own."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        if "uvicorn" in sys.modules and not _websocket_library():
            raise RuntimeError(WEBSOCKET_HINT)
        async with own(app) as state:
            yield state

    return lifespan


def _browser_spans(
    verify: Callable[[str], str | None],
    tracer_provider: TracerProvider | None,
    service_name: str | None,
) -> BaseRoute:
    require("opentelemetry.sdk.trace", "sdk", package="opentelemetry-sdk")
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    from clicktrace.ingest import browser_traces_route

    # Another provider (the API's proxy, a vendor's): the route resolves the global one per
    # request instead.
    sdk = tracer_provider if isinstance(tracer_provider, SdkTracerProvider) else None
    return browser_traces_route(
        client_verifier=verify, tracer_provider=sdk, service_name=service_name
    )


def _lifespan(
    own: Lifespan,
    notifier: Notifier,
    bus: Bus | None,
    relay: OutboxRelay | None,
    journal: Journal | None,
) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        previous = use_journal(journal) if journal is not None else None
        try:
            async with own(app) as state:
                if bus is not None:
                    await bus.start()
                try:
                    if relay is not None:
                        await relay.start()  # also sends what an earlier run committed
                    try:
                        yield state
                    finally:
                        if relay is not None:
                            await relay.close()
                finally:
                    if bus is not None:
                        await bus.close()
        finally:
            await notifier.aclose()
            if journal is not None:
                use_journal(previous)
                await journal.aclose()

    return lifespan
