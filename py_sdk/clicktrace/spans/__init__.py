"""The spans clicktrace opens itself (server, bus producer / consumer, notify, steps), recorded
below the OpenTelemetry SDK's per-span cost and exported through the provider's own span
processors, so every exporter works unchanged. :func:`get_tracer` is the one way in; the
lean classes live in ``clicktrace.spans.span`` / ``.tracer`` and need the ``sdk`` extra."""

from __future__ import annotations

import os
import sys

from opentelemetry import trace as trace_api

__all__ = ["get_tracer"]

_OFF = frozenset({"0", "false", "no", "off"})


def get_tracer(
    name: str,
    version: str | None = None,
    *,
    tracer_provider: trace_api.TracerProvider | None = None,
    lean: bool | None = None,
) -> trace_api.Tracer:
    """The tracer clicktrace's own spans come from: a ``LeanTracer`` over the SDK's tracer
    when the provider is the SDK's (it falls back to SDK spans whenever the pipeline needs
    them), else the provider's own tracer (the API's no-op, or another implementation).

    ``lean=None`` reads ``CLICKTRACE_LEAN_SPANS`` (default on; ``0`` / ``false`` turns every
    clicktrace component back to SDK spans)."""
    tracer = trace_api.get_tracer(name, version, tracer_provider=tracer_provider)
    if lean is None:
        lean = os.environ.get("CLICKTRACE_LEAN_SPANS", "").strip().lower() not in _OFF
    # Without the SDK imported, the provider cannot be the SDK's: nothing more to load.
    sdk = sys.modules.get("opentelemetry.sdk.trace")
    if not lean or sdk is None or not isinstance(tracer, sdk.Tracer):
        return tracer
    from clicktrace.spans.tracer import LeanTracer

    return LeanTracer(tracer)
