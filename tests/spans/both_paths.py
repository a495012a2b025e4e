"""Both paths side by side: the same scenario through an SDK tracer and a lean one, each over
its own provider with the same seeded ids, and what an exporter reads of every span."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from clicktrace.spans import get_tracer
from clicktrace.spans._tracer import LeanTracer

__all__ = ["T0", "Scenario", "SeededIds", "both", "pipeline", "request_like", "view"]

Scenario = Callable[[trace.Tracer, TracerProvider], None]


class SeededIds(IdGenerator):
    """The same ids, in the same order, for both tracers."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


def pipeline(
    sampler: sampling.Sampler | None, limits: SpanLimits | None
) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        sampler=sampler,
        resource=Resource.create({"service.name": "t"}),
        id_generator=SeededIds(7),
        span_limits=limits,
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def view(span: ReadableSpan) -> dict[str, Any]:
    def attrs(mapping: Any) -> list[tuple[str, Any]]:
        return list(mapping.items()) if mapping else []

    return {
        "name": span.name,
        "context": span.context,
        "parent": span.parent,
        "kind": span.kind,
        "attributes": attrs(span.attributes),
        "dropped_attributes": span.dropped_attributes,
        "events": [(e.name, attrs(e.attributes), e.timestamp) for e in span.events],
        "dropped_events": span.dropped_events,
        "links": [(link.context, attrs(link.attributes)) for link in span.links],
        "dropped_links": span.dropped_links,
        "status": (span.status.status_code, span.status.description),
        "resource": span.resource.attributes,
        "scope": span.instrumentation_scope,
        "start": span.start_time,
        "end": span.end_time,
    }


def both(
    scenario: Scenario,
    sampler: sampling.Sampler | None = None,
    limits: SpanLimits | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[ReadableSpan]]:
    out = []
    for lean in (False, True):
        provider, exporter = pipeline(sampler, limits)
        tracer = get_tracer("clicktrace.test", "1.0", tracer_provider=provider, lean=lean)
        assert isinstance(tracer, LeanTracer) is lean
        scenario(tracer, provider)
        spans = list(exporter.get_finished_spans())
        out.append(([view(s) for s in spans], spans))
    (sdk, _), (lean_views, lean_spans) = out
    return sdk, lean_views, lean_spans


T0 = 1_700_000_000_000_000_000


def request_like(tracer: trace.Tracer, provider: TracerProvider) -> None:
    """What the middleware and the app do with a server span and a child of their own."""
    remote = SpanContext(
        0x4BF92F3577B34DA6A3CE929D0E0E4736,
        0x00F067AA0BA902B7,
        True,
        TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID),
    )
    parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    span = tracer.start_span(
        "GET",
        parent,
        SpanKind.SERVER,
        {"http.request.method": "GET", "url.path": "/p/7", "clicktrace.correlation_id": "01J"},
        start_time=T0,
    )
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    try:
        current = trace.get_current_span()
        current.set_attribute("app.user", "ada")
        current.add_event("cache miss", {"key": "p:7"}, timestamp=T0 + 5)
        # The app's own child span, through the plain OpenTelemetry API of the same provider.
        child_tracer = trace.get_tracer("app", tracer_provider=provider)
        child = child_tracer.start_span("load", start_time=T0 + 10)
        child.set_attribute("db.rows", 1)
        child.end(T0 + 20)
        try:
            raise ValueError("boom")
        except ValueError as exc:
            current.record_exception(exc, timestamp=T0 + 30)
        current.set_status(Status(StatusCode.ERROR, "ValueError"))
        current.update_name("GET /p/{id}")
        current.set_attributes({"http.response.status_code": 500, "http.route": "/p/{id}"})
    finally:
        otel_context.detach(token)
    span.end(T0 + 40)
