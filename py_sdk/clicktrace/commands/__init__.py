"""The command edge: what an endpoint that takes a command needs beyond the middleware.

``invalid_client(request)`` (401 for a refused token), ``accepted()`` (the protocol's 202),
``unavailable()`` (503 with ``Retry-After``), ``once(claims, request, apply, conn)`` with any
:mod:`clicktrace.claims` backend so a retried command gets its first answer, never a second
application. Request bodies and path integers: :mod:`clicktrace.web._body`.
"""

from clicktrace.commands._once import once, retry_key
from clicktrace.commands._responses import accepted, invalid_client, unavailable

__all__ = ["accepted", "invalid_client", "once", "retry_key", "unavailable"]
