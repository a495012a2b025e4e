"""W3C Trace Context Level 2 ``traceparent`` (and ``traceresponse``, which has the same
format): parse and format, never raising on untrusted input.

The version-00 fast path (:func:`match_v00`, a few C-level checks of a raw header value), the
one table of OpenTelemetry ``TraceFlags`` (:data:`TRACE_FLAGS`, and :data:`FLAGS_BY_HEX` by
the raw flags bytes) and :func:`valid_span_context` live here too, beside the parser they are
held to: every hop that needs them calls them rather than slicing or tabulating again.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from opentelemetry.trace import SpanContext, TraceFlags, TraceState

__all__ = [
    "FLAGS_BY_HEX",
    "MAX_TRACEPARENT_LENGTH",
    "RANDOM_TRACE_ID",
    "SAMPLED",
    "TRACEPARENT_LENGTH",
    "TRACE_FLAGS",
    "TraceParent",
    "format_traceparent",
    "format_traceresponse",
    "match_v00",
    "parse_traceparent",
    "span_context_is_tuple",
    "traceparent_fields",
    "valid_span_context",
]

TRACEPARENT_LENGTH = 55  # "00-" + 32 + "-" + 16 + "-" + 2
MAX_TRACEPARENT_LENGTH = 512  # a future version may append fields; bound what we look at
SAMPLED = 0x01
RANDOM_TRACE_ID = 0x02  # Level 2: the trace id's right-most 7 bytes are random
_KNOWN_FLAGS = SAMPLED | RANDOM_TRACE_ID

# One C-level match validates the first 55 characters: lowercase hex only, as the spec says.
_HEAD = r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}"
_STR = re.compile(_HEAD)
_BYTES = re.compile(_HEAD.encode())
_V00_STR = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_ZERO_SPAN_ID = b"0" * 16
_ZERO_TRACE_ID = b"0" * 32
_SHAPE = bytes(
    0x78 if chr(byte) in "0123456789abcdef" else 0x2D if byte == 0x2D else 0x21
    for byte in range(256)
)
_V00_SHAPE = b"xx-" + b"x" * 32 + b"-" + b"x" * 16 + b"-xx"

TRACE_FLAGS = [TraceFlags(flags) for flags in range(256)]
"""Every ``TraceFlags`` value by its byte, built once: hot paths index it instead of
constructing one per span context."""
FLAGS_BY_HEX = {b"%02x" % flags: TRACE_FLAGS[flags] for flags in range(256)}
"""The same by the flags' two lowercase hex digits, as a version-00 traceparent carries them."""


class TraceParent(NamedTuple):
    """A valid traceparent (a NamedTuple: cheap to build on every hop)."""

    trace_id: int
    span_id: int
    flags: int
    version: int = 0

    @property
    def sampled(self) -> bool:
        return bool(self.flags & SAMPLED)

    @property
    def random_trace_id(self) -> bool:
        return bool(self.flags & RANDOM_TRACE_ID)

    def format(self) -> str:
        return format_traceparent(self.trace_id, self.span_id, self.flags)


def format_traceparent(trace_id: int, span_id: int, flags: int) -> str:
    """Always version 00: a child of a future-version parent is written as 00."""
    return f"00-{trace_id:032x}-{span_id:016x}-{flags & 0xFF:02x}"


def parse_traceparent(value: str | bytes | None) -> TraceParent | None:
    """The traceparent in ``value``, or ``None`` when it is not valid.

    Spaces and tabs around the value (optional whitespace) are ignored. Version 00 must be
    exactly 55 characters. A higher version is read by its first four
    fields, provided anything after them starts with ``-``, and only the flags this version
    knows are kept; version ``ff`` is invalid. Hex must be lowercase; all-zero trace or span
    ids are invalid. ``bytes`` (raw header values) are accepted as they are.
    """
    global _last
    if isinstance(value, str) and value == _last[0]:
        return _last[1]
    fields = traceparent_fields(value)
    parsed = None if fields is None else TraceParent(*fields)
    if isinstance(value, str):
        _last = (value, parsed)  # one tuple, so a reader never sees half of an update
    return parsed


# The last text parsed and its result (immutable): a consumer reads the same traceparent
# from the broker's headers and from the envelope, and parses it once.
_last: tuple[str, TraceParent | None] = ("", None)


def traceparent_fields(value: str | bytes | None) -> tuple[int, int, int, int] | None:
    """``(trace_id, span_id, flags, version)`` as :func:`parse_traceparent` reads them, for
    hot paths that need no :class:`TraceParent` object."""
    if isinstance(value, bytes) and (v00 := match_v00(value)) is not None:
        # The usual case, a raw version-00 header value, in one match.
        return int(v00[3:35], 16), int(v00[36:52], 16), int(v00[53:55], 16), 0
    if isinstance(value, str) and _V00_STR.fullmatch(value) is not None:
        # The same for a decoded value (broker headers, envelope metadata).
        trace_id, span_id = int(value[3:35], 16), int(value[36:52], 16)
        return (trace_id, span_id, int(value[53:55], 16), 0) if trace_id and span_id else None
    if isinstance(value, str):
        value = value.strip(" \t")  # a header's optional whitespace (httptools keeps it)
        if _STR.match(value) is None:
            return None
    elif not isinstance(value, bytes) or _BYTES.match(value := value.strip(b" \t")) is None:
        return None
    size = len(value)
    if size > MAX_TRACEPARENT_LENGTH:
        return None
    version = int(value[0:2], 16)
    if version == 0:
        if size != TRACEPARENT_LENGTH:
            return None
    elif version == 0xFF or (size > TRACEPARENT_LENGTH and value[55:56] not in ("-", b"-")):
        return None
    trace_id = int(value[3:35], 16)
    span_id = int(value[36:52], 16)
    if not trace_id or not span_id:
        return None
    flags = int(value[53:55], 16)
    if version:
        flags &= _KNOWN_FLAGS  # unknown flags of a future version are not ours to keep
    return trace_id, span_id, flags, version


def match_v00(value: bytes | None) -> bytes | None:
    """``value`` when it is a valid version-00 traceparent as raw header bytes (the usual
    case), checked in place by a few C-level calls; ``None`` for anything else, which
    :func:`traceparent_fields` then reads the long way. The edge's hot path calls this and
    slices the ids and flags out itself (no tuple, no int for the flags); the differential
    tests in tests/asgi/test_span.py hold it to :func:`parse_traceparent`."""
    # One C-level pass maps every lowercase hex digit to "x" and anything else but "-" to
    # "!": the shape must then be exactly version 00's. (A regular expression, or one check per
    # rule, costs several times the instructions: this runs on every request.)
    if (
        value is None
        or value.translate(_SHAPE) != _V00_SHAPE
        or value[:2] != b"00"
        or value[36:52] == _ZERO_SPAN_ID
        or value[3:35] == _ZERO_TRACE_ID
    ):
        return None
    return value


def span_context_is_tuple() -> bool:
    """Whether ``SpanContext`` is still the tuple ``(trace_id, span_id, is_remote,
    trace_flags, trace_state, is_valid)`` that :func:`valid_span_context` (and lean spans)
    build directly."""
    try:
        made = SpanContext(1, 2, True, TRACE_FLAGS[1], _NO_STATE)
        built = tuple.__new__(SpanContext, (1, 2, True, TRACE_FLAGS[1], _NO_STATE, True))
        return tuple(made) == tuple(built) and (
            built.trace_id,
            built.span_id,
            built.is_remote,
            built.trace_flags,
            built.trace_state,
            built.is_valid,
        ) == (1, 2, True, TRACE_FLAGS[1], _NO_STATE, True)
    except Exception:  # an API that builds it otherwise: the constructor, always
        return False


_NO_STATE = TraceState()
_AS_TUPLE = span_context_is_tuple()
_new_tuple = tuple.__new__


def valid_span_context(
    trace_id: int, span_id: int, is_remote: bool, flags: TraceFlags, state: TraceState
) -> SpanContext:
    """A ``SpanContext`` of ids already known valid (non-zero, in range: sliced out of a
    checked header, or generated), built as its constructor would build it without checking
    them again (about a third of its instructions), or by the constructor itself when the
    installed API's ``SpanContext`` is not the tuple it was (checked once, at import)."""
    if _AS_TUPLE:
        return _new_tuple(SpanContext, (trace_id, span_id, is_remote, flags, state, True))
    return SpanContext(trace_id, span_id, is_remote, flags, state)


def format_traceresponse(sc: SpanContext) -> bytes:
    """``sc`` as a ``traceresponse`` (or ``traceparent``) header value, version 00."""
    return b"00-%032x-%016x-%02x" % (sc.trace_id, sc.span_id, sc.trace_flags)
