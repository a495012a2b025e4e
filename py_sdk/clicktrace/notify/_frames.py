"""Notification frames (protocol v1) and the hello a socket presents when it connects.

Frames are frozen msgspec Structs, a union tagged by ``status`` (as the envelope is a Struct):
:class:`Confirmed`, :class:`Progress` and :class:`Rejected` are outcomes for one client,
:class:`Update` is a change on a topic for every socket watching it, :class:`Resync` tells a
client its ``seq`` (of its outcomes, or of one topic) cannot be continued, :class:`Refused`
that a watch was refused. The JSON is what the browser reads (``js_sdk/src/notification.ts``):
``{"status", "seq", "epoch"?, "correlation_id", "type"?, "data"?, "error"?, "traceparent"?,
"version"?, "key"?, "topic"?}``, absent fields omitted. The one frame a tab sends after its
hello is a watch, :func:`parse_watch`. One encoder and one decoder per
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
from clicktrace.protocol import MAX_CLIENT_TOKEN_LENGTH, MAX_TOPIC_LENGTH, SOCKET_IO_EVENT

EVENT: Final = SOCKET_IO_EVENT
Status = Literal["confirmed", "rejected", "progress", "update"]
STATUSES: Final = frozenset({"confirmed", "rejected", "progress"})
MAX_HELLO_BYTES: Final = 2048
MAX_SEQ: Final = 2**53 - 1  # what a JavaScript number holds exactly
MAX_EPOCH_LENGTH: Final = 64
MAX_TYPE_LENGTH: Final = 200
MAX_ERROR_TEXT: Final = 2000
MAX_WATCH_BYTES: Final = 512


class Error(msgspec.Struct, frozen=True, kw_only=True):
    """Why a command was rejected: a machine ``code`` and a human ``message``."""

    code: str
    message: str


class Notification(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="status"
):
    """An outcome for the tab that caused it. ``seq`` and ``epoch`` are ``None`` until the
    replay buffer numbers it (then omitted from the JSON, which the Redis buffer relies on).
    ``version`` orders changes to the thing ``key`` names, so a tab never lets an older
    one overwrite a newer (see :class:`Update`)."""

    status: ClassVar[Status]
    correlation_id: str
    seq: int | None = None
    epoch: str | None = None
    """The numbering ``seq`` belongs to (see :mod:`clicktrace.notify._replay`)."""
    type: str | None = None
    data: Any = None
    error: Error | None = None
    traceparent: str | None = None
    version: int | None = None
    key: str | None = None


class Confirmed(Notification, frozen=True, tag="confirmed"):
    status: ClassVar[Status] = "confirmed"


class Progress(Notification, frozen=True, tag="progress"):
    status: ClassVar[Status] = "progress"


class Rejected(Notification, frozen=True, tag="rejected"):
    status: ClassVar[Status] = "rejected"


class Update(Notification, frozen=True, tag="update"):
    """A change on ``topic`` for every socket watching it, numbered in the topic's own
    ``seq``/``epoch`` (the replay buffer under :func:`topic_key`); ``correlation_id`` names
    the click (or the call) that made it."""

    status: ClassVar[Status] = "update"
    topic: str


class Refused(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    tag_field="status",
    tag="refused",
):
    """The socket's watch of ``topic`` was refused (the socket stays open). In no numbering:
    ``seq`` and ``epoch`` read ``None`` and are not sent, as for any frame a client may not
    resume from."""

    seq: ClassVar[None] = None
    epoch: ClassVar[None] = None
    topic: str
    error: Error


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
    topic: str | None = None
    """The topic whose numbering this is (``None``: the client's outcomes)."""


Stamped = Confirmed | Progress | Rejected | Update
"""The tagged union a notification decodes as (from another node or the Redis buffer)."""
Frame = Notification | Resync | Refused
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


def topic_ok(topic: object) -> bool:
    """A topic name (or an update key): printable ASCII without spaces, at most
    ``MAX_TOPIC_LENGTH``."""
    return (
        isinstance(topic, str)
        and 0 < len(topic) <= MAX_TOPIC_LENGTH
        and topic.isascii()
        and topic.isprintable()
        and " " not in topic
    )


def topic_key(topic: str) -> str:
    """Where a topic is numbered and kept in the replay buffer, beside the client ids (ULIDs,
    which never contain ``#``)."""
    return "#" + topic


@dataclass(frozen=True, slots=True)
class Watch:
    """``{"watch": topic, "seq"?, "epoch"?}`` (resume from ``seq`` of numbering ``epoch``)
    or ``{"unwatch": topic}``."""

    topic: str
    watch: bool
    last_seq: int = 0
    epoch: str | None = None


def parse_watch(data: object) -> Watch | None:
    """A watch frame from its decoded JSON, or ``None``. Never raises."""
    if not isinstance(data, dict):
        return None
    if "unwatch" in data:
        topic = data["unwatch"]
        return Watch(topic, False) if isinstance(topic, str) else None
    topic, last_seq, epoch = data.get("watch"), data.get("seq", 0), data.get("epoch")
    if not isinstance(topic, str) or (epoch is not None and not _epoch_ok(epoch)):
        return None
    if isinstance(last_seq, bool) or not isinstance(last_seq, int) or not 0 <= last_seq <= MAX_SEQ:
        return None
    return Watch(topic, True, last_seq, epoch)


def parse_watch_text(text: str | bytes | None) -> Watch | None:
    if text is None or len(text) > MAX_WATCH_BYTES:
        return None
    try:
        return parse_watch(json.loads(text))
    except (ValueError, RecursionError):
        return None


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
    version: int | None = None,
    key: str | None = None,
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
    check_version(version, key)
    return kind(correlation_id=corr, type=type, data=data, error=checked, version=version, key=key)


def check_version(version: int | None, key: str | None) -> None:
    """Raises on a ``version`` that is not an int the browser holds exactly, or a bad ``key``."""
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= MAX_SEQ
    ):
        raise ValueError(f"version must be an int from 0 to {MAX_SEQ}")
    if key is not None and not topic_ok(key):
        raise ValueError("key must be printable ASCII without spaces, at most 128 characters")
