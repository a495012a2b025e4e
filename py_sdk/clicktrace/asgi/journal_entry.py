"""The edge's journal entry: whether the server took the click, read from the response status.

The middleware journals only the requests that name their click (a valid ``x-correlation-id``,
over HTTP, outside the SDK's own ``/clicktrace/`` routes) and have sent a response. It runs
inside the request's bound click, so the entry carries the client id the middleware verified
(none for a missing or refused token): the first such entry says whose click it is, and the
browser-span route journals a tab's stages only for its own clicks
(``clicktrace.ingest._admission``).
"""

from __future__ import annotations

from starlette.types import Scope

from clicktrace.journal import record

__all__ = ["journal_response"]


def journal_response(status: int, scope: Scope) -> None:
    """Accepted (2xx/3xx) or refused, with the method, path and status as the detail."""
    detail = f"{scope.get('method', 'GET')} {scope['path']} {status}"
    if status < 400:
        record("accepted", outcome=str(status), detail=detail)
    else:
        record("refused", outcome=str(status), detail=detail)
