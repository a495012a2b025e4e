"""The protocol's error responses, one way each: the JSON error body, a :class:`Refusal`
(status, code, message as one value) sent through a route's ``Response`` or a raw ASGI
``send``, the response header naming the click, and the exception handlers that give
Starlette's and FastAPI's own refusals the same shape.

A route's refusal carries the correlation id in its body and in ``x-correlation-id`` whether
or not :class:`~clicktrace.asgi.ClicktraceMiddleware` runs in front of it: behind the
middleware the id is the bound one; without it, the request's own valid ``x-correlation-id``,
else a fresh one.

Starlette answers an ``HTTPException`` (a 404 from the router, a 405) with plain text, and
FastAPI a validation failure with ``422 {"detail": [...]}``; a client of this protocol reads
``{"error": {"code", "message"}, "correlation_id"}`` from every error, so
:func:`exception_handlers` maps them. FastAPI is imported only when it is installed, so a
Starlette app does not need it.

A route whose dependency is down (a refused or reset connection, an elapsed timeout: Python's
own ``ConnectionError`` and ``TimeoutError``, which asyncpg's connect, raw sockets and
``asyncio.wait_for`` raise) is a ``503 unavailable`` with ``Retry-After`` and one warning
line, not a 500 with a traceback: the client may retry, and nothing about the dependency
reaches it. The client libraries the SDK ships adapters for raise their own types (redis-py's
``ConnectionError`` is not Python's): :func:`is_outage` knows those by name, and the edge
middleware answers them the same way when they escape a route.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope, Send

from clicktrace import context as click_context
from clicktrace.ids import new_id, parse_id
from clicktrace.protocol import (
    CORRELATION_HEADER,
    INVALID_REQUEST,
    PAYLOAD_TOO_LARGE,
    UNAUTHORIZED,
    UNAVAILABLE,
)

__all__ = [
    "DEPENDENCY_DOWN",
    "MAX_MESSAGE_LENGTH",
    "RETRY_AFTER",
    "RETRY_AFTER_SECONDS",
    "Refusal",
    "correlation_header",
    "error_body",
    "error_response",
    "exception_handlers",
    "is_outage",
    "refuse",
    "request_correlation_id",
    "send_error",
]

RETRY_AFTER_SECONDS = 2  # a dependency that is down: when the client may try again
RETRY_AFTER = ((b"retry-after", str(RETRY_AFTER_SECONDS).encode()),)
"""The same as raw ASGI headers, for :func:`send_error`."""
_CORRELATION = CORRELATION_HEADER.encode()

# "The server is away" in the client libraries of the SDK's stores and brokers, where it is not
# Python's ConnectionError / TimeoutError: matched by qualified name along the exception's
# classes, so nothing is imported to know them (an app that never loads asyncpg pays nothing).
_OUTAGES = frozenset(
    {
        "redis.exceptions.ConnectionError",  # BusyLoadingError too: a restarting Redis
        "redis.exceptions.TimeoutError",
        "asyncpg.exceptions.PostgresConnectionError",  # SQLSTATE class 08
        "asyncpg.exceptions.CannotConnectNowError",  # starting up or shutting down
        "asyncpg.exceptions.AdminShutdownError",
        "asyncpg.exceptions.TooManyConnectionsError",
        "nats.errors.ConnectionClosedError",
        "nats.errors.NoServersError",
    }
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says a dependency did not answer (down, restarting, full, timed out),
    rather than that the request or the code was wrong."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any(f"{c.__module__}.{c.__qualname__}" in _OUTAGES for c in type(exc).__mro__)


def error_body(code: str, message: str, correlation_id: str) -> bytes:
    """``{"error": {"code", "message"}, "correlation_id"}`` as compact JSON bytes."""
    return json.dumps(
        {"error": {"code": code, "message": message}, "correlation_id": correlation_id},
        separators=(",", ":"),
    ).encode()


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was not taken: the status, code and message of the protocol's error
    body, one value wherever an error is built, sent or returned (the correlation id and any
    headers are the caller's, given beside it)."""

    status: int
    code: str
    message: str

    def body(self, correlation_id: str) -> bytes:
        return error_body(self.code, self.message, correlation_id)

    def response(self) -> Response:
        """The protocol's error response with the bound correlation id."""
        return error_response(self.status, self.code, self.message)


DEPENDENCY_DOWN = Refusal(
    503, UNAVAILABLE, "A service this request needs is unavailable: try again shortly."
)
"""What a client is told when a dependency did not answer (with ``Retry-After``)."""


def error_response(status: int, code: str, message: str) -> Response:
    """A JSON error response carrying the current correlation id.

    Outside a bound :class:`~clicktrace.context.ClickContext` (no middleware) a fresh id is
    used, so the body always matches the protocol.
    """
    if not 400 <= status <= 599:
        raise ValueError(f"an error response needs a 4xx or 5xx status, not {status}")
    click = click_context.current()
    correlation_id = click.correlation_id if click is not None else new_id()
    return Response(
        error_body(code, message, correlation_id), status, media_type="application/json"
    )


