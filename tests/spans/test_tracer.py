"""Lean spans against the SDK's: the same operations through both tracers export the same
spans (names, kinds, ids, parents, attributes and drop counts, events, links, status,
resource, scope, times), so any exporter sees no difference."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
    sampling,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from clicktrace.spans import get_tracer
from clicktrace.spans.span import LeanSpan
from clicktrace.spans.tracer import LeanTracer

Scenario = Callable[[trace.Tracer, TracerProvider], None]


class SeededIds(IdGenerator):
    """The same ids, in the same order, for both tracers."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


def _pipeline(
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


def _view(span: ReadableSpan) -> dict[str, Any]:
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


def _both(
    scenario: Scenario,
    sampler: sampling.Sampler | None = None,
    limits: SpanLimits | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[ReadableSpan]]:
    out = []
    for lean in (False, True):
        provider, exporter = _pipeline(sampler, limits)
        tracer = get_tracer("clicktrace.test", "1.0", tracer_provider=provider, lean=lean)
        assert isinstance(tracer, LeanTracer) is lean
        scenario(tracer, provider)
        spans = list(exporter.get_finished_spans())
        out.append(([_view(s) for s in spans], spans))
    (sdk, _), (lean_views, lean_spans) = out
    return sdk, lean_views, lean_spans


T0 = 1_700_000_000_000_000_000


def _request_like(tracer: trace.Tracer, provider: TracerProvider) -> None:
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


def test_a_request_exports_the_same_spans_through_both_paths() -> None:
    sdk, lean, spans = _both(_request_like)
    assert len(sdk) == 2
    assert lean == sdk
    server = next(s for s in spans if s.name == "GET /p/{id}")
    assert isinstance(server, LeanSpan)
    assert isinstance(server, trace.Span)
    # The app's child span is the SDK's own, parented under the lean span.
    child = next(s for s in spans if s.name == "load")
    assert child.parent == server.context


def test_the_random_trace_id_flag_of_the_parent_is_kept() -> None:
    _, lean, _ = _both(_request_like)
    assert all(view["context"].trace_flags.random_trace_id for view in lean)


def _root_and_unsampled(tracer: trace.Tracer) -> None:
    tracer.start_span("root", start_time=T0).end(T0 + 1)
    unsampled = SpanContext(1, 2, True, TraceFlags(0))
    parent = trace.set_span_in_context(trace.NonRecordingSpan(unsampled))
    tracer.start_span("child", parent, start_time=T0).end(T0 + 3)


@pytest.mark.parametrize(
    "sampler",
    [
        None,
        sampling.ALWAYS_OFF,
        sampling.ParentBased(sampling.TraceIdRatioBased(0.5)),
        sampling.TraceIdRatioBased(0.25),
        sampling.ParentBased(sampling.ALWAYS_OFF),
    ],
    ids=["default", "always-off", "parent-ratio", "ratio", "parent-off"],
)
def test_sampling_decides_as_the_sdk_does(sampler: sampling.Sampler | None) -> None:
    def many(tracer: trace.Tracer, provider: TracerProvider) -> None:
        for i in range(40):
            _root_and_unsampled(tracer)
            tracer.start_span(f"s{i}", start_time=T0).end(T0 + 2)

    sdk, lean, _ = _both(many, sampler)
    assert lean == sdk


def test_links_events_and_status_rules_match() -> None:
    def scenario(tracer: trace.Tracer, provider: TracerProvider) -> None:
        other = SpanContext(5, 6, True, TraceFlags(1))
        span = tracer.start_span(
            "consume",
            kind=SpanKind.CONSUMER,
            start_time=T0,
            links=[Link(other, {"messaging.message.id": "m"}), Link(trace.INVALID_SPAN_CONTEXT)],
        )
        span.add_link(SpanContext(7, 8, True, TraceFlags(1)), {"n": 1})
        span.add_link(trace.INVALID_SPAN_CONTEXT)
        span.set_status(StatusCode.OK)
        span.set_status(StatusCode.ERROR, "ignored after OK")
        span.end(T0 + 3)
        span.set_attribute("late", True)
        span.add_event("late")
        span.end(T0 + 4)

    sdk, lean, _ = _both(scenario)
    assert lean == sdk


def test_a_processor_that_needs_live_spans_gets_sdk_spans() -> None:
    started: list[Any] = []

    class OnStart(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            started.append(span)

    provider, exporter = _pipeline(None, None)
    tracer = get_tracer("clicktrace.test", tracer_provider=provider)
    tracer.start_span("before").end()
    provider.add_span_processor(OnStart())
    tracer.start_span("after").end()
    before, after = exporter.get_finished_spans()
    assert isinstance(before, LeanSpan)
    assert not isinstance(after, LeanSpan)
    assert [s.name for s in started] == ["after"]


def test_a_non_sdk_provider_gets_its_own_tracer() -> None:
    tracer = get_tracer("x", tracer_provider=trace.NoOpTracerProvider())
    assert not isinstance(tracer, LeanTracer)


values = st.one_of(
    st.text(max_size=12),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.none(),
    st.binary(max_size=4),
    st.lists(st.one_of(st.integers(0, 9), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
keys = st.one_of(st.sampled_from(["a", "b", "c", "d", "e"]), st.just(""), st.text(max_size=3))
ops = st.lists(
    st.one_of(
        st.tuples(st.just("set"), keys, values),
        st.tuples(st.just("many"), st.dictionaries(keys, values, max_size=3)),
        st.tuples(st.just("event"), st.dictionaries(keys, values, max_size=3)),
    ),
    max_size=12,
)
limits = st.builds(
    SpanLimits,
    max_span_attributes=st.one_of(st.none(), st.integers(0, 4)),
    max_span_attribute_length=st.one_of(st.none(), st.integers(0, 6)),
    max_events=st.one_of(st.none(), st.integers(0, 3)),
    max_event_attributes=st.one_of(st.none(), st.integers(0, 3)),
    max_attribute_length=st.one_of(st.none(), st.integers(0, 6)),
)


@settings(settings.get_profile("clicktrace-round-trips"))
@given(start=st.dictionaries(keys, values, max_size=4), operations=ops, span_limits=limits)
def test_attributes_and_limits_match_the_sdk(
    start: dict[str, Any], operations: list[Any], span_limits: SpanLimits
) -> None:
    def scenario(tracer: trace.Tracer, provider: TracerProvider) -> None:
        span = tracer.start_span("s", attributes=start, start_time=T0)
        for i, op in enumerate(operations):
            if op[0] == "set":
                span.set_attribute(op[1], op[2])
            elif op[0] == "many":
                span.set_attributes(op[1])
            else:
                span.add_event(f"e{i}", op[1], timestamp=T0 + i)
        span.end(T0 + 100)

    sdk, lean, _ = _both(scenario, limits=span_limits)
    assert lean == sdk


def test_the_sdk_self_metrics_count_lean_spans_as_they_count_sdk_spans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    seen = []
    for lean in (False, True):
        reader = InMemoryMetricReader()
        provider = TracerProvider(
            meter_provider=MeterProvider([reader]),
            id_generator=SeededIds(3),
            shutdown_on_exit=False,
        )
        provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
        tracer = get_tracer("clicktrace.test", tracer_provider=provider, lean=lean)
        assert isinstance(tracer, LeanTracer) is lean
        open_span = tracer.start_span("open")
        tracer.start_span("done").end()
        unsampled = trace.set_span_in_context(
            trace.NonRecordingSpan(SpanContext(1, 2, True, TraceFlags(0)))
        )
        tracer.start_span("dropped", unsampled).end()
        data = reader.get_metrics_data()
        assert data is not None
        seen.append(
            sorted(
                (metric.name, tuple(sorted((point.attributes or {}).items())), point.value)
                for rm in data.resource_metrics
                for sm in rm.scope_metrics
                for metric in sm.metrics
                for point in metric.data.data_points
                if hasattr(point, "value")
            )
        )
        open_span.end()
    sdk_points, lean_points = seen
    assert sdk_points and lean_points == sdk_points
