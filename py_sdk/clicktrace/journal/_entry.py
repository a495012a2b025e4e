"""One journal entry: a stage that a correlation id reached, where and when.

A frozen msgspec Struct so stores encode it with one reused encoder; new fields always get
defaults, so a store written by a newer process is still read by an older one.
"""

from __future__ import annotations

import msgspec

__all__ = ["BROWSER_STAGES", "STAGES", "Entry"]

# The stage vocabulary, in the order a healthy click passes through them. Stores and the
# verdict logic accept any string (an app may add its own), but the SDK writes only these.
STAGES = (
    "clicked",  # browser: the action span started (from the ingested browser spans)
    "session",  # browser: the first click waited for a session / socket set-up
    "http",  # browser: the command's HTTP CLIENT span
    "refused",  # edge: a 4xx answered (detail: the error code)
    "accepted",  # edge: 202 answered (detail: the route)
    "stored",  # outbox: the row written in the command's transaction
    "relayed",  # outbox: the relay handed the row to the bus
    "published",  # bus: producer span (detail: topic, message id)
    "delivered",  # bus: consumer got it (attempt n, group)
    "retried",  # bus: the handler failed and the message will come back (detail: reason)
    "dead_lettered",  # bus: given up (detail: reason)
    "resent",  # console / CLI: an operator sent the dead letter again (attempt: the send's n)
    "acked",  # bus: the handler succeeded
    "step",  # app: a step() finished (detail: step name, outcome)
    "notified",  # notify: an outcome was sent (seq, status in detail / outcome)
    "pushed",  # notify: delivered to N sockets
    "replayed",  # notify: replayed on resume
    "resync",  # notify: the client was told to resync
    "received",  # browser: the tab received the notification (CONSUMER span)
    "settled",  # browser: confirmed / rejected / timed_out, duration_ms = click→settled
)

# Stages whose time comes from the browser's clock (its spans), not the server's.
BROWSER_STAGES = frozenset({"clicked", "session", "http", "received", "settled"})


class Entry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    correlation_id: str
    stage: str
    at: float
    """Unix time in milliseconds (float, sub-millisecond precision)."""
    trace_id: str | None = None
    """32 lowercase hex digits, or None when the stage ran without trace context."""
    span_id: str | None = None
    process: str | None = None
    """Which process/node recorded it (``host:pid`` unless configured)."""
    client_id: str | None = None
    attempt: int | None = None
    outcome: str | None = None
    """e.g. ``confirmed`` / ``rejected`` / ``timed_out`` / ``ok`` / ``error``."""
    detail: str | None = None
    """A short human-readable detail (route, topic, reason), bounded by the writer."""
    duration_ms: float | None = None
    """A duration the recording site measured (e.g. click→settled, publish→consume)."""
    sampled: bool | None = None
    """Whether the trace was sampled at this stage (None: unknown)."""
    deadline_ms: int | None = None
    """The command's deadline (Unix ms) when the stage ran inside a click that had one."""
    code: str | None = None
    """The error code an outcome carried (a rejection's ``error.code``), bounded by ``record``."""
