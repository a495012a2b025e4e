"""The :class:`~clicktrace.context.ClickContext` a request binds, from its clicktrace headers.

The client id is whatever the verifier makes of the ``x-clicktrace-client`` token; a token it
refuses binds no client and marks the scope, so that a command can be answered 401 while
everything else is served as usual.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Scope

from clicktrace.context import ClickContext
from clicktrace.ids import parse_id
from clicktrace.propagation.core import parse_deadline
from clicktrace.propagation.headers import (
    CAUSATION_SLOT,
    CLIENT_SLOT,
    DEADLINE_SLOT,
    MAX_CLIENT_TOKEN_LENGTH,
    Collected,
    one,
)

__all__ = ["CLIENT_REFUSED", "click_from_headers"]

CLIENT_REFUSED = "clicktrace.client_refused"
"""Scope key set (to ``True``) when the request carried an ``x-clicktrace-client`` token that
the verifier refused; :func:`clicktrace.commands.invalid_client` answers such a command 401."""


def click_from_headers(
    scope: Scope,
    slots: Collected,
    correlation_id: str,
    verify: Callable[[str], str | None] | None,
) -> ClickContext:
    if (
        slots[CLIENT_SLOT] is None
        and slots[CAUSATION_SLOT] is None
        and slots[DEADLINE_SLOT] is None
    ):
        return ClickContext(correlation_id)
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
