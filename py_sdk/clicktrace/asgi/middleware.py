"""``ClicktraceMiddleware``: the HTTP (and WebSocket handshake) edge of a click.

Pure ASGI. Per request it reads the trace context and clicktrace ids in one pass over the
headers, opens one SERVER span (unless an outer OpenTelemetry ASGI middleware already did),
binds the :class:`~clicktrace.context.ClickContext` and the OpenTelemetry context for the app,
and adds ``x-correlation-id``, ``traceresponse`` and ``Server-Timing`` (``trace`` and
``traceparent``, the same value) to every response, including the 500 it sends itself when the
app raises before responding.

Everything one request goes through is here, in its order: the click's ids (the client id is
whatever the verifier makes of the ``x-clicktrace-client`` token; a token it refuses binds no
client and marks the scope, so that a command can be answered 401 while everything else is
served as usual), the ``send`` wrapper (a closure over the request's status), and the journal
entry. The span and the context the app runs under are :mod:`clicktrace.asgi._span`'s.

The middleware journals only **commands**: requests that name their click (a valid
``x-correlation-id``), over HTTP, with a method other than GET, HEAD and OPTIONS, outside the
SDK's own ``/clicktrace/`` routes, that have sent a response: accepted (2xx/3xx) or refused,
read from the status. A query (a GET, even one carrying an id) is not journaled. Nothing is
done for it either unless something reads it (:func:`~clicktrace.journal._record.enabled`: a
journal, or a MeterProvider for the ``clicktrace.commands`` counter); the entry is built when
the journal writes it, from the request's click, so it carries the client id the middleware
verified (none for a missing or refused token): the first such entry says whose click it is,
and the browser-span route journals a tab's stages only for its own clicks
(``clicktrace.ingest._admission``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from opentelemetry.trace import TracerProvider
from opentelemetry.trace.status import Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clicktrace.asgi._span import (
    attach_context,
    compile_excluded,
    detach_context,
    finish_span,
    trace_request,
    untraced,
)
from clicktrace.context import ClickContext, bind, reset
from clicktrace.ids import escape_for_log, new_id, parse_id
from clicktrace.journal._record import command as record_command
from clicktrace.journal._record import enabled as recording
from clicktrace.propagation._edge_headers import (
    CAUSATION_SLOT,
    CLIENT_SLOT,
    CORRELATION_SLOT,
    DEADLINE_SLOT,
    Collected,
    collect_asgi,
    one,
)
from clicktrace.propagation._inject_extract import parse_deadline
from clicktrace.protocol import (
    CORRELATION_HEADER,
    INTERNAL_ERROR,
    INVALID_CORRELATION_ID,
    MAX_CLIENT_TOKEN_LENGTH,
    SERVER_TIMING_HEADER,
    TRACERESPONSE_HEADER,
)
from clicktrace.spans import get_tracer
from clicktrace.web._errors import (
    DEPENDENCY_DOWN,
    RETRY_AFTER,
    Refusal,
    correlation_header,
    is_outage,
    send_error,
)

__all__ = ["ClicktraceMiddleware"]

CLIENT_REFUSED = "clicktrace.client_refused"
"""Scope key set (to ``True``) when the request carried an ``x-clicktrace-client`` token that
the verifier refused; :func:`clicktrace.commands.invalid_client` answers such a command 401."""

_LOG = logging.getLogger("clicktrace.asgi")
_INTERNAL = Refusal(500, INTERNAL_ERROR, "Internal server error.")
_BAD_ID = Refusal(400, INVALID_CORRELATION_ID, "x-correlation-id must be a ULID.")
_TRACERESPONSE = TRACERESPONSE_HEADER.encode()
_SERVER_TIMING = SERVER_TIMING_HEADER.encode()
# Replaced when the app set them; an app's own Server-Timing metrics are kept beside ours.
_OURS = (CORRELATION_HEADER.encode(), _TRACERESPONSE)
# Requests that ask rather than do: never journaled as commands.
_QUERIES = frozenset({"GET", "HEAD", "OPTIONS"})
# Messages that carry response headers: HTTP, a WebSocket accept, a WebSocket denial.
_STARTS = frozenset({"http.response.start", "websocket.accept", "websocket.http.response.start"})
_new_click = tuple.__new__


class ClicktraceMiddleware:
    """Trace and correlate every HTTP request and WebSocket handshake.

    ``client_verifier`` maps the ``x-clicktrace-client`` token to a client id (``None`` when
    the token is invalid). ``strict`` refuses a malformed ``x-correlation-id`` with 400
    (a WebSocket handshake is closed with 1008) instead of replacing it; a missing one is
    always minted, since work may start on the server. ``spans=False`` is propagation only:
    no span is recorded, but the app still runs inside the caller's trace (under a span id
    of its own, the one ``traceresponse`` names) and every response gets the headers.
    ``excluded_paths`` (regular expressions searched in the path, or one comma-separated
    string, as OpenTelemetry's ``OTEL_PYTHON_EXCLUDED_URLS``) open no trace: such a request
    (static files, health probes, span ingest) runs under an unsampled context, so nothing
    under it is recorded either; it still gets its correlation id and the headers.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracer_provider: TracerProvider | None = None,
        client_verifier: Callable[[str], str | None] | None = None,
        strict: bool = False,
        spans: bool = True,
        excluded_paths: str | Iterable[str] = (),
    ) -> None:
        if client_verifier is not None and not callable(client_verifier):
            raise TypeError("client_verifier must be callable or None")
        self.app = app
        self._tracer = (
            get_tracer("clicktrace.asgi", tracer_provider=tracer_provider) if spans else None
        )
        self._provider = tracer_provider
        self._verify = client_verifier
        self._strict = strict
        self._excluded = compile_excluded(excluded_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        slots = collect_asgi(scope["headers"])
        raw = one(slots[CORRELATION_SLOT])
        correlation_id = parse_id(raw) if raw is not None else None
        # A command that names its click is journaled (the SDK's own routes are not).
        command = (
            correlation_id is not None
            and kind == "http"
            and scope["method"] not in _QUERIES
            and not scope["path"].startswith("/clicktrace/")
        )
        if correlation_id is None:
            correlation_id = new_id()
            if raw is not None:
                if self._strict:
                    await _refuse(kind, send, correlation_id)
                    return
                _LOG.warning(
                    "invalid x-correlation-id %s replaced with %s",
                    escape_for_log(raw.decode("latin-1")),
                    correlation_id,
                )
        if (
            slots[CLIENT_SLOT] is None
            and slots[CAUSATION_SLOT] is None
            and slots[DEADLINE_SLOT] is None
        ):  # the usual query: the id alone, built as the NamedTuple would build it
            click = _new_click(ClickContext, (correlation_id, None, None, None))
        else:
            click = _click(scope, slots, correlation_id, self._verify)
        if self._excluded is not None and self._excluded(scope.get("path", "")):
            span, ctx, traceresponse, own = untraced(slots)
        else:
            span, ctx, traceresponse, own = trace_request(
                scope, slots, correlation_id, self._tracer, self._provider
            )
        extra = (
            correlation_header(correlation_id),
            (_TRACERESPONSE, traceresponse),
            # W3C Trace Context Level 3 editor's draft, and Grafana Faro's name: one value.
            (
                _SERVER_TIMING,
                b"trace;desc=%b, traceparent;desc=%b" % (traceresponse, traceresponse),
            ),
        )
        status = 0
        failed = False

        # A plain function returning the inner send's awaitable: no coroutine of our own per
        # message, and the body messages pass with one lookup.
        def send_with_headers(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] in _STARTS:
                status = message.get("status", 101)
                headers = []
                for header in message.get("headers", ()):  # a loop: no comprehension frame
                    if header[0] not in _OURS:
                        headers.append(header)
                headers += extra
                message["headers"] = headers
            return send(message)

        click_token = bind(click)
        otel_token = attach_context(ctx) if ctx is not None else None
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            failed = True
            if own:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            if kind == "http" and status == 0:
                if is_outage(exc):  # a dependency is down: the client may retry; no traceback
                    _LOG.warning("a dependency did not answer (%s): 503", type(exc).__name__)
                    await send_error(
                        send_with_headers, DEPENDENCY_DOWN, correlation_id, RETRY_AFTER
                    )
                    return
                await send_error(send_with_headers, _INTERNAL, correlation_id)
            raise
        finally:
            if command and status:
                if own and 400 <= status < 500:  # the edge decided this click: refused
                    span.set_attribute("clicktrace.outcome", "refused")
                if recording():
                    record_command(
                        status, scope["method"], scope["path"], click, span.get_span_context()
                    )
            if otel_token is not None:
                try:
                    detach_context(otel_token)
                except ValueError:  # set in another context: the API would log it, as here
                    _LOG.warning("the OpenTelemetry context could not be reset")
            reset(click_token)
            if own:
                finish_span(span, scope, status, failed)


def _click(
    scope: Scope,
    slots: Collected,
    correlation_id: str,
    verify: Callable[[str], str | None] | None,
) -> ClickContext:
    """The :class:`~clicktrace.context.ClickContext` a request that carries a client token, a
    causation id or a deadline binds, from its headers."""
    client_id = None
    if slots[CLIENT_SLOT] is not None and verify is not None:
        token = one(slots[CLIENT_SLOT])
        if token is not None and len(token) <= MAX_CLIENT_TOKEN_LENGTH:
            client_id = verify(token.strip(b" \t").decode("latin-1"))
        if client_id is None:  # forged, expired, repeated or oversized: the app decides
            scope[CLIENT_REFUSED] = True
    return ClickContext(
        correlation_id,
        parse_id(one(slots[CAUSATION_SLOT])) if slots[CAUSATION_SLOT] else None,
        client_id,
        parse_deadline(one(slots[DEADLINE_SLOT])) if slots[DEADLINE_SLOT] else None,
    )


async def _refuse(kind: str, send: Send, correlation_id: str) -> None:
    """Strict mode's answer to a malformed correlation id."""
    if kind == "websocket":  # closing before accepting refuses the handshake
        await send({"type": "websocket.close", "code": 1008})
    else:
        await send_error(send, _BAD_ID, correlation_id, (correlation_header(correlation_id),))
