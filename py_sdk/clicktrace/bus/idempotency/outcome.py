"""The outcome a projection decided, kept with its idempotency claim.

A projection that dies after its transaction committed but before it told the tab leaves a
claim that makes the redelivery skip the message: without the outcome beside the claim,
nobody ever tells that tab. Stored as small JSON (bounded: a ``data`` too big to keep is
dropped, the status and error are always kept), read back without ever raising.
"""

from __future__ import annotations

import logging
from typing import Any, Final, NamedTuple

import msgspec

__all__ = ["MAX_MESSAGE_LENGTH", "MAX_OUTCOME_BYTES", "Outcome", "decode_outcome", "encode_outcome"]

MAX_OUTCOME_BYTES: Final = 8192
MAX_MESSAGE_LENGTH: Final = 200
_STATUSES: Final = frozenset({"confirmed", "rejected"})
_encoder = msgspec.json.Encoder()
_log = logging.getLogger("clicktrace.projection")


class Outcome(NamedTuple):
    """``status`` (confirmed | rejected), ``data`` (the authoritative state, JSON), ``error``
    (``{"code", "message"}`` when rejected)."""

    status: str
    data: Any = None
    error: dict[str, str] | None = None

    @classmethod
    def confirmed(cls, data: Any = None) -> Outcome:
        return cls("confirmed", data, None)

    @classmethod
    def rejected(cls, code: str, message: str, data: Any = None) -> Outcome:
        return cls("rejected", data, {"code": code, "message": message[:MAX_MESSAGE_LENGTH]})


def encode_outcome(outcome: Outcome) -> str:
    """The JSON to store; raises ``TypeError`` for data that is not JSON (as notify would)."""
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
    return raw.decode()


def decode_outcome(raw: str | bytes | None) -> Outcome | None:
    """The stored outcome, or ``None`` for nothing stored or anything malformed."""
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
