"""Retried commands answered once: ``once()`` over any :mod:`clicktrace.claims` backend.

A client that lost the answer to a command (network error, a 401 it renewed its session
for) sends it again with the same correlation id. ``once()`` claims the command's key before
applying it; a retry finds the claim and gets the first answer again (same status, body and
content type, plus ``x-clicktrace-replayed: 1``) instead of a second application. A SQL
backend claims and keeps the answer inside the command's own transaction, so the claim, the
answer and the command's event commit together or not at all: a crash in between cannot
apply twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.requests import HTTPConnection
from starlette.responses import Response

from clicktrace import context as click_context
from clicktrace.claims._base import Answer, Claims, decode_answer, encode_answer
from clicktrace.protocol import COMMAND_IN_PROGRESS, REPLAYED_HEADER
from clicktrace.web._errors import error_response

__all__ = ["COMMANDS", "once", "retry_key"]

COMMANDS: Final = "command"
"""The scope command claims are kept under (consumers' scopes are their names)."""
_POLL_SECONDS: Final = 0.05
_DEFAULT_TYPE: Final = "application/json"


def retry_key(connection: HTTPConnection) -> str:
    """The key of the command ``connection`` carries: the verified client id (or none), the
    correlation id, the method and the path, hashed to a fixed length. Keyed by the verified
    client id, so one client can never be answered with another's answer."""
    click = click_context.current()
    if click is None:
        raise RuntimeError("retry_key needs a bound ClickContext: add ClicktraceMiddleware")
    parts = (
        click.client_id or "",
        click.correlation_id,
        connection.scope.get("method", ""),
        connection.scope.get("path", ""),
    )
    return hashlib.sha256("\0".join(parts).encode("utf-8", "replace")).hexdigest()


async def once(
    claims: Claims,
    connection: HTTPConnection,
    apply: Callable[[], Awaitable[Response]],
    conn: Any = None,
    *,
    wait_seconds: float = 5.0,
) -> Response:
    """``apply()`` the command once per key; a retry gets the first answer.

    A 5xx answer or an exception is not kept (the command was not applied; its retry is
    applied afresh). With a SQL backend, call this inside the transaction ``apply`` writes
    in and pass that connection: an exception then rolls the claim back with the rest. A
    retry that finds the first attempt still running (memory, Redis) waits up to
    ``wait_seconds`` for its answer, then gets ``409 command_in_progress``.
    """
    if wait_seconds < 0:
        raise ValueError("wait_seconds must be >= 0")
    key = retry_key(connection)
    first = await _claim(claims, conn, key, wait_seconds)
    if first is not None:
        return first
    try:
        response = await apply()
    except BaseException:
        if not claims.transactional:  # a SQL claim goes with the transaction's rollback
            await claims.release(conn, COMMANDS, key)
        raise
    if response.status_code >= 500:
        await claims.release(conn, COMMANDS, key)
    else:
        answer = Answer(
            response.status_code,
            bytes(response.body),
            response.headers.get("content-type", _DEFAULT_TYPE),
        )
        await claims.keep(conn, COMMANDS, key, encode_answer(answer))
    return response


async def _claim(claims: Claims, conn: Any, key: str, wait_seconds: float) -> Response | None:
    """``None``: claimed, apply it. Else what the retry answers: the first answer, or 409."""
    deadline = time.monotonic() + wait_seconds
    while True:
        if await claims.claim(conn, COMMANDS, key):
            return None
        kept = await claims.kept(conn, COMMANDS, key)
        answer = decode_answer(kept) if kept is not None else None
        if answer is not None:
            return Response(
                answer.body,
                answer.status,
                headers={"content-type": answer.content_type, REPLAYED_HEADER: "1"},
            )
        # A SQL claim without an answer is committed: nothing will answer it by waiting.
        # Memory and Redis: the first attempt is still running; when it fails and releases
        # its claim, the next loop takes it over (only one waiter can).
        if claims.transactional or time.monotonic() >= deadline:
            return error_response(
                409, COMMAND_IN_PROGRESS, "This command is still being applied: retry shortly."
            )
        await asyncio.sleep(_POLL_SECONDS)
