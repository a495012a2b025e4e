"""The clicktrace context of the work in progress: which user action it belongs to.

Kept in a ContextVar so it follows asyncio tasks. Binding returns a token that is reset in
``finally``; :func:`bound` wraps that for workers and consumers, and also attaches an
OpenTelemetry context when one is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import NamedTuple

from opentelemetry import context as otel_context

__all__ = ["ClickContext", "bind", "bound", "current", "reset"]


class ClickContext(NamedTuple):
    """Ids that tie work to the click that caused it.

    ``correlation_id`` is the click's ULID; ``causation_id`` the id of the message (or
    command) that directly caused this work; ``client_id`` the browser tab to notify;
    ``deadline_ms`` a Unix time in milliseconds after which the work is no longer wanted.

    An immutable value built on every request and every consumed message: a NamedTuple,
    since it is about twice as cheap to construct as a frozen dataclass.
    """

    correlation_id: str
    causation_id: str | None = None
    client_id: str | None = None
    deadline_ms: int | None = None

    def caused_by(self, message_id: str) -> ClickContext:
        return self._replace(causation_id=message_id)


_current: ContextVar[ClickContext | None] = ContextVar("clicktrace_context", default=None)


def current() -> ClickContext | None:
    return _current.get()


def bind(ctx: ClickContext | None) -> Token[ClickContext | None]:
    return _current.set(ctx)


def reset(token: Token[ClickContext | None]) -> None:
    _current.reset(token)


@contextmanager
def bound(
    ctx: ClickContext | None, otel: otel_context.Context | None = None
) -> Iterator[ClickContext | None]:
    """Run a block inside ``ctx`` (and ``otel``, when given), undoing both afterwards."""
    token = _current.set(ctx)
    otel_token = otel_context.attach(otel) if otel is not None else None
    try:
        yield ctx
    finally:
        if otel_token is not None:
            otel_context.detach(otel_token)
        _current.reset(token)
