"""In-process span collection: a private SDK ``TracerProvider`` whose spans a test reads."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clicktrace.testing.spans import Span, from_readable

__all__ = ["SpanCollector"]


class SpanCollector:
    """Pass ``tracer_provider`` to the app under test (``install(..., tracer_provider=)``,
    the bus, the notifier); ``spans()`` is every span it ended, oldest first."""

    def __init__(self, service: str = "app") -> None:
        self._exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(resource=Resource({"service.name": service}))
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self._exporter))

    def spans(self, trace_id: str | None = None) -> list[Span]:
        found = [from_readable(s) for s in self._exporter.get_finished_spans()]
        return [s for s in found if trace_id is None or s.trace_id == trace_id]

    def clear(self) -> None:
        self._exporter.clear()

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
