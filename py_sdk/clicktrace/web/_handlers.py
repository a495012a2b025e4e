"""Exception handlers that give Starlette's and FastAPI's own refusals the protocol's shape.

Starlette answers an ``HTTPException`` (a 404 from the router, a 405) with plain text, and
FastAPI a validation failure with ``422 {"detail": [...]}``; a client of this protocol reads
``{"error": {"code", "message"}, "correlation_id"}`` from every error. FastAPI is imported
only when it is installed, so a Starlette app does not need it.

A route whose dependency is down (a refused or reset connection, an elapsed timeout: Python's
own ``ConnectionError`` and ``TimeoutError``, which asyncpg's connect, raw sockets and
``asyncio.wait_for`` raise) is a ``503 unavailable`` with ``Retry-After`` and one warning
line, not a 500 with a traceback: the client may retry, and nothing about the dependency
reaches it. The client libraries the SDK ships adapters for raise their own types (redis-py's
``ConnectionError`` is not Python's): :func:`~clicktrace.web._errors.is_outage` knows those
by name, and the edge middleware answers them the same way when they escape a route.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from clicktrace.web._errors import DEPENDENCY_DOWN, RETRY_AFTER_SECONDS, error_response

__all__ = ["MAX_MESSAGE_LENGTH", "RETRY_AFTER_SECONDS", "exception_handlers"]

MAX_MESSAGE_LENGTH = 300
_MAX_ERRORS = 3
_MAX_LOC_PART = 40
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_CODES = {401: "unauthorized", 413: "payload_too_large", 422: "invalid_request"}
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
    return error_response(422, "invalid_request", validation_message(list(found)))


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
