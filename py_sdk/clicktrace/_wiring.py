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
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import TracerProvider
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from clicktrace._optional import require
from clicktrace.asgi.middleware import ClicktraceMiddleware
from clicktrace.bus import Bus
from clicktrace.journal import use as use_journal
from clicktrace.notify import Notifier
from clicktrace.web._errors import exception_handlers

if TYPE_CHECKING:  # the journal, health and outbox modules load only when they are used
    from clicktrace.health import Check
    from clicktrace.journal import Journal
    from clicktrace.outbox import OutboxRelay

__all__ = ["install"]

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


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
    the journal route). Call it before the app serves its first request.
    """
    if not isinstance(app, Starlette):
        raise TypeError("install() takes a Starlette or FastAPI application")
    if not isinstance(notifier, Notifier):
        raise TypeError("notifier must be a clicktrace Notifier")
    if app.middleware_stack is not None:
        raise RuntimeError("install() must run before the app has started")
    verify = notifier.signer.verify
    ours: list[BaseRoute] = [*notifier.routes, *routes]
    if browser_spans:
        ours.append(_browser_spans(verify, tracer_provider))
    if journal is not None:
        from clicktrace.journal import journal_route

        ours.append(journal_route(journal, client_verifier=verify, operator_token=operator_token))
    probe = _health(notifier, bus, relay, journal, checks, operator_token) if health else None
    if probe is not None:
        ours.append(probe)
    # In front: an app's catch-all (a static Mount at "/") must not shadow /clicktrace/*.
    app.router.routes[0:0] = ours
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


def _browser_spans(
    verify: Callable[[str], str | None], tracer_provider: TracerProvider | None
) -> BaseRoute:
    require("opentelemetry.sdk.trace", "sdk", package="opentelemetry-sdk")
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    from clicktrace.ingest import browser_traces_route

    # Another provider (the API's proxy, a vendor's): the route resolves the global one per
    # request instead.
    sdk = tracer_provider if isinstance(tracer_provider, SdkTracerProvider) else None
    return browser_traces_route(client_verifier=verify, tracer_provider=sdk)


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
