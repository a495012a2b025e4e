"""The wire protocol's names and limits (docs/protocol.md, v1), in one place on the Python side,
as ``js_sdk/src/protocol.ts`` is on the browser's: header names, default routes, error codes
and the bounds untrusted input is held to. Under every layer (it imports nothing), so ids,
propagation, the edge, the bus and notify all read the same constants.

Limits that belong to one parser stay next to it (``propagation/_traceparent.py``,
``propagation/_tracestate.py``, ``notify/_frames.py``); this module names the ones several
places share or that the other SDK must agree on.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BAGGAGE_HEADER",
    "CAUSATION_HEADER",
    "CLIENT_CLOSED_REQUEST",
    "CLIENT_HEADER",
    "COMMAND_IN_PROGRESS",
    "CORRELATION_HEADER",
    "DEADLINE_HEADER",
    "DEAD_LETTER_REASON_HEADER",
    "EXPORT_FAILED",
    "FORBIDDEN_TOPIC",
    "FRAME_TOO_LARGE",
    "GROUP_HEADER",
    "HELLO_TIMEOUT",
    "INTERNAL_ERROR",
    "INVALID_BODY",
    "INVALID_CLIENT",
    "INVALID_CORRELATION_ID",
    "INVALID_HELLO",
    "INVALID_JSON",
    "INVALID_PAYLOAD",
    "INVALID_REQUEST",
    "INVALID_TOKEN",
    "INVALID_TOPIC",
    "JOURNAL_UNAVAILABLE",
    "MALFORMED_FRAME",
    "MAX_CLIENT_TOKEN_LENGTH",
    "MAX_TOPIC_LENGTH",
    "METHOD_NOT_ALLOWED",
    "NOT_FOUND",
    "PAYLOAD_TOO_LARGE",
    "PUBLISHED_AT_HEADER",
    "RATE_LIMITED",
    "REPLAYED_HEADER",
    "SERVER_TIMING_HEADER",
    "SESSION_PATH",
    "SOCKET_IO_EVENT",
    "TIMING_ALLOW_ORIGIN_HEADER",
    "TOO_MANY_CONNECTIONS",
    "TOO_MANY_SPANS",
    "TOO_MANY_TOPICS",
    "TOO_SLOW",
    "TRACEPARENT_HEADER",
    "TRACERESPONSE_HEADER",
    "TRACESTATE_HEADER",
    "TRACES_PATH",
    "TRACE_MODE_HEADER",
    "UNAUTHORIZED",
    "UNAVAILABLE",
    "UNSUPPORTED_MEDIA_TYPE",
    "WEBSOCKET_PATH",
]

# HTTP headers (lowercase, as ASGI servers hand them over).
TRACEPARENT_HEADER: Final = "traceparent"
TRACESTATE_HEADER: Final = "tracestate"
BAGGAGE_HEADER: Final = "baggage"
TRACERESPONSE_HEADER: Final = "traceresponse"
SERVER_TIMING_HEADER: Final = "server-timing"
"""Carries the response's trace context as the metrics ``trace`` (W3C Trace Context Level 3
editor's draft) and ``traceparent`` (Grafana Faro), each ``;desc=00-<trace>-<span>-<flags>``."""
TIMING_ALLOW_ORIGIN_HEADER: Final = "timing-allow-origin"
CORRELATION_HEADER: Final = "x-correlation-id"
CAUSATION_HEADER: Final = "x-causation-id"
CLIENT_HEADER: Final = "x-clicktrace-client"
DEADLINE_HEADER: Final = "x-clicktrace-deadline"
REPLAYED_HEADER: Final = "x-clicktrace-replayed"

# Broker message headers clicktrace adds beside the trace context and ids.
TRACE_MODE_HEADER: Final = "x-clicktrace-trace-mode"
PUBLISHED_AT_HEADER: Final = "x-clicktrace-published-at"
# A message for one consumer group only (a dead letter sent again): the others ack it unhandled.
GROUP_HEADER: Final = "x-clicktrace-group"
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
INVALID_CORRELATION_ID: Final = "invalid_correlation_id"  # strict mode's 400
INVALID_REQUEST: Final = "invalid_request"  # a request FastAPI's validation refused (422)
UNAUTHORIZED: Final = "unauthorized"  # no (or a wrong) operator token
METHOD_NOT_ALLOWED: Final = "method_not_allowed"
UNSUPPORTED_MEDIA_TYPE: Final = "unsupported_media_type"
CLIENT_CLOSED_REQUEST: Final = "client_closed_request"  # 499: the client left mid-body
# Span ingest (POST /clicktrace/v1/traces) and the Engine.IO guard.
INVALID_JSON: Final = "invalid_json"
TOO_MANY_SPANS: Final = "too_many_spans"
EXPORT_FAILED: Final = "export_failed"
JOURNAL_UNAVAILABLE: Final = "journal_unavailable"
INVALID_PAYLOAD: Final = "invalid_payload"

# Why a socket was refused or closed (Socket.IO connect_error message, WebSocket close reason).
# The browser stays rejected after INVALID_TOKEN (it needs a new session) and reconnects after
# the others.
INVALID_TOKEN: Final = "invalid_token"
INVALID_HELLO: Final = "invalid_hello"
FRAME_TOO_LARGE: Final = "frame_too_large"
MALFORMED_FRAME: Final = "malformed_frame"
HELLO_TIMEOUT: Final = "hello_timeout"
TOO_MANY_CONNECTIONS: Final = "too_many_connections"
TOO_SLOW: Final = "too_slow"

# Why a socket's watch of a topic was refused (the ``refused`` frame's ``error.code``): the
# socket stays open, only that topic is not sent.
FORBIDDEN_TOPIC: Final = "forbidden_topic"
INVALID_TOPIC: Final = "invalid_topic"
TOO_MANY_TOPICS: Final = "too_many_topics"
MAX_TOPIC_LENGTH: Final = 128
"""Topic names (and update keys) are printable ASCII without spaces, at most this long."""

MAX_CLIENT_TOKEN_LENGTH: Final = 1024
"""A signed token is ~100 bytes; longer is not ours. One limit for every reader of a token."""
