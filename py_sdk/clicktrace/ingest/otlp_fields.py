"""Readers of OTLP/JSON field values: each checks one untrusted JSON value and returns it typed,
or raises :class:`Rejected`, which never leaves the decoder (``otlp_json.decode_request``
turns it into one rejected span, or an invalid body).

The standard OTLP JSON encoding: hex ids, int64 times as strings (or numbers), enums as numbers
or names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode

from clicktrace.ingest.attributes import clean_text

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_STATUS_MESSAGE_LENGTH",
    "SPAN_ID",
    "TRACE_ID",
    "Rejected",
    "field_list",
    "hex_id",
    "json_object",
    "nanos",
    "required_name",
    "span_kind",
    "span_status",
]

MAX_NAME_LENGTH = 256
MAX_STATUS_MESSAGE_LENGTH = 1024
TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")

_NANOS = re.compile(r"[0-9]{1,19}")
_MAX_NANOS = 2**63 - 1
# OTLP numbers SpanKind from 1 (0 is "unspecified"); the OpenTelemetry API numbers it from 0.
_KINDS = {
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_KIND_NAMES = {f"SPAN_KIND_{kind.name}": number for number, kind in _KINDS.items()}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


class Rejected(Exception):
    """A value does not validate (never escapes the decoder)."""


def field_list(parent: Mapping[str, Any], key: str) -> list[Any]:
    value = parent.get(key, [])
    if not isinstance(value, list):
        raise Rejected(f"{key} must be a list")
    return value


def json_object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise Rejected(f"{what} must be an object")
    return value


def hex_id(value: Any, pattern: re.Pattern[str], what: str) -> int:
    if not isinstance(value, str) or not pattern.fullmatch(value) or not int(value, 16):
        raise Rejected(f"{what} must be non-zero hex")
    return int(value, 16)


def nanos(value: Any, what: str) -> int:
    if isinstance(value, str) and _NANOS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_NANOS:
        raise Rejected(f"{what} must be a positive int64")
    return value


def _enum(value: Any, names: Mapping[str, int], default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str):
        return names.get(value, -1)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return -1


def span_kind(value: Any, allowed: frozenset[SpanKind]) -> SpanKind:
    number = _enum(value, _KIND_NAMES, 0)
    kind = SpanKind.INTERNAL if number == 0 else _KINDS.get(number)
    if kind is None or kind not in allowed:
        raise Rejected("kind is not one a browser emits")
    return kind


def span_status(value: Any) -> Status:
    if value is None:
        return Status(StatusCode.UNSET)
    status = json_object(value, "status")
    code = _enum(status.get("code"), _STATUS_NAMES, 0)
    if code not in (0, 1, 2):
        raise Rejected("status.code is not a StatusCode")
    message = status.get("message")
    if code != 2 or not isinstance(message, str) or not message:
        return Status(StatusCode(code))
    return Status(StatusCode.ERROR, clean_text(message, MAX_STATUS_MESSAGE_LENGTH))


def required_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise Rejected(f"{what} must be a non-empty string")
    return clean_text(value, MAX_NAME_LENGTH)
