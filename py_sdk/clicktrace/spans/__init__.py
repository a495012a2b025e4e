"""The spans clicktrace opens itself (server, bus producer / consumer, notify, steps), recorded
below the OpenTelemetry SDK's per-span cost and exported through the provider's own span
processors, so every exporter works unchanged. :func:`get_tracer` is the one way in."""

from __future__ import annotations

import os

from opentelemetry import trace as trace_api

from clicktrace.spans.span import LeanSpan
from clicktrace.spans.tracer import LeanTracer, lean_eligible

__all__ = ["LeanSpan", "LeanTracer", "get_tracer", "lean_eligible"]

_OFF = frozenset({"0", "false", "no", "off"})


def get_tracer(
    name: str,
    version: str | None = None,
    *,
    tracer_provider: trace_api.TracerProvider | None = None,
    lean: bool | None = None,
) -> trace_api.Tracer:
    """The tracer clicktrace's own spans come from: a :class:`LeanTracer` over the SDK's
    tracer when the provider is the SDK's (it falls back to SDK spans span by span when the
    pipeline needs them), else the provider's own tracer (the API's no-op, another SDK).

    ``lean=None`` reads ``CLICKTRACE_LEAN_SPANS`` (default on; ``0`` / ``false`` turns every
    clicktrace component back to SDK spans)."""
    tracer = trace_api.get_tracer(name, version, tracer_provider=tracer_provider)
    if lean is None:
        lean = os.environ.get("CLICKTRACE_LEAN_SPANS", "").strip().lower() not in _OFF
    if not lean:
        return tracer
    from opentelemetry.sdk.trace import Tracer

    return LeanTracer(tracer) if isinstance(tracer, Tracer) else tracer
