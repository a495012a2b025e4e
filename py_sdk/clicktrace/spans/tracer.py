"""``LeanTracer``: an OpenTelemetry ``Tracer`` whose spans are :class:`LeanSpan` when the
provider's pipeline cannot tell the difference, and the SDK's own spans when it could.

The rule (see docs/benchmarks.md, "Lean spans"): lean when the provider is the SDK's
``TracerProvider``, the tracer is enabled, and every
registered span processor is the SDK's Batch- or SimpleSpanProcessor or leaves ``on_start``
and ``_on_ending`` as the base class has them (those hooks see a live SDK span and may
mutate it). The check is redone
whenever the provider's processor list changes. Sampling, ids, trace state and the Level 2
random-trace-id flag follow the SDK's ``Tracer.start_span`` step by step, with the provider's
own sampler and id generator; the default sampler (parent-based, always on) is decided inline.
The SDK's own span metrics (``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``) are fed as the SDK
feeds them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import SpanProcessor, Tracer
from opentelemetry.sdk.trace import sampling as sdk_sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import (
    DEFAULT_TRACE_STATE,
    Link,
    SpanContext,
    SpanKind,
    TraceFlags,
    TraceState,
)
from opentelemetry.util import types

from clicktrace.propagation._inject_extract import SPAN_KEY
from clicktrace.propagation._traceparent import TRACE_FLAGS
from clicktrace.spans.span import LeanSpan

__all__ = ["LeanTracer", "lean_eligible"]

_SAMPLED = TraceFlags.SAMPLED
_RANDOM = TraceFlags.RANDOM_TRACE_ID
_get_current = context_api.get_current
_SpanContextTuple = SpanContext
_new_context = tuple.__new__


def _needs_live_spans(processor: SpanProcessor) -> bool:
    """Whether ``processor`` may look at a span while it is open. The SDK's own exporting
    processors only override the hooks with ``pass``; any other override might not."""
    if type(processor) in (SimpleSpanProcessor, BatchSpanProcessor):
        return False
    cls = type(processor)
    return cls.on_start is not SpanProcessor.on_start or (
        cls._on_ending is not SpanProcessor._on_ending
    )


def lean_eligible(tracer: Tracer) -> bool:
    """Whether spans of ``tracer`` may be lean (the module docstring's rule)."""
    if not tracer._is_enabled():
        return False
    processors = getattr(tracer.span_processor, "_span_processors", None)
    if not isinstance(processors, tuple):
        return False
    return not any(_needs_live_spans(p) for p in processors)


def _default_sampler(sampler: sdk_sampling.Sampler) -> bool:
    """``ParentBased(ALWAYS_ON)`` with its default delegates: decided without a call."""
    return (
        type(sampler) is sdk_sampling.ParentBased
        and sampler._root is sdk_sampling.ALWAYS_ON
        and sampler._remote_parent_sampled is sdk_sampling.ALWAYS_ON
        and sampler._remote_parent_not_sampled is sdk_sampling.ALWAYS_OFF
        and sampler._local_parent_sampled is sdk_sampling.ALWAYS_ON
        and sampler._local_parent_not_sampled is sdk_sampling.ALWAYS_OFF
    )


class LeanTracer(trace_api.Tracer):
    """Wraps the SDK ``Tracer`` the provider gave, sharing its sampler, ids, resource, limits,
    scope and processors."""

    def __init__(self, sdk: Tracer) -> None:
        self.sdk = sdk
        self.processor = sdk.span_processor
        self.resource = sdk.resource
        self.scope = sdk._instrumentation_scope
        self.info = sdk.instrumentation_info
        self.limits = sdk._span_limits
        self._ids = sdk.id_generator
        self._checked: object = None
        self.processors: tuple[SpanProcessor, ...] = ()
        """The provider's processors, called directly at a lean span's end."""
        self._lean = False
        self._default = _default_sampler(sdk.sampler)
        # The SDK's self-metrics (spans started / live), a no-op object unless enabled.
        self._metrics: Any = getattr(sdk, "_tracer_metrics", None)
        self._metered = type(self._metrics).__name__ not in ("NoOpTracerMetrics", "NoneType")

    def _is_lean(self) -> bool:
        processors: Any = getattr(self.processor, "_span_processors", None)
        if processors is not self._checked:
            self._checked, self._lean = processors, lean_eligible(self.sdk)
            if self._lean:
                self.processors = processors  # a tuple: lean_eligible checked it
        return self._lean

    def start_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        sdk = self.sdk
        if not self._is_lean() or sdk.resource is not self.resource:
            if sdk.resource is not self.resource:  # the provider's resource was updated
                self.resource = sdk.resource
            return sdk.start_span(
                name,
                context,
                kind,
                attributes,
                links,
                start_time,
                record_exception,
                set_status_on_exception,
            )
        links = links or ()
        current: trace_api.Span | None = (context if context is not None else _get_current()).get(
            SPAN_KEY
        )  # type: ignore[assignment]
        parent: SpanContext | None = (
            current.get_span_context() if isinstance(current, trace_api.Span) else None
        )
        if parent is not None and not isinstance(parent, SpanContext):
            raise TypeError("parent_span_context must be a SpanContext or None.")
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = self._ids.generate_trace_id()
        else:
            trace_id = parent.trace_id
        if self._default:
            sampled = recording = parent is None or parent.trace_flags.sampled
            trace_state: TraceState | None = parent.trace_state if parent is not None else None
            span_attributes = attributes
        else:
            result = sdk.sampler.should_sample(context, trace_id, name, kind, attributes, links)
            sampled = result.decision.is_sampled()  # type: ignore[no-untyped-call]
            recording = result.decision.is_recording()  # type: ignore[no-untyped-call]
            trace_state = result.trace_state
            span_attributes = result.attributes
        flags = _SAMPLED if sampled else 0
        if self._ids.is_trace_id_random() if parent is None else parent.trace_flags.random_trace_id:
            flags |= _RANDOM
        # Both ids are valid (the parent's, or the id generator's), so the tuple is built as
        # SpanContext.__new__ would build it, without re-checking them.
        span_context = _new_context(
            _SpanContextTuple,
            (
                trace_id,
                self._ids.generate_span_id(),
                False,
                TRACE_FLAGS[flags],
                trace_state if trace_state is not None else DEFAULT_TRACE_STATE,
                True,
            ),
        )
        record_end = None
        if self._metered:
            decision = (
                Decision.RECORD_AND_SAMPLE
                if sampled
                else Decision.RECORD_ONLY
                if recording
                else Decision.DROP
            )
            record_end = self._metrics.start_span(parent, decision)
        if not recording:
            return trace_api.NonRecordingSpan(span_context)
        span = LeanSpan(
            self,
            name,
            span_context,
            parent,
            kind,
            span_attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )
        if record_end is not None:
            span._record_end = record_end
        return span

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace_api.Span]:
        span = self.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )
        with trace_api.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current
