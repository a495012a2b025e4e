"""The protocol's answers to a command: accepted, refused for its token, or come back later."""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from clicktrace import context as click_context
from clicktrace.asgi.middleware import CLIENT_REFUSED
from clicktrace.ids import new_id
from clicktrace.protocol import INVALID_CLIENT, UNAVAILABLE
from clicktrace.web._errors import error_response

__all__ = ["accepted", "invalid_client", "unavailable"]


def accepted(correlation_id: str | None = None) -> JSONResponse:
    """``202 {"correlation_id", "status": "accepted"}``, with the bound correlation id unless
    one is given (a fresh one outside any click, so the body always matches the protocol)."""
    if correlation_id is None:
        click = click_context.current()
        correlation_id = click.correlation_id if click is not None else new_id()
    return JSONResponse({"correlation_id": correlation_id, "status": "accepted"}, 202)


def invalid_client(connection: HTTPConnection) -> Response | None:
    """``401 invalid_client`` when the request carried an ``x-clicktrace-client`` token that
    the middleware's ``client_verifier`` refused (forged, tampered, expired, repeated,
    oversized); ``None`` when it carried a valid token or none.

    A command accepted with a refused token would have no tab to answer: the client must
    renew its session and send the same command again (same correlation id).
    """
    if connection.scope.get(CLIENT_REFUSED):
        return error_response(
            401, INVALID_CLIENT, "The client token is invalid or expired: renew the session."
        )
    return None


def unavailable(message: str = "Busy: try again shortly.", retry_after: int = 1) -> Response:
    """``503 unavailable`` with ``Retry-After`` (seconds), for a command the server could not
    take right now (a database lock held past its timeout) and that was not applied."""
    if retry_after < 0:
        raise ValueError("retry_after must be >= 0")
    response = error_response(503, UNAVAILABLE, message)
    response.headers["retry-after"] = str(retry_after)
    return response
