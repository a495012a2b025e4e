"""``LeanTracer``: an OpenTelemetry ``Tracer`` whose spans are :class:`LeanSpan` when the
provider's pipeline cannot tell the difference, and the SDK's own spans when it could.

The rule (see docs/edge.md, "Lean spans"): lean when the installed SDK is as lean spans read it
(:func:`sdk_mismatch`, checked once per process), the provider is the SDK's ``TracerProvider``,
the tracer is enabled, and every registered span processor is the SDK's Batch- or
SimpleSpanProcessor or leaves ``on_start`` and ``_on_ending`` as the base class has them (those
hooks see a live SDK span and may mutate it). The processor check is redone whenever the
provider's processor list changes. Sampling, ids, trace state and the Level 2 random-trace-id
flag follow the SDK's ``Tracer.start_span`` step by step, with the provider's own sampler and
id generator; the default sampler (parent-based, always on) is decided inline. The SDK's own
span metrics (``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``) are fed as the SDK feeds them.

Lean spans read about a dozen private parts of the SDK (the tracer's limits, scope, metrics and
enabled flag, the processor tuple, ``ParentBased``'s delegates, ``BoundedAttributes``'
internals, ``ReadableSpan``'s fields, ``SpanContext``'s tuple layout). An SDK minor release may
change any of them, so :func:`sdk_mismatch` probes each one on the installed SDK before the
first lean tracer is made; the tests run against the oldest and the newest SDK the package
allows (``make test``).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import (
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    Tracer,
)
from opentelemetry.sdk.trace import sampling as sdk_sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
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
from clicktrace.propagation._traceparent import TRACE_FLAGS, span_context_is_tuple
from clicktrace.spans._span import LeanSpan, bound_attributes, bound_events

__all__ = ["LeanTracer", "lean_eligible", "sdk_mismatch"]

_SAMPLED = TraceFlags.SAMPLED
_RANDOM = TraceFlags.RANDOM_TRACE_ID
_get_current = context_api.get_current
_SpanContextTuple = SpanContext
_new_context = tuple.__new__
_SPANS = frozenset({trace_api.NonRecordingSpan, LeanSpan})


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
        self._metrics: Any = sdk._tracer_metrics
        self._metered = type(self._metrics).__name__ != _NO_METRICS

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
            current.get_span_context()
            # exact types first: an isinstance over the Span ABC costs more than the rest
            if current is not None
            and (type(current) in _SPANS or isinstance(current, trace_api.Span))
            else None
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


# -- what lean spans read of the SDK, checked once per process ---------------------------------

_NO_METRICS = "NoOpTracerMetrics"  # the SDK's tracer metrics when its self-metrics are off
_HOOKS = frozenset({"on_start", "_on_ending", "on_end", "shutdown", "force_flush"})
_START_SPAN = (
    "name",
    "context",
    "kind",
    "attributes",
    "links",
    "start_time",
    "record_exception",
    "set_status_on_exception",
)
_SHOULD_SAMPLE = ("parent_context", "trace_id", "name", "kind", "attributes", "links")
_DELEGATES = {
    "_root": sdk_sampling.ALWAYS_ON,
    "_remote_parent_sampled": sdk_sampling.ALWAYS_ON,
    "_remote_parent_not_sampled": sdk_sampling.ALWAYS_OFF,
    "_local_parent_sampled": sdk_sampling.ALWAYS_ON,
    "_local_parent_not_sampled": sdk_sampling.ALWAYS_OFF,
}


def sdk_mismatch(sdk: Tracer) -> str | None:
    """The first part of the SDK lean spans read that is not as they read it (what was
    expected), or ``None`` when every part is. ``sdk`` is the first SDK tracer
    :func:`clicktrace.spans.get_tracer` is given; its parts are fixed by the SDK's version.

    Each check probes the installed SDK's own objects (fresh ones where a user's pipeline could
    differ) rather than only looking for names, so a part that was renamed, retyped or given
    another shape is caught as surely as a missing one."""
    for expected, holds in _assumptions(sdk):
        try:
            if not holds():
                return expected
        except Exception as exc:  # a probe of a changed SDK may fail in any way: that is the news
            return f"{expected} ({type(exc).__name__}: {exc})"
    return None


def _assumptions(sdk: Tracer) -> list[tuple[str, Callable[[], bool]]]:
    """What lean spans read of the SDK, as (what is expected, a probe that it holds), in the
    order they depend on each other: a lean span is made only after the tracer's parts held."""
    return [
        (
            "Tracer._span_limits is a SpanLimits",
            lambda: isinstance(sdk._span_limits, SpanLimits),
        ),
        (
            "Tracer._instrumentation_scope is an InstrumentationScope",
            lambda: isinstance(sdk._instrumentation_scope, InstrumentationScope),
        ),
        ("Tracer._is_enabled() returns a bool", lambda: type(sdk._is_enabled()) is bool),
        (
            "Tracer._tracer_metrics is the SDK's (NoOp)TracerMetrics, start_span(parent, decision)",
            lambda: _tracer_metrics_fit(sdk._tracer_metrics),
        ),
        (
            "Tracer.start_span takes (" + ", ".join(_START_SPAN) + ")",
            lambda: _parameters(Tracer.start_span) == _START_SPAN,
        ),
        (
            "Sampler.should_sample takes (" + ", ".join(_SHOULD_SAMPLE) + ", ...)",
            lambda: _parameters(sdk_sampling.Sampler.should_sample)[:6] == _SHOULD_SAMPLE,
        ),
        (
            "IdGenerator.is_trace_id_random() returns a bool",
            lambda: type(sdk.id_generator.is_trace_id_random()) is bool,
        ),
        (
            "TraceFlags.RANDOM_TRACE_ID is what trace_flags.random_trace_id reads",
            lambda: (
                TraceFlags(_RANDOM).random_trace_id and not TraceFlags(_SAMPLED).random_trace_id
            ),
        ),
        (
            "SpanContext is the tuple (trace_id, span_id, is_remote, trace_flags, trace_state, "
            "is_valid)",
            span_context_is_tuple,
        ),
        (
            "the provider's processors are a tuple in ._span_processors, replaced on each add",
            _processor_tuple_fits,
        ),
        (
            "SpanProcessor's hooks are exactly " + ", ".join(sorted(_HOOKS)),
            lambda: _hooks(SpanProcessor) == _HOOKS,
        ),
        (
            "ParentBased(ALWAYS_ON) keeps exactly its five delegates in " + ", ".join(_DELEGATES),
            _parent_based_fits,
        ),
        (
            "BoundedAttributes(maxlen, attributes, immutable=, max_value_len=) with ._set_items, "
            "._immutable and .dropped",
            _bounded_attributes_fit,
        ),
        ("BoundedList.from_seq(maxlen, items) with .dropped", _bounded_list_fits),
        (
            "a ReadableSpan's fields are the ones a LeanSpan has, and every ReadableSpan "
            "property and to_json() read a LeanSpan",
            lambda: _readable_span_fits(sdk),
        ),
    ]


