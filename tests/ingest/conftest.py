"""Fixtures for ingest tests: a body as the browser SDK sends it; metrics on an in-memory reader."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from clicktrace import metrics

from .bodies import CHILD_ID, ROOT_ID, otlp_body, otlp_span


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics.use(provider)
    try:
        yield reader
    finally:
        metrics.use(None)
        provider.shutdown()


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
