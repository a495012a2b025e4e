"""The command edge: what an endpoint that takes a command needs beyond the middleware.

``command_route(path, type, bus, topic=...)`` is the whole endpoint (token check, bounded
body, payload, publish, 202); ``read_command(request)`` its first half, for a route that
writes its event itself (an outbox). The parts, for a route written by hand:
``invalid_client(request)`` (401 for a refused token), ``accepted()`` (the protocol's 202),
``unavailable()`` (503 with ``Retry-After``), ``once(claims, request, apply, conn)`` with any
:mod:`clicktrace.claims` backend so a retried command gets its first answer, never a second
application. Request bodies and path integers: :mod:`clicktrace.web._body`.

The route's names load on first use (PEP 562): they bring the bus and the projection, which
a route written by hand from the parts does not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clicktrace._lazy import lazy
from clicktrace.commands._once import once, retry_key
from clicktrace.commands._responses import accepted, invalid_client, unavailable

if TYPE_CHECKING:
    from clicktrace.commands._route import Command, command_route, read_command

__all__ = [
    "Command",
    "accepted",
    "command_route",
    "invalid_client",
    "once",
    "read_command",
    "retry_key",
    "unavailable",
]


_ROUTE = "clicktrace.commands._route"
__getattr__, __dir__ = lazy(
    __name__, {"Command": _ROUTE, "command_route": _ROUTE, "read_command": _ROUTE}, __all__
)
