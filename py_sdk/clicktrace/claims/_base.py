"""Claim a key, keep the first answer: the protocol every backend implements, and the two
answers kept with a claim.

A claim is ``(scope, key)``: the first ``claim`` of it returns True, later ones False until
it expires (``keep_seconds``) or is released. The first answer is kept with it as bytes.
Two callers share it:

- a retried HTTP command (:func:`clicktrace.commands.once`): the scope is the command's, the
  key its :func:`~clicktrace.commands.retry_key`, the answer an :class:`Answer` (the first
  response, replayed to every retry);
- a consumer's idempotency: the scope is the consumer (``"projection"``, or the bus's
  ``"<topic>:<group>"``), the key the message id, the answer an :class:`Outcome` (what the
  projection decided, so a redelivery after a crash between the commit and the notification
  can still tell the tab). The outbox's reconciler reads the claims (``claimed``) to learn
  what the consumers processed.

A SQL backend claims inside the caller's transaction (``transactional``): the claim, the
answer and the caller's own writes commit together or not at all, so a crash in between can
never apply anything twice. Redis and memory are outside any transaction: their claims are
made and answered by commands of their own.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Final, NamedTuple, Protocol

import msgspec

__all__ = [
    "DEFAULT_KEEP_SECONDS",
    "MAX_MESSAGE_LENGTH",
    "MAX_OUTCOME_BYTES",
    "Answer",
    "Claims",
    "ClaimsBase",
    "Outcome",
    "check_keep",
    "decode_answer",
    "decode_outcome",
    "encode_answer",
    "encode_outcome",
]

DEFAULT_KEEP_SECONDS: Final = 7 * 24 * 3600.0
"""How long a claim holds: longer than any message can come back (the outbox's reconciler
re-publishes for minutes, a relay restarted after a crash re-sends what it had not marked)
and far beyond any click's deadline (docs/bus.md, "Retention")."""
MAX_OUTCOME_BYTES: Final = 8192
MAX_MESSAGE_LENGTH: Final = 200
_STATUSES: Final = frozenset({"confirmed", "rejected"})
_encoder = msgspec.json.Encoder()
_log = logging.getLogger("clicktrace.projection")


