"""Logs that name the click: correlation, causation and client ids, trace and span ids.

- :class:`ClicktraceFilter`, a stdlib ``logging.Filter`` that puts them on each record (for
  ``%(correlation_id)s`` in a format string, or any formatter that reads record attributes);
- :class:`JsonFormatter`, one JSON object per line, hostile values escaped, long ones cut;
- :func:`add_clicktrace`, a structlog processor (structlog itself is never imported here).

Values already on a record are kept: a record filtered where it was made (where the context
is) and formatted on a ``QueueListener``'s thread (where it is not) keeps its ids.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from clicktrace import context as click_context

__all__ = ["ClicktraceFilter", "JsonFormatter", "add_clicktrace", "current_fields"]

FIELDS = ("correlation_id", "causation_id", "client_id", "trace_id", "span_id")
MAX_MESSAGE_LENGTH = 8192
MAX_FIELD_LENGTH = 1024
MAX_EXTRA_FIELDS = 32
_CUT = "…"
# Every attribute a bare LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    *FIELDS,
}


def current_fields() -> dict[str, str | None]:
    """The click's ids and the current span's ids (hex), ``None`` where there is none."""
    click = click_context.current()
    span = trace.get_current_span().get_span_context()
    valid = span.is_valid
    return {
        "correlation_id": click.correlation_id if click else None,
        "causation_id": click.causation_id if click else None,
        "client_id": click.client_id if click else None,
        "trace_id": f"{span.trace_id:032x}" if valid else None,
        "span_id": f"{span.span_id:016x}" if valid else None,
    }


class ClicktraceFilter(logging.Filter):
    """Adds :data:`FIELDS` to every record it sees; never drops one.

    ``default`` stands in for a missing id (``None`` unless given, e.g. ``"-"`` for text logs).
    Attach it to a handler (or to each logger that should carry the ids).
    """

    def __init__(self, name: str = "", *, default: str | None = None) -> None:
        super().__init__(name)
        self._default = default

    def filter(self, record: logging.LogRecord) -> bool:
        fields = None
        for key in FIELDS:
            if not hasattr(record, key):
                fields = fields or current_fields()
                value = fields[key]
                setattr(record, key, self._default if value is None else value)
        return True


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + _CUT


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value  # NaN and infinities are not JSON: they fall through to repr
    return _cut(value if isinstance(value, str) else repr(value), MAX_FIELD_LENGTH)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    the clicktrace fields that are present, ``exception``, and the record's ``extra=`` fields.

    ``ensure_ascii`` escapes control and non-ASCII characters, so no value can break the line
    or forge another entry; the message is cut at :data:`MAX_MESSAGE_LENGTH` characters and
    other strings at :data:`MAX_FIELD_LENGTH`.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": _cut(record.name, MAX_FIELD_LENGTH),
            "message": _cut(record.getMessage(), MAX_MESSAGE_LENGTH),
        }
        fields = None
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is None and not hasattr(record, key):
                # No filter ran: format time is usually still inside the context.
                fields = fields or current_fields()
                value = fields[key]
            if value is not None:
                entry[key] = _jsonable(value)
        if record.exc_info:
            entry["exception"] = _cut(self.formatException(record.exc_info), MAX_MESSAGE_LENGTH)
        extras = [k for k in vars(record) if k not in _STANDARD and k not in entry]
        for key in extras[:MAX_EXTRA_FIELDS]:
            entry[_cut(key, MAX_FIELD_LENGTH)] = _jsonable(getattr(record, key))
        return json.dumps(entry, ensure_ascii=True, allow_nan=False, default=repr)


def add_clicktrace(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: add the clicktrace fields that are present, keeping bound ones."""
    for key, value in current_fields().items():
        if value is not None:
            event_dict.setdefault(key, value)
    return event_dict
