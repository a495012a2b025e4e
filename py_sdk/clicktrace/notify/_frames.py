"""Notification frames (protocol v1) and the hello a socket presents when it connects.

Frames are frozen msgspec Structs, a union tagged by ``status`` (as the envelope is a Struct):
:class:`Confirmed`, :class:`Progress` and :class:`Rejected` are notifications, :class:`Resync`
tells a client its ``seq`` cannot be continued. The JSON is what the browser reads
(``js_sdk/src/notification.ts``): ``{"status", "seq", "epoch"?, "correlation_id", "type"?,
"data"?, "error"?, "traceparent"?}``, absent fields omitted. One encoder and one decoder per
type, made once. python-socketio's managers carry a frame between nodes as the plain JSON
object :func:`as_json` gives, and :func:`from_json` takes it back. Parsing what a client or
another node sends never raises: bad input is ``None``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

import msgspec

from clicktrace.ids import parse_id
from clicktrace.protocol import MAX_CLIENT_TOKEN_LENGTH, SOCKET_IO_EVENT

EVENT: Final = SOCKET_IO_EVENT
Status = Literal["confirmed", "rejected", "progress"]
STATUSES: Final = frozenset({"confirmed", "rejected", "progress"})
MAX_HELLO_BYTES: Final = 2048
MAX_SEQ: Final = 2**53 - 1  # what a JavaScript number holds exactly
MAX_EPOCH_LENGTH: Final = 64
MAX_TYPE_LENGTH: Final = 200
MAX_ERROR_TEXT: Final = 2000


class Error(msgspec.Struct, frozen=True, kw_only=True):
    """Why a command was rejected: a machine ``code`` and a human ``message``."""

    code: str
    message: str


class Notification(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="status"
):
    """An outcome for the tab that caused it. ``seq`` and ``epoch`` are ``None`` until the
    replay buffer numbers it (then omitted from the JSON, which the Redis buffer relies on)."""

    status: ClassVar[Status]
    correlation_id: str
    seq: int | None = None
    epoch: str | None = None
    """The numbering ``seq`` belongs to (see :mod:`clicktrace.notify._replay`)."""
    type: str | None = None
    data: Any = None
    error: Error | None = None
    traceparent: str | None = None


class Confirmed(Notification, frozen=True, tag="confirmed"):
    status: ClassVar[Status] = "confirmed"


class Progress(Notification, frozen=True, tag="progress"):
    status: ClassVar[Status] = "progress"


class Rejected(Notification, frozen=True, tag="rejected"):
    status: ClassVar[Status] = "rejected"


class Resync(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    tag_field="status",
    tag="resync",
):
    """Tells the client its ``seq`` cannot be continued: reload, then continue from ``seq``
    in numbering ``epoch``."""

    seq: int
    epoch: str | None = None


Stamped = Confirmed | Progress | Rejected
"""The tagged union a notification decodes as (from another node or the Redis buffer)."""
Frame = Notification | Resync
"""Anything a socket is sent."""

_KINDS: Final[dict[str, type[Notification]]] = {
    "confirmed": Confirmed,
    "progress": Progress,
    "rejected": Rejected,
}
_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(Stamped)


def encode(frame: Frame) -> bytes:
    """The frame's JSON (one encoder for every frame)."""
    return _encoder.encode(frame)


def decode(data: bytes | str) -> Notification | None:
    """A notification from its JSON, or ``None``. Never raises."""
    try:
        frame: Notification = _decoder.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    return frame


def as_json(frame: Frame) -> dict[str, Any]:
    """The plain JSON object python-socketio encodes and carries between nodes."""
    obj: dict[str, Any] = msgspec.to_builtins(frame)
    return obj


def from_json(obj: object) -> Notification | None:
    """A stamped notification from the JSON object :func:`as_json` made, else ``None``."""
    try:
        frame: Notification = msgspec.convert(obj, Stamped)
    except (msgspec.ValidationError, RecursionError):
        return None
    return frame if frame.seq is not None else None


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
) -> Notification:
    """A notification without ``seq`` and ``traceparent`` (the buffer and the span add those).

    Raises ``ValueError``/``TypeError`` on a bad argument: these come from the app, not from
    a client, so a mistake should be loud.
    """
    corr = parse_id(correlation_id) if isinstance(correlation_id, str) else None
    if corr is None:
        raise ValueError("correlation_id must be a ULID")
    kind = _KINDS.get(status) if isinstance(status, str) else None
    if kind is None:
        raise ValueError(f"status must be one of {sorted(STATUSES)}")
    if type is not None and (not isinstance(type, str) or not type or len(type) > MAX_TYPE_LENGTH):
        raise ValueError("type must be a non-empty string")
    if status == "rejected" and error is None:
        raise ValueError("a rejected notification needs an error")
    checked = None
    if error is not None:
        if not isinstance(error, dict):
            raise TypeError("error must be a dict with 'code' and 'message'")
        code, message = error.get("code"), error.get("message", "")
        if not isinstance(code, str) or not code or not isinstance(message, str):
            raise ValueError("error needs a non-empty 'code' and a string 'message'")
        checked = Error(code=code[:MAX_TYPE_LENGTH], message=message[:MAX_ERROR_TEXT])
    return kind(correlation_id=corr, type=type, data=data, error=checked)
