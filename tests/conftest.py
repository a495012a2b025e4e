"""Shared by every test folder: hypothesis profiles and a span-recording tracer provider."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# The base every property test inherits, loaded before the others are registered: no per-example
# deadline (a loaded 2-core CI machine runs an example 10x slower than a quiet one, and a
# deadline then fails a correct parser) and no example database (runs stay independent).
settings.register_profile(
    "clicktrace",
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("clicktrace")
# pytest-timeout's alarm, raised in the middle of a draw, is reported by Hypothesis as a flaky
# strategy, not as a timeout: a property test gets a bound well above its worst run under load
# (10,000 parser examples take about 10 s on a quiet machine, 50 s at load average 8).
PROPERTY_TIMEOUT_SECONDS = 900

# Every parser of untrusted input gets 10,000 examples in CI; fewer locally keep the loop quick.
# Registered once here: a profile registered by a test module would depend on import order.
settings.register_profile(
    "clicktrace-parsers",
    max_examples=10_000 if IN_CI else 300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "clicktrace-round-trips",
    max_examples=2_000 if IN_CI else 200,
    deadline=None,
    database=None,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        test = getattr(item, "obj", None)
        if getattr(test, "is_hypothesis_test", False) and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(PROPERTY_TIMEOUT_SECONDS))


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """Never the global provider: every component under test is handed this one."""
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp
