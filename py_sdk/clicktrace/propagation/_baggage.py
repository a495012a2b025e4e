"""W3C Baggage: parse and format within the spec's limits, never raising.

``baggage-string = list-member 0*(OWS "," OWS list-member)``, each member
``key OWS "=" OWS value *(OWS ";" OWS property)``: keys are RFC 7230 tokens, values
percent-encoded ``baggage-octet``\\ s decoded as UTF-8 (bad sequences become U+FFFD).
Properties are validated, then not kept. A member that does not parse is dropped alone;
members past :data:`MAX_MEMBERS` or :data:`MAX_BAGGAGE_BYTES` are dropped whole, never cut.
A repeated name keeps its last value, as OpenTelemetry does.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

__all__ = ["MAX_BAGGAGE_BYTES", "MAX_MEMBERS", "format_baggage", "parse_baggage"]

MAX_MEMBERS = 64
MAX_BAGGAGE_BYTES = 8192

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_OCTETS = r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"
_OWS = r"[ \t]*"
_PROPERTY = rf"{_TOKEN}(?:{_OWS}={_OWS}{_OCTETS})?"
_MEMBER = re.compile(
    rf"{_OWS}({_TOKEN}){_OWS}={_OWS}({_OCTETS})(?:{_OWS};{_OWS}{_PROPERTY})*{_OWS}"
)
_NAME = re.compile(_TOKEN)
# Everything outside baggage-octet, plus "%" itself, is percent-encoded when formatting.
_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"


def parse_baggage(fields: list[str] | None) -> dict[str, str]:
    """Name/value pairs of ``fields``; members that do not parse are dropped."""
    if not fields:
        return {}
    entries: dict[str, str] = {}
    budget = MAX_BAGGAGE_BYTES
    count = 0
    fullmatch = _MEMBER.fullmatch
    for field in fields:
        for raw in field.split(","):
            if count >= MAX_MEMBERS or budget <= 0:
                return entries
            if not raw.strip(" \t"):
                continue
            budget -= len(raw.encode("utf-8", "replace")) + 1
            match = fullmatch(raw)
            if match is None or budget < -1:
                continue
            count += 1
            name, value = match.groups()
            entries[name] = unquote(value, errors="replace") if "%" in value else value
    return entries


def format_baggage(entries: dict[str, str]) -> str | None:
    """``entries`` as a header: invalid names skipped, members past the limits dropped."""
    members: list[str] = []
    size = -1
    for name, value in entries.items():
        if len(members) >= MAX_MEMBERS:
            break
        if not _NAME.fullmatch(name):
            continue
        member = f"{name}={quote(value, safe=_SAFE)}"
        if size + len(member) + 1 > MAX_BAGGAGE_BYTES:
            break
        size += len(member) + 1
        members.append(member)
    return ",".join(members) or None
