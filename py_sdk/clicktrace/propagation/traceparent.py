"""W3C Trace Context ``traceparent``: parse and format, never raising on untrusted input."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TRACEPARENT_LENGTH", "TraceParent", "format_traceparent", "parse_traceparent"]

TRACEPARENT_LENGTH = 55  # "00-" + 32 + "-" + 16 + "-" + 2
MAX_TRACEPARENT_LENGTH = 512  # a future version may append fields; bound what we look at
SAMPLED = 0x01
RANDOM_TRACE_ID = 0x02  # Level 2: the trace id's right-most 7 bytes are random

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class TraceParent:
    trace_id: int
    span_id: int
    flags: int
    version: int = 0

    @property
    def sampled(self) -> bool:
        return bool(self.flags & SAMPLED)

    def format(self) -> str:
        return format_traceparent(self.trace_id, self.span_id, self.flags)


def format_traceparent(trace_id: int, span_id: int, flags: int) -> str:
    """Always version 00: a child of a future-version parent is written as 00."""
    return f"00-{trace_id:032x}-{span_id:016x}-{flags & 0xFF:02x}"


def _hex(field: str, size: int) -> int | None:
    if len(field) != size or not _HEX.issuperset(field):
        return None
    return int(field, 16)


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The traceparent in ``value``, or ``None`` when it is not valid.

    Version 00 must be exactly 55 characters. A higher version is read by its first four
    fields, provided anything after them starts with ``-``; version ``ff`` is invalid.
    Hex must be lowercase, and all-zero trace or span ids are invalid.
    """
    if value is None or len(value) < TRACEPARENT_LENGTH or len(value) > MAX_TRACEPARENT_LENGTH:
        return None
    version = _hex(value[0:2], 2)
    if version is None or version == 0xFF:
        return None
    if version == 0 and len(value) != TRACEPARENT_LENGTH:
        return None
    if len(value) > TRACEPARENT_LENGTH and value[TRACEPARENT_LENGTH] != "-":
        return None
    if value[2] != "-" or value[35] != "-" or value[52] != "-":
        return None
    trace_id = _hex(value[3:35], 32)
    span_id = _hex(value[36:52], 16)
    flags = _hex(value[53:55], 2)
    if not trace_id or not span_id or flags is None:
        return None
    if version > 0:
        flags &= SAMPLED | RANDOM_TRACE_ID  # unknown flags of a future version are not ours
    return TraceParent(trace_id, span_id, flags, version)
