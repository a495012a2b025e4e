"""The sampler itself: an OpenTelemetry SDK ``Sampler`` (the ``sdk`` extra), loaded only when
:func:`clicktrace.sampling.sampler` is called or ``ClickSampler`` is first named."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from clicktrace.sampling._decision import decided

__all__ = ["ClickSampler"]


class ClickSampler(Sampler):
    """Parent-based, with the click's decision in new traces, and ``ratio`` (by trace id) for
    a click that arrives with no decision at all."""

    def __init__(self, ratio: float) -> None:
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
            raise ValueError("ratio must be a number in [0, 1]")
        self.ratio = float(ratio)
        self._root = TraceIdRatioBased(self.ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        if parent.is_valid:
            sampled: bool | None = parent.trace_flags.sampled
            state = parent.trace_state
        else:
            sampled, state = decided(parent_context), None
        if sampled is None:
            return self._root.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )
        decision = Decision.RECORD_AND_SAMPLE if sampled else Decision.DROP
        return SamplingResult(decision, attributes if sampled else None, state)

    def get_description(self) -> str:
        return f"ClickSampler{{{self.ratio}}}"
