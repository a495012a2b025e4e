"""W3C ``tracestate``: combine the fields, validate members, never raise.

Thin first version: members are checked against the key/value grammar loosely and the
list is capped; the exact Level 2 rules are tracked in the edge issue.
"""

from __future__ import annotations

__all__ = ["MAX_MEMBERS", "parse_tracestate"]

MAX_MEMBERS = 32
MAX_TRACESTATE_LENGTH = 8192


def parse_tracestate(fields: list[str] | None) -> str | None:
    """The combined, validated tracestate of ``fields``, or ``None`` when there is none."""
    if not fields:
        return None
    combined = ",".join(fields)
    if len(combined) > MAX_TRACESTATE_LENGTH:
        return None
    members: list[str] = []
    seen: set[str] = set()
    for raw in combined.split(","):
        member = raw.strip(" \t")
        if not member:
            continue
        key, sep, value = member.partition("=")
        if not sep or not key or not value or key in seen:
            return None
        seen.add(key)
        members.append(f"{key}={value}")
    if not members or len(members) > MAX_MEMBERS:
        return None
    return ",".join(members)
