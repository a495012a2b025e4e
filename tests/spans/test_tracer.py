"""The lean tracer: sampling, ids and flags as the SDK decides them, SDK spans whenever the
pipeline or the installed SDK needs them, and the SDK's self-metrics fed as the SDK feeds them."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import (
    ReadableSpan,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    Tracer,
    TracerProvider,
    sampling,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, TraceFlags

import clicktrace.spans
from clicktrace.spans import get_tracer
from clicktrace.spans._span import LeanSpan
from clicktrace.spans._tracer import LeanTracer, sdk_mismatch

from .both_paths import T0, SeededIds, both, pipeline, request_like


def test_the_random_trace_id_flag_of_the_parent_is_kept() -> None:
    _, lean, _ = both(request_like)
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

    sdk, lean, _ = both(many, sampler)
    assert lean == sdk


def test_a_processor_that_needs_live_spans_gets_sdk_spans() -> None:
    started: list[Any] = []

    class OnStart(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            started.append(span)

    provider, exporter = pipeline(None, None)
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


# -- the installed SDK, checked once against what lean spans read of it -------------------------


@pytest.fixture
def unchecked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The SDK not yet checked in this process; the result is put back after the test."""
    monkeypatch.setattr(clicktrace.spans, "_sdk_fits", None)
    yield


def test_the_installed_sdk_is_as_lean_spans_read_it(
    unchecked: None, caplog: pytest.LogCaptureFixture
) -> None:
    provider, exporter = pipeline(None, None)
    sdk = provider.get_tracer("clicktrace.test")
    assert isinstance(sdk, Tracer)
    assert sdk_mismatch(sdk) is None
    tracer = get_tracer("clicktrace.test", tracer_provider=provider)
    assert isinstance(tracer, LeanTracer)
    tracer.start_span("s").end()
    assert isinstance(exporter.get_finished_spans()[0], LeanSpan)
    assert not [r for r in caplog.records if r.name == "clicktrace.spans"]


def _new_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    # The spec's OnEnding made public: a processor overriding it would never see a lean span.
    monkeypatch.setattr(SpanProcessor, "on_ending", lambda self, span: None, raising=False)


def _new_field(monkeypatch: pytest.MonkeyPatch) -> None:
    # A field exporters may read, which a lean span would lack.
    init = ReadableSpan.__init__

    def with_field(self: ReadableSpan, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._dropped_everything = 0  # type: ignore[attr-defined]

    monkeypatch.setattr(ReadableSpan, "__init__", with_field)


def _processors_in_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    # The processors appended to one list: a lean tracer would not see a processor added later.
    init = SynchronousMultiSpanProcessor.__init__

    def listed(self: SynchronousMultiSpanProcessor) -> None:
        init(self)  # type: ignore[no-untyped-call]
        self._span_processors = []  # type: ignore[assignment]

    monkeypatch.setattr(SynchronousMultiSpanProcessor, "__init__", listed)


def _moved_semconv(monkeypatch: pytest.MonkeyPatch) -> None:
    # The lean modules import a private semantic-conventions path; a release may move it.
    monkeypatch.setitem(
        sys.modules, "opentelemetry.semconv._incubating.attributes.exception_attributes", None
    )
    for module in ("clicktrace.spans._tracer", "clicktrace.spans._span"):
        monkeypatch.delitem(sys.modules, module)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_new_hook, "SpanProcessor's hooks"),
        (_new_field, "ReadableSpan's fields"),
        (_processors_in_a_list, "._span_processors"),
        (_moved_semconv, "cannot load"),
    ],
    ids=["new-processor-hook", "new-span-field", "processors-in-a-list", "moved-module"],
)
def test_a_changed_sdk_turns_lean_spans_off_with_one_warning(
    change: Callable[[pytest.MonkeyPatch], None],
    named: str,
    unchecked: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    change(monkeypatch)
    provider, exporter = pipeline(None, None)
    with caplog.at_level(logging.WARNING, "clicktrace.spans"):
        tracers = [get_tracer(f"clicktrace.test{i}", tracer_provider=provider) for i in range(3)]
    assert not any(isinstance(tracer, LeanTracer) for tracer in tracers)
    for tracer in tracers:
        with tracer.start_as_current_span("s") as span:
            span.set_attribute("k", 1)
    spans = exporter.get_finished_spans()
    assert len(spans) == 3
    assert all(s.attributes == {"k": 1} and not isinstance(s, LeanSpan) for s in spans)
    (warning,) = [r for r in caplog.records if r.name == "clicktrace.spans"]
    assert warning.levelno == logging.WARNING
    assert "lean spans are off" in warning.getMessage() and named in warning.getMessage()
