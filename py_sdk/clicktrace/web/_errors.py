"""The protocol's JSON error body, for handlers and for the middleware's own refusals."""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Send

from clicktrace import context as click_context
from clicktrace.ids import new_id
from clicktrace.protocol import UNAVAILABLE

__all__ = [
    "DEPENDENCY_DOWN",
    "RETRY_AFTER_SECONDS",
    "Refusal",
    "error_body",
    "error_response",
    "is_outage",
    "send_error",
]

RETRY_AFTER_SECONDS = 2  # a dependency that is down: when the client may try again

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
