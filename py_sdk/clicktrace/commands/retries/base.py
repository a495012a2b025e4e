"""Retried commands answered once: the interface every store implements, and ``once()``.

A client that lost the answer to a command (network error, a 401 it renewed its session
for) sends it again with the same correlation id. ``once()`` claims the command's key before
applying it; a retry finds the claim and gets the first answer again (same status, body and
content type, plus ``x-clicktrace-replayed: 1``) instead of a second application. A SQL
store claims and records inside the command's own transaction, so the claim, the answer and
the command's event commit together or not at all: a crash in between cannot apply twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import HTTPConnection
from starlette.responses import Response

from clicktrace import context as click_context
from clicktrace.ids import new_id
from clicktrace.protocol import COMMAND_IN_PROGRESS, REPLAYED_HEADER
from clicktrace.web._errors import error_body

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "REPLAYED_HEADER",
    "Answer",
    "RetryStore",
    "check_ttl",
    "in_progress",
    "once",
    "retry_key",
]

DEFAULT_TTL_SECONDS = 24 * 3600  # far beyond any click's deadline
_DEFAULT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Answer:
    """The first answer to a command, kept for its retries."""

    status: int
    body: bytes
    content_type: str = _DEFAULT_TYPE

    @classmethod
    def of(cls, response: Response) -> Answer:
        return cls(
            response.status_code,
            bytes(response.body),
            response.headers.get("content-type", _DEFAULT_TYPE),
        )

    def response(self) -> Response:
        return Response(
            self.body,
            self.status,
            headers={"content-type": self.content_type, REPLAYED_HEADER: "1"},
        )


def in_progress() -> Answer:
    """What a retry gets while the first attempt is still running past the store's wait."""
    click = click_context.current()
    return Answer(
        409,
        error_body(
            COMMAND_IN_PROGRESS,
            "This command is still being applied: retry shortly.",
            click.correlation_id if click is not None else new_id(),
        ),
    )


def check_ttl(ttl_seconds: float) -> float:
    if isinstance(ttl_seconds, bool) or not ttl_seconds > 0:
        raise ValueError("ttl_seconds must be > 0")
    return ttl_seconds


class RetryStore(Protocol):
    """Claims of commands by key, with their first answers, kept ``ttl_seconds``.

    ``conn`` is the command's transaction for a SQL store (``transactional = True``) and
    ignored by the others.
    """

    transactional: bool

    async def claim(self, key: str, conn: Any) -> Answer | None:
        """``None``: first time, now claimed: apply it. An :class:`Answer`: a retry, answer
        with it (possibly :func:`in_progress`)."""
        ...

    async def record(self, key: str, answer: Answer, conn: Any) -> None:
        """Keep ``answer`` for the claimed ``key``."""
        ...

    async def release(self, key: str, conn: Any) -> None:
        """Drop the claim: the attempt has no answer worth repeating (it failed)."""
        ...


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
    store: RetryStore,
    connection: HTTPConnection,
    apply: Callable[[], Awaitable[Response]],
    conn: Any = None,
) -> Response:
    """``apply()`` the command once per key; a retry gets the first answer.

    A 5xx answer or an exception is not kept (the command was not applied; its retry is
    applied afresh). With a SQL store, call this inside the transaction ``apply`` writes in
    and pass that connection: an exception then rolls the claim back with the rest.
    """
    key = retry_key(connection)
    first = await store.claim(key, conn)
    if first is not None:
        return first.response()
    try:
        response = await apply()
    except BaseException:
        if not store.transactional:  # a SQL claim goes with the transaction's rollback
            await store.release(key, conn)
        raise
    if response.status_code >= 500:
        await store.release(key, conn)
    else:
        await store.record(key, Answer.of(response), conn)
    return response