def _parameters(function: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(inspect.signature(function).parameters)[1:]  # without self


def _tracer_metrics_fit(metrics: Any) -> bool:
    if type(metrics).__name__ not in (_NO_METRICS, "TracerMetrics"):
        return False
    inspect.signature(metrics.start_span).bind(None, Decision.DROP)  # raises if it changed
    return True


def _processor_tuple_fits() -> bool:
    pipeline = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
    before = pipeline._span_processors
    processor = SpanProcessor()
    pipeline.add_span_processor(processor)
    # LeanTracer notices a new processor by the tuple's identity.
    return before == () and pipeline._span_processors == (processor,)


def _hooks(cls: type) -> frozenset[str]:
    return frozenset(
        name for name, value in vars(cls).items() if callable(value) and not name.startswith("__")
    )


def _parent_based_fits() -> bool:
    sampler = sdk_sampling.ParentBased(sdk_sampling.ALWAYS_ON)
    return vars(sampler) == _DELEGATES and _default_sampler(sampler)


def _bounded_attributes_fit() -> bool:
    # Sequences take the replay through the SDK's class (nothing cut or dropped: the SDK would
    # log a warning for either, and the tests compare those rules on both SDK versions).
    limits = SpanLimits(max_span_attributes=4, max_span_attribute_length=8)
    attributes, dropped = bound_attributes([("a", ("x", "y")), {"b": [1]}], limits)
    try:
        attributes["c"] = 1  # type: ignore[index]
    except TypeError:  # immutable, as an ended SDK span's
        return dict(attributes) == {"a": ("x", "y"), "b": (1,)} and dropped == 0
    return False


def _bounded_list_fits() -> bool:
    events = bound_events([("e", None, 1), ("f", None, 2)], SpanLimits(max_events=1))
    return [event.name for event in events] == ["f"] and events.dropped == 1


def _readable_span_fits(sdk: Tracer) -> bool:
    # A span of the tracer, ended by hand: no processor sees it.
    span = LeanSpan(
        LeanTracer(sdk),
        "check",
        SpanContext(1, 2, False, TRACE_FLAGS[1]),
        None,
        SpanKind.INTERNAL,
        {"a": 1},
        (),
        1,
        True,
        True,
    )
    span.add_event("e", {"b": 2}, 2)
    span._end_time = 3
    fields = vars(ReadableSpan("check", resource=sdk.resource))
    if not all(hasattr(span, field) for field in fields):
        return False
    for name, value in vars(ReadableSpan).items():
        if isinstance(value, property):
            getattr(span, name)
    exported: dict[str, Any] = json.loads(span.to_json())
    return bool(exported["attributes"] == {"a": 1} and exported["events"][0]["name"] == "e")
