"""The HTTP kit every clicktrace route stands on, and what an app's own routes call from it:
the protocol's error responses and refusals (``_errors``), bounded body readers and path
integers (``_body``), peer addresses, rate limits and the operator token (``_limits``), CORS
settings (``_cors``).

It sits below every route (the journal's, health's, the ingest's, the notifier's session route,
an app's command routes) and above nothing but ``ids``, ``context`` and ``protocol``. The names
are PEP 562 lazy attributes: clicktrace's own routes import the private modules they need, and
this face loads none of them (nor Starlette's CORS middleware) until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clicktrace._lazy import lazy

if TYPE_CHECKING:
    from clicktrace.web._body import (
        MAX_INTEGER,
        path_int,
        read_body,
        read_json_object,
    )
    from clicktrace.web._cors import add_cors, cors_middleware
    from clicktrace.web._errors import Refusal, error_response, exception_handlers
    from clicktrace.web._limits import RateLimit, forwarded_peer, operator

# name -> the module that defines it
_LAZY = {
    "MAX_INTEGER": "clicktrace.web._body",
    "path_int": "clicktrace.web._body",
    "read_body": "clicktrace.web._body",
    "read_json_object": "clicktrace.web._body",
    "add_cors": "clicktrace.web._cors",
    "cors_middleware": "clicktrace.web._cors",
    "Refusal": "clicktrace.web._errors",
    "error_response": "clicktrace.web._errors",
    "exception_handlers": "clicktrace.web._errors",
    "RateLimit": "clicktrace.web._limits",
    "forwarded_peer": "clicktrace.web._limits",
    "operator": "clicktrace.web._limits",
}

__all__ = [
    "MAX_INTEGER",
    "RateLimit",
    "Refusal",
    "add_cors",
    "cors_middleware",
    "error_response",
    "exception_handlers",
    "forwarded_peer",
    "operator",
    "path_int",
    "read_body",
    "read_json_object",
]


__getattr__, __dir__ = lazy(__name__, _LAZY, __all__)
