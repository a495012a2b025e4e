"""The wire protocol's names and limits (docs/protocol.md, v1), in one place on the Python side,
as ``js_sdk/src/protocol.ts`` is on the browser's: header names, default routes, error codes
and the bounds untrusted input is held to. Under every layer (it imports nothing), so ids,
propagation, the edge, the bus and notify all read the same constants.

Limits that belong to one parser stay next to it (``propagation/traceparent.py``,
``propagation/tracestate.py``, ``notify/_frames.py``); this module names the ones several
places share or that the other SDK must agree on.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BAGGAGE_HEADER",
    "CAUSATION_HEADER",
    "CLIENT_HEADER",
    "COMMAND_IN_PROGRESS",
    "CORRELATION_HEADER",
    "DEADLINE_HEADER",
    "DEAD_LETTER_REASON_HEADER",
    "INTERNAL_ERROR",
    "INVALID_BODY",
    "INVALID_CLIENT",
    "MAX_CLIENT_TOKEN_LENGTH",
    "NOT_FOUND",
    "PAYLOAD_TOO_LARGE",
    "PUBLISHED_AT_HEADER",
    "RATE_LIMITED",
    "REPLAYED_HEADER",
    "SESSION_PATH",
    "SOCKET_IO_EVENT",
    "TRACEPARENT_HEADER",
    "TRACERESPONSE_HEADER",
    "TRACESTATE_HEADER",
    "TRACES_PATH",
    "TRACE_MODE_HEADER",
    "UNAVAILABLE",
    "WEBSOCKET_PATH",
]

# HTTP headers (lowercase, as ASGI servers hand them over).
TRACEPARENT_HEADER: Final = "traceparent"
TRACESTATE_HEADER: Final = "tracestate"
BAGGAGE_HEADER: Final = "baggage"
TRACERESPONSE_HEADER: Final = "traceresponse"
CORRELATION_HEADER: Final = "x-correlation-id"
CAUSATION_HEADER: Final = "x-causation-id"
CLIENT_HEADER: Final = "x-clicktrace-client"
DEADLINE_HEADER: Final = "x-clicktrace-deadline"
REPLAYED_HEADER: Final = "x-clicktrace-replayed"

# Broker message headers clicktrace adds beside the trace context and ids.
TRACE_MODE_HEADER: Final = "x-clicktrace-trace-mode"
PUBLISHED_AT_HEADER: Final = "x-clicktrace-published-at"
DEAD_LETTER_REASON_HEADER: Final = "x-clicktrace-dead-letter-reason"

# Default routes (the notifier's prefix moves the first and last together).
SESSION_PATH: Final = "/clicktrace/session"
TRACES_PATH: Final = "/clicktrace/v1/traces"
WEBSOCKET_PATH: Final = "/clicktrace/ws"
SOCKET_IO_EVENT: Final = "clicktrace"

# Error codes of the one error shape, {"error": {"code", "message"}, "correlation_id"}.
INVALID_CLIENT: Final = "invalid_client"
INVALID_BODY: Final = "invalid_body"
PAYLOAD_TOO_LARGE: Final = "payload_too_large"
RATE_LIMITED: Final = "rate_limited"
UNAVAILABLE: Final = "unavailable"
NOT_FOUND: Final = "not_found"
COMMAND_IN_PROGRESS: Final = "command_in_progress"
INTERNAL_ERROR: Final = "internal_error"

MAX_CLIENT_TOKEN_LENGTH: Final = 1024
"""A signed token is ~100 bytes; longer is not ours. One limit for every reader of a token."""