class Claims(Protocol):
    """Claims by ``(scope, key)`` with their first answers, kept ``keep_seconds``.

    ``conn`` is the caller's transaction for a SQL backend (``transactional = True``) and
    ignored by the others (pass ``None``).
    """

    transactional: bool

    async def claim(self, conn: Any, scope: str, key: str) -> bool:
        """True: claimed now (the first time, or the earlier claim expired or was released):
        do it. False: claimed before."""
        ...

    async def keep(self, conn: Any, scope: str, key: str, answer: bytes) -> None:
        """Keep ``answer`` with the claim (nothing is written for a key not claimed)."""
        ...

    async def kept(self, conn: Any, scope: str, key: str) -> bytes | None:
        """The answer kept with the claim; ``None`` when none is (yet)."""
        ...

    async def release(self, conn: Any, scope: str, key: str) -> None:
        """Drop a claim that has no answer worth keeping (the attempt failed)."""
        ...

    async def claimed(self, conn: Any, scope: str, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` are claimed in ``scope`` (one round trip, or few)."""
        ...


class ClaimsBase(ABC):
    """What every backend shares: a projection's :class:`Outcome` kept as the claim's answer.

    .. code-block:: python

        async with conn.transaction():
            if await claims.claim(conn, "projection", message_id):
                ...apply it...
                outcome = Outcome.confirmed({"id": 3, "name": "Tea"})
                await claims.record_outcome(conn, "projection", message_id, outcome)
            else:  # processed before, maybe by a process that died before telling the tab
                outcome = await claims.recorded_outcome(conn, "projection", message_id)
        await send_outcome(notify, envelope, outcome)  # after the commit; None sends nothing
    """

    transactional: bool = False

    @abstractmethod
    async def claim(self, conn: Any, scope: str, key: str) -> bool: ...

    @abstractmethod
    async def keep(self, conn: Any, scope: str, key: str, answer: bytes) -> None: ...

    @abstractmethod
    async def kept(self, conn: Any, scope: str, key: str) -> bytes | None: ...

    @abstractmethod
    async def release(self, conn: Any, scope: str, key: str) -> None: ...

    @abstractmethod
    async def claimed(self, conn: Any, scope: str, keys: Sequence[str]) -> set[str]: ...

    async def record_outcome(
        self, conn: Any, consumer: str, message_id: str, outcome: Outcome
    ) -> None:
        """Keep what the projection decided with its claim (in the same transaction)."""
        await self.keep(conn, consumer, message_id, encode_outcome(outcome))

    async def recorded_outcome(self, conn: Any, consumer: str, message_id: str) -> Outcome | None:
        """The outcome kept with a claim, or ``None`` (none kept, or unreadable)."""
        return decode_outcome(await self.kept(conn, consumer, message_id))


def check_keep(keep_seconds: float) -> float:
    if isinstance(keep_seconds, bool) or not keep_seconds > 0:
        raise ValueError("keep_seconds must be > 0")
    return float(keep_seconds)


class Answer(msgspec.Struct, frozen=True, array_like=True):
    """The first answer to a command (status, body, content type), kept for its retries."""

    status: int
    body: bytes
    content_type: str = "application/json"


# MessagePack: the body is kept as raw bytes (JSON would need base64, a third bigger).
_answer_encoder = msgspec.msgpack.Encoder()
_answer_decoder = msgspec.msgpack.Decoder(Answer)


def encode_answer(answer: Answer) -> bytes:
    return _answer_encoder.encode(answer)


def decode_answer(raw: bytes) -> Answer | None:
    """The kept answer, or ``None`` for anything that is not one (never raises)."""
    try:
        return _answer_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class Outcome(NamedTuple):
    """What a projection decided: ``status`` (confirmed | rejected), ``data`` (the
    authoritative state, JSON), ``error`` (``{"code", "message"}`` when rejected).

    Kept with the consumer's claim as small JSON (bounded: a ``data`` too big to keep is
    dropped, the status and error are always kept), read back without ever raising."""

    status: str
    data: Any = None
    error: dict[str, str] | None = None

    @classmethod
    def confirmed(cls, data: Any = None) -> Outcome:
        return cls("confirmed", data, None)

    @classmethod
    def rejected(cls, code: str, message: str, data: Any = None) -> Outcome:
        return cls("rejected", data, {"code": code, "message": message[:MAX_MESSAGE_LENGTH]})


def encode_outcome(outcome: Outcome) -> bytes:
    """The JSON to keep; raises ``TypeError`` for data that is not JSON (as notify would)."""
    if outcome.status not in _STATUSES:
        raise ValueError(f"status must be one of {sorted(_STATUSES)}")
    body = {"status": outcome.status, "data": outcome.data, "error": outcome.error}
    try:
        raw = _encoder.encode(body)
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(f"outcome data is not JSON-serialisable: {exc}") from None
    if len(raw) > MAX_OUTCOME_BYTES:
        _log.warning(
            "outcome of %d bytes kept without its data (limit %d)", len(raw), MAX_OUTCOME_BYTES
        )
        raw = _encoder.encode(
            {"status": outcome.status, "data": None, "error": _bounded(outcome.error)}
        )
    return raw


def decode_outcome(raw: str | bytes | None) -> Outcome | None:
    """The kept outcome, or ``None`` for nothing kept or anything malformed."""
    if raw is None or len(raw) > MAX_OUTCOME_BYTES:
        return None
    try:
        body = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(body, dict) or body.get("status") not in _STATUSES:
        return None
    error = body.get("error")
    if error is not None and not (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message", ""), str)
    ):
        return None
    if body["status"] == "rejected" and error is None:
        return None
    return Outcome(body["status"], body.get("data"), error)


def _bounded(error: dict[str, str] | None) -> dict[str, str] | None:
    if error is None:
        return None
    return {
        "code": str(error.get("code", ""))[:200],
        "message": str(error.get("message", ""))[:MAX_MESSAGE_LENGTH],
    }
