"""The pytest plugin (entry point ``pytest11``): fixtures only, each importing what it needs
when a test asks for it, so a test session that uses none of them loads nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from clicktrace.testing.collector import SpanCollector
    from clicktrace.testing.receiver import OtlpReceiver


@pytest.fixture
def clicktrace_spans() -> Iterator[SpanCollector]:
    """A private ``TracerProvider`` collecting spans in memory: pass
    ``clicktrace_spans.tracer_provider`` to the app under test, read ``.spans()``."""
    from clicktrace.testing.collector import SpanCollector

    collector = SpanCollector()
    yield collector
    collector.shutdown()


@pytest.fixture(scope="session")
def clicktrace_otlp() -> Iterator[OtlpReceiver]:
    """An OTLP/HTTP receiver on loopback for the whole session: give ``.endpoint`` to a
    server run as a subprocess (``OTEL_EXPORTER_OTLP_ENDPOINT``) and read ``.spans()``."""
    from clicktrace.testing.receiver import OtlpReceiver

    with OtlpReceiver() as receiver:
        yield receiver
