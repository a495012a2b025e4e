"""W3C Trace Context Level 2 ``tracestate``: combine the fields, validate, never raise.

Several fields are one list, combined in order. Members are trimmed of optional whitespace
(space and tab) and empty members skipped. A member that breaks the key or value grammar
drops the whole tracestate, as does more than :data:`MAX_MEMBERS` members or a combined
value over :data:`MAX_TRACESTATE_LENGTH`. A repeated key keeps its left-most (most recent)
member instead of dropping everything, where OpenTelemetry's parser gives up.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_MEMBERS",
    "MAX_TRACESTATE_LENGTH",
    "format_tracestate",
    "parse_tracestate",
    "tracestate_dict",
    "tracestate_members",
]

MAX_MEMBERS = 32
MAX_TRACESTATE_LENGTH = 8192  # our bound on untrusted input; the spec asks for >= 512

# key = ( lcalpha / DIGIT ) 0*255 ( keychar ), keychar = lcalpha / DIGIT / "_" / "-" / "*" /
# "/" / "@": the current Level 2 text, where "@" may appear anywhere after the first character
# (the older simple-key / tenant@system split is gone).
_KEY = r"[a-z0-9][a-z0-9_\-*/@]{0,255}"
# 0*255(chr) nblk-chr: printable ASCII without "," and "=", not ending in a space.
_VALUE = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_MEMBER = re.compile(rf"({_KEY})=({_VALUE})")
# The usual header (one field, no whitespace, no empty members) validated in one match.
_PLAIN_LIST = re.compile(rf"{_KEY}={_VALUE}(?:,{_KEY}={_VALUE}){{0,{MAX_MEMBERS - 1}}}")


def tracestate_members(fields: list[str] | None) -> list[tuple[str, str]] | None:
    """The ``(key, value)`` members of ``fields`` in order, or ``None`` when there are
    none or the tracestate is invalid."""
    members = tracestate_dict(fields)
    return None if members is None else list(members.items())


def tracestate_dict(fields: list[str] | None) -> dict[str, str] | None:
    """The members of ``fields`` as an ordered ``{key: value}``, or ``None`` when there
    are none or the tracestate is invalid."""
    if not fields:
        return None
    combined = fields[0] if len(fields) == 1 else ",".join(fields)
    if len(combined) > MAX_TRACESTATE_LENGTH:
        return None
    if _PLAIN_LIST.fullmatch(combined) is not None:
        # Valid as a whole, so every member splits at its only "=".
        pairs = [member.split("=", 1) for member in combined.split(",")]
        members = dict(pairs)
        if len(members) == len(pairs):
            return members
        members = {}
        for key, value in pairs:
            members.setdefault(key, value)
        return members
    members = {}
    fullmatch = _MEMBER.fullmatch
    for raw in combined.split(","):
        member = raw.strip(" \t")
        if not member:
            continue
        match = fullmatch(member)
        if match is None:
            return None
        key, value = match.groups()
        members.setdefault(key, value)
    if not members or len(members) > MAX_MEMBERS:
        return None
    return members


def parse_tracestate(fields: list[str] | None) -> str | None:
    """The combined, validated tracestate of ``fields``, or ``None`` when there is none."""
    members = tracestate_members(fields)
    if members is None:
        return None
    return ",".join([f"{key}={value}" for key, value in members])


def format_tracestate(members: list[tuple[str, str]]) -> str | None:
    """``members`` as a header, keeping the valid ones and at most :data:`MAX_MEMBERS`."""
    seen: set[str] = set()
    valid: list[str] = []
    for key, value in members:
        member = f"{key}={value}"
        if key not in seen and _MEMBER.fullmatch(member):
            seen.add(key)
            valid.append(member)
    return ",".join(valid[:MAX_MEMBERS]) or None
