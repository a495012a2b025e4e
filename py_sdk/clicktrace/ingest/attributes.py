"""OTLP/JSON ``AnyValue`` and ``KeyValue`` lists, read defensively: what does not fit is dropped.

Every string a browser sends ends up in a trace viewer, a log line or a terminal, so
:func:`clean_text` escapes control characters (C0, DEL, C1, the Unicode line separators, lone
surrogates) as ``\\uXXXX`` and bounds the length; keys holding any are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = [
    "MAX_ARRAY_LENGTH",
    "MAX_ATTRIBUTES_PER_SPAN",
    "MAX_ATTRIBUTE_KEY_LENGTH",
    "MAX_ATTRIBUTE_VALUE_LENGTH",
    "Primitive",
    "clean_text",
    "parse_attributes",
]

MAX_ATTRIBUTES_PER_SPAN = 64
MAX_ATTRIBUTE_KEY_LENGTH = 128
MAX_ATTRIBUTE_VALUE_LENGTH = 4096
MAX_ARRAY_LENGTH = 64

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INT_TEXT = re.compile(r"-?[0-9]{1,19}")
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


def clean_text(text: str, limit: int) -> str:
    """``text`` with unsafe characters escaped, at most ``limit`` characters."""
    text = text[:limit]
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)[:limit]


Primitive = str | bool | int | float
AttributeValue = Primitive | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]


def _int64(value: Any) -> int | None:
    # proto3 JSON writes int64 as a string; numbers are accepted too.
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not _INT_TEXT.fullmatch(value):
            return None
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX:
        return value
    return None


def _primitive(value: Any) -> Primitive | None:
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((kind, raw),) = value.items()
    if kind == "stringValue" and isinstance(raw, str):
        return clean_text(raw, MAX_ATTRIBUTE_VALUE_LENGTH)
    if kind == "boolValue" and isinstance(raw, bool):
        return raw
    if kind == "intValue":
        return _int64(raw)
    if kind == "doubleValue" and isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    return None


def _value(value: Any) -> AttributeValue | None:
    if isinstance(value, dict) and len(value) == 1 and "arrayValue" in value:
        array = value["arrayValue"]
        items = array.get("values", []) if isinstance(array, dict) else None
        if not isinstance(items, list):
            return None
        parsed = [_primitive(item) for item in items[:MAX_ARRAY_LENGTH]]
        # OpenTelemetry attributes are homogeneous arrays of primitives.
        kinds = {type(p) for p in parsed}
        if None in parsed or len(kinds) > 1:
            return None
        return tuple(parsed)  # type: ignore[return-value]
    return _primitive(value)


def parse_attributes(items: Any, limit: int = MAX_ATTRIBUTES_PER_SPAN) -> dict[str, AttributeValue]:
    """The valid attributes of an OTLP ``KeyValue`` list, at most ``limit``. Never raises."""
    if not isinstance(items, list):
        return {}
    attributes: dict[str, AttributeValue] = {}
    for item in items:
        if len(attributes) >= limit:
            break
        if not isinstance(item, dict):
            continue
        key = item.get("key")
        if (
            not isinstance(key, str)
            or not key
            or len(key) > MAX_ATTRIBUTE_KEY_LENGTH
            or _UNSAFE.search(key) is not None
        ):
            continue
        value = _value(item.get("value"))
        if value is not None:
            attributes[key] = value
    return attributes
