"""The protocol's JSON error body, for handlers and for the middleware's own refusals."""

from __future__ import annotations

import json

from starlette.responses import Response
from starlette.types import Send

from clicktrace import context as click_context
from clicktrace.ids import new_id

__all__ = ["error_body", "error_response", "send_error"]


def error_body(code: str, message: str, correlation_id: str) -> bytes:
    """``{"error": {"code", "message"}, "correlation_id"}`` as compact JSON bytes."""
    return json.dumps(
        {"error": {"code": code, "message": message}, "correlation_id": correlation_id},
        separators=(",", ":"),
    ).encode()


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
    status: int,
    code: str,
    message: str,
    correlation_id: str,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Send the error body as a whole HTTP response through a raw ASGI ``send``."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": error_body(code, message, correlation_id)})
