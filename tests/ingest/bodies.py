"""Builders for OTLP/JSON bodies as the browser SDK sends them (not a test module)."""

from __future__ import annotations

import itertools
from typing import Any

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ROOT_ID = "00f067aa0ba902b7"
CHILD_ID = "b7ad6b7169203331"


def otlp_span(span_id: str = ROOT_ID, parent: str = "", **fields: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": TRACE_ID,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": "rename product",
        "kind": 1,
        "startTimeUnixNano": "1764000000000000000",
        "endTimeUnixNano": "1764000000250000000",
        "attributes": [
            {
                "key": "clicktrace.correlation_id",
                "value": {"stringValue": "01JDQ3N7R0ZKX2Y8W5V4T3S2R1"},
            }
        ],
        "status": {},
    }
    span.update(fields)
    return span


def otlp_body(*spans: dict[str, Any], resource: list[Any] | None = None) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": resource
                    or [
                        {"key": "service.name", "value": {"stringValue": "demo-web"}},
                        {"key": "browser.language", "value": {"stringValue": "en"}},
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "clicktrace-pinia", "version": "0.1.0"},
                        "spans": list(spans),
                    }
                ],
            }
        ]
    }


def action_span(cid: str, start_ns: int, end_ns: int) -> dict[str, Any]:
    """A click's root span, as the plugin exports it: settled ``confirmed``."""
    return otlp_span(
        fresh_span_id(),
        startTimeUnixNano=str(start_ns),
        endTimeUnixNano=str(end_ns),
        attributes=[
            {"key": "clicktrace.correlation_id", "value": {"stringValue": cid}},
            {"key": "clicktrace.outcome", "value": {"stringValue": "confirmed"}},
        ],
    )


def http_span(cid: str, start_ns: int) -> dict[str, Any]:
    """An HTTP CLIENT span of the click: one ``http`` stage per span id."""
    return otlp_span(
        fresh_span_id(),
        parent=ROOT_ID,
        name="POST /api/rename",
        kind=3,
        startTimeUnixNano=str(start_ns),
        endTimeUnixNano=str(start_ns + 40_000_000),
        attributes=[{"key": "clicktrace.correlation_id", "value": {"stringValue": cid}}],
    )


_span_ids = itertools.count(1)


def fresh_span_id() -> str:
    return f"{next(_span_ids):016x}"
