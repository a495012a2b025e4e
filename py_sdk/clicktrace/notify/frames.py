"""Notification frames (protocol v1) and the hello a socket presents when it connects.

Frames are plain JSON objects so python-socketio managers can carry them between nodes
unchanged. Parsing what a client sends never raises: bad input is ``None``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from clicktrace.ids import parse_id
from clicktrace.protocol import MAX_CLIENT_TOKEN_LENGTH, SOCKET_IO_EVENT

__all__ = [
    "EVENT",
    "MAX_EPOCH_LENGTH",
    "MAX_HELLO_BYTES",
    "MAX_SEQ",
    "STATUSES",
    "Frame",
    "Hello",
    "Status",
    "build_frame",
    "parse_hello",
    "parse_hello_text",
    "resync_frame",
]

EVENT: Final = SOCKET_IO_EVENT
Status = Literal["confirmed", "rejected", "progress"]
STATUSES: Final = frozenset({"confirmed", "rejected", "progress"})
MAX_HELLO_BYTES: Final = 2048
MAX_SEQ: Final = 2**53 - 1  # what a JavaScript number holds exactly
MAX_EPOCH_LENGTH: Final = 64
MAX_TYPE_LENGTH: Final = 200
MAX_ERROR_TEXT: Final = 2000

Frame = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Hello:
    token: str
    last_seq: int
    epoch: str | None = None
    """The numbering ``last_seq`` belongs to; ``None`` from a client that predates epochs."""


def _epoch_ok(epoch: object) -> bool:
    return (
        isinstance(epoch, str)
        and 0 < len(epoch) <= MAX_EPOCH_LENGTH
        and epoch.isascii()
        and epoch.isprintable()
    )


def parse_hello(data: object) -> Hello | None:
    """``{"token": str, "last_seq": int?, "epoch": str?}`` from Socket.IO ``auth`` or the
    WebSocket frame."""
    if not isinstance(data, dict):
        return None
    token, last_seq = data.get("token"), data.get("last_seq", 0)
    epoch = data.get("epoch")
    if epoch is not None and not _epoch_ok(epoch):
        return None
    if not isinstance(token, str) or not token or len(token) > MAX_CLIENT_TOKEN_LENGTH:
        return None
    if last_seq is None:
        last_seq = 0
    if isinstance(last_seq, bool) or not isinstance(last_seq, int):
        return None
    if not 0 <= last_seq <= MAX_SEQ:
        return None
    return Hello(token=token, last_seq=last_seq, epoch=epoch)


def parse_hello_text(text: str | bytes | None) -> Hello | None:
    if text is None or len(text) > MAX_HELLO_BYTES:
        return None
    try:
        return parse_hello(json.loads(text))
    except (ValueError, RecursionError):
        return None


def build_frame(
    *,
    correlation_id: str,
    status: str,
    type: str | None = None,
    data: Any = None,
    error: dict[str, str] | None = None,
) -> Frame:
    """A frame without ``seq`` and ``traceparent`` (the buffer and the span add those).

    Raises ``ValueError``/``TypeError`` on a bad argument: these come from the app, not from
    a client, so a mistake should be loud.
    """
    corr = parse_id(correlation_id) if isinstance(correlation_id, str) else None
    if corr is None:
        raise ValueError("correlation_id must be a ULID")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {sorted(STATUSES)}")
    frame: Frame = {"correlation_id": corr, "status": status}
    if type is not None:
        if not isinstance(type, str) or not type or len(type) > MAX_TYPE_LENGTH:
            raise ValueError("type must be a non-empty string")
        frame["type"] = type
    if data is not None:
        frame["data"] = data
    if status == "rejected" and error is None:
        raise ValueError("a rejected notification needs an error")
    if error is not None:
        if not isinstance(error, dict):
            raise TypeError("error must be a dict with 'code' and 'message'")
        code, message = error.get("code"), error.get("message", "")
        if not isinstance(code, str) or not code or not isinstance(message, str):
            raise ValueError("error needs a non-empty 'code' and a string 'message'")
        frame["error"] = {"code": code[:MAX_TYPE_LENGTH], "message": message[:MAX_ERROR_TEXT]}
    return frame


def resync_frame(seq: int, epoch: str | None = None) -> Frame:
    """Tells the client its ``seq`` cannot be continued: reload, then continue from ``seq``
    in numbering ``epoch``."""
    frame: Frame = {"status": "resync", "seq": seq}
    if epoch is not None:
        frame["epoch"] = epoch
    return frame
