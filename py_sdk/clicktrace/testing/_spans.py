"""One plain span record for every source a test reads: the SDK's in-memory exporter, an
OTLP/HTTP export from a server under test, the browser's export; and the in-process source, a
private SDK ``TracerProvider`` whose spans a test reads (:class:`SpanCollector`, which loads
the SDK when it is made)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["CORRELATION_ATTRIBUTE", "KINDS", "Span", "SpanCollector", "from_readable"]

CORRELATION_ATTRIBUTE = "clicktrace.correlation_id"
KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


@dataclass(frozen=True, slots=True)
class Span:
    """Ids in lower-case hex (``parent_span_id`` empty for a root); ``kind`` is ``SERVER``,
    ``CLIENT``, ``PRODUCER``, ``CONSUMER`` or ``INTERNAL``; ``service`` is ``service.name``."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    service: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    links: tuple[str, ...] = ()

    @property
    def correlation_id(self) -> str | None:
        value = self.attributes.get(CORRELATION_ATTRIBUTE)
        return value if isinstance(value, str) else None

    def describe(self) -> str:
        """``'POST /todos' (SERVER, service api)``: how a failure message names the span."""
        where = f", service {self.service}" if self.service else ""
        return f"{self.name!r} ({self.kind}{where})"


def from_readable(span: ReadableSpan) -> Span:
    """A finished SDK span as a :class:`Span`."""
    context = span.get_span_context()
    if context is None:
        raise ValueError("a finished span has a context")
    resource = span.resource.attributes if span.resource is not None else {}
    return Span(
        trace_id=f"{context.trace_id:032x}",
        span_id=f"{context.span_id:016x}",
        parent_span_id=f"{span.parent.span_id:016x}" if span.parent is not None else "",
        name=span.name,
        kind=span.kind.name,
        service=str(resource.get("service.name", "")),
        attributes=dict(span.attributes or {}),
        links=tuple(f"{link.context.trace_id:032x}" for link in span.links),
    )


class SpanCollector:
    """Pass ``tracer_provider`` to the app under test (``install(..., tracer_provider=)``,
    the bus, the notifier); ``spans()`` is every span it ended, oldest first."""

    def __init__(self, service: str = "app") -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

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
