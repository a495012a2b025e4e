"""Shared by every test folder: hypothesis profiles and a span-recording tracer provider."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

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


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """Never the global provider: every component under test is handed this one."""
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp
