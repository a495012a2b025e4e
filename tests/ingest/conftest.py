"""Builders for OTLP/JSON bodies as the browser SDK sends them."""

from __future__ import annotations

from typing import Any

import pytest

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


@pytest.fixture
def valid_body() -> dict[str, Any]:
    """A click span and its HTTP child, as the Pinia plugin exports them."""
    return otlp_body(
        otlp_span(),
        otlp_span(
            CHILD_ID,
            parent=ROOT_ID,
            name="POST /api/products/1/rename",
            kind=3,
            startTimeUnixNano="1764000000010000000",
            endTimeUnixNano="1764000000090000000",
            status={"code": 2, "message": "HTTP 500"},
            events=[
                {
                    "name": "retry",
                    "timeUnixNano": "1764000000050000000",
                    "attributes": [{"key": "attempt", "value": {"intValue": "2"}}],
                }
            ],
        ),
    )