async def send_error(
    send: Send,
    refusal: Refusal,
    correlation_id: str,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Send ``refusal`` as a whole HTTP response through a raw ASGI ``send``."""
    await send(
        {
            "type": "http.response.start",
            "status": refusal.status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": refusal.body(correlation_id)})


def correlation_header(correlation_id: str) -> tuple[bytes, bytes]:
    """The response header naming the click, as a raw ASGI pair: every writer of
    ``x-correlation-id`` (the middleware, :func:`refuse`, the Engine.IO guard) uses it."""
    return _CORRELATION, correlation_id.encode("ascii")


def request_correlation_id(scope: Scope) -> str:
    """The correlation id a response to ``scope`` names: the bound one behind the middleware;
    without it, the request's own valid ``x-correlation-id`` (exactly one), else a fresh one."""
    bound = click_context.current()
    if bound is not None:
        return bound.correlation_id
    values = [v for k, v in scope.get("headers", ()) if k == _CORRELATION]
    parsed = parse_id(values[0]) if len(values) == 1 else None
    return parsed or new_id()


def refuse(
    refusal: Refusal, correlation_id: str, headers: Mapping[str, str] | None = None
) -> Response:
    """``refusal`` as a response whose body and ``x-correlation-id`` carry ``correlation_id``."""
    response = Response(
        refusal.body(correlation_id),
        refusal.status,
        headers=headers,
        media_type="application/json",
    )
    response.raw_headers.append(correlation_header(correlation_id))
    return response


MAX_MESSAGE_LENGTH = 300
_MAX_ERRORS = 3
_MAX_LOC_PART = 40
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_CODES = {401: UNAUTHORIZED, 413: PAYLOAD_TOO_LARGE, 422: INVALID_REQUEST}
_log = logging.getLogger("clicktrace.asgi")

Handler = Callable[[Request, Any], Coroutine[Any, Any, Response]]


def _code(status: int) -> str:
    """``not_found``, ``method_not_allowed``, ...: the status phrase in snake case."""
    if status in _CODES:
        return _CODES[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "error"
    return _NOT_WORD.sub("_", phrase.lower()).strip("_")


def _cut(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_LENGTH else text[: MAX_MESSAGE_LENGTH - 1] + "…"


async def http_exception(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):
        raise TypeError(f"not an HTTPException: {type(exc).__name__}")
    status = exc.status_code
    if not 400 <= status <= 599:  # a 304 or a redirect raised as an exception: no body
        return Response(status_code=status, headers=exc.headers)
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else _code(status)
    response = error_response(status, _code(status), _cut(message))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _where(loc: Sequence[Any]) -> str:
    return ".".join(str(part)[:_MAX_LOC_PART] for part in loc)


def validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    """``"body.name: Field required; path.id: ..."`` from the first errors; the client's
    input is never echoed (pydantic's ``input`` field is left out)."""
    parts = [
        f"{_where(error.get('loc', ()))}: {error.get('msg', 'invalid')}"
        for error in errors[:_MAX_ERRORS]
    ]
    if len(errors) > _MAX_ERRORS:
        parts.append(f"and {len(errors) - _MAX_ERRORS} more")
    return _cut("; ".join(parts) or "The request is invalid.")


async def validation_error(request: Request, exc: Exception) -> Response:
    errors = getattr(exc, "errors", None)
    found = errors() if callable(errors) else []
    return error_response(422, INVALID_REQUEST, validation_message(list(found)))


async def unreachable(request: Request, exc: Exception) -> Response:
    """``503 unavailable`` with ``Retry-After`` for a dependency that did not answer."""
    _log.warning("a dependency did not answer (%s): 503", type(exc).__name__)
    response = DEPENDENCY_DOWN.response()
    response.headers["retry-after"] = str(RETRY_AFTER_SECONDS)
    return response


def exception_handlers() -> dict[int | type[Exception], Handler]:
    """``{HTTPException: ..., ConnectionError: ..., TimeoutError: ...,
    RequestValidationError: ...}`` for ``Starlette(exception_handlers=...)`` or
    ``FastAPI(exception_handlers=...)`` (FastAPI's own ``HTTPException`` is a Starlette one;
    its validation error only when installed)."""
    handlers: dict[int | type[Exception], Handler] = {
        HTTPException: http_exception,
        ConnectionError: unreachable,
        TimeoutError: unreachable,
    }
    try:
        fastapi = importlib.import_module("fastapi.exceptions")
    except ImportError:
        return handlers
    handlers[fastapi.RequestValidationError] = validation_error
    return handlers
