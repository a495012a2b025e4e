"""W3C Baggage: parse and format within the spec's limits, never raising."""

from __future__ import annotations

from urllib.parse import quote, unquote

__all__ = ["MAX_BAGGAGE_BYTES", "MAX_MEMBERS", "format_baggage", "parse_baggage"]

MAX_MEMBERS = 180
MAX_BAGGAGE_BYTES = 8192


def parse_baggage(fields: list[str] | None) -> dict[str, str]:
    """Name/value pairs of ``fields``; members that do not parse are dropped."""
    if not fields:
        return {}
    combined = ",".join(fields)
    if len(combined.encode("utf-8", "replace")) > MAX_BAGGAGE_BYTES:
        return {}
    entries: dict[str, str] = {}
    for raw in combined.split(","):
        if len(entries) >= MAX_MEMBERS:
            break
        pair = raw.split(";", 1)[0]
        name, sep, value = pair.partition("=")
        name, value = name.strip(" \t"), value.strip(" \t")
        if sep and name and name.isascii() and " " not in name:
            entries[name] = unquote(value)
    return entries


def format_baggage(entries: dict[str, str]) -> str | None:
    if not entries:
        return None
    return ",".join(f"{k}={quote(v, safe='')}" for k, v in list(entries.items())[:MAX_MEMBERS])
