"""Fixtures for metrics tests: clicktrace.metrics on an in-memory reader, undone after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from clicktrace import metrics


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
